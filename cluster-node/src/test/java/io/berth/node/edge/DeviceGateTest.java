package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.ErrorCode;
import io.berth.protocol.RetryAfter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Admission by device id, on a clock of our own (nanoseconds from {@code T0}). */
class DeviceGateTest {

  private static final long T0 = 1_000_000_000_000L;
  private static final long SECOND = TimeUnit.SECONDS.toNanos(1);
  private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

  @Test
  void aDeviceReconnectingInATightLoopIsThrottledAfterItsBurstAndToldHowLongToWait() {
    DeviceGate gate = new DeviceGate(2, 3, 0, 1_000);
    for (int i = 0; i < 3; i++) {
      assertThat(gate.admit("d1", T0)).isNull();
    }
    Handshake.Refusal refused = gate.admit("d1", T0 + 100 * MS);
    assertThat(refused.code()).isEqualTo(ErrorCode.THROTTLED);
    assertThat(RetryAfter.millis(refused.message())).isEqualTo(400);
    assertThat(refused.message()).contains("d1");
    // Refusals take nothing: waiting as told is enough, and a moment less is not.
    assertThat(gate.admit("d1", T0 + 499 * MS).code()).isEqualTo(ErrorCode.THROTTLED);
    assertThat(gate.admit("d1", T0 + 500 * MS)).isNull();
    assertThat(gate.admit("d1", T0 + 500 * MS).code()).isEqualTo(ErrorCode.THROTTLED);
    // Other devices are not affected.
    assertThat(gate.admit("d2", T0 + 500 * MS)).isNull();
  }

  @Test
  void theWaitIsRoundedUpToAWholeMillisecond() {
    DeviceGate gate = new DeviceGate(3, 1, 0, 1_000);
    assertThat(gate.admit("d", T0)).isNull();
    Handshake.Refusal refused = gate.admit("d", T0 + 1);
    assertThat(RetryAfter.millis(refused.message())).isEqualTo(334);
  }

  @Test
  void aDeviceHoldsAtMostItsMaximumOfConnectionsUntilOneEnds() {
    DeviceGate gate = new DeviceGate(0, 1, 2, 1_000);
    assertThat(gate.admit("d", T0)).isNull();
    assertThat(gate.admit("d", T0)).isNull();
    Handshake.Refusal third = gate.admit("d", T0);
    assertThat(third.code()).isEqualTo(ErrorCode.TOO_MANY_CONNECTIONS);
    assertThat(third.message()).contains("2 connections");
    assertThat(gate.admit("other", T0)).isNull();
    gate.release("d", T0);
    assertThat(gate.admit("d", T0)).isNull();
    assertThat(gate.admit("d", T0).code()).isEqualTo(ErrorCode.TOO_MANY_CONNECTIONS);
  }

  @Test
  void aConnectRefusedForItsConnectionsStillCountsAgainstTheRate() {
    DeviceGate gate = new DeviceGate(1, 2, 1, 1_000);
    assertThat(gate.admit("d", T0)).isNull();
    assertThat(gate.admit("d", T0).code()).isEqualTo(ErrorCode.TOO_MANY_CONNECTIONS);
    assertThat(gate.admit("d", T0).code()).isEqualTo(ErrorCode.THROTTLED);
  }

  @Test
  void offLetsEverythingThroughAndRemembersNothing() {
    DeviceGate gate = new DeviceGate(0, 1, 0, 1_000);
    for (int i = 0; i < 1_000; i++) {
      assertThat(gate.admit("d", T0)).isNull();
    }
    gate.release("d", T0);
    assertThat(gate.tracked()).isZero();
  }

  @Test
  void memoryIsBoundedByTrackedDevices() {
    DeviceGate gate = new DeviceGate(1, 10, 0, 160);
    for (int i = 0; i < 10_000; i++) {
      assertThat(gate.admit("device-" + i, T0 + i)).isNull();
    }
    assertThat(gate.tracked()).isLessThanOrEqualTo(160);
  }

  @Test
  void devicesWhoseBucketIsFullAgainAreForgotten() {
    DeviceGate gate = new DeviceGate(1, 10, 0, 100_000);
    for (int i = 0; i < 10_000; i++) {
      gate.admit("device-" + i, T0);
    }
    assertThat(gate.tracked()).isEqualTo(10_000);
    // Two seconds later every bucket of those is full again (one connect takes one second):
    // connects of other devices make the gate forget them.
    for (int i = 0; i < 1_000; i++) {
      gate.admit("late-" + i, T0 + 2 * SECOND);
    }
    assertThat(gate.tracked()).isEqualTo(1_000);
  }

  @Test
  void connectedDevicesAreKeptWhateverTheBoundAndForgottenWhenTheyLeave() {
    DeviceGate gate = new DeviceGate(1, 10, 5, 16);
    for (int i = 0; i < 100; i++) {
      assertThat(gate.admit("device-" + i, T0)).isNull();
    }
    assertThat(gate.tracked()).isEqualTo(100);
    for (int i = 0; i < 100; i++) {
      gate.release("device-" + i, T0);
    }
    assertThat(gate.tracked()).isLessThanOrEqualTo(16);
    for (int i = 0; i < 100; i++) {
      gate.admit("device-" + i, T0 + 20 * SECOND);
    }
    for (int i = 0; i < 100; i++) {
      gate.release("device-" + i, T0 + 40 * SECOND);
    }
    assertThat(gate.tracked()).isZero();
  }

  @Test
  void concurrentConnectsOfOneDeviceNeverExceedItsMaximum() throws Exception {
    DeviceGate gate = new DeviceGate(0, 1, 3, 1_000);
    AtomicInteger open = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    AtomicInteger refused = new AtomicInteger();
    CountDownLatch start = new CountDownLatch(1);
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      Thread thread = new Thread(() -> {
        try {
          start.await();
        } catch (InterruptedException e) {
          return;
        }
        for (int i = 0; i < 20_000; i++) {
          if (gate.admit("d", System.nanoTime()) == null) {
            most.accumulateAndGet(open.incrementAndGet(), Math::max);
            open.decrementAndGet();
            gate.release("d", System.nanoTime());
          } else {
            refused.incrementAndGet();
          }
        }
      });
      thread.start();
      threads.add(thread);
    }
    start.countDown();
    for (Thread thread : threads) {
      thread.join(TimeUnit.SECONDS.toMillis(60));
    }
    assertThat(most.get()).isLessThanOrEqualTo(3);
    assertThat(gate.admit("d", System.nanoTime())).isNull();
    assertThat(gate.tracked()).isEqualTo(1);
  }
}
