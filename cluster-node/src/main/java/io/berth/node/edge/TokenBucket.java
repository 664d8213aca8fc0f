package io.berth.node.edge;

/**
 * The arithmetic of a token bucket kept as one {@code long}: the {@code System.nanoTime()} at
 * which the bucket is full again (docs/limits.md). A bucket of {@code capacity} tokens refilling at
 * {@code rate} per second holds, at {@code now}, {@code capacity - (fullAt - now) × rate} tokens;
 * taking {@code n} moves {@code fullAt} later by {@code n / rate} seconds. Counting in time instead
 * of tokens needs no refill step, no fractions and no second field: this is the virtual-scheduling
 * form of the generic cell rate algorithm (ITU-T I.371), which ATM switches and many rate limiters
 * use for the same reason.
 *
 * <p>Amounts are in nanoseconds of refill: {@link #nanos} turns tokens into them. A take larger
 * than the whole bucket is allowed once the bucket is full, and leaves it in debt: the rate holds
 * on average, and one frame larger than a burst is never refused forever.
 */
final class TokenBucket {

  /** A bucket that has always been full. */
  static final long FULL = Long.MIN_VALUE;

  private static final long NANOS_PER_SECOND = 1_000_000_000L;

  private TokenBucket() {}

  /**
   * The refill time of {@code tokens} at {@code perSecond}, rounded down: a device is never held
   * back by the rounding, and it is short of a nanosecond per take. Tokens and rate are at most
   * {@link io.berth.node.mapping.Mapping.Limits#MAX}, so the product fits a long.
   */
  static long nanos(long tokens, long perSecond) {
    return tokens * NANOS_PER_SECOND / perSecond;
  }

  /** Nanoseconds until {@code cost} can be taken, 0 when it can be now. */
  static long wait(long fullAt, long cost, long capacity, long now) {
    if (fullAt <= now) {
      return 0; // full: anything goes, even more than the bucket holds
    }
    long after = fullAt + cost;
    if (after - now <= capacity) {
      return 0;
    }
    // Until there is room for the cost, or until the bucket is full for a cost larger than it.
    return Math.min(after - capacity, fullAt) - now;
  }

  /** The bucket after {@code cost} was taken ({@link #wait} said it could be). */
  static long take(long fullAt, long cost, long now) {
    return Math.max(fullAt, now) + cost;
  }
}
