package io.berth.node.socket;

import io.berth.node.link.Link;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketState.Status;
import io.berth.protocol.LinkStatus;
import io.berth.protocol.SocketId;

/**
 * A socket's side of its peer link (docs/links.md): what to make of a link answer, an offer,
 * the link coming up or going down, and the wait running out. The link itself is durable, in
 * the socket's state; these decisions read it, and the entity tells the link entity, the
 * pairing point and the device.
 */
final class LinkSide {

  private LinkSide() {}

  /** What a link answer naming a peer comes to. */
  enum Request {
    /** Not another socket's id: ignored, and worth a warning. */
    NOT_A_PEER,
    /** The socket is not open: ignored. */
    NOT_OPEN,
    /** Linked or waiting for that same peer already: nothing to do. */
    ALREADY,
    /** Linked or waiting for another peer: refused (one peer at a time), worth a warning. */
    REFUSED,
    /** Wait for that peer. */
    REQUEST
  }

  static Request request(String socketId, SocketState s, String peer) {
    if (!SocketId.isValid(peer) || peer.equals(socketId)) {
      return Request.NOT_A_PEER;
    }
    if (s.status() != Status.OPEN) {
      return Request.NOT_OPEN;
    }
    Link current = s.link();
    if (current != null && !current.peer().isEmpty()) {
      return current.peer().equals(peer) ? Request.ALREADY : Request.REFUSED;
    }
    return Request.REQUEST;
  }

  /** The event that makes the socket wait for {@code peer} until the mapping's link wait ends. */
  static LinkRequested requested(String socketId, SocketState s, String peer, long nowMillis, java.time.Instant at) {
    return new LinkRequested(PeerLinkEntity.idOf(socketId, peer), peer, nowMillis + s.mapping().linkWaitMs(),
        s.mapping().closeOnLinkTimeout(), at);
  }

  /** {@code builtin:pair} pairs sockets by their socket name: the part of the id after '/'. */
  static String pairingKey(String socketId) {
    return socketId.contains("/") ? socketId.substring(socketId.indexOf('/') + 1) : "";
  }

  /** Whether the link waits at the pairing point (no link entity yet) rather than for a named peer. */
  static boolean atPairingPoint(Link link) {
    return link.linkId().isEmpty();
  }

  /** An open socket waiting at its pairing point, which takes a partner the point found. */
  static boolean takesPartner(SocketState s) {
    Link link = s.link();
    return s.status() == Status.OPEN && link != null && atPairingPoint(link) && link.status() == Link.Status.WAITING;
  }

  /** What an offer of a link comes to. */
  enum Offer {
    /** Linked or waiting for another peer: busy. */
    BUSY,
    /** Already linked on this very link (the link entity did not hear the accept): accept again. */
    ACCEPT_AGAIN,
    /** Record the offer; an open socket accepts it. */
    RECORD
  }

  static Offer offer(Link current, String linkId, String from) {
    boolean free = current == null || current.peer().isEmpty() || current.peer().equals(from);
    if (!free) {
      return Offer.BUSY;
    }
    return current != null && current.isLinked() && current.linkId().equals(linkId) ? Offer.ACCEPT_AGAIN : Offer.RECORD;
  }

  /** An open socket offered a link accepts it (again, until the link entity answers). */
  static boolean acceptsOffer(SocketState s) {
    return s.status() == Status.OPEN && s.link() != null && s.link().status() == Link.Status.OFFERED;
  }

  /** What the link coming up comes to. */
  enum Up {
    /** The socket moved on (closed, or linked elsewhere): end that link. */
    UNLINK,
    /** Linked already: the device hears it again. */
    TELL,
    /** Record the link. */
    ESTABLISH
  }

  static Up up(SocketState s, String linkId) {
    Link current = s.link();
    boolean expected = current != null && (current.linkId().equals(linkId) || current.peer().isEmpty());
    if (!expected || (s.status() != Status.OPEN && s.status() != Status.DETACHED)) {
      return Up.UNLINK;
    }
    return current.isLinked() ? Up.TELL : Up.ESTABLISH;
  }

  /** Whether a link's end (or a message of the link {@code linkId}) is about the socket's current link. */
  static boolean isCurrent(Link current, String linkId) {
    return current != null && (current.linkId().equals(linkId) || current.peer().isEmpty());
  }

  /** The status the device hears when the link ends: the one given, unlinked if unknown. */
  static LinkStatus ended(LinkStatus status) {
    return status == null ? LinkStatus.UNLINKED : status;
  }

  /** Whether the socket closes as its link ends: a wait that timed out, for a mapping that says so. */
  static boolean closes(Link current, LinkStatus status) {
    return status == LinkStatus.TIMEOUT && current.closeOnTimeout();
  }

  /** What the link wait running out comes to. */
  enum Deadline {
    /** Not waiting any more. */
    NONE,
    /** Nobody came to the pairing point: leave it, and the link ends as timed out. */
    LEAVE_PAIRING,
    /** The link entity decides: it may have linked meanwhile. */
    EXPIRE
  }

  static Deadline deadline(Link current) {
    if (current == null || current.status() != Link.Status.WAITING) {
      return Deadline.NONE;
    }
    return atPairingPoint(current) ? Deadline.LEAVE_PAIRING : Deadline.EXPIRE;
  }

  /** How long the link wait has left, never less than nothing. */
  static long millisLeft(Link link, long nowMillis) {
    return Math.max(0, link.deadlineMillis() - nowMillis);
  }

  /** What a waiting socket's device is told it waits for. */
  static String waitingFor(Link link) {
    return link.peer().isEmpty() ? "waiting for a device with the same pairing key" : "waiting for " + link.peer();
  }

  /** Whether the socket is linked, to {@code peer} if named. */
  static boolean isLinked(SocketState s) {
    return s.link() != null && s.link().isLinked();
  }

  static boolean isLinkedTo(SocketState s, String peer) {
    return isLinked(s) && s.link().peer().equals(peer);
  }
}
