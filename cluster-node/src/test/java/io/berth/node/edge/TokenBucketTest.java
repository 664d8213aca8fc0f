package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Mapping;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The bucket arithmetic and the uplink throttle on a clock of our own (nanoseconds from 0). */
class TokenBucketTest {

  private static final long SECOND = TimeUnit.SECONDS.toNanos(1);
  private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

  /**
   * A sender that offers a frame whenever the throttle lets it, over {@code seconds}: the frames
   * the throttle took. Waits are followed exactly, as the actor's timer would (give or take a
   * tick, see {@link #aLateReleaseLosesNothingWhileTheBucketIsNotFull}).
   */
  private static long flood(UplinkThrottle t, int payload, long seconds) {
    long now = 0;
    long taken = 0;
    while (now <= seconds * SECOND) {
      long wait = t.take(payload, now);
      if (wait == 0) {
        taken++;
      } else {
        now += wait;
      }
    }
    return taken;
  }

  @Test
  void aFloodGetsTheBurstThenExactlyTheRate() {
    UplinkThrottle t = new UplinkThrottle(Mapping.Limits.resolved(200, 50, 0, 0));
    assertThat(flood(t, 16, 10)).isEqualTo(50 + 200 * 10);
  }

  @Test
  void theBurstGoesAtOnceAndTheNextFrameWaitsOneIntervalExactly() {
    UplinkThrottle t = new UplinkThrottle(Mapping.Limits.resolved(100, 5, 0, 0));
    for (int i = 0; i < 5; i++) {
      assertThat(t.take(1, 0)).isZero();
    }
    long wait = t.take(1, 0);
    assertThat(wait).isEqualTo(10 * MS);
    assertThat(t.take(1, wait - 1)).isEqualTo(1);
    assertThat(t.take(1, wait)).isZero();
  }

  @Test
  void bytesAreLimitedByPayloadAndTheStricterLimitRules() {
    // 1 KiB frames at 32 KiB/s are 32 frames a second: the byte limit, not the frame limit, rules.
    UplinkThrottle bytes = new UplinkThrottle(Mapping.Limits.resolved(1_000, 0, 32_768, 32_768));
    assertThat(flood(bytes, 1_024, 10)).isEqualTo(32 + 32 * 10);
    // 10-byte frames at the same byte rate are 3,276 a second: the frame limit rules.
    UplinkThrottle frames = new UplinkThrottle(Mapping.Limits.resolved(1_000, 0, 32_768, 32_768));
    assertThat(flood(frames, 10, 10)).isEqualTo(1_000 + 1_000 * 10);
  }

  @Test
  void aFrameLargerThanTheBurstGoesWhenTheBucketIsFullAndLeavesItInDebt() {
    UplinkThrottle t = new UplinkThrottle(Mapping.Limits.resolved(0, 0, 1_000, 1_000));
    assertThat(t.take(5_000, 0)).isZero();
    // Five seconds of debt, and then the bucket fills again: the next small frame waits for it.
    long wait = t.take(10, 0);
    assertThat(wait).isEqualTo(4 * SECOND + 10 * MS);
    assertThat(t.take(10, wait)).isZero();
    // Not full yet: the next large one waits until it is, not forever.
    assertThat(t.take(5_000, wait)).isEqualTo(SECOND);
  }

  @Test
  void aLateReleaseLosesNothingWhileTheBucketIsNotFull() {
    UplinkThrottle t = new UplinkThrottle(Mapping.Limits.resolved(1_000, 0, 0, 0));
    long now = 0;
    long taken = 0;
    while (now < 10 * SECOND) {
      long wait = t.take(1, now);
      if (wait == 0) {
        taken++;
      } else {
        now += Math.max(wait, 10 * MS); // the scheduler's tick
      }
    }
    assertThat(taken).isBetween(1_000L + 10_000 - 10, 1_000L + 10_000 + 10);
  }

  @Test
  void aBurstIsAtLeastTwentyMillisecondsOfItsRate() {
    Mapping.Limits tiny = Mapping.Limits.resolved(10_000, 1, 1_000_000, 100);
    assertThat(tiny.framesBurst()).isEqualTo(200);
    assertThat(tiny.bytesBurst()).isEqualTo(20_000);
    assertThat(Mapping.Limits.resolved(3, 1, 0, 5).framesBurst()).isEqualTo(1);
    assertThat(Mapping.Limits.resolved(3, 1, 0, 5).bytesBurst()).isZero();
  }

  @Test
  void aStartedThrottleIsItsOwnAndStartsFull() {
    UplinkThrottle shared = new UplinkThrottle(Mapping.Limits.resolved(10, 1, 0, 0));
    UplinkThrottle a = shared.started();
    UplinkThrottle b = shared.started();
    assertThat(a.take(1, 0)).isZero();
    assertThat(a.take(1, 0)).isPositive();
    assertThat(b.take(1, 0)).isZero();
    assertThat(a.limits()).isSameAs(shared.limits());
  }

  @Test
  void waitsAreExactAtTheEdges() {
    long cost = TokenBucket.nanos(1, 3);
    assertThat(cost).isEqualTo(333_333_333L);
    long capacity = 3 * cost;
    assertThat(TokenBucket.wait(TokenBucket.FULL, cost, capacity, 0)).isZero();
    long fullAt = TokenBucket.take(TokenBucket.FULL, cost, 0);
    fullAt = TokenBucket.take(fullAt, cost, 0);
    fullAt = TokenBucket.take(fullAt, cost, 0);
    assertThat(fullAt).isEqualTo(capacity);
    assertThat(TokenBucket.wait(fullAt, cost, capacity, 0)).isEqualTo(cost);
    assertThat(TokenBucket.wait(fullAt, cost, capacity, cost)).isZero();
    assertThat(TokenBucket.wait(fullAt, cost, capacity, capacity)).isZero();
  }
}
