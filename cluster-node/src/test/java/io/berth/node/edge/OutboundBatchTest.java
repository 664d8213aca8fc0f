package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.Decoded;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameReader;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class OutboundBatchTest {

  private static List<Frame> decode(OutboundBatch batch) throws IOException {
    return decode(batch.encode());
  }

  /** The frames written in these bytes, which must hold whole well-formed frames. */
  static List<Frame> decode(byte[] bytes) throws IOException {
    FrameReader reader = new FrameReader(new ByteArrayInputStream(bytes), 1 << 20);
    List<Frame> frames = new ArrayList<>();
    while (true) {
      try {
        frames.add(((Decoded.Ok) reader.next()).frame());
      } catch (EOFException e) {
        return frames;
      }
    }
  }

  @Test
  void acksCoalesceIntoTheHighestOne() throws IOException {
    OutboundBatch batch = OutboundBatch.of(new Frame.Ack(3)).add(new Frame.Data(1, new byte[] {1}))
        .add(new Frame.Ack(7)).add(new Frame.Ack(5));
    assertThat(decode(batch)).containsExactly(new Frame.Ack(7), new Frame.Data(1, new byte[] {1}));
  }

  @Test
  void anAckNeverOvertakesTheWelcomeNorFollowsTheFinalError() throws IOException {
    Frame.Welcome welcome = new Frame.Welcome(1, "d", "n", 4, 0, 65536, 512, 1 << 20, 60);
    Frame.Error error = new Frame.Error(ErrorCode.IDLE_TIMEOUT, "bye");
    OutboundBatch batch = OutboundBatch.of(welcome).add(new Frame.Ack(4)).add(error).add(new Frame.Ack(5));
    assertThat(decode(batch)).containsExactly(welcome, new Frame.Ack(5), error);
  }

  @Test
  void acksWeighNothingAndOtherFramesTheirEncodedSize() {
    assertThat(OutboundBatch.weight(new Frame.Ack(9))).isZero();
    assertThat(OutboundBatch.weight(new Frame.Data(1, new byte[100]))).isEqualTo(4 + 1 + 8 + 100);
  }
}
