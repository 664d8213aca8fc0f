package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.LinkChanged;
import io.berth.node.link.Link;
import io.berth.node.link.PairingEntity;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.mapping.Mapping;
import io.berth.node.metrics.Metrics;
import io.berth.node.socket.SocketEntity.AcceptAgain;
import io.berth.node.socket.SocketEntity.CloseByEndpoint;
import io.berth.node.socket.SocketEntity.LinkDeadline;
import io.berth.node.socket.SocketEntity.RelayCheck;
import io.berth.node.socket.SocketEntity.WriteRelay;
import io.berth.node.socket.SocketEvent.LinkEnded;
import io.berth.node.socket.SocketEvent.LinkEstablished;
import io.berth.node.socket.SocketEvent.LinkOffered;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketCommand.Deliver;
import io.berth.node.socket.api.SocketCommand.LinkDown;
import io.berth.node.socket.api.SocketCommand.LinkOffer;
import io.berth.node.socket.api.SocketCommand.LinkUp;
import io.berth.node.socket.api.SocketCommand.Relay;
import io.berth.node.socket.api.SocketCommand.RelayAck;
import io.berth.node.socket.api.Sockets;
import io.berth.protocol.Frame;
import io.berth.protocol.LinkStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.persistence.typed.javadsl.EffectFactories;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;

/**
 * The part of a {@link SocketEntity} that runs its link and both sides of the relay: the effects
 * of {@link LinkSide}'s, {@link RelayOut}'s and {@link RelayIn}'s decisions, on the entity's
 * behalf and in its order. It exists from the first time the socket deals with a link, and is let
 * go when it holds nothing a new one would not (see {@link SocketEntity#links}).
 */
final class SessionLinks {

  private final SocketEntity entity;
  RelayOut relayOut;
  RelayIn relayIn;
  /** A {@code WriteRelay} is on its way: what the relay gathered goes in its write. */
  boolean relayWriteScheduled;

  SessionLinks(SocketEntity entity) {
    this.entity = entity;
  }

  /** The entity's effects: the handlers below read as they would in the entity. */
  private EffectFactories<SocketEvent, SocketState> Effect() {
    return entity.Effect();
  }

  /** Nothing here that a new part would not hold: the entity may let this one go. */
  boolean isIdle() {
    return relayOut == null && relayIn == null && !relayWriteScheduled;
  }

  // ------------------------------------------------------------------ peer links

  private EntityRef<PeerLinkEntity.Command> linkRef(String linkId) {
    return ClusterSharding.get(entity.context.getSystem()).entityRefFor(PeerLinkEntity.ENTITY_KEY, linkId);
  }

  private EntityRef<PairingEntity.Command> pairingRef() {
    return ClusterSharding.get(entity.context.getSystem()).entityRefFor(PairingEntity.ENTITY_KEY,
        LinkSide.pairingKey(entity.socketId));
  }

  private EntityRef<SocketCommand> peerRef(String peer) {
    return ClusterSharding.get(entity.context.getSystem()).entityRefFor(Sockets.ENTITY_KEY, peer);
  }

  private void tellDevice(SocketState s, LinkStatus status, String peer, String reason) {
    if (s.status() == Status.OPEN && s.edge() != null) {
      s.edge().tell(new LinkChanged(status.wire, peer, reason));
    }
  }

  /**
   * The endpoint (or the pairing point) links this socket to {@code peer}. A socket links to at
   * most one peer at a time: an answer naming another peer while linked or waiting is refused.
   */
  ReplyEffect<SocketEvent, SocketState> requestLink(SocketState s, String peer) {
    Optional<LinkRequested> request = linkRequest(s, peer, Instant.now());
    if (request.isEmpty()) {
      return Effect().noReply();
    }
    return Effect().persist(request.get()).thenRun(st -> linkRequested(st, request.get())).thenNoReply();
  }

