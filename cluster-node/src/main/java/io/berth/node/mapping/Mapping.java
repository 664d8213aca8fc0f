package io.berth.node.mapping;

import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import com.fasterxml.jackson.databind.annotation.JsonSerialize;
import io.berth.node.secrets.SealedSecretJson;
import io.berth.persistence.CborSerializable;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * A function mapping (docs/ENDPOINTS.md): a named endpoint, the events it receives, and how a
 * socket's data is batched for it. A socket keeps the version it opened with until it reopens,
 * so the whole definition travels with the socket's session. Wherever it is stored, its secret is
 * sealed (docs/secrets.md): here, as Jackson writes it for snapshots and messages.
 */
public record Mapping(
    String name,
    long version,
    String endpoint,
    Set<Event> events,
    Criteria criteria,
    int timeoutMs,
    Retry retry,
    @JsonSerialize(using = SealedSecretJson.Serializer.class)
    @JsonDeserialize(using = SealedSecretJson.Deserializer.class)
    String secret,
    long linkWaitMs,
    boolean closeOnLinkTimeout,
    Limits limits)
    implements CborSerializable {

  /** A mapping without limits of its own: its sockets have the edge node's (docs/limits.md). */
  public Mapping(String name, long version, String endpoint, Set<Event> events, Criteria criteria, int timeoutMs,
      Retry retry, String secret, long linkWaitMs, boolean closeOnLinkTimeout) {
    this(name, version, endpoint, events, criteria, timeoutMs, retry, secret, linkWaitMs, closeOnLinkTimeout, null);
  }

  public enum Event {
    OPEN,
    DATA,
    CLOSE;

    public String wire() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * When a batch is sent: once {@code minBytes} are buffered and any of the limits is reached
   * (a delimiter: each delimited message is one batch; {@code maxFrames} frames; {@code maxBytes}
   * bytes; {@code maxDelayMs} since
   * the first buffered byte). With no limit at all, whatever is buffered goes as soon as the
   * endpoint is free. {@code maxBytes} always splits: no batch is larger.
   */
  public record Criteria(int minBytes, int maxBytes, int maxFrames, byte[] delimiter, int maxDelayMs)
      implements CborSerializable {
    public static final Criteria NONE = new Criteria(0, 0, 0, null, 0);

    public boolean hasLimit() {
      return maxBytes > 0 || maxFrames > 0 || (delimiter != null && delimiter.length > 0) || maxDelayMs > 0;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Criteria c && c.minBytes == minBytes && c.maxBytes == maxBytes && c.maxFrames == maxFrames
          && Arrays.equals(c.delimiter, delimiter) && c.maxDelayMs == maxDelayMs;
    }

    @Override
    public int hashCode() {
      return ((minBytes * 31 + maxBytes) * 31 + maxFrames) * 31 + Arrays.hashCode(delimiter) + maxDelayMs;
    }
  }

  public record Retry(int maxAttempts, int backoffBaseMs, int backoffMaxMs) implements CborSerializable {
    public static final Retry DEFAULT = new Retry(5, 200, 5_000);
  }

  /**
   * How fast a socket opened with the mapping may send (docs/limits.md): DATA frames and DATA
   * payload bytes per second, each with a burst, the size of its token bucket. In a mapping's
   * definition a value of {@link #NODE} takes the edge node's setting ({@code
   * berth.edge.limits.socket}), and a burst left out is one second of its rate; the edge resolves
   * them before it opens the socket, so the mapping a socket session holds has the limits its
   * connection runs with, {@code null} meaning none. A rate of 0 is no limit.
   */
  public record Limits(long framesPerSecond, long framesBurst, long bytesPerSecond, long bytesBurst)
      implements CborSerializable {

    /** A value the mapping leaves to the edge node's setting. */
    public static final long NODE = -1;
    /** No limit at all. */
    public static final Limits NONE = new Limits(0, 0, 0, 0);
    /** Rates and bursts fit an int, so that the bucket's arithmetic in nanoseconds cannot overflow. */
    public static final long MAX = Integer.MAX_VALUE;
    /**
     * Smallest burst, as a share of a second of the rate: held frames are let go on a timer whose
     * ticks are 10 ms apart, and a bucket that fills in less time than a late tick would lose
     * tokens, letting a device through slower than its limit.
     */
    static final long MIN_BURST_PER_SECOND = 50;

    public Limits {
      for (long v : new long[] {framesPerSecond, framesBurst, bytesPerSecond, bytesBurst}) {
        if (v < NODE || v > MAX) {
          throw new IllegalArgumentException("limits must be between 0 and " + MAX + " (or -1, the node's), got " + v);
        }
      }
    }

    /** Neither frames nor bytes are limited. */
    public boolean none() {
      return framesPerSecond == 0 && bytesPerSecond == 0;
    }

    /**
     * These limits, each value left to the node taken from {@code node} (resolved itself): what
     * a socket opened with them runs with. A burst left out is one second of its rate when the
     * rate is the mapping's own, the node's burst when the rate is the node's too.
     */
    public Limits over(Limits node) {
      long fps = framesPerSecond == NODE ? node.framesPerSecond : framesPerSecond;
      long fb = framesBurst > 0 ? framesBurst : framesPerSecond == NODE ? node.framesBurst : 0;
      long bps = bytesPerSecond == NODE ? node.bytesPerSecond : bytesPerSecond;
      long bb = bytesBurst > 0 ? bytesBurst : bytesPerSecond == NODE ? node.bytesBurst : 0;
      return resolved(fps, fb, bps, bb);
    }

    /**
     * Limits as a socket runs with them: no {@link #NODE} left, a burst of 0 made one second of its
     * rate, and no burst below {@link #MIN_BURST_PER_SECOND}; no burst where there is no rate.
     */
    public static Limits resolved(long framesPerSecond, long framesBurst, long bytesPerSecond, long bytesBurst) {
      return new Limits(framesPerSecond, burst(framesPerSecond, framesBurst), bytesPerSecond,
          burst(bytesPerSecond, bytesBurst));
    }

    private static long burst(long rate, long burst) {
      if (rate <= 0) {
        return 0;
      }
      long least = Math.max(1, (rate + MIN_BURST_PER_SECOND - 1) / MIN_BURST_PER_SECOND);
      return Math.max(burst <= 0 ? rate : burst, least);
    }
  }

  public static final String BUILTIN = "builtin:";

  public boolean isBuiltin() {
    return endpoint.startsWith(BUILTIN);
  }

  public String builtinName() {
    return isBuiltin() ? endpoint.substring(BUILTIN.length()) : null;
  }

  public boolean receives(Event event) {
    return events.contains(event);
  }

  /** The built-in mappings every registry starts with, one per built-in endpoint. */
  public static Mapping builtinDefault(String name) {
    Set<Event> events = name.equals("pair") ? EnumSet.allOf(Event.class) : EnumSet.of(Event.DATA);
    return new Mapping(name, 1, BUILTIN + name, events, Criteria.NONE, 5_000, Retry.DEFAULT, null, 30_000, false);
  }

  public Mapping withVersion(long newVersion) {
    return new Mapping(name, newVersion, endpoint, events, criteria, timeoutMs, retry, secret, linkWaitMs,
        closeOnLinkTimeout, limits);
  }

  /** The same mapping with the limits a socket opened with it runs with (resolved by the edge). */
  public Mapping withLimits(Limits resolved) {
    return new Mapping(name, version, endpoint, events, criteria, timeoutMs, retry, secret, linkWaitMs,
        closeOnLinkTimeout, resolved);
  }

  @Override
  public String toString() {
    // The secret never goes to logs.
    return "Mapping[" + name + " v" + version + " -> " + endpoint + ", events=" + events + "]";
  }
}
