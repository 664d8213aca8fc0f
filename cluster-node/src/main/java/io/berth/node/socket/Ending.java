package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge.SessionEnded;
import io.berth.node.socket.api.OperatorCloseResult;
import io.berth.protocol.CloseCode;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * How a socket session ends: the {@code Closed} event's code and reason, what the edge holding
 * its connection is told, the reason its peer hears when the link ends, and the operator who
 * waits for the answer (null: nobody).
 */
record Ending(int code, String reason, SessionEnded toEdge, String toPeer, ActorRef<OperatorCloseResult> operator) {

  /** The device sent CLOSE. */
  static Ending byDevice(int code, String reason) {
    return new Ending(code, reason, new SessionEnded(CloseCode.NORMAL.wire, "session closed"),
        "peer closed its session", null);
  }

  /** An operator closed the socket ({@code DELETE /api/sockets/{id}}). */
  static Ending byOperator(String reason, ActorRef<OperatorCloseResult> operator) {
    return new Ending(CloseCode.CLOSED_BY_OPERATOR.wire, reason,
        new SessionEnded(CloseCode.CLOSED_BY_OPERATOR.wire, reason), "peer was closed by an operator", operator);
  }

  /** The endpoint answered with a close, or the link wait ended and the mapping closes then. */
  static Ending byEndpoint(String reason) {
    return new Ending(CloseCode.CLOSED_BY_ENDPOINT.wire, reason,
        new SessionEnded(CloseCode.CLOSED_BY_ENDPOINT.wire, reason), "peer was closed: " + reason, null);
  }

  /** The same ending, with another reason for the peer. */
  Ending toPeer(String peerReason) {
    return new Ending(code, reason, toEdge, peerReason, operator);
  }
}
