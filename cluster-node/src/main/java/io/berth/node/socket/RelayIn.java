package io.berth.node.socket;

import io.berth.node.link.Link;
import io.berth.node.socket.SocketEvent.Relayed;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The receiving side of a link (docs/links.md#relay-how-a-frame-crosses): the peer's frames
 * taken and gathered for the next journal write (into the outbox, in order, once each, within
 * its bound), and how far the acknowledgements of this socket's device were reported to the
 * peer. Allocated only for a linked socket; the entity writes and answers the peer.
 */
final class RelayIn {

  /**
   * What a {@code Relay} came to: {@code writeDue}, frames wait for the next write (which
   * answers the peer); otherwise the peer is answered at once with {@code durableIn}, the
   * highest of its frames taken, and {@code full}.
   */
  record Offered(boolean writeDue, long durableIn, boolean full) {}

  /** The gathered frames as the event that takes them (null: none), and whether any were refused. */
  record Taken(Relayed event, boolean refused) {
    static final Taken NOTHING = new Taken(null, false);
  }

  private final List<Frame.Data> pending = new ArrayList<>();
  private long pendingBytes;
  /** A frame was refused for a full outbox since the last write. */
  private boolean refused;
  /** The highest of the peer's frames whose acknowledgement was reported to it. */
  private long reported;

  /**
   * Takes the peer's frames that follow what was taken, in order, while the outbox (with what
   * is gathered) has room. {@code base}: where the peer's numbering stands, for a link that took
   * nothing yet.
   */
  Offered offer(SocketState s, DownlinkWindow window, long base, List<Frame.Data> frames) {
    Link link = s.link();
    int boxFrames = window.outboxFrames(s) + pending.size();
    long boxBytes = window.outboxBytes(s) + pendingBytes;
    long durableIn = link.relayIn() == 0 ? base : link.relayIn();
    long in = pending.isEmpty() ? durableIn : pending.get(pending.size() - 1).seq();
    boolean full = false;
    int taken = 0;
    for (Frame.Data d : frames) {
      if (d.seq() <= in) {
        continue;
      }
      if (d.seq() != in + 1) {
        break;
      }
      if (window.overflows(boxFrames + 1, boxBytes + d.payload().length)) {
        full = true;
        break;
      }
      pending.add(d);
      pendingBytes += d.payload().length;
      in = d.seq();
      boxFrames++;
      boxBytes += d.payload().length;
      taken++;
    }
    refused |= full;
    return new Offered(taken > 0 || !pending.isEmpty(), durableIn, full);
  }

  /**
   * The frames gathered, numbered as this socket's downlink frames, in the event that takes
   * them if the socket is still linked; gathered nothing after.
   */
  Taken take(SocketState s, Instant at) {
    Link link = s.link();
    Relayed event = null;
    if (!pending.isEmpty() && link != null && link.isLinked()) {
      long seq = s.lastDownlinkSeq();
      List<Frame.Data> out = new ArrayList<>(pending.size());
      for (Frame.Data d : pending) {
        out.add(new Frame.Data(++seq, d.payload()));
      }
      event = new Relayed(link.peer(), pending.get(pending.size() - 1).seq(), out, pending.get(0).seq(), at);
    }
    Taken taken = new Taken(event, refused);
    pending.clear();
    pendingBytes = 0;
    refused = false;
    return taken;
  }

  /**
   * Whether to tell the peer what this socket's device acknowledged of its frames ({@code
   * peerAcked}): news, or room again for a peer that was told the outbox is full.
   */
  boolean reports(long peerAcked, boolean stalled, boolean room) {
    if (peerAcked > reported || (stalled && room)) {
      reported = Math.max(reported, peerAcked);
      return true;
    }
    return false;
  }

  /** A new connection: its device's acknowledgements are reported afresh. True if nothing is left. */
  boolean forgetReported() {
    reported = 0;
    return pending.isEmpty() && !refused;
  }

  boolean isQuiet() {
    return pending.isEmpty();
  }
}
