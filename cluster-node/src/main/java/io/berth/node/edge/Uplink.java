package io.berth.node.edge;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.metrics.Metrics;
import io.berth.protocol.Frame;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The uplink of one connection: DATA the device sent, on its way to the socket session and kept
 * until the session confirms it durable (PROTOCOL.md#data, #ack, #backpressure). Decisions only:
 * the {@link ConnectionActor} sends what this class hands it, writes the ACKs, and passes the
 * clock in ({@code System.nanoTime()}).
 *
 * <p>Frames go to the session in Deliver messages, at most {@code max-deliveries-in-flight} at a
 * time; frames read meanwhile wait and travel together in the next one. The device's window is
 * open while at most {@code window} frames and {@code window-bytes} are unconfirmed. If the
 * session does not answer, everything unconfirmed is sent again (go-back-N): the session drops
 * what it already has.
 */
final class Uplink {

  /** What a DATA frame's sequence number makes of it. */
  enum Seq {
    /** The next frame: it goes to the session. */
    NEXT,
    /** A replay of a frame the session has or is about to confirm: acknowledged, not forwarded. */
    REPLAY,
    /** Numbered 0: never a replay, since no DATA is numbered 0 (PROTOCOL.md#data). */
    ZERO,
    /** Not the next number: the device skipped frames. */
    GAP
  }

  /** The limits: a reference, not copies, since every connection has an uplink. */
  private final EdgeSettings settings;

  /**
   * Frames sent to the session, or waiting to be, and not yet confirmed durable. Both queues are
   * null while empty, which is every idle connection's case: 96 bytes less on each.
   */
  private ArrayDeque<Frame.Data> unconfirmed;
  private long unconfirmedBytes;
  /** Highest seq taken from the device. */
  private long highestForwarded;
  /** Highest seq sent to the session (a frame above it waits in {@code unconfirmed}). */
  private long sentUpTo;
  /** Last seq of each Deliver not yet answered. */
  private ArrayDeque<Long> inFlight;
  private long lastConfirmed;
  /** Highest seq the session has received (delivered or waiting in its batcher). */
  private long lastBuffered;
  private long lastProgressAt;
  /** The session refused what follows the watermark; nothing is sent until {@link #rewind}. */
  private boolean stalled;
  /**
   * The uplink's rate limit (docs/limits.md), null for none; shared with other connections until
   * {@link #ownThrottle}. Both fit in what alignment left unused: an uplink costs no more with them.
   */
  private UplinkThrottle throttle;
  private boolean ownThrottle;
  /** The node's metrics, where each read's ACK latency goes; null in tests of this class alone. */
  private final Metrics metrics;
  /**
   * For each read whose frames are not yet confirmed, its last seq and when it was read (nanoTime),
   * in pairs from {@link #marksHead}: what the ACK latency is measured from. Made at the first read
   * of DATA and kept (128 bytes): a connection that never sends data carries none, and one that
   * does allocates nothing more per read.
   */
  private long[] marks;
  private int marksHead;
  private int marksCount;

  Uplink(EdgeSettings settings) {
    this(settings, null);
  }

  Uplink(EdgeSettings settings, Metrics metrics) {
    this.settings = settings;
    this.metrics = metrics;
  }

  /** The session welcomed the connection: it holds every frame up to {@code lastAccepted}. */
  void start(long lastAccepted) {
    highestForwarded = lastAccepted;
    sentUpTo = lastAccepted;
    lastConfirmed = lastAccepted;
    lastBuffered = lastAccepted;
  }

  /** Judges a DATA frame the device sent; the {@link Seq#NEXT} one counts as taken. */
  Seq take(long seq) {
    if (seq == 0) {
      return Seq.ZERO;
    }
    if (seq <= highestForwarded) {
      return Seq.REPLAY;
    }
    if (seq != highestForwarded + 1) {
      return Seq.GAP;
    }
    highestForwarded = seq;
    return Seq.NEXT;
  }

  /** The rate limit of this uplink: an unstarted throttle, or null for none. */
  void limit(UplinkThrottle shared) {
    throttle = shared;
    ownThrottle = false;
  }

  /** The limits the uplink runs with, null for none. */
  Mapping.Limits limits() {
    return throttle == null ? null : throttle.limits();
  }

  /**
   * 0 when the next DATA frame, of {@code payloadBytes}, is within the rate limit (it counts
   * against it from now); else how many nanoseconds it must wait.
   */
  long holdFor(int payloadBytes, long now) {
    if (throttle == null) {
      return 0;
    }
    if (!ownThrottle) {
      throttle = throttle.started();
      ownThrottle = true;
    }
    return throttle.take(payloadBytes, now);
  }

  long highestForwarded() {
    return highestForwarded;
  }

  /** Queues frames {@link #take taken} for the session; {@link #nextDelivery} sends them. */
  void forward(List<Frame.Data> frames, long now) {
    if (frames.isEmpty()) {
      if (unconfirmed == null) {
        lastProgressAt = now;
      }
      return;
    }
    if (unconfirmed == null) {
      lastProgressAt = now;
      unconfirmed = new ArrayDeque<>(Math.max(ConnectionActor.EMPTY_QUEUE, frames.size()));
    }
    for (Frame.Data d : frames) {
      unconfirmed.addLast(d);
      unconfirmedBytes += d.payload().length;
    }
    mark(frames.get(frames.size() - 1).seq(), now);
  }

  /** Remembers when a read's frames arrived, up to their last seq. */
  private void mark(long seq, long now) {
    if (metrics == null) {
      return;
    }
    if (marks == null) {
      marks = new long[16];
      marksHead = 0;
      marksCount = 0;
    } else if (marksCount * 2 == marks.length) {
      long[] grown = new long[marks.length * 2];
      for (int i = 0; i < marksCount; i++) {
        int from = (marksHead + i * 2) % marks.length;
        grown[i * 2] = marks[from];
        grown[i * 2 + 1] = marks[from + 1];
      }
      marks = grown;
      marksHead = 0;
    }
    int at = (marksHead + marksCount * 2) % marks.length;
    marks[at] = seq;
    marks[at + 1] = now;
    marksCount++;
  }

  /**
   * The reads confirmed up to {@code upTo} are done with; the oldest of them waited longest, and
   * that wait is the one the node's histogram gets: one observation per ACK, not per read (an ACK
   * of a full window confirms hundreds of one-frame reads, and observing each cost 1.3 % of the
   * node's CPU samples in the uplink benchmark).
   */
  private void confirmedMarks(long upTo, long now) {
    if (marks == null || marksCount == 0 || marks[marksHead] > upTo) {
      return;
    }
    metrics.ackLatency(now - marks[marksHead + 1]);
    while (marksCount > 0 && marks[marksHead] <= upTo) {
      marksHead = (marksHead + 2) % marks.length;
      marksCount--;
    }
  }

  /**
   * The frames of the next Deliver, or null while {@code max-deliveries-in-flight} are unanswered,
   * the session refuses more, or nothing waits. One persisted event per message, so this is what
   * turns a stream of small reads into few, large journal writes.
   */
  List<Frame.Data> nextDelivery() {
    if (stalled || inFlightCount() >= settings.maxDeliveriesInFlight() || unconfirmed == null) {
      return null;
    }
    List<Frame.Data> batch = null;
    long bytes = 0;
    for (Frame.Data d : unconfirmed) {
      if (d.seq() <= sentUpTo) {
        continue;
      }
      if (batch != null && bytes + d.payload().length > settings.maxBatchBytes()) {
        break; // the message must fit Artery's frame: cap by bytes too
      }
      if (batch == null) {
        batch = new ArrayList<>();
      }
      batch.add(d);
      bytes += d.payload().length;
      if (batch.size() == settings.maxBatchFrames()) {
        break;
      }
    }
    if (batch == null) {
      return null;
    }
    sentUpTo = batch.get(batch.size() - 1).seq();
    if (inFlight == null) {
      inFlight = new ArrayDeque<>(ConnectionActor.EMPTY_QUEUE);
    }
    inFlight.addLast(sentUpTo);
    return List.copyOf(batch);
  }

  /**
   * The session's answer. True when it confirmed frames not confirmed before: the device gets
   * ACK {@link #lastConfirmed}.
   */
  boolean delivered(ToEdge.Delivered d, long now) {
    // Frames the session holds (buffered for its endpoint) free the pipeline; only delivered
    // frames are acknowledged to the device.
    long received = Math.max(d.upTo(), d.buffered());
    while (inFlight != null && inFlight.peekFirst() <= received) {
      inFlight.pollFirst();
      if (inFlight.isEmpty()) {
        inFlight = null;
      }
    }
    lastBuffered = Math.max(lastBuffered, received);
    // Any answer shows the session is alive: resend only after silence (session lost or moving).
    lastProgressAt = now;
    boolean confirmed = false;
    if (d.upTo() > lastConfirmed) {
      lastConfirmed = d.upTo();
      while (unconfirmed != null && unconfirmed.peekFirst().seq() <= d.upTo()) {
        unconfirmedBytes -= unconfirmed.pollFirst().payload().length;
        if (unconfirmed.isEmpty()) {
          unconfirmed = null;
        }
      }
      confirmedMarks(d.upTo(), now);
      confirmed = true;
    }
    if (d.stalled()) {
      // The session refused what follows the watermark; it sends Resume when it has room.
      stalled = true;
      inFlight = null;
      sentUpTo = lastConfirmed;
    } else if (d.resend()) {
      // The session lost frames it had (it restarted): go back to what it holds and send again.
      inFlight = null;
      sentUpTo = Math.max(lastConfirmed, Math.min(sentUpTo, d.buffered()));
    }
    return confirmed;
  }

  /** Go-back-N: everything not confirmed is to be sent again; the session drops what it has. */
  void rewind(long now) {
    stalled = false;
    inFlight = null;
    sentUpTo = lastConfirmed;
    lastProgressAt = now;
  }

  /**
   * The device keeps to the window it was given in WELCOME. One frame is always allowed when
   * nothing else is unacknowledged, however large.
   */
  boolean windowOpen() {
    return unconfirmedCount() <= settings.window()
        && (unconfirmedBytes <= settings.windowBytes() || unconfirmedCount() <= 1);
  }

  long lastConfirmed() {
    return lastConfirmed;
  }

  boolean allConfirmed() {
    return unconfirmed == null;
  }

  int unconfirmedCount() {
    return unconfirmed == null ? 0 : unconfirmed.size();
  }

  private int inFlightCount() {
    return inFlight == null ? 0 : inFlight.size();
  }

  /** No Deliver is unanswered: nothing the device sent is still travelling to the session. */
  boolean nothingInFlight() {
    return inFlight == null;
  }

  /** The highest frame the session has received (delivered, or waiting in its batcher). */
  long sessionTaken() {
    return lastBuffered;
  }

  /** The session has received every frame taken from the device (some may wait in its batcher). */
  boolean sessionHasAllTaken() {
    return unconfirmed == null || lastBuffered >= highestForwarded;
  }

  /** Every unconfirmed frame waits in the session (for an endpoint or a linked peer). */
  boolean sessionHoldsAllUnconfirmed() {
    return unconfirmed == null || unconfirmed.peekLast().seq() <= lastBuffered;
  }

  /** Counts the session's silence from {@code now}: the device's CLOSE starts a wait for it. */
  void progressed(long now) {
    lastProgressAt = now;
  }

  long sinceProgress(long now) {
    return now - lastProgressAt;
  }
}