  /** The event that makes this socket wait for {@code peer}, if it may link to it now. */
  Optional<LinkRequested> linkRequest(SocketState s, String peer, Instant at) {
    switch (LinkSide.request(entity.socketId, s, peer)) {
      case REQUEST -> {
        return Optional.of(LinkSide.requested(entity.socketId, s, peer, System.currentTimeMillis(), at));
      }
      case NOT_A_PEER -> entity.context.getLog().warn(
          "Socket {}: the endpoint answered link '{}', which is not another socket's id; ignored", entity.socketId,
          peer);
      case REFUSED -> entity.context.getLog().warn("Socket {} is {} with {}: link answer to {} refused",
          entity.socketId, s.link().status(), s.link().peer(), peer);
      case NOT_OPEN, ALREADY -> { }
    }
    return Optional.empty();
  }

  void linkRequested(SocketState st, LinkRequested e) {
    linkRef(e.linkId()).tell(new PeerLinkEntity.Request(entity.socketId, e.peer(), e.deadlineMillis()));
    tellDevice(st, LinkStatus.PENDING, e.peer(), "waiting for " + e.peer());
    armLinkDeadline(st.link());
  }

  /**
   * Joins the pairing point of this socket's name; the socket is already waiting (its device was
   * told so by {@link #resumeLink}).
   */
  void joinPairing(SocketState s) {
    if (LinkSide.pairingKey(entity.socketId).isEmpty()) {
      entity.context.getLog().warn("Socket {} uses builtin:pair without a socket name: no pairing key",
          entity.socketId);
      tellDevice(s, LinkStatus.TIMEOUT, "", "builtin:pair pairs sockets by their socket name");
      return;
    }
    pairingRef().tell(new PairingEntity.Join(entity.socketId));
  }

  /** A peer wants a link: taken when this socket is free (or waits for just this peer). */
  ReplyEffect<SocketEvent, SocketState> onLinkOffer(SocketState s, LinkOffer o) {
    switch (LinkSide.offer(s.link(), o.linkId(), o.from())) {
      case BUSY -> linkRef(o.linkId()).tell(new PeerLinkEntity.Busy(entity.socketId,
          entity.socketId + " is " + s.link().status() + " with another socket"));
      case ACCEPT_AGAIN -> linkRef(o.linkId()).tell(new PeerLinkEntity.Accept(entity.socketId));
      case RECORD -> {
        return Effect().persist(new LinkOffered(o.linkId(), o.from(), Instant.now())).thenRun(st -> {
          if (st.status() == Status.OPEN) {
            acceptOffer(o.linkId());
          }
        }).thenNoReply();
      }
    }
    return Effect().noReply();
  }

  /**
   * Takes an offered link, and asks again every {@code downlink-retry} until the link entity
   * answers (LinkUp, or LinkDown for a link that ended): an open socket holds its device's data
   * while offered, so a lost accept or answer must not leave it waiting.
   */
  void acceptOffer(String linkId) {
    linkRef(linkId).tell(new PeerLinkEntity.Accept(entity.socketId));
    entity.timers.startSingleTimer(AcceptAgain.INSTANCE, entity.settings.downlinkRetry());
  }

  ReplyEffect<SocketEvent, SocketState> onLinkUp(SocketState s, LinkUp up) {
    switch (LinkSide.up(s, up.linkId())) {
      case UNLINK -> linkRef(up.linkId()).tell(
          new PeerLinkEntity.Unlink(entity.socketId, entity.socketId + " is not open", 0));
      case TELL -> tellDevice(s, LinkStatus.LINKED, up.peer(), "");
      case ESTABLISH -> {
        return Effect().persist(new LinkEstablished(up.linkId(), up.peer(), Instant.now())).thenRun(st -> {
          entity.timers.cancel(LinkDeadline.INSTANCE);
          tellDevice(st, LinkStatus.LINKED, up.peer(), "");
          entity.context.getLog().info("Socket {} linked to {}", entity.socketId, up.peer());
          sendRelay(st);
        }).thenNoReply();
      }
    }
    return Effect().noReply();
  }

