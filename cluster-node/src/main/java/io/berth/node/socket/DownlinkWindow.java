package io.berth.node.socket;

import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The downlink of one incarnation of a socket session: how far the device acknowledged, what was
 * pushed to the edge, and whether the edge was told the outbox is full (docs/delivery.md,
 * "Downlink acknowledgements are not written one by one"). None of it is persisted: the device's
 * acknowledgements are folded into the next event, and after a restart the entity pushes again
 * from the durable point (the device drops what it has).
 *
 * <p>Decisions only: the entity sends what this returns and keeps the timer.
 */
final class DownlinkWindow {

  /** What a retry of the downlink does. */
  enum Retry {
    /** Nothing pushed is unacknowledged: no retry is due. */
    IDLE,
    /** The device acknowledged something since the last retry: look again later. */
    WAIT,
    /** Nothing progressed for a retry interval: push again from the acknowledged point. */
    PUSH_AGAIN
  }

  private final SocketSettings settings;
  /** The device's acknowledgement as it arrived; {@link SocketState#downlinkAcked} is the durable one. */
  private long liveAcked;
  /** The last frame pushed to the edge. */
  private long sentUpTo;
  /** What was acknowledged when the retry timer was last armed (-1: never). */
  private long ackedAtLastRetry = -1;
  /** The edge was told frames were refused for a full outbox, and waits for a {@code Resume}. */
  private boolean edgeStalled;

  DownlinkWindow(SocketSettings settings) {
    this.settings = settings;
  }

  /** A new incarnation or connection: nothing after the durable acknowledgement counts as pushed. */
  void restart(long durableAcked) {
    liveAcked = durableAcked;
    sentUpTo = durableAcked;
    edgeStalled = false;
  }

  /** The highest downlink frame the device acknowledged, durable or not yet. */
  long acked(SocketState s) {
    return Math.max(s.downlinkAcked(), liveAcked);
  }

  /** The device's acknowledgement as it arrived (not yet durable if above the state's). */
  long liveAcked() {
    return liveAcked;
  }

  /** The device acknowledged up to {@code upTo}: true if that is news. */
  boolean deviceAcked(SocketState s, long upTo) {
    if (upTo <= liveAcked) {
      return false;
    }
    liveAcked = Math.min(upTo, s.lastDownlinkSeq());
    return true;
  }

  int outboxFrames(SocketState s) {
    return (int) Math.max(0, s.lastDownlinkSeq() - acked(s));
  }

  long outboxBytes(SocketState s) {
    long acked = acked(s);
    long bytes = 0;
    for (Frame.Data d : s.outbox()) {
      if (d.seq() > acked) {
        bytes += d.payload().length;
      }
    }
    return bytes;
  }

  /** An outbox of {@code frames} frames and {@code bytes} bytes is beyond its bounds. */
  boolean overflows(int frames, long bytes) {
    return frames > settings.maxOutboxFrames() || bytes > settings.maxOutboxBytes();
  }

  /** The outbox has room again: at most half of either bound is used. */
  boolean hasRoom(SocketState s) {
    return outboxFrames(s) <= settings.maxOutboxFrames() / 2 && outboxBytes(s) <= settings.maxOutboxBytes() / 2;
  }

  /** Frames were refused because the outbox is full: the edge waits for a {@code Resume}. */
  void stall() {
    edgeStalled = true;
  }

  boolean isStalled() {
    return edgeStalled;
  }

  /** Whether to tell a stalled edge to resume: once the device's acknowledgements made room. */
  boolean resumes(SocketState s) {
    if (edgeStalled && hasRoom(s)) {
      edgeStalled = false;
      return true;
    }
    return false;
  }

  /** The edge saw a gap: push again after {@code from}, never before what is acknowledged. */
  void resync(SocketState s, long from) {
    sentUpTo = Math.max(acked(s), Math.min(from, sentUpTo));
  }

  /**
   * The outbox frames not pushed yet within the window ({@code downlink-window} beyond what the
   * device acknowledged), as Push messages; they count as pushed from now on.
   */
  List<List<Frame.Data>> nextPushes(SocketState s) {
    long acked = acked(s);
    if (sentUpTo < acked) {
      sentUpTo = acked;
    }
    FrameMessages next = FrameMessages.cut(s.outbox(), sentUpTo, acked + settings.downlinkWindow(),
        settings.maxPushBytes());
    sentUpTo = next.last();
    return next.messages();
  }

  /** Pushed frames wait for the device's acknowledgement. */
  boolean awaitsAck(SocketState s) {
    return sentUpTo > acked(s);
  }

  /** The retry timer starts now: a retry compares the acknowledgement with this one. */
  void retryArmed(SocketState s) {
    ackedAtLastRetry = acked(s);
  }

  /**
   * A retry interval passed. A Push can be lost on its way (node trouble): if nothing was
   * acknowledged since the last look, the unacknowledged frames count as not pushed.
   */
  Retry retry(SocketState s) {
    long acked = acked(s);
    if (sentUpTo <= acked) {
      return Retry.IDLE;
    }
    boolean again = acked == ackedAtLastRetry;
    if (again) {
      sentUpTo = acked;
    }
    ackedAtLastRetry = acked;
    return again ? Retry.PUSH_AGAIN : Retry.WAIT;
  }

  /** Downlink frames numbered after {@code lastSeq} for a payload, split to fit the largest DATA frame. */
  static List<Frame.Data> frames(long lastSeq, byte[] payload) {
    int max = FrameCodec.DEFAULT_MAX_FRAME_SIZE - FrameCodec.DATA_OVERHEAD;
    List<Frame.Data> out = new ArrayList<>();
    long seq = lastSeq;
    int offset = 0;
    do {
      int end = Math.min(payload.length, offset + max);
      out.add(new Frame.Data(++seq, Arrays.copyOfRange(payload, offset, end)));
      offset = end;
    } while (offset < payload.length);
    return out;
  }
}
