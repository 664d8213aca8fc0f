package io.berth.node.socket;

import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;

/**
 * The sending side of a link (docs/links.md#relay-how-a-frame-crosses): the device's frames held
 * for the peer, in seq order, unacknowledged, until the peer's device has them; what was sent
 * to the peer and what it took; and the highest frame the peer's device acknowledged, gathered
 * for the next journal write. In memory only: the device sends again what was not acknowledged.
 * Allocated while the socket holds data or is linked; the entity sends and keeps the timer.
 */
final class RelayOut {

  private final ArrayDeque<Frame.Data> queue = new ArrayDeque<>();
  /** The last frame sent to the peer. */
  private long sent;
  /** The last frame the peer took into its outbox. */
  private long accepted;
  /** The peer's outbox is full: send nothing until it says there is room. */
  private boolean peerFull;
  /** {@code System.nanoTime()} when the peer last made progress (0: nothing sent yet). */
  private long lastProgress;
  /** The highest frame the peer's device acknowledged, not yet written (0: none). */
  private long acceptPending;

  /** The last frame held, or {@code taken} (what the socket's data went to already) if none is above it. */
  long heldUpTo(long taken) {
    return queue.isEmpty() ? taken : Math.max(taken, queue.peekLast().seq());
  }

  /** Holds the next frame for the peer. */
  void hold(Frame.Data frame) {
    queue.addLast(frame);
  }

  boolean holdsFrames() {
    return !queue.isEmpty();
  }

  /** The frames held, in seq order. */
  Iterable<Frame.Data> held() {
    return queue;
  }

  boolean isPeerFull() {
    return peerFull;
  }

  /** The last frame the peer took, as told in each {@code Relay}. */
  long accepted() {
    return accepted;
  }

  /**
   * The held frames to send now, within {@code window} frames beyond what the peer took, in
   * messages of at most {@code maxBytes}; they count as sent. Nothing below the watermark is
   * sent: the peer had it.
   */
  List<List<Frame.Data>> nextRelays(long lastAccepted, int window, long maxBytes, long nowNanos) {
    sent = Math.max(sent, lastAccepted);
    accepted = Math.max(accepted, lastAccepted);
    long before = sent;
    FrameMessages next = FrameMessages.cut(queue, sent, accepted + window, maxBytes);
    sent = next.last();
    if (sent > before && lastProgress == 0) {
      lastProgress = nowNanos;
    }
    return next.messages();
  }

  /**
   * The peer took frames up to {@code peerAccepted} and its device acknowledged up to {@code
   * peerAcked} ({@code full}: its outbox is full, go back to what it took). True if frames are
   * newly acknowledged: the watermark moves over them in the next write.
   */
  boolean peerAcked(long peerAccepted, long peerAcked, boolean full, long lastAccepted, long nowNanos) {
    long before = accepted;
    accepted = Math.max(accepted, peerAccepted);
    peerFull = full;
    if (full) {
      sent = accepted;
    }
    if (accepted > before) {
      lastProgress = nowNanos;
    }
    long upTo = Math.min(peerAcked, heldUpTo(lastAccepted));
    if (upTo > Math.max(lastAccepted, acceptPending)) {
      lastProgress = nowNanos;
      acceptPending = upTo;
      return true;
    }
    return false;
  }

  /**
   * Nothing from the peer for {@code retryNanos} (it moved, or its node died): true if so, and
   * everything it did not take counts as not sent.
   */
  boolean sendAgain(long nowNanos, long retryNanos) {
    if (nowNanos - lastProgress <= retryNanos) {
      return false;
    }
    sent = accepted;
    peerFull = false;
    lastProgress = nowNanos;
    return true;
  }

  /** The frame the peer's device acknowledged for the next write, and none after it. */
  long takeAcceptPending() {
    long upTo = acceptPending;
    acceptPending = 0;
    return upTo;
  }

  /** The watermark moved to {@code lastAccepted}: the frames up to it are delivered. */
  void delivered(long lastAccepted) {
    while (!queue.isEmpty() && queue.peekFirst().seq() <= lastAccepted) {
      queue.pollFirst();
    }
  }

  /**
   * Forgets the frames held and what the peer was sent (the device sends them again after it
   * reconnects); an acknowledgement gathered for the next write stays. True if nothing is left.
   */
  boolean forgetHeld() {
    queue.clear();
    sent = 0;
    accepted = 0;
    peerFull = false;
    lastProgress = 0;
    return acceptPending == 0;
  }

  /** Nothing held, nothing to write: the socket may sleep as far as the relay goes. */
  boolean isQuiet() {
    return queue.isEmpty() && acceptPending == 0;
  }

  /**
   * The watermark event for frames up to {@code upTo} that the peer's device acknowledged (or
   * the peer took, when the link ended): the held frames counted, or the numbers, if the frames
   * are no longer held.
   */
  static Accepted accepted(SocketState s, Iterable<Frame.Data> held, long upTo, long downlinkAcked, Instant at) {
    int frames = 0;
    long bytes = 0;
    for (Frame.Data d : held) {
      if (d.seq() > s.lastAccepted() && d.seq() <= upTo) {
        frames++;
        bytes += d.payload().length;
      }
    }
    return new Accepted(upTo, 0, (int) Math.max(frames, upTo - s.lastAccepted()), bytes, 0, List.of(), downlinkAcked,
        null, null, at);
  }
}
