package io.berth.node.socket;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.link.Link;
import io.berth.node.link.RelayMark;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Answered;
import io.berth.node.socket.SocketEvent.BatchStarted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.DownlinkAcked;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.SocketEvent.Relayed;
import io.berth.node.socket.SocketEvent.Suspended;
import io.berth.node.socket.api.Counters;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/** A socket session's durable state: what its events add up to (and its snapshots hold). */
public record SocketState(
    Status status,
    String deviceId,
    Mapping mapping,
    ActorRef<ToEdge> edge,
    String edgeNode,
    long lastAccepted,
    long partialOffset,
    BatchStarted inFlight,
    long lastDownlinkSeq,
    long downlinkAcked,
    List<Frame.Data> outbox,
    Counters counters,
    Instant openedAt,
    Instant updatedAt,
    String suspendedOn,
    Instant lastDeliveryAt,
    Link link,
    long openPending)
    implements CborSerializable {

  public enum Status {
    /** Never opened. */
    NEW,
    /** A device connection is attached through an edge. */
    OPEN,
    /** The session lives on but no connection is attached; the device may resume it. */
    DETACHED,
    /** The session was ended; numbering continues if the socket is opened again. */
    CLOSED
  }



  static final SocketState EMPTY = new SocketState(Status.NEW, "", null, null, "", 0, 0, null, 0, 0, List.of(), Counters.ZERO,
      null, null, null, null, null, 0);

  /** A copy with the fields that change together most often. */
  private SocketState copy(Status status, ActorRef<ToEdge> edge, String edgeNode, long lastAccepted, long partialOffset,
                     BatchStarted inFlight, long lastDownlinkSeq, long downlinkAcked, List<Frame.Data> outbox,
                     Counters counters, Instant updatedAt, String suspendedOn, Instant lastDeliveryAt, Link link) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, link,
        openPending);
  }

  SocketState with(Status newStatus, ActorRef<ToEdge> newEdge, String newEdgeNode) {
    return copy(newStatus, newEdge, newEdgeNode, lastAccepted, partialOffset, inFlight, lastDownlinkSeq,
        downlinkAcked, outbox, counters, updatedAt, suspendedOn, lastDeliveryAt, link);
  }

  SocketState withLink(Link newLink, Instant at) {
    return copy(status, edge, edgeNode, lastAccepted, partialOffset, inFlight, lastDownlinkSeq, downlinkAcked,
        outbox, counters, at, suspendedOn, lastDeliveryAt, newLink);
  }

  SocketState opened(Opened e) {
    long acked = Math.max(downlinkAcked, e.downlinkAcked());
    Counters c = counters.connected();
    return new SocketState(Status.OPEN, e.deviceId(), e.mapping(), e.edge(), e.edgeNode(), lastAccepted, partialOffset,
        inFlight, lastDownlinkSeq, acked, trim(outbox, acked), c, e.at(), e.at(), suspendedOn,
        lastDeliveryAt, link == null ? null : link.trimmed(acked), e.asksEndpoint() ? c.connections() : 0);
  }

  SocketState accepted(Accepted e) {
    long acked = Math.max(downlinkAcked, e.downlinkAcked());
    List<Frame.Data> box = append(trim(outbox, acked), e.outbound(), acked);
    boolean batchDone = e.batchId() != null && inFlight != null && inFlight.batchId().equals(e.batchId());
    return copy(status, edge, edgeNode, e.lastAccepted(), e.partialOffset(), batchDone ? null : inFlight,
        lastSeq(e.outbound()), acked, box,
        counters.in(e.frames(), e.bytes(), e.duplicates(), e.outbound(), e.batchId() != null, e.parkedId() != null),
        e.at(), null, e.at(), link == null ? null : link.trimmed(acked));
  }

  SocketState batchStarted(BatchStarted e) {
    return copy(status, edge, edgeNode, lastAccepted, partialOffset, e, lastDownlinkSeq, downlinkAcked, outbox,
        counters, e.at(), suspendedOn, lastDeliveryAt, link);
  }

  SocketState answered(List<Frame.Data> out, Instant at) {
    return copy(status, edge, edgeNode, lastAccepted, partialOffset, inFlight, lastSeq(out), downlinkAcked,
        append(outbox, out, downlinkAcked), counters.out(out), at, suspendedOn, lastDeliveryAt, link);
  }

  SocketState relayed(Relayed e) {
    SocketState s = answered(e.outbound(), e.at());
    RelayMark mark = new RelayMark(e.outbound().get(0).seq(), e.outbound().get(e.outbound().size() - 1).seq(),
        e.peerFrom());
    return new SocketState(s.status, deviceId, mapping, s.edge, s.edgeNode, s.lastAccepted, s.partialOffset, s.inFlight,
        s.lastDownlinkSeq, s.downlinkAcked, s.outbox, s.counters.relaying(e.outbound().size()), openedAt,
        e.at(), s.suspendedOn, s.lastDeliveryAt, link.relayed(e.relayIn(), mark), openPending);
  }

  /** The endpoint answered: its frames go down, and an answer to the pending open settles it. */
  SocketState answered(Answered e) {
    SocketState s = answered(e.outbound(), e.at());
    return e.openOf() != 0 && e.openOf() == openPending ? s.openSettled() : s;
  }

  /** No open waits for the endpoint's answer any more. */
  private SocketState openSettled() {
    return openPending == 0 ? this : new SocketState(status, deviceId, mapping, edge, edgeNode, lastAccepted,
        partialOffset, inFlight, lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn,
        lastDeliveryAt, link, 0);
  }

  SocketState downlinkAcked(DownlinkAcked e) {
    long acked = Math.max(downlinkAcked, e.upTo());
    return copy(status, edge, edgeNode, lastAccepted, partialOffset, inFlight, lastDownlinkSeq, acked,
        trim(outbox, acked), counters, e.at(), suspendedOn, lastDeliveryAt, link == null ? null : link.trimmed(acked));
  }

  SocketState closed(Closed e) {
    // Discarded downlink frames count as acknowledged so that numbering continues past them.
    return copy(Status.CLOSED, null, "", lastAccepted, partialOffset, null, lastDownlinkSeq, lastDownlinkSeq,
        List.of(), counters.discarding(e.discarded()), e.at(), null, lastDeliveryAt, null).openSettled();
  }

  SocketState suspended(Suspended e) {
    return copy(status, edge, edgeNode, lastAccepted, partialOffset, inFlight, lastDownlinkSeq, downlinkAcked,
        outbox, counters, updatedAt, e.node(), e.lastDeliveryAt(), link);
  }

  @JsonIgnore
  boolean isAttached(ActorRef<ToEdge> ref) {
    return status == Status.OPEN && edge != null && edge.equals(ref);
  }

  @JsonIgnore
  boolean usesHttp() {
    return mapping != null && !mapping.isBuiltin();
  }

  /**
   * Data goes to the peer, or waits for it, instead of the mapping: linked, waiting for a peer,
   * or offered a link that is accepted once open (docs/delivery.md#where-data-goes).
   */
  @JsonIgnore
  boolean relays() {
    return link != null;
  }

  /**
   * Where the device's data goes is not known yet: held, unacknowledged, until the link or the
   * endpoint's answer to open decides.
   */
  @JsonIgnore
  boolean holdsData() {
    return relays() || openPending != 0;
  }

  private long lastSeq(List<Frame.Data> out) {
    return out.isEmpty() ? lastDownlinkSeq : out.get(out.size() - 1).seq();
  }

  private static List<Frame.Data> append(List<Frame.Data> box, List<Frame.Data> out, long acked) {
    if (out.isEmpty()) {
      return box;
    }
    List<Frame.Data> all = new ArrayList<>(box.size() + out.size());
    all.addAll(box);
    for (Frame.Data d : out) {
      if (d.seq() > acked) {
        all.add(d);
      }
    }
    return List.copyOf(all);
  }

  private static List<Frame.Data> trim(List<Frame.Data> outbox, long acked) {
    if (outbox.isEmpty() || outbox.get(0).seq() > acked) {
      return outbox;
    }
    List<Frame.Data> out = new ArrayList<>(outbox.size());
    for (Frame.Data d : outbox) {
      if (d.seq() > acked) {
        out.add(d);
      }
    }
    return List.copyOf(out);
  }
}

