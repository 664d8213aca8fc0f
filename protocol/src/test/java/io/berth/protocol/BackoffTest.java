package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.LongSummaryStatistics;
import java.util.Random;
import java.util.random.RandomGenerator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class BackoffTest {

  private static final Backoff DEVICE = Backoff.doubling(Duration.ofMillis(100), Duration.ofSeconds(5), 0.5);

  /** Draws the smallest value every time. */
  private static final RandomGenerator LOWEST = new RandomGenerator() {
    @Override
    public long nextLong() {
      return 0;
    }

    @Override
    public long nextLong(long bound) {
      return 0;
    }
  };

  /** Draws the largest value every time. */
  private static final RandomGenerator HIGHEST = new RandomGenerator() {
    @Override
    public long nextLong() {
      return -1;
    }

    @Override
    public long nextLong(long bound) {
      return bound - 1;
    }
  };

  @Test
  void doublingStartsAtTheMinimumAndDoublesUntilTheCap() {
    assertThat(IntStream.rangeClosed(1, 8).mapToLong(DEVICE::baseMillis).toArray())
        .containsExactly(100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000);
  }

  @Test
  void doublingStopsAfterTwentyDoublingsEvenBelowTheCap() {
    Backoff wide = Backoff.doubling(Duration.ofMillis(1), Duration.ofDays(1), 0);
    assertThat(wide.baseMillis(21)).isEqualTo(1L << 20);
    assertThat(wide.baseMillis(40)).isEqualTo(1L << 20);
  }

  @Test
  void linearGrowsByTheStepUntilTheCap() {
    Backoff lock = Backoff.linear(Duration.ofMillis(100), Duration.ofMillis(500), 0.8);
    assertThat(IntStream.rangeClosed(1, 7).mapToLong(lock::baseMillis).toArray())
        .containsExactly(100, 200, 300, 400, 500, 500, 500);
  }

  @Test
  void aGrowthThatWouldOverflowIsCapped() {
    Backoff huge = Backoff.doubling(Duration.ofMillis(Long.MAX_VALUE / 4), Duration.ofDays(1), 0);
    assertThat(huge.baseMillis(5)).isEqualTo(Duration.ofDays(1).toMillis());
    Backoff hugeStep = Backoff.linear(Duration.ofMillis(Long.MAX_VALUE / 4), Duration.ofDays(1), 0);
    assertThat(hugeStep.baseMillis(5)).isEqualTo(Duration.ofDays(1).toMillis());
  }

  @Test
  void halfJitterWaitsBetweenHalfTheBaseAndTheBase() {
    for (int attempt = 1; attempt <= 10; attempt++) {
      long base = DEVICE.baseMillis(attempt);
      assertThat(DEVICE.delayMillis(attempt, LOWEST)).isEqualTo(base / 2);
      assertThat(DEVICE.delayMillis(attempt, HIGHEST)).isEqualTo(base);
    }
  }

  @Test
  void jitteredDelaysCoverTheWholeRangeAndNothingOutsideIt() {
    Random seeded = new Random(42);
    LongSummaryStatistics delays = IntStream.range(0, 5_000).mapToLong(i -> DEVICE.delayMillis(1, seeded))
        .summaryStatistics();
    assertThat(delays.getMin()).isEqualTo(50);
    assertThat(delays.getMax()).isEqualTo(100);
  }

  @Test
  void noJitterWaitsTheBaseExactly() {
    Backoff exact = Backoff.doubling(Duration.ofMillis(100), Duration.ofSeconds(5), 0);
    assertThat(exact.delayMillis(3, new Random(7))).isEqualTo(400);
  }

  @Test
  void fullJitterWaitsAnythingFromZeroToTheBase() {
    Backoff full = Backoff.doubling(Duration.ofMillis(100), Duration.ofSeconds(5), 1);
    assertThat(full.delayMillis(2, LOWEST)).isZero();
    assertThat(full.delayMillis(2, HIGHEST)).isEqualTo(200);
  }

  /**
   * The device client's reconnects and the mapping's endpoint calls computed {@code base / 2 +
   * random(base / 2 + 1)} themselves; with half jitter the helper draws the same delays from the
   * same random sequence, odd bases and the cap included.
   */
  @Test
  void halfJitterDrawsExactlyWhatTheFormulaItReplacedDrew() {
    for (long[] figures : new long[][] {{100, 5_000}, {200, 5_000}, {1, 7}, {3, 1_001}, {50, 100}}) {
      Backoff backoff = Backoff.doubling(Duration.ofMillis(figures[0]), Duration.ofMillis(figures[1]), 0.5);
      Random theirs = new Random(figures[0]);
      Random ours = new Random(figures[0]);
      for (int attempt = 1; attempt <= 30; attempt++) {
        long base = Math.min(figures[1], figures[0] << Math.min(attempt - 1, 20));
        long expected = base / 2 + theirs.nextLong(base / 2 + 1);
        assertThat(backoff.delayMillis(attempt, ours)).as("attempt %d of %s", attempt, backoff).isEqualTo(expected);
      }
    }
  }

  @Test
  void theSchemaInstallsPausesStayBetweenTwentyAndAHundredMillisecondsTimesTheAttempt() {
    Backoff h2 = Backoff.linear(Duration.ofMillis(100), Duration.ofSeconds(1), 0.8);
    for (int attempt = 1; attempt <= 9; attempt++) {
      assertThat(h2.delayMillis(attempt, LOWEST)).isEqualTo(20L * attempt);
      assertThat(h2.delayMillis(attempt, HIGHEST)).isEqualTo(100L * attempt);
    }
  }

  @Test
  void refusesAttemptsBelowOneNegativeDelaysAndJitterOutsideZeroToOne() {
    assertThatThrownBy(() -> DEVICE.delayMillis(0)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("from 1");
    assertThatThrownBy(() -> Backoff.doubling(Duration.ofMillis(-1), Duration.ofSeconds(1), 0.5))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
    assertThatThrownBy(() -> Backoff.linear(Duration.ofMillis(1), Duration.ofSeconds(-1), 0.5))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
    assertThatThrownBy(() -> Backoff.doubling(Duration.ofMillis(1), Duration.ofSeconds(1), 1.5))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("jitter");
    assertThatThrownBy(() -> Backoff.doubling(Duration.ofMillis(1), Duration.ofSeconds(1), Double.NaN))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("jitter");
  }
}
