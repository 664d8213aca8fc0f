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
    String deviceAddress,
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
    long openPending,
    long[] acceptedTags)
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

  static final SocketState EMPTY = new SocketState(Status.NEW, "", null, null, "", null, 0, 0, null, 0, 0, List.of(), Counters.ZERO,
      null, null, null, null, null, 0, null);

  // ------------------------------------------------------------------ what each event changes

  /** The state after {@code event}: needs nothing but the two (the entity's event handler). */
  SocketState apply(SocketEvent event) {
    if (event instanceof Accepted e) {
      return accepted(e);
    } else if (event instanceof Relayed e) {
      return relayed(e);
    } else if (event instanceof DownlinkAcked e) {
      return downlinkAcked(e);
    } else if (event instanceof BatchStarted e) {
      return batchStarted(e);
    } else if (event instanceof Answered e) {
      return answered(e);
    } else if (event instanceof SocketEvent.Injected e) {
      return answered(e.outbound(), e.at());
    } else if (event instanceof Opened e) {
      return opened(e);
    } else if (event instanceof SocketEvent.Detached) {
      return withConnection(Status.DETACHED, null, "");
    } else if (event instanceof Suspended e) {
      return withMove(e.node(), e.lastDeliveryAt());
    } else if (event instanceof Closed e) {
      return closed(e);
    } else if (event instanceof SocketEvent.LinkRequested e) {
      return linkChanged(Link.fresh(e.linkId(), e.peer(), Link.Status.WAITING, e.at(), e.deadlineMillis(),
          e.closeOnTimeout()), e.at());
    } else if (event instanceof SocketEvent.LinkOffered e) {
      return linkChanged(Link.fresh(e.linkId(), e.peer(), Link.Status.OFFERED, e.at(), 0, false), e.at());
    } else if (event instanceof SocketEvent.LinkEstablished e) {
      return linkChanged(link == null ? Link.fresh(e.linkId(), e.peer(), Link.Status.LINKED, e.at(), 0, false)
          : link.withStatus(Link.Status.LINKED, e.linkId(), e.peer(), e.at()), e.at());
    } else if (event instanceof SocketEvent.LinkEnded e) {
      return linkChanged(null, e.at());
    }
    throw new IllegalArgumentException("unexpected event " + event.getClass().getName());
  }

  private SocketState opened(Opened e) {
    long acked = Math.max(downlinkAcked, e.downlinkAcked());
    Counters c = counters.connected();
    return new SocketState(Status.OPEN, e.deviceId(), e.mapping(), e.edge(), e.edgeNode(), e.deviceAddress(), lastAccepted, partialOffset,
        inFlight, lastDownlinkSeq, acked, trim(outbox, acked), c, e.at(), e.at(), suspendedOn,
        lastDeliveryAt, link == null ? null : link.trimmed(acked), e.asksEndpoint() ? c.connections() : 0, acceptedTags);
  }

  private SocketState accepted(Accepted e) {
    long acked = Math.max(downlinkAcked, e.downlinkAcked());
    boolean batchDone = e.batchId() != null && inFlight != null && inFlight.batchId().equals(e.batchId());
    return withUplink(e.lastAccepted(), e.partialOffset(), batchDone ? null : inFlight)
        .withDownlink(lastSeq(e.outbound()), acked, append(trim(outbox, acked), e.outbound(), acked))
        .withCounters(
            counters.in(e.frames(), e.bytes(), e.duplicates(), e.outbound(), e.batchId() != null, e.parkedId() != null))
        .withMove(null, e.at())
        .withLink(link == null ? null : link.trimmed(acked))
        .withUpdatedAt(e.at())
        .withAcceptedTags(ResendTags.append(acceptedTags, e.tags()));
  }

  private SocketState batchStarted(BatchStarted e) {
    return withUplink(lastAccepted, partialOffset, e).withUpdatedAt(e.at());
  }

  /** Downlink frames the socket sends (answers, injected messages): appended to the outbox. */
  private SocketState answered(List<Frame.Data> out, Instant at) {
    return withDownlink(lastSeq(out), downlinkAcked, append(outbox, out, downlinkAcked))
        .withCounters(counters.out(out))
        .withUpdatedAt(at);
  }

  private SocketState relayed(Relayed e) {
    SocketState s = answered(e.outbound(), e.at());
    RelayMark mark = new RelayMark(e.outbound().get(0).seq(), e.outbound().get(e.outbound().size() - 1).seq(),
        e.peerFrom());
    return s.withCounters(s.counters.relaying(e.outbound().size())).withLink(link.relayed(e.relayIn(), mark));
  }

  /** The endpoint answered: its frames go down, and an answer to the pending open settles it. */
  private SocketState answered(Answered e) {
    SocketState s = answered(e.outbound(), e.at());
    return e.openOf() != 0 && e.openOf() == openPending ? s.openSettled() : s;
  }

  /** No open waits for the endpoint's answer any more. */
  private SocketState openSettled() {
    return openPending == 0 ? this : withOpenPending(0);
  }

  private SocketState downlinkAcked(DownlinkAcked e) {
    long acked = Math.max(downlinkAcked, e.upTo());
    return withDownlink(lastDownlinkSeq, acked, trim(outbox, acked))
        .withLink(link == null ? null : link.trimmed(acked))
        .withUpdatedAt(e.at());
  }

  private SocketState closed(Closed e) {
    // Discarded downlink frames count as acknowledged so that numbering continues past them.
    return withConnection(Status.CLOSED, null, "")
        .withUplink(lastAccepted, partialOffset, null)
        .withDownlink(lastDownlinkSeq, lastDownlinkSeq, List.of())
        .withCounters(counters.discarding(e.discarded()))
        .withMove(null, lastDeliveryAt)
        .withLink(null)
        .withUpdatedAt(e.at())
        .withAcceptedTags(null)
        .openSettled();
  }

  private SocketState linkChanged(Link newLink, Instant at) {
    return withLink(newLink).withUpdatedAt(at);
  }

  // ------------------------------------------------------------------ withers: one concern each

  private SocketState withConnection(Status newStatus, ActorRef<ToEdge> newEdge, String newEdgeNode) {
    return new SocketState(newStatus, deviceId, mapping, newEdge, newEdgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, link,
        openPending, acceptedTags);
  }

  /** The uplink: the watermark, how far into the next frame, the batch sent to the endpoint. */
  private SocketState withUplink(long newLastAccepted, long newPartialOffset, BatchStarted newInFlight) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, newLastAccepted, newPartialOffset, newInFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, link,
        openPending, acceptedTags);
  }

  /** The downlink: the last frame numbered, the device's acknowledgement, the frames it lacks. */
  private SocketState withDownlink(long newLastDownlinkSeq, long newDownlinkAcked, List<Frame.Data> newOutbox) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        newLastDownlinkSeq, newDownlinkAcked, newOutbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt,
        link, openPending, acceptedTags);
  }

  private SocketState withCounters(Counters newCounters) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, newCounters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, link,
        openPending, acceptedTags);
  }

  /** Where the socket last ran before a move ({@code null}: not moving) and when it last delivered. */
  private SocketState withMove(String newSuspendedOn, Instant newLastDeliveryAt) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, newSuspendedOn, newLastDeliveryAt, link,
        openPending, acceptedTags);
  }

  private SocketState withLink(Link newLink) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, newLink,
        openPending, acceptedTags);
  }

  private SocketState withUpdatedAt(Instant at) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, at, suspendedOn, lastDeliveryAt, link,
        openPending, acceptedTags);
  }

  private SocketState withOpenPending(long newOpenPending) {
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, link,
        newOpenPending, acceptedTags);
  }

  /** The tags of the last frames accepted from the MQTT port ({@link ResendTags}). */
  private SocketState withAcceptedTags(long[] tags) {
    if (tags == acceptedTags) {
      return this;
    }
    return new SocketState(status, deviceId, mapping, edge, edgeNode, deviceAddress, lastAccepted, partialOffset, inFlight,
        lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt, link,
        openPending, tags);
  }

  // ------------------------------------------------------------------ queries

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

