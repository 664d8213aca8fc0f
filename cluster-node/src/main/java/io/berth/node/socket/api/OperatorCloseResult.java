package io.berth.node.socket.api;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.berth.persistence.CborSerializable;

/**
 * What a socket answers a {@link SocketCommand.CloseByOperator}: the session ended, or why it
 * did not. Named in its CBOR like {@link InjectResult}, for the same reason.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "outcome")
@JsonSubTypes({
    @JsonSubTypes.Type(value = OperatorCloseResult.Closed.class, name = "closed"),
    @JsonSubTypes.Type(value = OperatorCloseResult.Refused.class, name = "refused")})
public sealed interface OperatorCloseResult extends CborSerializable {

  /** The session ended; its device (if connected) got CLOSE 1003. */
  record Closed() implements OperatorCloseResult {}

  /** Nothing was closed. */
  record Refused(Refusal refusal) implements OperatorCloseResult {}

  enum Refusal {
    /** The socket has no session (never opened, or closed already). */
    NOT_OPEN
  }
}