  /** The link ended: frames the peer took are acknowledged; the rest goes to the endpoint again. */
  ReplyEffect<SocketEvent, SocketState> onLinkDown(SocketState s, LinkDown down) {
    Link current = s.link();
    if (!LinkSide.isCurrent(current, down.linkId())) {
      return Effect().noReply();
    }
    Instant now = Instant.now();
    LinkEnded ended = new LinkEnded(current.linkId(), now);
    List<SocketEvent> events = down.peerAccepted() <= s.lastAccepted() ? List.of(ended) : List.of(
        entity.tagged(s, RelayOut.accepted(s, relayOut == null ? List.of() : relayOut.held(), down.peerAccepted(),
            entity.window.acked(s), now)),
        ended);
    LinkStatus status = LinkStatus.fromWire(down.status());
    boolean close = LinkSide.closes(current, status);
    return Effect().persist(events).thenRun(st -> {
      entity.timers.cancel(LinkDeadline.INSTANCE);
      tellDevice(st, LinkSide.ended(status), down.peer(), down.reason());
      if (close) {
        // The socket closes: what its device sent after the last ACK goes nowhere.
        endGathering();
        entity.context.getSelf().tell(new CloseByEndpoint("no peer within " + st.mapping().linkWaitMs() + " ms"));
      } else {
        releaseHeld(st);
      }
    }).thenNoReply();
  }

  ReplyEffect<SocketEvent, SocketState> onLinkDeadline(SocketState s) {
    switch (LinkSide.deadline(s.link())) {
      case LEAVE_PAIRING -> {
        pairingRef().tell(new PairingEntity.Leave(entity.socketId));
        return onLinkDown(s, new LinkDown("", "", LinkStatus.TIMEOUT.wire,
            "no device with the same pairing key came", 0));
      }
      case EXPIRE -> linkRef(s.link().linkId()).tell(new PeerLinkEntity.Expire(entity.socketId));
      case NONE -> { }
    }
    return Effect().noReply();
  }

  void armLinkDeadline(Link link) {
    entity.timers.startSingleTimer(LinkDeadline.INSTANCE,
        Duration.ofMillis(LinkSide.millisLeft(link, System.currentTimeMillis())));
  }

  /** A reconnecting device learns its link status; an offer waiting for this socket is taken. */
  void resumeLink(SocketState s) {
    Link link = s.link();
    if (link == null) {
      return;
    }
    switch (link.status()) {
      case LINKED -> tellDevice(s, LinkStatus.LINKED, link.peer(), "");
      case WAITING -> {
        tellDevice(s, LinkStatus.PENDING, link.peer(), LinkSide.waitingFor(link));
        armLinkDeadline(link);
      }
      case OFFERED -> acceptOffer(link.linkId());
    }
  }

  void leaveLink(Link link, String reason) {
    endGathering();
    if (link == null) {
      return;
    }
    if (LinkSide.atPairingPoint(link)) {
      pairingRef().tell(new PairingEntity.Leave(entity.socketId));
    } else {
      linkRef(link.linkId()).tell(new PeerLinkEntity.Unlink(entity.socketId, reason, link.relayIn()));
    }
  }

  // ------------------------------------------------------------------ relay (sending side)

  /**
   * While linked, or while the data's destination is not decided yet, frames wait here for the
   * peer (unacknowledged); the edge may send more, within the device's window. Frames the HTTP
   * endpoint's batcher already took stay with it.
   */
  ReplyEffect<SocketEvent, SocketState> bufferForRelay(SocketState state, Deliver cmd) {
    if (state.inFlight() != null && state.usesHttp()) {
      // A batch recorded for the endpoint (sent before this incarnation) owns its frames,
      // whatever the data does now: they go back to the batcher, to send the batch again.
      entity.prepareEndpoint(state).toBatcher(state, cmd.frames(), state.inFlight().seqTo());
    }
    RelayOut out = relayOut();
    entity.hold(state, cmd, out.heldUpTo(entity.endpointPart == null ? state.lastAccepted()
        : entity.endpointPart.dispatch.taken(state)), out::hold);
    sendRelay(state);
    return Effect().noReply();
  }

