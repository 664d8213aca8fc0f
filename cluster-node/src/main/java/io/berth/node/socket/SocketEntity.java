package io.berth.node.socket;

import io.berth.node.balance.LoadRegistry;
import io.berth.node.balance.MigrationLog;
import io.berth.node.balance.SocketMeter;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.edge.api.ToEdge.ConfirmTakeover;
import io.berth.node.edge.api.ToEdge.DataRefused;
import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.Moving;
import io.berth.node.edge.api.ToEdge.OpenRejected;
import io.berth.node.edge.api.ToEdge.Push;
import io.berth.node.edge.api.ToEdge.Resume;
import io.berth.node.edge.api.ToEdge.SessionEnded;
import io.berth.node.edge.api.ToEdge.Sleeping;
import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.link.Link;
import io.berth.node.mapping.BuiltinEndpoint;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingActor;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.Detached;
import io.berth.node.socket.SocketEvent.Injected;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.OperatorCloseResult;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketCommand.Close;
import io.berth.node.socket.api.SocketCommand.CloseByOperator;
import io.berth.node.socket.api.SocketCommand.Deliver;
import io.berth.node.socket.api.SocketCommand.DownlinkAck;
import io.berth.node.socket.api.SocketCommand.EdgeTerminated;
import io.berth.node.socket.api.SocketCommand.GetStatus;
import io.berth.node.socket.api.SocketCommand.Heartbeat;
import io.berth.node.socket.api.SocketCommand.Inject;
import io.berth.node.socket.api.SocketCommand.LinkDown;
import io.berth.node.socket.api.SocketCommand.LinkOffer;
import io.berth.node.socket.api.SocketCommand.LinkUp;
import io.berth.node.socket.api.SocketCommand.Open;
import io.berth.node.socket.api.SocketCommand.Paired;
import io.berth.node.socket.api.SocketCommand.Relay;
import io.berth.node.socket.api.SocketCommand.RelayAck;
import io.berth.node.socket.api.SocketCommand.Resync;
import io.berth.node.socket.api.SocketCommand.Stop;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EffectBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;

/**
 * One device socket (entity type {@code socket}, id = socket id): the session that outlives TCP
 * connections. It keeps the uplink watermark (highest DATA seq that reached the endpoint), the
 * downlink outbox (frames the device has not acknowledged yet), the mapping the socket opened
 * with, the edge currently holding the device's connection, its link, and counters.
 *
 * <p>Delivery contract (PROTOCOL.md#delivery-contract): data reaches the endpoint, the new
 * watermark and the endpoint's answers are persisted as one event, and only then is the edge told
 * to ACK. Frames at or below the watermark are dropped as replays.
 *
 * <p>This class and its two parts are the shell: every side effect (a write, a message, a timer, a
 * child actor) and their order is in them; what to do is decided apart, one concern each, tested
 * on its own:
 * {@link Opening} (refusals and takeovers: docs/takeover.md), {@link Intake} (where data goes,
 * taking frames, a built-in endpoint's delivery), {@link DownlinkWindow} (what to push, the
 * outbox bound, retries), {@link EndpointDispatch} (an HTTP endpoint's calls, one at a time,
 * each batch recorded before it is sent: docs/ENDPOINTS.md#delivery), {@link LinkSide}
 * (docs/links.md), {@link RelayOut} and {@link RelayIn} (the two sides of the relay), {@link
 * Sleep} (docs/sleep.md); {@link Ending} says how a session ends, and {@link #close} ends it.
 *
 * <p>The parts run effects on the entity's behalf: {@link SessionEndpoint} those of the HTTP
 * endpoint and {@link SessionLinks} those of the link and the relay, so that each file reads as
 * one concern; a handler stays whole in one method of the entity or of a part, so the order of
 * its effects is visible in one place. The commands are dispatched here, in {@link #handle}.
 *
 * <p>What the machines hold is per incarnation and not persisted: downlink acknowledgements are
 * folded into the next event (or written when the entity stops), so a crash can only cause a
 * resend that the device drops; held frames are sent again by the device. A socket allocates
 * only the machines and parts it uses: no dispatch (or endpoint part) for a built-in mapping, no
 * relay (or links part) for an unlinked socket.
 */
