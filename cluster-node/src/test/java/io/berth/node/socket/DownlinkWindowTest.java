package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Mapping;
import io.berth.protocol.Frame;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The downlink of one incarnation: pushing within the window, acknowledgements, bounds, retries. */
class DownlinkWindowTest {

  /** Outbox bound 8 frames / 100 bytes, window 4 frames, pushes of at most 20 bytes. */
  private static final SocketSettings SETTINGS = new SocketSettings("echo", 8, 100, 4, 20, Duration.ofSeconds(30),
      1000, Duration.ofSeconds(3), Duration.ZERO);
  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");

  /** An open socket whose outbox holds frames 1..n of 10 bytes each, none acknowledged. */
  private static SocketState withOutbox(int n) {
    SocketState s = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("echo"), null, "e", 0, AT, false));
    List<Frame.Data> out = LongStream.rangeClosed(1, n).mapToObj(q -> new Frame.Data(q, new byte[10])).toList();
    return SocketEntity.apply(s, new SocketEvent.Injected(out, AT));
  }

  private static List<Long> seqs(List<List<Frame.Data>> messages) {
    return messages.stream().flatMap(List::stream).map(Frame.Data::seq).toList();
  }

  @Test
  void pushesOnlyTheWindowBeyondWhatTheDeviceAcknowledgedAndEachFrameOnce() {
    SocketState s = withOutbox(8);
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    List<List<Frame.Data>> first = w.nextPushes(s);
    assertThat(seqs(first)).containsExactly(1L, 2L, 3L, 4L);
    assertThat(first).as("20 bytes a message").hasSize(2);
    assertThat(w.nextPushes(s)).isEmpty();
    assertThat(w.awaitsAck(s)).isTrue();
    assertThat(w.deviceAcked(s, 3)).isTrue();
    assertThat(seqs(w.nextPushes(s))).containsExactly(5L, 6L, 7L);
  }

  @Test
  void anAcknowledgementIsNewsOnceAndNeverBeyondTheLastFrameSent() {
    SocketState s = withOutbox(3);
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    assertThat(w.deviceAcked(s, 9)).isTrue();
    assertThat(w.liveAcked()).isEqualTo(3);
    assertThat(w.deviceAcked(s, 3)).isFalse();
    assertThat(w.acked(s)).isEqualTo(3);
    assertThat(w.outboxFrames(s)).isZero();
    assertThat(w.outboxBytes(s)).isZero();
  }

  @Test
  void theDurableAcknowledgementCountsWhenTheLiveOneIsBehind() {
    SocketState s = SocketEntity.apply(withOutbox(5), new SocketEvent.DownlinkAcked(2, AT));
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    assertThat(w.acked(s)).isEqualTo(2);
    assertThat(w.outboxFrames(s)).isEqualTo(3);
    assertThat(w.outboxBytes(s)).isEqualTo(30);
    assertThat(seqs(w.nextPushes(s))).containsExactly(3L, 4L, 5L);
  }

  @Test
  void theOutboxOverflowsPastEitherBoundAndHasRoomAtHalf() {
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    assertThat(w.overflows(8, 100)).isFalse();
    assertThat(w.overflows(9, 0)).isTrue();
    assertThat(w.overflows(0, 101)).isTrue();
    SocketState s = withOutbox(8);
    assertThat(w.hasRoom(s)).isFalse();
    w.deviceAcked(s, 4);
    assertThat(w.hasRoom(s)).as("4 frames, 40 bytes left").isTrue();
  }

  @Test
  void aStalledEdgeResumesOnlyOnceThereIsRoom() {
    SocketState s = withOutbox(8);
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    assertThat(w.resumes(s)).as("not stalled").isFalse();
    w.stall();
    assertThat(w.resumes(s)).isFalse();
    w.deviceAcked(s, 3);
    assertThat(w.resumes(s)).isFalse();
    w.deviceAcked(s, 4);
    assertThat(w.resumes(s)).isTrue();
    assertThat(w.isStalled()).isFalse();
    assertThat(w.resumes(s)).isFalse();
  }

  @Test
  void aResyncPushesAgainFromWhereTheEdgeSawTheGapButNotWhatIsAcknowledged() {
    SocketState s = withOutbox(8);
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    w.nextPushes(s);
    w.deviceAcked(s, 1);
    w.resync(s, 3);
    assertThat(seqs(w.nextPushes(s))).containsExactly(4L, 5L);
    w.resync(s, 0);
    assertThat(seqs(w.nextPushes(s))).containsExactly(2L, 3L, 4L, 5L);
  }

  @Test
  void aRetryPushesAgainOnlyWhenNothingWasAcknowledgedSinceTheLastLook() {
    SocketState s = withOutbox(8);
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    assertThat(w.retry(s)).as("nothing pushed").isEqualTo(DownlinkWindow.Retry.IDLE);
    w.nextPushes(s);
    w.retryArmed(s);
    w.deviceAcked(s, 1);
    assertThat(w.retry(s)).as("the device made progress").isEqualTo(DownlinkWindow.Retry.WAIT);
    assertThat(w.retry(s)).isEqualTo(DownlinkWindow.Retry.PUSH_AGAIN);
    assertThat(seqs(w.nextPushes(s))).containsExactly(2L, 3L, 4L, 5L);
    w.deviceAcked(s, 5);
    assertThat(w.retry(s)).isEqualTo(DownlinkWindow.Retry.IDLE);
  }

  @Test
  void aRestartCountsNothingAsPushedAndForgetsTheStall() {
    SocketState s = withOutbox(8);
    DownlinkWindow w = new DownlinkWindow(SETTINGS);
    w.nextPushes(s);
    w.stall();
    w.restart(2);
    assertThat(w.isStalled()).isFalse();
    assertThat(w.liveAcked()).isEqualTo(2);
    assertThat(seqs(w.nextPushes(s))).containsExactly(3L, 4L, 5L, 6L);
  }
}
