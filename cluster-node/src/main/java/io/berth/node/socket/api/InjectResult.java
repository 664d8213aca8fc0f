package io.berth.node.socket.api;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.berth.persistence.CborSerializable;

/**
 * What a socket answers an {@link SocketCommand.Inject}: the data was queued for the device, or
 * why it was not. Each outcome is named in its CBOR ({@code "outcome"}), so that a reply in the
 * shape a node running the earlier code sends reads as one of them too ({@code
 * io.berth.node.socket.EarlierOperatorReplies}).
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "outcome")
@JsonSubTypes({
    @JsonSubTypes.Type(value = InjectResult.Injected.class, name = "injected"),
    @JsonSubTypes.Type(value = InjectResult.Refused.class, name = "refused")})
public sealed interface InjectResult extends CborSerializable {

  /** Queued for the device; {@code seq}: the downlink seq of its last frame. */
  record Injected(long seq) implements InjectResult {}

  /** Nothing was queued. */
  record Refused(Refusal refusal) implements InjectResult {}

  enum Refusal {
    /** The socket has no session (never opened, or closed): nothing would reach a device. */
    NOT_OPEN,
    /** The socket's outbox holds all that {@code berth.socket.max-outbox-*} allow: try later. */
    OUTBOX_FULL
  }
}
