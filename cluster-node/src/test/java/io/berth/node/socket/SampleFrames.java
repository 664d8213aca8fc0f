package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.Frame;
import java.util.Arrays;
import java.util.List;

/** Frames for the serializer tests, and the comparison records cannot do (payloads are arrays). */
final class SampleFrames {

  private SampleFrames() {}

  /** Two frames, one of them empty. */
  static List<Frame.Data> two() {
    return List.of(new Frame.Data(41, new byte[] {1, 2, 3}), new Frame.Data(42, new byte[0]));
  }

  static void assertSameFrames(List<Frame.Data> actual, List<Frame.Data> expected) {
    assertThat(actual).hasSameSizeAs(expected);
    for (int i = 0; i < expected.size(); i++) {
      assertThat(actual.get(i).seq()).isEqualTo(expected.get(i).seq());
      assertThat(Arrays.equals(actual.get(i).payload(), expected.get(i).payload())).isTrue();
    }
  }
}
