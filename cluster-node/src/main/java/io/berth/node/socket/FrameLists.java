package io.berth.node.socket;

import io.berth.protocol.Frame;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The binary form of a list of DATA frames, shared by {@link HotPathSerializer} (messages) and
 * {@link EventSerializer} (journal events): i32 count, then (i64 seq, i32 length, bytes) each,
 * big-endian. Reading checks counts and lengths against the bytes left, so a corrupt input is an
 * {@link IllegalArgumentException}, never a huge allocation.
 */
final class FrameLists {

  private FrameLists() {}

  static int size(List<Frame.Data> frames) {
    int size = 4;
    for (Frame.Data f : frames) {
      size += 12 + f.payload().length;
    }
    return size;
  }

  static void put(ByteBuffer b, List<Frame.Data> frames) {
    b.putInt(frames.size());
    for (Frame.Data f : frames) {
      b.putLong(f.seq()).putInt(f.payload().length).put(f.payload());
    }
  }

  static List<Frame.Data> get(ByteBuffer b) {
    int n = b.getInt();
    if (n < 0 || n > b.remaining() / 12) {
      throw new IllegalArgumentException("frame count " + n + " with " + b.remaining() + " bytes left");
    }
    List<Frame.Data> frames = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      long seq = b.getLong();
      int length = b.getInt();
      if (length < 0 || length > b.remaining()) {
        throw new IllegalArgumentException("frame length " + length + " with " + b.remaining() + " bytes left");
      }
      byte[] payload = new byte[length];
      b.get(payload);
      frames.add(new Frame.Data(seq, payload));
    }
    return List.copyOf(frames);
  }
}