public final class SocketEntity
    extends EventSourcedBehaviorWithEnforcedReplies<SocketCommand, SocketEvent, SocketState> {

  // ------------------------------------------------------------------ own messages

  /** The endpoint answered with a peer to link to. */
  record RequestLink(String peer) implements SocketCommand {}

  /** The link wait ends. */
  enum LinkDeadline implements SocketCommand { INSTANCE }

  /** Has the peer made progress? If not, send the relay again. */
  enum RelayCheck implements SocketCommand { INSTANCE }

  /** An offered link is still not up: ask the link entity again (see {@link SessionLinks#acceptOffer}). */
  enum AcceptAgain implements SocketCommand { INSTANCE }

  /** Writes what the relay gathered since the last write (see {@link SessionLinks#scheduleRelayWrite}). */
  enum WriteRelay implements SocketCommand { INSTANCE }

  /** Time to see whether an attached socket has been quiet for {@code sleep-after}. */
  private enum SleepCheck implements SocketCommand { INSTANCE }

  /** Pushed frames are still unacknowledged: push them again if nothing progressed. */
  private enum RetryDownlink implements SocketCommand { INSTANCE }

  /** Something may be ready for the HTTP endpoint: look. */
  enum Dispatch implements SocketCommand { INSTANCE }

  record EndpointAnswered(MappingActor.Result result) implements SocketCommand {}

  record CloseByEndpoint(String reason) implements SocketCommand {}

  // ------------------------------------------------------------------ wiring

  public static void init(ActorSystem<?> system, SocketSettings settings,
                          ShardCoordinator.ShardAllocationStrategy allocation) {
    ClusterSharding.get(system).init(
        Entity.of(Sockets.ENTITY_KEY, ctx -> create(ctx.getEntityId(), settings, ctx.getShard(), SocketIndex.get(system)))
            .withStopMessage(Stop.INSTANCE)
            .withAllocationStrategy(allocation));
  }

  /** An entity that never sleeps: there is no shard to ask for its passivation. */
  public static Behavior<SocketCommand> create(String socketId, SocketSettings settings) {
    return create(socketId, settings, null);
  }

  /** An entity of {@code shard}, which it asks to passivate it when it sleeps. */
  public static Behavior<SocketCommand> create(String socketId, SocketSettings settings,
                                         ActorRef<ClusterSharding.ShardCommand> shard) {
    return create(socketId, settings, shard, null);
  }

  /** As sharding runs it: its state changes recorded in {@code index} (null: not recorded). */
  static Behavior<SocketCommand> create(String socketId, SocketSettings settings,
                                  ActorRef<ClusterSharding.ShardCommand> shard, SocketIndex index) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
        new SocketEntity(ctx, timers, socketId, settings, shard, index)));
  }

  final ActorContext<SocketCommand> context;
  final TimerScheduler<SocketCommand> timers;
  final String socketId;
  private final String shardId;
  private final SocketMeter meter;
  final SocketSettings settings;
  private final String node;
  /** Null when the entity runs outside sharding: it then never sleeps. */
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  /** Where the socket's state changes are listed for operators; null outside sharding. */
  private final SocketIndex index;
  /** {@code System.nanoTime()} of the last command that was not a heartbeat, query or check. */
  private long lastActivityAt = System.nanoTime();
  /** When this entity asked its shard to passivate it, or 0. */
  private long sleepingSince;

  // The machines and parts (see the class comment). Null: not used now.
  final DownlinkWindow window;
  /** Tags of MQTT frames received and not yet accepted (docs/mqtt-qos1-resends.md). */
  private final ResendTags resendTags = new ResendTags();
  /** The HTTP endpoint's part, with its dispatch: only for a mapping that uses one. */
  SessionEndpoint endpointPart;
  /** The link's and relay's part: from the first time the socket deals with a link. */
  private SessionLinks linksPart;

  private SocketEntity(ActorContext<SocketCommand> context, TimerScheduler<SocketCommand> timers, String socketId,
      SocketSettings settings, ActorRef<ClusterSharding.ShardCommand> shard, SocketIndex index) {
    super(PersistenceId.of(Sockets.ENTITY_KEY.name(), socketId),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2));
    this.context = context;
    this.timers = timers;
    this.socketId = socketId;
    this.settings = settings;
    this.node = Cluster.get(context.getSystem()).selfMember().address().toString();
    this.shardId = Sockets.shardOf(context.getSystem(), socketId);
    this.meter = LoadRegistry.get(context.getSystem()).register(socketId, shardId);
    this.shard = shard;
    this.index = index;
    this.window = new DownlinkWindow(settings);
  }

  @Override
  public SocketState emptyState() {
    return SocketState.EMPTY;
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    // Older events (echo payloads included) are deleted once a snapshot covers them.
    return RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2).withDeleteEventsOnSnapshot();
  }

  @Override
  public SignalHandler<SocketState> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(PostStop.instance(), state -> LoadRegistry.get(context.getSystem()).unregister(socketId, meter))
        .onSignal(RecoveryCompleted.instance(), this::recovered)
        .build();
  }

  private void recovered(SocketState state) {
    if (state.status() != Status.NEW) {
      // A change written just before the last incarnation ended may not have been listed.
      list(state);
    }
    window.restart(state.downlinkAcked());
    if (state.status() == Status.OPEN && state.edge() != null) {
      // If the edge died while this entity was not running, the watch fires at once.
      context.watchWith(state.edge(), EdgeTerminated.watched(state.edge()));
      // Frames persisted before a crash may never have reached the edge.
      pump(state);
      armSleepCheck(settings.sleepAfter());
    }
    prepareEndpoint(state);
    if (state.status() == Status.OPEN && state.openPending() != 0) {
      // The endpoint's answer to open was lost with the last incarnation: ask again, same id.
      endpointPart.dispatch.openDue();
      endpointPart.dispatch();
    }
    if (state.link() != null && state.link().status() == Link.Status.WAITING) {
      links().armLinkDeadline(state.link());
    }
    if (LinkSide.acceptsOffer(state)) {
      links().acceptOffer(state.link().linkId());
    }
  }

  // ------------------------------------------------------------------ command handlers

  /**
   * One handler that dispatches by type. The builder's form (a case object, a predicate, a
   * handler lambda and a list node per command, built for every entity) held 3 to 5 KB of every
   * idle socket's memory; this tests the same types in the same order, with nothing built per
   * entity but the one method reference.
   */
  @Override
  public CommandHandlerWithReply<SocketCommand, SocketEvent, SocketState> commandHandler() {
    return this::handle;
  }

  private ReplyEffect<SocketEvent, SocketState> handle(SocketState state, SocketCommand command) {
    if (!(command instanceof Heartbeat || command instanceof SleepCheck || command instanceof GetStatus
        || command instanceof Stop)) {
      lastActivityAt = System.nanoTime();
    }
    ReplyEffect<SocketEvent, SocketState> effect = state.status() == Status.OPEN
        ? handleOpen(state, command) : handleNotOpen(state, command);
    return effect != null ? effect : handleAny(state, command);
  }

  /** A device connection is attached: data flows. Null for a command handled in any status. */
  private ReplyEffect<SocketEvent, SocketState> handleOpen(SocketState state, SocketCommand command) {
    if (command instanceof Deliver c) {
      return onDeliver(state, c);
    } else if (command instanceof DownlinkAck c) {
      return onDownlinkAck(state, c);
    } else if (command instanceof Close c) {
      return onClose(state, c);
    } else if (command instanceof Resync c) {
      return onResync(state, c);
    } else if (command instanceof Heartbeat c) {
      return state.isAttached(c.edge()) ? Effect().noReply() : tellNotAttached(state, c.edge());
    } else if (command instanceof RetryDownlink) {
      return onRetryDownlink(state);
    } else if (command instanceof EdgeTerminated c) {
      if (!state.isAttached(c.edge())) {
        answerEnd(c);
        return Effect().noReply();
      }
      return persistChange(new Detached(Instant.now())).thenRun(s -> answerEnd(c)).thenNoReply();
    } else if (command instanceof SleepCheck) {
      return onSleepCheck(state);
    }
    return null;
  }

  /**
   * New, detached or closed: only an Open brings the socket back; stale edges are told so. Null
   * for a command handled in any status.
   */
  private ReplyEffect<SocketEvent, SocketState> handleNotOpen(SocketState state, SocketCommand command) {
    if (command instanceof Deliver c) {
      return tellNotAttached(state, c.edge());
    } else if (command instanceof Close c) {
      return tellNotAttached(state, c.edge());
    } else if (command instanceof Heartbeat c) {
      return tellNotAttached(state, c.edge());
    } else if (command instanceof EdgeTerminated c) {
      answerEnd(c);
      return Effect().noReply();
    } else if (command instanceof DownlinkAck || command instanceof Resync || command instanceof RetryDownlink
        || command instanceof SleepCheck) {
      return Effect().noReply();
    }
    return null;
  }

  /** The connection's actor waits for this before it stops (see {@link EdgeTerminated}). */
  private static void answerEnd(EdgeTerminated c) {
    if (c.answer()) {
      c.edge().tell(ToEdge.Detached.INSTANCE);
    }
  }

  private ReplyEffect<SocketEvent, SocketState> handleAny(SocketState state, SocketCommand command) {
    if (command instanceof Open c) {
      return onOpen(state, c);
    } else if (command instanceof GetStatus c) {
      return Effect().reply(c.replyTo(), status(state));
    } else if (command instanceof Inject c) {
      return onInject(state, c);
    } else if (command instanceof CloseByOperator c) {
      return onCloseByOperator(state, c);
    } else if (command instanceof Dispatch) {
      return endpointPart == null ? Effect().noReply() : endpointPart.onDispatch(state);
    } else if (command instanceof EndpointAnswered c) {
      return endpointPart == null ? Effect().noReply() : endpointPart.onEndpointAnswered(state, c.result());
    } else if (command instanceof CloseByEndpoint c) {
      return onCloseByEndpoint(state, c);
    } else if (command instanceof RequestLink c) {
      return links().requestLink(state, c.peer());
    } else if (command instanceof Paired c) {
      return LinkSide.takesPartner(state) && !c.partner().isEmpty() ? links().requestLink(state, c.partner())
          : Effect().noReply();
    } else if (command instanceof LinkOffer c) {
      return links().onLinkOffer(state, c);
    } else if (command instanceof LinkUp c) {
      return links().onLinkUp(state, c);
    } else if (command instanceof LinkDown c) {
      return links().onLinkDown(state, c);
    } else if (command instanceof LinkDeadline) {
      return links().onLinkDeadline(state);
    } else if (command instanceof Relay c) {
      return links().onRelay(state, c);
    } else if (command instanceof RelayAck c) {
      return links().onRelayAck(state, c);
    } else if (command instanceof RelayCheck) {
      return links().onRelayCheck(state);
    } else if (command instanceof AcceptAgain) {
      if (LinkSide.acceptsOffer(state)) {
        links().acceptOffer(state.link().linkId());
      }
      return Effect().noReply();
    } else if (command instanceof WriteRelay) {
      return links().onWriteRelay(state);
    } else if (command instanceof Stop) {
      return onStop(state);
    }
    throw new IllegalArgumentException("unexpected command " + command.getClass().getName());
  }

  // ------------------------------------------------------------------ connections

  private ReplyEffect<SocketEvent, SocketState> onOpen(SocketState state, Open cmd) {
    if (endpointPart != null && endpointPart.dispatch.isClosing()
        && (state.status() == Status.OPEN || state.status() == Status.DETACHED)) {
      // The session is ending through its endpoint (a device's CLOSE, an operator's close), with
      // or without its connection: a new connection opens the next session once the close is
      // written, not this one, which the close would end. Unanswered, the edge holds the HELLO
      // and sends the open again (entity-timeout) until open-timeout (docs/edge.md).
      return Effect().noReply();
    }
    Opening.Decision decision = Opening.decide(socketId, state, cmd, window.liveAcked(), System.currentTimeMillis(),
        Instant.now());
    if (decision instanceof Opening.Rejected r) {
      cmd.edge().tell(new OpenRejected(r.errorCode(), r.reason()));
      return Effect().noReply();
    } else if (decision instanceof Opening.Confirm c) {
      cmd.edge().tell(new ConfirmTakeover(c.attached()));
      return Effect().noReply();
    } else if (decision instanceof Opening.AlreadyOpen) {
      cmd.edge().tell(welcomed(state, true));
      return Effect().noReply();
    }
    Opening.Opens opens = (Opening.Opens) decision;
    // The session was there for this device to resume (MQTT's Session Present).
    boolean existed = state.status() == Status.OPEN || state.status() == Status.DETACHED;
    return persistChange(opens.events()).thenRun(s -> {
      if (opens.replaced() != null) {
        context.unwatch(opens.replaced());
        opens.replaced().tell(new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection"));
      }
      context.watchWith(cmd.edge(), EdgeTerminated.watched(cmd.edge()));
      window.restart(s.downlinkAcked());
      cmd.edge().tell(welcomed(s, existed));
      armSleepCheck(settings.sleepAfter());
      pump(s);
      prepareEndpoint(s);
      if (linksPart != null) {
        linksPart.clearRelay();
      }
      if (s.link() != null) {
        links().resumeLink(s);
      }
      // A resuming device may have acknowledged relayed frames only by its HELLO: tell the peer.
      if (LinkSide.isLinked(s)) {
        links().reportPeerAcks(s);
      }
      if (opens.pairs()) {
        links().joinPairing(s);
      }
      if (s.openPending() != 0) {
        endpointPart.dispatch.openDue();
        endpointPart.dispatch();
      }
    }).thenNoReply();
  }

  /**
   * The answer to an open: where the session is, whether it {@code existed} before, and for the
   * MQTT port, the frames accepted on the connection before this one that a client may send again.
   */
  private Welcomed welcomed(SocketState s, boolean existed) {
    return new Welcomed(socketId, node, s.lastAccepted(), s.downlinkAcked(), existed,
        ResendTags.resendableAt(s.acceptedTags(), s.counters().connections()));
  }

  /** An edge that is not (or no longer) the socket's connection learns that its session ended. */
  private ReplyEffect<SocketEvent, SocketState> tellNotAttached(SocketState state, ActorRef<ToEdge> edge) {
    edge.tell(state.status() == Status.OPEN
        ? new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection")
        : new SessionEnded(CloseCode.NORMAL.wire, "socket is not open"));
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onStop(SocketState state) {
    List<SocketEvent> events = Sleep.whenStopping(state, window.liveAcked(), sleepingSince != 0, node, Instant.now());
    ActorRef<ToEdge> edge = Sleep.tellsMoving(state, lastActivityAt, sleepingSince) ? state.edge() : null;
    if (events.isEmpty()) {
      if (edge != null) {
        edge.tell(Moving.INSTANCE);
      }
      return Effect().stop().thenNoReply();
    }
    return Effect().persist(events).thenRun(s -> {
      if (edge != null) {
        edge.tell(Moving.INSTANCE);
      }
    }).thenStop().thenNoReply();
  }

  // ------------------------------------------------------------------ closing

  private ReplyEffect<SocketEvent, SocketState> onClose(SocketState state, Close cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    if (state.usesHttp()) {
      // The endpoint sees the rest of the data and the close event before the session ends.
      endpointPart.dispatch.close(Ending.byDevice(CloseCode.NORMAL.wire, cmd.reason()));
      endpointPart.dispatch();
      return Effect().noReply();
    }
    return close(state, Ending.byDevice(cmd.code(), cmd.reason()));
  }

  private ReplyEffect<SocketEvent, SocketState> onCloseByOperator(SocketState state, CloseByOperator cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
    }
    Ending ending = Ending.byOperator(cmd.reason(), cmd.replyTo());
    if (state.usesHttp() && !endpointPart.dispatch.isClosing()) {
      // Through the endpoint, as a device's close: the peer hears that its peer closed.
      endpointPart.dispatch.close(ending.toPeer("peer closed its session"));
      endpointPart.dispatch();
      return Effect().noReply();
    }
    return close(state, ending);
  }

  private ReplyEffect<SocketEvent, SocketState> onCloseByEndpoint(SocketState state, CloseByEndpoint cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().noReply();
    }
    if (endpointPart != null) {
      endpointPart.dispatch.closedByEndpoint();
    }
    return close(state, Ending.byEndpoint(cmd.reason()));
  }

  /**
   * Ends the session, whoever closes it: the close is written, then the edge is told (and no
   * longer watched), the link is left, and the operator who asked is answered.
   */
  ReplyEffect<SocketEvent, SocketState> close(SocketState state, Ending ending) {
    ActorRef<ToEdge> edge = state.edge();
    Link link = state.link();
    // An operator's close while one was under way through the endpoint ends that one too: its
    // operator, if one asked, is answered as well, and nothing of it is left to hold the next open.
    Ending overtaken = endpointPart == null ? null : endpointPart.dispatch.sessionClosed();
    EffectBuilder<SocketEvent, SocketState> closed = persistChange(
        new Closed(ending.code(), ending.reason(), window.outboxFrames(state), Instant.now())).thenRun(s -> {
          if (edge != null) {
            context.unwatch(edge);
            edge.tell(ending.toEdge());
          }
          if (link != null || linksPart != null) {
            links().leaveLink(link, ending.toPeer());
          }
          if (overtaken != null && overtaken.operator() != null && overtaken.operator() != ending.operator()) {
            overtaken.operator().tell(new OperatorCloseResult.Closed());
          }
        });
    return ending.operator() == null ? closed.thenNoReply()
        : closed.thenReply(ending.operator(), s -> new OperatorCloseResult.Closed());
  }

  // ------------------------------------------------------------------ sleeping

  private void armSleepCheck(Duration after) {
    if (shard != null && settings.sleeps()) {
      timers.startSingleTimer(SleepCheck.INSTANCE, after);
    }
  }

  /**
   * An attached socket quiet for {@code sleep-after}, with nothing in flight, asks its shard to
   * stop it (docs/sleep.md). Its state, the edge's ref included, is in the journal: the next
   * message for it (a frame, an injected message, a peer, an operator) starts it again, and
   * recovery re-watches the edge.
   */
  private ReplyEffect<SocketEvent, SocketState> onSleepCheck(SocketState state) {
    // Still running a sleep-after after asking to sleep: the request was lost (its shard was
    // handing off, say). Start over; a stop that comes now is taken for a handoff's.
    sleepingSince = 0;
    Sleep.Check check = Sleep.check(System.nanoTime(), lastActivityAt, settings.sleepAfter().toNanos(),
        Sleep.restful(state, window, endpointPart == null ? null : endpointPart.dispatch,
            linksPart == null ? null : linksPart.relayOut, linksPart == null ? null : linksPart.relayIn,
            linksPart != null && linksPart.relayWriteScheduled));
    if (check.sleeps()) {
      sleepingSince = System.nanoTime();
      state.edge().tell(Sleeping.INSTANCE);
      shard.tell(new ClusterSharding.Passivate<>(context.getSelf()));
    }
    armSleepCheck(Duration.ofNanos(check.nextInNanos()));
    return Effect().noReply();
  }

  // ------------------------------------------------------------------ uplink

  private ReplyEffect<SocketEvent, SocketState> onDeliver(SocketState state, Deliver cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    resendTags.received(cmd, state.lastAccepted(), state.counters().connections());
    Intake.Route route = Intake.route(state);
    return switch (route.to()) {
      case HOLD -> links().bufferForRelay(state, cmd);
      case ENDPOINT -> prepareEndpoint(state).bufferForEndpoint(state, cmd);
      case BUILTIN -> toBuiltin(state, cmd, route.builtin());
      case REFUSED -> refuseData(state, cmd, route.refusal());
    };
  }

  /** A built-in endpoint takes the frames, answers go in the outbox, all in one event. */
  private ReplyEffect<SocketEvent, SocketState> toBuiltin(SocketState state, Deliver cmd, BuiltinEndpoint endpoint) {
    Intake.Delivery d = Intake.toBuiltin(state, window, cmd.frames(), frame -> endpoint.onData(socketId, frame));
    if (d.frames() == 0) {
      if (d.stalled()) {
        window.stall();
      }
      cmd.edge().tell(new Delivered(d.watermark(), d.watermark(), d.stalled(), d.gap()));
      // All replays, typically resent after this entity restarted: its answers may still be due.
      pump(state);
      return Effect().noReply();
    }
    Accepted event = tagged(state, new Accepted(d.watermark(), 0, d.frames(), d.bytes(), d.duplicates(), d.outbound(),
        window.acked(state), null, null, Instant.now()));
    meter.record(d.frames(), d.bytes());
    boolean resumedAfterMove = resumedAfterMove(state);
    return Effect().persist(event).thenRun(s -> {
      if (resumedAfterMove) {
        reportMoveCompleted(state, event.at());
      }
      if (d.stalled()) {
        window.stall();
      }
      cmd.edge().tell(new Delivered(s.lastAccepted(), s.lastAccepted(), d.stalled()));
      pump(s);
    }).thenNoReply();
  }

  /**
   * Data that nothing takes is refused, never acknowledged into nothing
   * (docs/delivery.md#where-data-goes): the edge answers ERROR 204 and closes, and the device
   * keeps its unacknowledged frames. Replays of frames taken before are confirmed as usual.
   */
  private ReplyEffect<SocketEvent, SocketState> refuseData(SocketState state, Deliver cmd, String why) {
    if (Intake.anyNew(cmd.frames(), state.lastAccepted())) {
      cmd.edge().tell(new DataRefused(ErrorCode.NO_DESTINATION.wire,
          "nothing takes the data of socket " + socketId + ": " + why + " and the socket is not linked"));
    } else {
      cmd.edge().tell(new Delivered(state.lastAccepted(), state.lastAccepted(), false));
    }
    return Effect().noReply();
  }

  /**
   * Takes the delivered frames that follow {@code held} without a gap into {@code holder}, and
   * tells the edge how far the entity now holds them (not yet acknowledged): the edge's pipeline
   * moves on, and a gap (frames lost while this entity restarted) makes it send again.
   */
  void hold(SocketState state, Deliver cmd, long held, Consumer<Frame.Data> holder) {
    Intake.Held h = Intake.hold(cmd.frames(), held, holder);
    meter.record(h.frames(), h.bytes());
    cmd.edge().tell(new Delivered(state.lastAccepted(), h.upTo(), false, h.gap()));
  }

  /**
   * {@code event}, with the tags of the MQTT frames it accepts beyond {@code before}'s watermark
   * (docs/mqtt-qos1-resends.md). Every {@code Accepted} this entity writes goes through here.
   */
  Accepted tagged(SocketState before, Accepted event) {
    long[] tags = resendTags.accepted(before.lastAccepted(), event.lastAccepted());
    return tags == null ? event : event.withTags(tags);
  }

  /** Whether this delivery is the first on this node after the socket moved here. */
  boolean resumedAfterMove(SocketState before) {
    return before.suspendedOn() != null && !before.suspendedOn().equals(node);
  }

  /** First delivery on this node after the socket moved here: complete the migration record. */
  void reportMoveCompleted(SocketState before, Instant at) {
    long pauseMs = Math.max(0, at.toEpochMilli() - before.lastDeliveryAt().toEpochMilli());
    context.getLog().info("Socket {} delivers again on {} after moving from {}: delivery paused {} ms", socketId,
        node, before.suspendedOn(), pauseMs);
    MigrationLog.get(context.getSystem()).completed(socketId, shardId, node, pauseMs, at);
  }

  // ------------------------------------------------------------------ downlink

  /** Sends outbox frames the edge has not been sent yet, within the downlink window. */
  void pump(SocketState state) {
    if (state.status() != Status.OPEN || state.edge() == null) {
      return;
    }
    for (List<Frame.Data> frames : window.nextPushes(state)) {
      state.edge().tell(new Push(frames));
    }
    if (window.awaitsAck(state) && !timers.isTimerActive(RetryDownlink.INSTANCE)) {
      window.retryArmed(state);
      timers.startSingleTimer(RetryDownlink.INSTANCE, settings.downlinkRetry());
    }
  }

  private ReplyEffect<SocketEvent, SocketState> onDownlinkAck(SocketState state, DownlinkAck cmd) {
    if (state.isAttached(cmd.edge()) && window.deviceAcked(state, cmd.upTo())) {
      pump(state);
      if (LinkSide.isLinked(state)) {
        links().reportPeerAcks(state);
      }
      if (window.resumes(state)) {
        state.edge().tell(Resume.INSTANCE);
      }
    }
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onResync(SocketState state, Resync cmd) {
    if (state.isAttached(cmd.edge())) {
      window.resync(state, cmd.from());
      pump(state);
    }
    return Effect().noReply();
  }

  /**
   * A Push can be lost on its way (node trouble): when pushed frames stay unacknowledged for a
   * retry interval, push them again from the acknowledged point; the edge drops what it has.
   */
  private ReplyEffect<SocketEvent, SocketState> onRetryDownlink(SocketState state) {
    DownlinkWindow.Retry retry = window.retry(state);
    if (retry == DownlinkWindow.Retry.PUSH_AGAIN) {
      pump(state);
    }
    if (retry != DownlinkWindow.Retry.IDLE) {
      timers.startSingleTimer(RetryDownlink.INSTANCE, settings.downlinkRetry());
    }
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onInject(SocketState state, Inject cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN));
    }
    List<Frame.Data> frames = DownlinkWindow.frames(state.lastDownlinkSeq(), cmd.payload());
    if (window.overflows(window.outboxFrames(state) + frames.size(),
        window.outboxBytes(state) + cmd.payload().length)) {
      return Effect().reply(cmd.replyTo(), new InjectResult.Refused(InjectResult.Refusal.OUTBOX_FULL));
    }
    return Effect().persist(new Injected(frames, Instant.now())).thenRun(this::pump)
        .thenReply(cmd.replyTo(), s -> new InjectResult.Injected(s.lastDownlinkSeq()));
  }


  // ------------------------------------------------------------------ the parts

  /**
   * Makes sure the HTTP endpoint's part matches the socket's mapping
   * ({@link SessionEndpoint#prepareEndpoint}): made for a mapping that uses HTTP, let go with its
   * dispatch. Null when the socket has no HTTP endpoint.
   */
  SessionEndpoint prepareEndpoint(SocketState s) {
    if (endpointPart == null && s.usesHttp()) {
      endpointPart = new SessionEndpoint(this);
    }
    if (endpointPart != null) {
      endpointPart.prepareEndpoint(s);
      if (endpointPart.dispatch == null) {
        endpointPart = null;
      }
    }
    return endpointPart;
  }

  /** The link's and relay's part, made the first time the socket deals with a link. */
  SessionLinks links() {
    if (linksPart == null) {
      linksPart = new SessionLinks(this);
    }
    return linksPart;
  }

  /** Lets the links part go when it holds nothing a new one would not (as its machines go). */
  void dropLinksIfIdle() {
    if (linksPart != null && linksPart.isIdle()) {
      linksPart = null;
    }
  }

  // ------------------------------------------------------------------ status, index, events

  private SocketStatus status(SocketState s) {
    return new SocketStatus(socketId, s.deviceId(), s.status().name().toLowerCase(),
        s.mapping() == null ? "" : s.mapping().name(), s.mapping() == null ? 0 : s.mapping().version(), node,
        s.edgeNode(), s.deviceAddress(), s.lastAccepted(), s.lastDownlinkSeq(), window.acked(s),
        window.outboxFrames(s), s.inFlight() == null ? null : s.inFlight().batchId(), s.counters(),
        s.link() == null ? 0 : s.link().framesIn(), s.openedAt(), s.updatedAt(), limits(s));
  }

  /**
   * The limits the attached connection runs with: its edge resolved them into the mapping it
   * opened with (docs/limits.md); a mapping without them was opened with none.
   */
  private static Mapping.Limits limits(SocketState s) {
    if (s.status() != Status.OPEN || s.mapping() == null) {
      return null;
    }
    return s.mapping().limits() == null ? Mapping.Limits.NONE : s.mapping().limits();
  }

  /**
   * Persists events that open, detach or close the socket: the change is listed in the socket
   * index once it is in the journal. (The event handler runs before the write and again on
   * replay: a row written there could show an event that never happened.)
   */
  private EffectBuilder<SocketEvent, SocketState> persistChange(SocketEvent event) {
    return Effect().persist(event).thenRun(this::list);
  }

  private EffectBuilder<SocketEvent, SocketState> persistChange(List<SocketEvent> events) {
    return Effect().persist(events).thenRun(this::list);
  }

  /** The socket's state as the index lists it, ordered by the sequence number of its last event. */
  private void list(SocketState s) {
    if (index != null) {
      index.changed(new SocketIndex.Row(socketId, shardId, s.deviceId(), s.status().name().toLowerCase(),
          s.mapping() == null ? null : s.mapping().name(),
          s.edgeNode() == null || s.edgeNode().isEmpty() ? null : s.edgeNode(), s.openedAt(), Instant.now(),
          lastSequenceNumber(context)));
    }
  }

  /** Applying an event needs nothing but the state and the event ({@link SocketState#apply}). */
  @Override
  public EventHandler<SocketState, SocketEvent> eventHandler() {
    return SocketEntity::apply;
  }

  static SocketState apply(SocketState state, SocketEvent event) {
    return state.apply(event);
  }
}
