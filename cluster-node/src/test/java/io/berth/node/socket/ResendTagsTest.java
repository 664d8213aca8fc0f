package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.socket.api.SocketCommand;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The tags that let the MQTT port recognise a resend (docs/mqtt-qos1-resends.md). */
class ResendTagsTest {

  private static Frame.Data frame(long seq, String payload) {
    return new Frame.Data(seq, payload.getBytes(StandardCharsets.UTF_8));
  }

  private static long tag(int packetId, long connection, String payload) {
    return ResendTags.tag(packetId, connection, payload.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void aTagHoldsThePacketIdTheConnectionAndAFingerprintOfThePayload() {
    long t = tag(65_535, 70_001, "reading 42");
    assertThat(ResendTags.packetId(t)).isEqualTo(65_535);
    assertThat(ResendTags.connection(t)).isEqualTo(70_001 & 0xFFFF);
    assertThat(ResendTags.fingerprint(t)).isEqualTo(ResendTags.fingerprint(tag(1, 1, "reading 42")))
        .isNotEqualTo(ResendTags.fingerprint(tag(1, 1, "reading 43")));
  }

  @Test
  void acceptedFramesGiveUpTheirTagsOnceAndFramesWithoutAnIdHaveNone() {
    ResendTags tags = new ResendTags();
    tags.received(new SocketCommand.Deliver(null, List.of(frame(1, "a"), frame(2, "b"), frame(3, "c")),
        new int[] {7, -1, 8}), 0, 4);
    assertThat(tags.accepted(0, 2)).containsExactly(1, tag(7, 4, "a"));
    assertThat(tags.accepted(2, 3)).containsExactly(3, tag(8, 4, "c"));
    assertThat(tags.accepted(3, 3)).isNull();
  }

  @Test
  void framesAtOrBelowTheWatermarkAreNotTaggedAndAWideRangeFindsTheRest() {
    ResendTags tags = new ResendTags();
    tags.received(new SocketCommand.Deliver(null, List.of(frame(5, "old"), frame(6, "new")), new int[] {1, 2}), 5, 1);
    assertThat(tags.accepted(0, 1_000_000)).containsExactly(6, tag(2, 1, "new"));
    assertThat(tags.accepted(0, 1_000_000)).isNull();
  }

  @Test
  void theTailKeepsTheLastFramesOnly() {
    long[] tail = null;
    for (int seq = 1; seq <= ResendTags.TAIL + 10; seq++) {
      tail = ResendTags.append(tail, new long[] {seq, tag(seq, 1, "x")});
    }
    assertThat(tail).hasSize(2 * ResendTags.TAIL);
    assertThat(tail[0]).isEqualTo(11);
    assertThat(tail[tail.length - 2]).isEqualTo(ResendTags.TAIL + 10);
    assertThat(ResendTags.append(tail, null)).isSameAs(tail);
  }

  @Test
  void theNextConnectionIsHandedThePreviousOnesFramesWithIdsThatOccurOnce() {
    long[] tail = {
        1, tag(1, 3, "boot"), // connection 3
        2, tag(1, 4, "boot"), // connection 4: id 1 again, after a restart of the client
        3, tag(2, 4, "a"),
        4, tag(3, 4, "b"),
        5, tag(3, 4, "c"), // id 3 reused on connection 4: ambiguous
    };
    assertThat(ResendTags.resendableAt(tail, 5)).containsExactly(
        ResendTags.resendable(1, ResendTags.fingerprint(tag(1, 4, "boot"))),
        ResendTags.resendable(2, ResendTags.fingerprint(tag(2, 4, "a"))));
    assertThat(ResendTags.resendableAt(tail, 4)).containsExactly(
        ResendTags.resendable(1, ResendTags.fingerprint(tag(1, 3, "boot"))));
    assertThat(ResendTags.resendableAt(tail, 6)).as("nothing accepted on connection 5").isNull();
    assertThat(ResendTags.resendableAt(null, 6)).isNull();
  }
}
