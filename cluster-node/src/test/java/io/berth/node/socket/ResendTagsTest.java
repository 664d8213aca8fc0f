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
  void theNextConnectionIsHandedThePreviousOnesFramesWhenTheClientRotatesItsIds() {
    long[] tail = new long[2 * ResendTags.ROTATION_EVIDENCE];
    for (int i = 0; i < ResendTags.ROTATION_EVIDENCE; i++) {
      // ids 1..8: three on connection 3, the rest on connection 4
      tail[2 * i] = i + 1;
      tail[2 * i + 1] = tag(i + 1, i < 3 ? 3 : 4, "m" + i);
    }
    long[] at5 = ResendTags.resendableAt(tail, 5);
    assertThat(at5).hasSize(ResendTags.ROTATION_EVIDENCE - 3);
    assertThat(at5[0]).isEqualTo(ResendTags.resendable(4, ResendTags.fingerprint(tag(4, 4, "m3"))));
    assertThat(ResendTags.resendableAt(tail, 4)).as("connection 3's, for connection 4").hasSize(3);
    assertThat(ResendTags.resendableAt(tail, 6)).as("nothing accepted on connection 5").isNull();
    assertThat(ResendTags.resendableAt(null, 6)).isNull();
  }

  @Test
  void aClientThatReusesIdsOrHasSentTooLittleGetsNoMatching() {
    long[] reused = new long[2 * ResendTags.ROTATION_EVIDENCE];
    for (int i = 0; i < ResendTags.ROTATION_EVIDENCE; i++) {
      // the lowest free id: 1, 2, 1, 2, ...
      reused[2 * i] = i + 1;
      reused[2 * i + 1] = tag(1 + i % 2, 4, "heartbeat");
    }
    assertThat(ResendTags.resendableAt(reused, 5)).isNull();
    long[] short_ = {1, tag(1, 4, "boot"), 2, tag(2, 4, "x")};
    assertThat(ResendTags.resendableAt(short_, 5)).as("too little to tell").isNull();
  }

  @Test
  void aSeqThatComesBackAtQos0LosesItsOldTag() {
    ResendTags tags = new ResendTags();
    tags.received(new SocketCommand.Deliver(null, List.of(frame(1, "a")), new int[] {7}), 0, 1);
    tags.received(new SocketCommand.Deliver(null, List.of(frame(1, "b")), new int[] {-1}), 0, 2);
    assertThat(tags.accepted(0, 1)).isNull();
  }
}
