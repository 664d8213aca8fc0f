package io.berth.node.socket;

import io.berth.node.socket.SocketEvent.DownlinkAcked;
import io.berth.node.socket.SocketEvent.Suspended;
import io.berth.node.socket.SocketState.Status;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * When a quiet attached socket sleeps, and what it writes when it stops (docs/sleep.md). The
 * entity keeps the clock readings (when it was last active, when it asked to sleep), asks its
 * shard and tells its edge.
 */
final class Sleep {

  private Sleep() {}

  /** Whether to ask to sleep now, and when to look again. */
  record Check(boolean sleeps, long nextInNanos) {}

  /**
   * Quiet for {@code afterNanos} and restful: sleep (and look again after {@code afterNanos}, in
   * case the request is lost). Quiet for less: look again when it will have been. Busy: look
   * again after {@code afterNanos}.
   */
  static Check check(long nowNanos, long lastActivityAt, long afterNanos, boolean restful) {
    long quietFor = nowNanos - lastActivityAt;
    if (quietFor < afterNanos) {
      return new Check(false, afterNanos - quietFor);
    }
    return new Check(restful, afterNanos);
  }

  /**
   * Nothing in flight that a stopped entity would have to pick up again: attached, no link, no
   * open or batch waiting for the endpoint, every downlink frame acknowledged, the edge not
   * stalled, and no machine holding anything.
   */
  static boolean restful(SocketState s, DownlinkWindow window, EndpointDispatch dispatch, RelayOut out, RelayIn in,
      boolean relayWriteScheduled) {
    return s.edge() != null && s.link() == null && s.openPending() == 0 && s.inFlight() == null
        && s.lastDownlinkSeq() <= window.liveAcked() && !window.isStalled()
        && (dispatch == null || dispatch.isQuiet()) && (out == null || out.isQuiet()) && (in == null || in.isQuiet())
        && !relayWriteScheduled;
  }

  /**
   * What is not yet durable of the session, written as the entity stops: the device's latest
   * acknowledgement, and for a handoff (not a sleep) where the socket ran and when it last
   * delivered, so that the next incarnation reports the move.
   */
  static List<SocketEvent> whenStopping(SocketState s, long liveAcked, boolean asleep, String node, Instant now) {
    List<SocketEvent> events = new ArrayList<>(2);
    if (liveAcked > s.downlinkAcked()) {
      events.add(new DownlinkAcked(liveAcked, now));
    }
    if (s.status() == Status.OPEN && !asleep) {
      events.add(new Suspended(node, s.lastDeliveryAt() != null ? s.lastDeliveryAt() : now, now));
    }
    return events;
  }

  /**
   * Whether the edge is told {@code Moving} as the entity stops: frames in the mailbox behind the
   * stop are lost with it, and the edge sends them again at once. Going to sleep there are none,
   * unless something arrived after the entity asked to sleep.
   */
  static boolean tellsMoving(SocketState s, long lastActivityAt, long sleepingSince) {
    return s.status() == Status.OPEN && (sleepingSince == 0 || lastActivityAt > sleepingSince);
  }
}
