package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.SocketCommand.Open;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.SocketId;
import java.time.Instant;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * What an {@code Open} comes to: refused (another device's socket, or a resume claiming frames
 * never sent: PROTOCOL.md#resuming), a takeover to confirm first (docs/takeover.md), or the
 * events that open the socket. The entity tells the edges and writes.
 */
final class Opening {

  private Opening() {}

  sealed interface Decision {}

  /** The edge answers the device ERROR {@code errorCode}. */
  record Rejected(int errorCode, String reason) implements Decision {}

  /**
   * Another connection is attached: the open takes the session from it only if its own
   * connection still waits for the answer, and says so by sending the open again, confirmed.
   */
  record Confirm(ActorRef<ToEdge> attached) implements Decision {}

  /**
   * The events to write; {@code replaced}: the connection that loses the session (null: none);
   * {@code pairs}: the socket joins its pairing point once open.
   */
  record Opens(List<SocketEvent> events, ActorRef<ToEdge> replaced, boolean pairs) implements Decision {}

  /**
   * The open came again from the connection already attached (its answer was late or lost):
   * answered again, nothing written, no endpoint told of a second open.
   */
  record AlreadyOpen() implements Decision {}

  static Decision decide(String socketId, SocketState s, Open cmd, long liveAcked, long nowMillis, Instant now) {
    if (!SocketId.deviceOf(socketId).equals(cmd.deviceId())) {
      // The edge derives socket ids from the authenticated device; this is a second line of defence.
      return new Rejected(ErrorCode.AUTH_FAILED.wire,
          "socket " + socketId + " does not belong to device " + cmd.deviceId());
    }
    if (cmd.resume() && cmd.lastReceived() > s.lastDownlinkSeq()) {
      // The device's state is another socket's or stale: taking the claim would drop the outbox unsent.
      return new Rejected(ErrorCode.BAD_SEQUENCE.wire, "HELLO lastReceived " + cmd.lastReceived()
          + " is beyond the last downlink seq " + s.lastDownlinkSeq() + " of socket " + socketId
          + ": the device's state is not this socket's; open it with resume = 0");
    }
    ActorRef<ToEdge> previous = s.status() == Status.OPEN ? s.edge() : null;
    if (previous != null && previous.equals(cmd.edge())) {
      return new AlreadyOpen();
    }
    if (previous != null && !previous.equals(cmd.replacing())) {
      return new Confirm(previous);
    }
    long acked = cmd.resume() ? Math.max(s.downlinkAcked(), cmd.lastReceived()) : s.downlinkAcked();
    acked = Math.max(acked, liveAcked);
    // An HTTP endpoint's answer to open decides where this connection's data goes.
    boolean asksEndpoint = !cmd.mapping().isBuiltin() && cmd.mapping().receives(Mapping.Event.OPEN);
    Opened opened = new Opened(cmd.deviceId(), cmd.mapping(), cmd.edge(), cmd.edgeNode(), acked, now, asksEndpoint,
        cmd.deviceAddress());
    boolean pairs = s.link() == null && "pair".equals(cmd.mapping().builtinName());
    ActorRef<ToEdge> replaced = previous != null && !previous.equals(cmd.edge()) ? previous : null;
    if (pairs && !LinkSide.pairingKey(socketId).isEmpty()) {
      // Waiting from the first moment: data sent before the pairing point answers is held for
      // the peer, not taken by the mapping.
      return new Opens(List.of(opened, new LinkRequested("", "", nowMillis + cmd.mapping().linkWaitMs(),
          cmd.mapping().closeOnLinkTimeout(), now)), replaced, true);
    }
    return new Opens(List.of(opened), replaced, pairs);
  }
}
