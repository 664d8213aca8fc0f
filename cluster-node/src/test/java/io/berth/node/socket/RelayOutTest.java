package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The sending side of a link: frames held for the peer, sent within a window, acknowledged end to end. */
class RelayOutTest {

  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");
  private static final long SECOND = 1_000_000_000L;

  private static List<Frame.Data> frames(long from, long to) {
    return LongStream.rangeClosed(from, to).mapToObj(s -> new Frame.Data(s, new byte[10])).toList();
  }

  private static RelayOut holding(long from, long to) {
    RelayOut out = new RelayOut();
    frames(from, to).forEach(out::hold);
    return out;
  }

  private static List<Long> seqs(List<List<Frame.Data>> messages) {
    return messages.stream().flatMap(List::stream).map(Frame.Data::seq).toList();
  }

  @Test
  void heldFramesGoToThePeerWithinTheWindowBeyondWhatItTookEachOnce() {
    RelayOut out = holding(1, 10);
    List<List<Frame.Data>> first = out.nextRelays(0, 4, 20, 5);
    assertThat(seqs(first)).containsExactly(1L, 2L, 3L, 4L);
    assertThat(first).as("20 bytes a message").hasSize(2);
    assertThat(out.nextRelays(0, 4, 20, 6)).isEmpty();
    assertThat(out.peerAcked(3, 0, false, 0, 7)).as("taken, not yet acknowledged by its device").isFalse();
    assertThat(out.accepted()).isEqualTo(3);
    assertThat(seqs(out.nextRelays(0, 4, 20, 8))).containsExactly(5L, 6L, 7L);
  }

  @Test
  void framesBelowTheWatermarkAreNeverSent() {
    RelayOut out = holding(1, 6);
    assertThat(seqs(out.nextRelays(4, 4, 1000, 1))).containsExactly(5L, 6L);
  }

  @Test
  void whatThePeersDeviceAcknowledgedIsGatheredForTheNextWriteOnce() {
    RelayOut out = holding(1, 6);
    out.nextRelays(0, 8, 1000, 1);
    assertThat(out.peerAcked(6, 4, false, 0, 2)).isTrue();
    assertThat(out.peerAcked(6, 4, false, 0, 3)).as("already gathered").isFalse();
    assertThat(out.peerAcked(6, 9, false, 0, 3)).as("never beyond what is held").isTrue();
    assertThat(out.isQuiet()).isFalse();
    assertThat(out.takeAcceptPending()).isEqualTo(6);
    assertThat(out.takeAcceptPending()).isZero();
  }

  @Test
  void aFullPeerStopsTheSendingAndWhatItDidNotTakeGoesAgain() {
    RelayOut out = holding(1, 8);
    out.nextRelays(0, 8, 1000, 1);
    out.peerAcked(2, 0, true, 0, 2);
    assertThat(out.isPeerFull()).isTrue();
    out.peerAcked(2, 0, false, 0, 3);
    assertThat(out.isPeerFull()).isFalse();
    assertThat(seqs(out.nextRelays(0, 8, 1000, 4))).containsExactly(3L, 4L, 5L, 6L, 7L, 8L);
  }

  @Test
  void aPeerSilentForTheRetryIntervalIsSentAgainFromWhatItTook() {
    RelayOut out = holding(1, 4);
    out.nextRelays(0, 8, 1000, SECOND);
    out.peerAcked(2, 0, false, 0, 2 * SECOND);
    assertThat(out.sendAgain(4 * SECOND, 3 * SECOND)).isFalse();
    assertThat(out.sendAgain(6 * SECOND, 3 * SECOND)).isTrue();
    assertThat(seqs(out.nextRelays(0, 8, 1000, 6 * SECOND))).containsExactly(3L, 4L);
    assertThat(out.sendAgain(7 * SECOND, 3 * SECOND)).as("that counts as progress").isFalse();
  }

  @Test
  void deliveredFramesLeaveTheQueue() {
    RelayOut out = holding(1, 5);
    out.delivered(3);
    assertThat(out.held()).extracting(Frame.Data::seq).containsExactly(4L, 5L);
    assertThat(out.heldUpTo(3)).isEqualTo(5);
    out.delivered(5);
    assertThat(out.holdsFrames()).isFalse();
    assertThat(out.heldUpTo(5)).isEqualTo(5);
  }

  @Test
  void forgettingTheHeldFramesKeepsWhatWaitsForTheNextWrite() {
    RelayOut out = holding(1, 5);
    out.nextRelays(0, 8, 1000, 1);
    out.peerAcked(5, 2, false, 0, 2);
    assertThat(out.forgetHeld()).isFalse();
    assertThat(out.holdsFrames()).isFalse();
    assertThat(out.accepted()).isZero();
    assertThat(out.takeAcceptPending()).isEqualTo(2);
    assertThat(holding(1, 2).forgetHeld()).as("nothing left").isTrue();
  }

  @Test
  void theWatermarkEventCountsTheHeldFramesOrTheNumbersWhenNoLongerHeld() {
    SocketState s = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("pair"), null, "e", 0, AT, false));
    Accepted held = RelayOut.accepted(s, frames(1, 5), 3, 7, AT);
    assertThat(held.lastAccepted()).isEqualTo(3);
    assertThat(held.frames()).isEqualTo(3);
    assertThat(held.bytes()).isEqualTo(30);
    assertThat(held.downlinkAcked()).isEqualTo(7);
    Accepted gone = RelayOut.accepted(s, List.of(), 4, 0, AT);
    assertThat(gone.frames()).isEqualTo(4);
    assertThat(gone.bytes()).isZero();
  }
}