  private RelayOut relayOut() {
    if (relayOut == null) {
      relayOut = new RelayOut();
    }
    return relayOut;
  }

  /** Sends queued frames to the peer's entity, within the relay window and message size. */
  private void sendRelay(SocketState s) {
    if (!LinkSide.isLinked(s) || (relayOut != null && relayOut.isPeerFull())) {
      return;
    }
    RelayOut out = relayOut();
    for (List<Frame.Data> frames : out.nextRelays(s.lastAccepted(), entity.settings.downlinkWindow(),
        entity.settings.maxPushBytes(), System.nanoTime())) {
      peerRef(s.link().peer()).tell(new Relay(entity.socketId, out.accepted(), frames));
    }
    if (out.holdsFrames() && !entity.timers.isTimerActive(RelayCheck.INSTANCE)) {
      entity.timers.startTimerWithFixedDelay(RelayCheck.INSTANCE, Duration.ofSeconds(1));
    }
  }

  /** The peer took frames and its device acknowledged some: those are delivered, ACK them. */
  ReplyEffect<SocketEvent, SocketState> onRelayAck(SocketState s, RelayAck ack) {
    if (!LinkSide.isLinkedTo(s, ack.from())) {
      return Effect().noReply();
    }
    if (relayOut().peerAcked(ack.accepted(), ack.acked(), ack.full(), s.lastAccepted(), System.nanoTime())) {
      scheduleRelayWrite();
    }
    sendRelay(s);
    return Effect().noReply();
  }

  ReplyEffect<SocketEvent, SocketState> onRelayCheck(SocketState s) {
    if (relayOut == null || !relayOut.holdsFrames() || !LinkSide.isLinked(s)) {
      entity.timers.cancel(RelayCheck.INSTANCE);
    } else if (relayOut.sendAgain(System.nanoTime(), entity.settings.downlinkRetry().toNanos())) {
      // Nothing from the peer for a while (it moved, or its node died): send again from what it took.
      sendRelay(s);
    }
    return Effect().noReply();
  }

  /** The link ended: nothing gathered for it may be written any more. */
  private void endGathering() {
    relayOut = null;
    relayIn = null;
    entity.timers.cancel(RelayCheck.INSTANCE);
    entity.dropLinksIfIdle();
  }

  /**
   * Forgets the frames held for the peer (the device sends them again after it reconnects);
   * what was gathered for the next write stays: it does not depend on the connection.
   */
  void clearRelay() {
    if (relayOut != null && relayOut.forgetHeld()) {
      relayOut = null;
    }
    if (relayIn != null && relayIn.forgetReported()) {
      relayIn = null;
    }
    entity.timers.cancel(RelayCheck.INSTANCE);
    entity.dropLinksIfIdle();
  }

  /**
   * Unlinked, or the open's answer named no peer: the frames held for the peer go where the
   * socket's data goes now (docs/delivery.md#where-data-goes). An HTTP endpoint that takes data
   * gets them here, in order after what its batcher has, so that a close the device already
   * asked for flushes them too; otherwise the edge sends them again and they are taken (a
   * built-in endpoint) or refused like any new data.
   */
  void releaseHeld(SocketState s) {
    boolean held = relayOut != null && relayOut.holdsFrames();
    if (held && !s.holdsData() && s.usesHttp() && s.mapping().receives(Mapping.Event.DATA)) {
      entity.prepareEndpoint(s).toBatcher(s, relayOut.held(), Long.MAX_VALUE);
      endGathering();
      return;
    }
    // Still undecided (the open's answer is due), or not for the batcher: through the edge.
    endGathering();
    if (held && s.edge() != null && s.status() == Status.OPEN) {
      s.edge().tell(new Delivered(s.lastAccepted(), s.lastAccepted(), false, true));
    }
  }

  // ------------------------------------------------------------------ relay (receiving side)

