package io.berth.protocol;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.random.RandomGenerator;

/**
 * How long to wait before the next try, given how many tries failed in a row: the one place where
 * Berth computes a retry delay (docs/retry.md lists who retries, and with which figures). It lives
 * in the protocol module because that is the only module below all its users: the device client,
 * which has no Pekko, the schema install and the node.
 *
 * <p>For attempt {@code n} (the n-th failure in a row, from 1) the base grows from {@code min},
 * {@link Growth#DOUBLING doubling} ({@code min × 2^(n−1)}) or {@link Growth#LINEAR linearly}
 * ({@code min × n}), and is capped at {@code max}. A {@code jitter} share of it is random, so that
 * clients failing together do not all try again together: the delay is drawn uniformly, in whole
 * milliseconds, from {@code ⌊base × (1 − jitter)⌋} to that plus {@code ⌊base × jitter⌋}. Jitter
 * 0.5 waits between half the base and the base; 0 waits the base exactly.
 *
 * @param min the first base delay (doubling) or the step it grows by (linear)
 * @param max the cap on the base delay
 * @param jitter the random share of each delay, from 0 to 1
 */
public record Backoff(Duration min, Duration max, Growth growth, double jitter) {

  /** How the base delay grows with each failed attempt. */
  public enum Growth {
    DOUBLING,
    LINEAR
  }

  /**
   * Doubling stops after this many doublings: the cap is normally reached long before, and a
   * larger shift would overflow.
   */
  private static final int MAX_DOUBLINGS = 20;

  public Backoff {
    Objects.requireNonNull(min, "min");
    Objects.requireNonNull(max, "max");
    Objects.requireNonNull(growth, "growth");
    if (min.isNegative() || max.isNegative()) {
      throw new IllegalArgumentException("backoff delays must not be negative, got " + min + " and " + max);
    }
    if (!(jitter >= 0 && jitter <= 1)) {
      throw new IllegalArgumentException("jitter must be between 0 and 1, got " + jitter);
    }
  }

  public static Backoff doubling(Duration min, Duration max, double jitter) {
    return new Backoff(min, max, Growth.DOUBLING, jitter);
  }

  public static Backoff linear(Duration step, Duration max, double jitter) {
    return new Backoff(step, max, Growth.LINEAR, jitter);
  }

  /** The delay in milliseconds after the {@code attempt}-th failure in a row (from 1). */
  public long delayMillis(int attempt) {
    return delayMillis(attempt, ThreadLocalRandom.current());
  }

  /** As {@link #delayMillis(int)}, drawing the jitter from {@code random}. */
  public long delayMillis(int attempt, RandomGenerator random) {
    long base = baseMillis(attempt);
    BigDecimal share = BigDecimal.valueOf(jitter);
    long fixed = BigDecimal.valueOf(base).multiply(BigDecimal.ONE.subtract(share)).longValue();
    long spread = BigDecimal.valueOf(base).multiply(share).longValue();
    return fixed + random.nextLong(spread + 1);
  }

  /** The delay before jitter: grown for {@code attempt} and capped. */
  long baseMillis(int attempt) {
    if (attempt < 1) {
      throw new IllegalArgumentException("attempts count from 1, got " + attempt);
    }
    long first = min.toMillis();
    long cap = max.toMillis();
    long grown;
    if (growth == Growth.DOUBLING) {
      int doublings = Math.min(attempt - 1, MAX_DOUBLINGS);
      grown = first > Long.MAX_VALUE >> doublings ? cap : first << doublings;
    } else {
      grown = first > Long.MAX_VALUE / attempt ? cap : first * attempt;
    }
    return Math.min(cap, grown);
  }
}
