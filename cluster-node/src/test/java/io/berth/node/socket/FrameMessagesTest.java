package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.Frame;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class FrameMessagesTest {

  /** Frames {@code from..to}, each of {@code size} bytes. */
  private static List<Frame.Data> frames(long from, long to, int size) {
    return LongStream.rangeClosed(from, to).mapToObj(s -> new Frame.Data(s, new byte[size])).toList();
  }

  private static List<List<Long>> seqs(FrameMessages m) {
    return m.messages().stream().map(l -> l.stream().map(Frame.Data::seq).toList()).toList();
  }

  @Test
  void framesAfterTheStartUpToTheLimitGoInMessagesOfAtMostTheMaximumBytes() {
    FrameMessages m = FrameMessages.cut(frames(1, 10, 4), 2, 8, 10);
    assertThat(seqs(m)).containsExactly(List.of(3L, 4L), List.of(5L, 6L), List.of(7L, 8L));
    assertThat(m.last()).isEqualTo(8);
  }

  @Test
  void aFrameLargerThanTheMaximumGoesAloneRatherThanNotAtAll() {
    FrameMessages m = FrameMessages.cut(List.of(new Frame.Data(1, new byte[3]), new Frame.Data(2, new byte[50]),
        new Frame.Data(3, new byte[3])), 0, 10, 10);
    assertThat(seqs(m)).containsExactly(List.of(1L), List.of(2L), List.of(3L));
  }

  @Test
  void nothingToSendLeavesTheStartWhereItWas() {
    FrameMessages m = FrameMessages.cut(frames(1, 3, 4), 3, 10, 10);
    assertThat(m.messages()).isEmpty();
    assertThat(m.last()).isEqualTo(3);
  }
}
