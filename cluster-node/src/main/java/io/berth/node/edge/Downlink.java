package io.berth.node.edge;

/**
 * The downlink of one connection: DATA the socket session pushed, written to the device and not
 * yet acknowledged by it (PROTOCOL.md#data, #ack). Decisions only: the {@link ConnectionActor}
 * writes the frames, tells the session of the device's ACKs, and passes the clock in.
 */
final class Downlink {

  /** What a pushed frame's sequence number makes of it. */
  enum Pushed {
    /** The next frame: it is written to the device. */
    NEXT,
    /** Pushed again by the session after a retry: the device has it or will get it. */
    WRITTEN,
    /** A Push was lost between nodes: the device must never see a gap. */
    GAP
  }

  private long highestPushed;
  private long deviceAcked;
  /** The device's acknowledgement as the session was last told it. */
  private long reported;
  /** When the oldest frame the device has not acknowledged was written; 0 when none is. */
  private long unackedSince;

  /** The session welcomed the connection: the device has acknowledged up to {@code downlinkAcked}. */
  void start(long downlinkAcked) {
    highestPushed = downlinkAcked;
    deviceAcked = downlinkAcked;
    reported = downlinkAcked;
  }

  /** Judges a frame the session pushed; the {@link Pushed#NEXT} one counts as written. */
  Pushed push(long seq, long now) {
    if (seq <= highestPushed) {
      return Pushed.WRITTEN;
    }
    if (seq != highestPushed + 1) {
      return Pushed.GAP;
    }
    if (highestPushed == deviceAcked) {
      unackedSince = now;
    }
    highestPushed = seq;
    return Pushed.NEXT;
  }

  /**
   * The device acknowledged up to {@code seq}; true if that is news. An ACK counts only if it does
   * not go beyond what was written to the device: one above is ignored by itself, not merged with
   * the valid ones read in the same batch (PROTOCOL.md#ack).
   */
  boolean acked(long seq, long now) {
    if (seq <= deviceAcked || seq > highestPushed) {
      return false;
    }
    deviceAcked = seq;
    unackedSince = deviceAcked < highestPushed ? now : 0;
    return true;
  }

  /**
   * Whether the session should hear of the device's acknowledgement now: once the device has
   * everything written acknowledged (the session may be waiting to push more, or to sleep), or
   * once it advanced by {@code every} frames since the session last heard. In between the
   * acknowledgements gather, so that a device acknowledging frame by frame (every MQTT PUBACK) does
   * not cost a message to the session, and from there to a linked peer, per frame. What is left
   * goes with the next tick or the connection's end ({@link #unreported}).
   */
  boolean reportDue(int every) {
    return deviceAcked > reported && (deviceAcked == highestPushed || deviceAcked - reported >= every);
  }

  /** The device acknowledged more than the session was told. */
  boolean unreported() {
    return deviceAcked > reported;
  }

  /** The session is told of the device's acknowledgement: returns it. */
  long report() {
    reported = deviceAcked;
    return deviceAcked;
  }

  long highestPushed() {
    return highestPushed;
  }

  long deviceAcked() {
    return deviceAcked;
  }

  boolean allAcked() {
    return unackedSince == 0;
  }

  /** The device has left a written frame unacknowledged for longer than {@code timeoutNanos}. */
  boolean overdue(long now, long timeoutNanos) {
    return unackedSince != 0 && now - unackedSince > timeoutNanos;
  }
}
