package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Mapping;
import io.berth.protocol.Frame;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The receiving side of a link: the peer's frames gathered for one write, in order, once, within the outbox. */
class RelayInTest {

  /** Outbox bound 4 frames. */
  private static final SocketSettings SETTINGS = new SocketSettings("echo", 4, 1 << 20, 4, 128 * 1024,
      Duration.ofSeconds(30), 1000, Duration.ofSeconds(3), Duration.ZERO);
  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");

  private static List<Frame.Data> frames(long from, long to) {
    return LongStream.rangeClosed(from, to).mapToObj(s -> new Frame.Data(s, new byte[] {(byte) s})).toList();
  }

  /** Linked to b; downlink frame 1 is this socket's own. */
  private static SocketState linked() {
    SocketState s = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("a", Mapping.builtinDefault("pair"), null, "e", 0, AT, false));
    s = SocketEntity.apply(s, new SocketEvent.Injected(frames(1, 1), AT));
    return SocketEntity.apply(s, new SocketEvent.LinkEstablished("a+b", "b", AT));
  }

  @Test
  void theFirstFramesOfALinkStartWhereThePeersNumberingStands() {
    SocketState s = linked();
    RelayIn in = new RelayIn();
    RelayIn.Offered offered = in.offer(s, new DownlinkWindow(SETTINGS), 40, frames(40, 42));
    assertThat(offered.writeDue()).isTrue();
    assertThat(offered.durableIn()).isEqualTo(40);
    RelayIn.Taken taken = in.take(s, AT);
    assertThat(taken.event().from()).isEqualTo("b");
    assertThat(taken.event().relayIn()).isEqualTo(42);
    assertThat(taken.event().peerFrom()).isEqualTo(41);
    assertThat(taken.event().outbound()).extracting(Frame.Data::seq).as("numbered after the outbox").containsExactly(2L, 3L);
    assertThat(in.isQuiet()).isTrue();
  }

  @Test
  void resentFramesAreSkippedAndAGapEndsWhatIsTaken() {
    SocketState s = SocketEntity.apply(linked(), new SocketEvent.Relayed("b", 2, List.of(new Frame.Data(2, new byte[1]),
        new Frame.Data(3, new byte[1])), 1, AT));
    RelayIn in = new RelayIn();
    List<Frame.Data> withGap = new ArrayList<>(frames(1, 3));
    withGap.addAll(frames(5, 6));
    RelayIn.Offered offered = in.offer(s, new DownlinkWindow(SETTINGS), 0, withGap);
    assertThat(offered.writeDue()).isTrue();
    assertThat(in.take(s, AT).event().outbound()).hasSize(1);

    RelayIn.Offered allOld = in.offer(s, new DownlinkWindow(SETTINGS), 0, frames(1, 2));
    assertThat(allOld.writeDue()).as("nothing new: the peer is answered at once").isFalse();
    assertThat(allOld.durableIn()).isEqualTo(2);
  }

  @Test
  void framesBeyondTheOutboxBoundAreRefusedAndTheRefusalIsReportedWithTheWrite() {
    SocketState s = linked();
    RelayIn in = new RelayIn();
    RelayIn.Offered offered = in.offer(s, new DownlinkWindow(SETTINGS), 0, frames(1, 6));
    assertThat(offered.full()).isTrue();
    RelayIn.Taken taken = in.take(s, AT);
    assertThat(taken.event().outbound()).as("one own frame and three of the peer's").hasSize(3);
    assertThat(taken.refused()).isTrue();
    assertThat(in.take(s, AT)).isEqualTo(RelayIn.Taken.NOTHING);
  }

  @Test
  void framesGatheredAcrossMessagesGoInOneWrite() {
    SocketState s = linked();
    RelayIn in = new RelayIn();
    DownlinkWindow window = new DownlinkWindow(SETTINGS);
    in.offer(s, window, 0, frames(1, 1));
    in.offer(s, window, 0, frames(1, 2));
    assertThat(in.take(s, AT).event().outbound()).hasSize(2);
  }

  @Test
  void whatIsGatheredForALinkThatEndedIsDropped() {
    SocketState s = linked();
    RelayIn in = new RelayIn();
    in.offer(s, new DownlinkWindow(SETTINGS), 0, frames(1, 2));
    SocketState ended = SocketEntity.apply(s, new SocketEvent.LinkEnded("a+b", AT));
    assertThat(in.take(ended, AT).event()).isNull();
    assertThat(in.isQuiet()).isTrue();
  }

  @Test
  void theDevicesAcknowledgementIsReportedWhenNewsOrWhenThereIsRoomAgain() {
    RelayIn in = new RelayIn();
    assertThat(in.reports(0, false, true)).isFalse();
    assertThat(in.reports(3, false, true)).isTrue();
    assertThat(in.reports(3, false, true)).isFalse();
    assertThat(in.reports(3, true, false)).as("stalled, no room yet").isFalse();
    assertThat(in.reports(3, true, true)).isTrue();
    assertThat(in.forgetReported()).isTrue();
    assertThat(in.reports(3, false, true)).as("a new connection hears it again").isTrue();
  }
}
