package io.berth.node.edge;

import io.berth.node.mapping.Mapping;

/**
 * The rate limit of one connection's uplink (docs/limits.md): a token bucket for DATA frames and
 * one for DATA payload bytes, each a single {@code long} ({@link TokenBucket}). Decisions only:
 * the {@link ConnectionActor} asks before it takes each DATA frame, and when the answer is a wait
 * it leaves the frame where it is, does not ask its connection for more, and comes back after the
 * wait; TCP slows the device down meanwhile, as with its window.
 *
 * <p>Connections share an unstarted throttle with the limits of their mapping ({@link
 * EdgeLimits#open}); a connection {@link #started starts} its own when it takes its first DATA,
 * so a connection that never sends any carries no bucket (32 bytes when it does).
 */
final class UplinkThrottle {

  private final Mapping.Limits limits;
  private long framesFullAt = TokenBucket.FULL;
  private long bytesFullAt = TokenBucket.FULL;

  /** A throttle with {@code limits} (resolved, at least one rate set), its buckets full. */
  UplinkThrottle(Mapping.Limits limits) {
    this.limits = limits;
  }

  Mapping.Limits limits() {
    return limits;
  }

  /** A throttle of the connection's own, with the same limits and full buckets. */
  UplinkThrottle started() {
    return new UplinkThrottle(limits);
  }

  /**
   * Takes a DATA frame of {@code payloadBytes} if both buckets allow it now, and answers 0; else
   * takes nothing and answers the nanoseconds until they will.
   */
  long take(int payloadBytes, long now) {
    long framesCost = 0;
    long bytesCost = 0;
    long wait = 0;
    if (limits.framesPerSecond() > 0) {
      framesCost = TokenBucket.nanos(1, limits.framesPerSecond());
      wait = TokenBucket.wait(framesFullAt, framesCost, limits.framesBurst() * framesCost, now);
    }
    if (limits.bytesPerSecond() > 0) {
      bytesCost = TokenBucket.nanos(payloadBytes, limits.bytesPerSecond());
      wait = Math.max(wait, TokenBucket.wait(bytesFullAt, bytesCost,
          TokenBucket.nanos(limits.bytesBurst(), limits.bytesPerSecond()), now));
    }
    if (wait > 0) {
      return wait;
    }
    if (limits.framesPerSecond() > 0) {
      framesFullAt = TokenBucket.take(framesFullAt, framesCost, now);
    }
    if (limits.bytesPerSecond() > 0) {
      bytesFullAt = TokenBucket.take(bytesFullAt, bytesCost, now);
    }
    return 0;
  }
}
