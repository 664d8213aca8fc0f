package io.berth.node.edge;

import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Frames waiting for the socket to accept writes, encoded into one buffer when it does.
 * Acknowledgements are cumulative, so a newer ACK replaces an older one instead of queueing
 * behind it: a device that reads slowly never makes ACKs pile up.
 */
final class OutboundBatch {

  private final List<Frame> frames = new ArrayList<>();
  /** Written into the pipeline before the frames' bytes (MQTT port: {@link SessionOpened}); or null. */
  Object before;
  private Frame.Ack ack;
  /** Where the ACK goes: where the first one was queued, so it never overtakes a WELCOME. */
  private int ackIndex = -1;

  static OutboundBatch of(Frame frame) {
    return new OutboundBatch().add(frame);
  }

  /** Encoded bytes; ACKs weigh nothing since they replace each other. */
  static long weight(Frame frame) {
    return frame instanceof Frame.Ack ? 0 : FrameCodec.HEADER_SIZE + 1 + FrameCodec.bodyLength(frame);
  }

  OutboundBatch add(Frame frame) {
    if (frame instanceof Frame.Ack a) {
      if (ack == null) {
        ackIndex = frames.size();
      }
      if (ack == null || a.seq() > ack.seq()) {
        ack = a;
      }
    } else {
      frames.add(frame);
    }
    return this;
  }

  byte[] encode() {
    int size = 0;
    for (Frame f : frames) {
      size += FrameCodec.HEADER_SIZE + 1 + FrameCodec.bodyLength(f);
    }
    if (ack != null) {
      size += FrameCodec.HEADER_SIZE + 1 + 8;
    }
    ByteBuffer buf = ByteBuffer.allocate(size);
    // The ACK's order relative to downlink DATA does not matter (the directions are numbered
    // independently), but it must not overtake the WELCOME nor follow a final ERROR or CLOSE.
    for (int i = 0; i < frames.size(); i++) {
      if (i == ackIndex) {
        FrameCodec.encodeInto(ack, buf);
      }
      FrameCodec.encodeInto(frames.get(i), buf);
    }
    if (ack != null && ackIndex >= frames.size()) {
      FrameCodec.encodeInto(ack, buf);
    }
    return buf.array();
  }
}
