package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.link.Link;
import io.berth.node.link.RelayMark;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/**
 * The receiving side of a link numbers the peer's frames in its own downlink sequence; its
 * relay marks translate what its device acknowledged back into the peer's sequence, which is
 * what the peer's device is acknowledged with.
 */
class RelayMarksTest {

  private static Link linked() {
    return Link.fresh("a+b", "b", Link.Status.LINKED, Instant.EPOCH, 0, false);
  }

  @Test
  void anAckInsideARunMapsToThePeersFrameAtTheSameOffset() {
    // Peer frames 1..10 became downlink 5..14 (downlink 1..4 were this socket's own replies).
    Link link = linked().relayed(10, new RelayMark(5, 14, 1));
    assertThat(link.peerAcked(4)).as("only own frames acknowledged").isZero();
    assertThat(link.peerAcked(5)).isEqualTo(1);
    assertThat(link.peerAcked(9)).isEqualTo(5);
    assertThat(link.peerAcked(14)).isEqualTo(10);
    assertThat(link.peerAcked(100)).as("never beyond what was relayed").isEqualTo(10);
  }

  @Test
  void downlinkFramesBetweenRunsDoNotShiftThePeersNumbers() {
    // Peer 1..3 → downlink 1..3, an injected message took downlink 4, peer 4..6 → downlink 5..7.
    Link link = linked().relayed(3, new RelayMark(1, 3, 1)).relayed(6, new RelayMark(5, 7, 4));
    assertThat(link.peerAcked(3)).isEqualTo(3);
    assertThat(link.peerAcked(4)).isEqualTo(3);
    assertThat(link.peerAcked(6)).isEqualTo(5);
    assertThat(link.relayIn()).isEqualTo(6);
    assertThat(link.framesIn()).as("frames taken on this link").isEqualTo(6);
  }

  @Test
  void trimmingAcknowledgedRunsKeepsTheirHighWaterMark() {
    Link link = linked().relayed(3, new RelayMark(1, 3, 1)).relayed(6, new RelayMark(5, 7, 4));
    Link trimmed = link.trimmed(4);
    assertThat(trimmed.marks()).hasSize(1);
    assertThat(trimmed.peerAcked(4)).isEqualTo(3);
    assertThat(trimmed.peerAcked(7)).isEqualTo(6);
    assertThat(trimmed.trimmed(7).marks()).isEmpty();
    assertThat(trimmed.trimmed(7).peerAcked(7)).isEqualTo(6);
  }
}
