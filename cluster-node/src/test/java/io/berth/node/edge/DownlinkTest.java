package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class DownlinkTest {

  private final Downlink downlink = new Downlink();

  @Test
  void pushedFramesAreWrittenInOrderOnceEach() {
    downlink.start(4);
    assertThat(downlink.push(4, 0)).as("acknowledged before").isEqualTo(Downlink.Pushed.WRITTEN);
    assertThat(downlink.push(6, 0)).isEqualTo(Downlink.Pushed.GAP);
    assertThat(downlink.push(5, 0)).isEqualTo(Downlink.Pushed.NEXT);
    assertThat(downlink.push(5, 0)).as("pushed again after a retry").isEqualTo(Downlink.Pushed.WRITTEN);
    assertThat(downlink.highestPushed()).isEqualTo(5);
  }

  @Test
  void anAckBeyondWhatWasWrittenCountsForNothing() {
    downlink.start(0);
    downlink.push(1, 0);
    downlink.push(2, 0);
    assertThat(downlink.acked(3, 1)).isFalse();
    assertThat(downlink.acked(1, 1)).isTrue();
    assertThat(downlink.acked(1, 2)).as("no news").isFalse();
    assertThat(downlink.deviceAcked()).isEqualTo(1);
  }

  @Test
  void theAckTimeoutRunsFromTheOldestUnacknowledgedFrame() {
    downlink.start(0);
    assertThat(downlink.allAcked()).isTrue();
    downlink.push(1, 100);
    downlink.push(2, 150);
    assertThat(downlink.overdue(200, 100)).isFalse();
    assertThat(downlink.overdue(201, 100)).isTrue();

    downlink.acked(1, 300);
    assertThat(downlink.overdue(350, 100)).as("the clock restarts at an ACK that leaves frames").isFalse();
    assertThat(downlink.overdue(401, 100)).isTrue();

    downlink.acked(2, 400);
    assertThat(downlink.allAcked()).isTrue();
    assertThat(downlink.overdue(10_000, 100)).isFalse();
  }

  @Test
  void theSessionHearsOfAcknowledgementsWhenTheDeviceCaughtUpOrEveryQuarterWindow() {
    downlink.start(10);
    for (long seq = 11; seq <= 110; seq++) {
      downlink.push(seq, 0);
    }
    downlink.acked(11, 1);
    assertThat(downlink.reportDue(25)).as("one frame of a hundred").isFalse();
    assertThat(downlink.unreported()).isTrue();
    downlink.acked(34, 1);
    assertThat(downlink.reportDue(25)).isFalse();
    downlink.acked(35, 1);
    assertThat(downlink.reportDue(25)).as("25 frames since the session last heard").isTrue();
    assertThat(downlink.report()).isEqualTo(35);
    assertThat(downlink.unreported()).isFalse();
    assertThat(downlink.reportDue(25)).as("nothing new").isFalse();

    downlink.acked(36, 2);
    assertThat(downlink.reportDue(25)).isFalse();
    assertThat(downlink.report()).as("what gathered goes with the tick or the end").isEqualTo(36);

    downlink.acked(110, 3);
    assertThat(downlink.reportDue(1_000)).as("the device caught up: at once, whatever the batch").isTrue();
  }
}
