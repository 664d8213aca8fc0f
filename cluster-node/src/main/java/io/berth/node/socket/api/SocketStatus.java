package io.berth.node.socket.api;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.berth.persistence.CborSerializable;
import java.time.Instant;

/** What an operator sees of a socket: {@code GET /api/sockets/{id}}. */
public record SocketStatus(
    String socketId,
    String deviceId,
    String state,
    String mapping,
    long mappingVersion,
    String node,
    String edge,
    long lastAccepted,
    long lastDownlinkSeq,
    long downlinkAcked,
    int outboxFrames,
    String pendingBatch,
    Counters counters,
    long linkFramesIn,
    Instant openedAt,
    Instant updatedAt)
    implements CborSerializable {

  @JsonIgnore
  public boolean exists() {
    return !"new".equals(state);
  }

  @JsonIgnore
  public boolean isOpen() {
    return "open".equals(state) || "detached".equals(state);
  }
}
