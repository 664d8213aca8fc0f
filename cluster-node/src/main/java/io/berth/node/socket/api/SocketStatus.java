package io.berth.node.socket.api;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.berth.node.mapping.Mapping;
import io.berth.persistence.CborSerializable;
import java.time.Instant;

/**
 * What an operator sees of a socket: {@code GET /api/sockets/{id}}. {@code deviceAddress}: where
 * the device's current or last connection came from, {@code host:port} (behind a balancer that
 * speaks the PROXY protocol, the device's own address; docs/edge.md#proxy-protocol), null when
 * no edge gave one. {@code limits}: what its
 * connection's uplink is held to (docs/limits.md), all 0 when nothing; null when no connection is
 * attached, and from a node that predates limits.
 */
public record SocketStatus(
    String socketId,
    String deviceId,
    String state,
    String mapping,
    long mappingVersion,
    String node,
    String edge,
    String deviceAddress,
    long lastAccepted,
    long lastDownlinkSeq,
    long downlinkAcked,
    int outboxFrames,
    String pendingBatch,
    Counters counters,
    long linkFramesIn,
    Instant openedAt,
    Instant updatedAt,
    Mapping.Limits limits)
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
