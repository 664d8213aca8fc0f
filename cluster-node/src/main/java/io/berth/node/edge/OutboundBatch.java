package io.berth.node.edge;

import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.util.ByteString;

/**
 * Frames waiting for the socket to accept writes, encoded into one buffer when it does.
 * Acknowledgements are cumulative, so a newer ACK replaces an older one instead of queueing
 * behind it: a device that reads slowly never makes ACKs pile up.
 */
final class OutboundBatch {

  private final List<Frame> frames = new ArrayList<>();
  private Frame.Ack ack;

  static OutboundBatch of(Frame frame) {
    return new OutboundBatch().add(frame);
  }

  /** ACKs weigh nothing against the batch limit since they replace each other. */
  static long weight(Frame frame) {
    return frame instanceof Frame.Ack ? 0 : 1;
  }

  OutboundBatch add(Frame frame) {
    if (frame instanceof Frame.Ack a) {
      if (ack == null || a.seq() > ack.seq()) {
        ack = a;
      }
    } else {
      frames.add(frame);
    }
    return this;
  }

  ByteString encode() {
    int size = 0;
    for (Frame f : frames) {
      size += FrameCodec.HEADER_SIZE + 1 + FrameCodec.bodyLength(f);
    }
    if (ack != null) {
      size += FrameCodec.HEADER_SIZE + 1 + 8;
    }
    ByteBuffer buf = ByteBuffer.allocate(size);
    // ACK first: it releases the device's window sooner. Its order relative to downlink DATA
    // does not matter, the two directions are numbered independently.
    if (ack != null) {
      FrameCodec.encodeInto(ack, buf);
    }
    for (Frame f : frames) {
      FrameCodec.encodeInto(f, buf);
    }
    return ByteString.fromArrayUnsafe(buf.array());
  }
}
