package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.protocol.Frame;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class UplinkTest {

  /** Windows of 4 frames and 1,000 bytes; 3 frames or 1 KiB per Deliver, 2 of them unanswered. */
  private static final EdgeSettings SETTINGS = EdgeSettings.fromConfig(ConfigFactory.parseString("""
      berth.auth.secret = "sixteen-bytes-or-more"
      berth.edge.tls.enabled = off
      berth.edge.window = 4
      berth.edge.window-bytes = 1000
      berth.edge.max-batch-frames = 3
      berth.edge.max-batch-bytes = 1 KiB
      berth.edge.max-frame-size = 512
      berth.edge.max-deliveries-in-flight = 2
      """).withFallback(ConfigFactory.defaultReference()).resolve());

  private final Uplink uplink = new Uplink(SETTINGS);

  /** Takes DATA from {@code from} to {@code to} with payloads of {@code bytes}, as read in one batch. */
  private void read(long from, long to, int bytes, long now) {
    List<Frame.Data> frames = new ArrayList<>();
    for (long seq = from; seq <= to; seq++) {
      assertThat(uplink.take(seq)).isEqualTo(Uplink.Seq.NEXT);
      frames.add(new Frame.Data(seq, new byte[bytes]));
    }
    uplink.forward(frames, now);
  }

  private static List<Long> seqs(List<Frame.Data> frames) {
    return frames == null ? null : frames.stream().map(Frame.Data::seq).toList();
  }

  private static ToEdge.Delivered delivered(long upTo) {
    return new ToEdge.Delivered(upTo, upTo, false);
  }

  @Test
  void framesGoInBatchesWithAtMostTheConfiguredDeliveriesUnanswered() {
    uplink.start(0);
    read(1, 7, 10, 0);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(1L, 2L, 3L);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(4L, 5L, 6L);
    assertThat(uplink.nextDelivery()).as("two Deliver messages unanswered").isNull();

    assertThat(uplink.delivered(delivered(3), 1)).isTrue();
    assertThat(uplink.lastConfirmed()).isEqualTo(3);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(7L);
    assertThat(uplink.nextDelivery()).as("nothing else waits").isNull();
  }

  @Test
  void aDeliverHoldsNoMoreBytesThanABatchAllows() {
    uplink.start(0);
    read(1, 3, 400, 0);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(1L, 2L);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(3L);
  }

  @Test
  void sequenceNumbersContinueFromWhatTheSessionHolds() {
    uplink.start(5);
    assertThat(uplink.take(0)).isEqualTo(Uplink.Seq.ZERO);
    assertThat(uplink.take(3)).isEqualTo(Uplink.Seq.REPLAY);
    assertThat(uplink.take(5)).isEqualTo(Uplink.Seq.REPLAY);
    assertThat(uplink.take(7)).isEqualTo(Uplink.Seq.GAP);
    assertThat(uplink.highestForwarded()).as("a gap takes nothing").isEqualTo(5);
    assertThat(uplink.take(6)).isEqualTo(Uplink.Seq.NEXT);
    assertThat(uplink.take(6)).as("taken once").isEqualTo(Uplink.Seq.REPLAY);
  }

  @Test
  void theWindowClosesPastItsFramesOrItsBytes() {
    uplink.start(0);
    read(1, 4, 10, 0);
    assertThat(uplink.windowOpen()).as("4 frames of 4").isTrue();
    read(5, 5, 10, 0);
    assertThat(uplink.windowOpen()).as("5 frames of 4").isFalse();

    Uplink bytes = new Uplink(SETTINGS);
    bytes.start(0);
    bytes.take(1);
    bytes.take(2);
    bytes.forward(List.of(new Frame.Data(1, new byte[500]), new Frame.Data(2, new byte[501])), 0);
    assertThat(bytes.windowOpen()).as("1,001 bytes of 1,000").isFalse();
  }

  @Test
  void oneFrameLargerThanTheByteWindowIsWithinIt() {
    Uplink large = new Uplink(SETTINGS);
    large.start(0);
    large.take(1);
    large.forward(List.of(new Frame.Data(1, new byte[1500])), 0);
    assertThat(large.windowOpen()).isTrue();
  }

  @Test
  void framesTheSessionHoldsFreeThePipelineButOnlyDeliveredOnesAreConfirmed() {
    uplink.start(0);
    read(1, 6, 10, 0);
    uplink.nextDelivery();
    uplink.nextDelivery();
    assertThat(uplink.delivered(new ToEdge.Delivered(0, 6, false), 5)).as("nothing to ACK").isFalse();
    assertThat(uplink.nothingInFlight()).isTrue();
    assertThat(uplink.allConfirmed()).isFalse();
    assertThat(uplink.sessionHoldsAllUnconfirmed()).isTrue();
    assertThat(uplink.sinceProgress(8)).as("any answer is progress").isEqualTo(3);

    assertThat(uplink.delivered(delivered(6), 9)).isTrue();
    assertThat(uplink.allConfirmed()).isTrue();
    assertThat(uplink.delivered(delivered(6), 10)).as("confirmed before").isFalse();
  }

  @Test
  void aSessionThatRefusesMoreGetsNothingUntilTheUplinkIsRewound() {
    uplink.start(0);
    read(1, 6, 10, 0);
    uplink.nextDelivery();
    uplink.nextDelivery();
    assertThat(uplink.delivered(new ToEdge.Delivered(2, 2, true), 1)).isTrue();
    read(7, 7, 10, 1);
    assertThat(uplink.nextDelivery()).as("stalled").isNull();

    uplink.rewind(2);
    assertThat(seqs(uplink.nextDelivery())).as("everything after the watermark again").containsExactly(3L, 4L, 5L);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(6L, 7L);
  }

  @Test
  void aSessionThatLostFramesGetsThemAgainFromWhatItStillHolds() {
    uplink.start(0);
    read(1, 6, 10, 0);
    uplink.nextDelivery();
    uplink.nextDelivery();
    uplink.delivered(new ToEdge.Delivered(1, 2, false, true), 1);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(3L, 4L, 5L);
    assertThat(seqs(uplink.nextDelivery())).containsExactly(6L);
  }

  @Test
  void aRewindSendsEverythingUnconfirmedAgainAndRestartsTheSilence() {
    uplink.start(10);
    read(11, 12, 10, 0);
    uplink.nextDelivery();
    assertThat(uplink.sinceProgress(100)).isEqualTo(100);
    uplink.rewind(100);
    assertThat(uplink.sinceProgress(100)).isZero();
    assertThat(seqs(uplink.nextDelivery())).containsExactly(11L, 12L);
  }

  @Test
  void theSessionHasEverythingTakenOnceItHoldsTheLastFrame() {
    uplink.start(0);
    assertThat(uplink.sessionHasAllTaken()).as("nothing taken").isTrue();
    read(1, 3, 10, 0);
    uplink.nextDelivery();
    assertThat(uplink.sessionHasAllTaken()).isFalse();
    uplink.delivered(new ToEdge.Delivered(0, 3, false), 1);
    assertThat(uplink.sessionHasAllTaken()).as("buffered, not yet confirmed").isTrue();
  }
}
