package io.berth.node.socket;

import io.berth.protocol.Frame;
import java.util.ArrayList;
import java.util.List;

/**
 * Frames cut into messages of at most {@code max-push-bytes} each, so that every message (a
 * {@code Push} to the edge, a {@code Relay} to the peer) fits one Artery frame; {@code last}: the
 * number of the last frame taken.
 */
record FrameMessages(List<List<Frame.Data>> messages, long last) {

  /**
   * The frames numbered after {@code after} up to {@code limit}, from {@code frames} in ascending
   * order, in messages of at most {@code maxBytes} of payload (a single larger frame goes alone).
   */
  static FrameMessages cut(Iterable<Frame.Data> frames, long after, long limit, long maxBytes) {
    List<List<Frame.Data>> messages = new ArrayList<>(1);
    List<Frame.Data> batch = new ArrayList<>();
    long bytes = 0;
    long last = after;
    for (Frame.Data d : frames) {
      if (d.seq() <= after) {
        continue;
      }
      if (d.seq() > limit) {
        break;
      }
      if (!batch.isEmpty() && bytes + d.payload().length > maxBytes) {
        messages.add(List.copyOf(batch));
        batch.clear();
        bytes = 0;
      }
      batch.add(d);
      bytes += d.payload().length;
      last = d.seq();
    }
    if (!batch.isEmpty()) {
      messages.add(List.copyOf(batch));
    }
    return new FrameMessages(messages, last);
  }
}