  /** Frames of the linked peer go into this socket's outbox, in order, once each. */
  ReplyEffect<SocketEvent, SocketState> onRelay(SocketState s, Relay r) {
    if (!LinkSide.isLinkedTo(s, r.from())) {
      peerRef(r.from()).tell(new LinkDown(PeerLinkEntity.idOf(entity.socketId, r.from()), entity.socketId,
          LinkStatus.UNLINKED.wire, entity.socketId + " is not linked to " + r.from(), 0));
      return Effect().noReply();
    }
    if (relayIn == null) {
      relayIn = new RelayIn();
    }
    RelayIn.Offered offered = relayIn.offer(s, entity.window, r.base(), r.frames());
    if (offered.writeDue()) {
      scheduleRelayWrite(); // its write answers the peer
    } else {
      peerRef(r.from()).tell(new RelayAck(entity.socketId, offered.durableIn(),
          s.link().peerAcked(entity.window.acked(s)), offered.full()));
    }
    return Effect().noReply();
  }

  /**
   * Relay traffic is written in one journal write per round trip, not one per message: what
   * arrives while a write is in flight waits in the stash, is gathered when it is unstashed, and
   * goes in the next write, which this self-message (behind the stash) triggers. Each socket has
   * one write in flight at a time, so this is what lets a busy link carry more than one
   * message's worth of frames per commit.
   */
  private void scheduleRelayWrite() {
    if (!relayWriteScheduled) {
      relayWriteScheduled = true;
      entity.context.getSelf().tell(WriteRelay.INSTANCE);
    }
  }

  /** Writes the gathered relay: the peer's frames into the outbox, own frames the peer has. */
  ReplyEffect<SocketEvent, SocketState> onWriteRelay(SocketState s) {
    relayWriteScheduled = false;
    Instant now = Instant.now();
    List<SocketEvent> events = new ArrayList<>(2);
    RelayIn.Taken in = relayIn == null ? RelayIn.Taken.NOTHING : relayIn.take(s, now);
    if (in.event() != null) {
      events.add(in.event());
    }
    long acceptUpTo = relayOut == null ? 0 : relayOut.takeAcceptPending();
    boolean accepting = acceptUpTo > s.lastAccepted() && LinkSide.isLinked(s);
    if (accepting) {
      events.add(entity.tagged(s, RelayOut.accepted(s, relayOut.held(), acceptUpTo, entity.window.acked(s), now)));
    }
    if (events.isEmpty()) {
      return Effect().noReply();
    }
    return Effect().persist(events).thenRun(st -> {
      if (in.event() != null) {
        Metrics.get(entity.context.getSystem()).relayed(in.event().outbound().size());
        entity.pump(st);
        long peerAcked = st.link().peerAcked(entity.window.acked(st));
        peerRef(st.link().peer()).tell(new RelayAck(entity.socketId, st.link().relayIn(), peerAcked, in.refused()));
        if (in.refused()) {
          entity.window.stall(); // reused: report room when the device acknowledges
        }
      }
      if (accepting) {
        relayOut.delivered(st.lastAccepted());
        if (st.edge() != null && st.status() == Status.OPEN) {
          st.edge().tell(new Delivered(st.lastAccepted(), relayOut.heldUpTo(st.lastAccepted()), false));
        }
      }
      sendRelay(st);
    }).thenNoReply();
  }

  /** The device acknowledged relayed frames: tell the peer, whose device gets its ACK. */
  void reportPeerAcks(SocketState s) {
    if (!LinkSide.isLinked(s)) {
      return;
    }
    long peerAcked = s.link().peerAcked(entity.window.liveAcked());
    boolean room = entity.window.hasRoom(s);
    if (relayIn == null) {
      relayIn = new RelayIn();
    }
    if (relayIn.reports(peerAcked, entity.window.isStalled(), room)) {
      peerRef(s.link().peer()).tell(new RelayAck(entity.socketId, s.link().relayIn(), peerAcked, !room));
    }
  }
}
