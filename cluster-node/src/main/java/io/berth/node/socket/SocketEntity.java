package io.berth.node.socket;

import io.berth.node.balance.LoadRegistry;
import io.berth.node.balance.MigrationLog;
import io.berth.node.balance.SocketMeter;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.edge.api.ToEdge.ConfirmTakeover;
import io.berth.node.edge.api.ToEdge.DataRefused;
import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.LinkChanged;
import io.berth.node.edge.api.ToEdge.Moving;
import io.berth.node.edge.api.ToEdge.OpenRejected;
import io.berth.node.edge.api.ToEdge.Push;
import io.berth.node.edge.api.ToEdge.Resume;
import io.berth.node.edge.api.ToEdge.SessionEnded;
import io.berth.node.edge.api.ToEdge.Sleeping;
import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.link.Link;
import io.berth.node.link.PairingEntity;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.mapping.Batcher;
import io.berth.node.mapping.BuiltinEndpoint;
import io.berth.node.mapping.EndpointCall;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingActor;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Answered;
import io.berth.node.socket.SocketEvent.BatchStarted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.Detached;
import io.berth.node.socket.SocketEvent.Injected;
import io.berth.node.socket.SocketEvent.LinkEnded;
import io.berth.node.socket.SocketEvent.LinkEstablished;
import io.berth.node.socket.SocketEvent.LinkOffered;
import io.berth.node.socket.SocketEvent.LinkRequested;
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
import io.berth.protocol.LinkStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
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
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
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
 * <p>This class is the shell: every side effect (a write, a message, a timer, a child actor) and
 * their order is here; what to do is decided apart, one concern each, tested on its own:
 * {@link Opening} (refusals and takeovers: docs/takeover.md), {@link Uplink} (where data goes,
 * taking frames, a built-in endpoint's delivery), {@link DownlinkWindow} (what to push, the
 * outbox bound, retries), {@link EndpointDispatch} (an HTTP endpoint's calls, one at a time,
 * each batch recorded before it is sent: docs/ENDPOINTS.md#delivery), {@link LinkSide}
 * (docs/links.md), {@link RelayOut} and {@link RelayIn} (the two sides of the relay), {@link
 * Sleep} (docs/sleep.md); {@link Ending} says how a session ends, and {@link #close} ends it.
 *
 * <p>What the machines hold is per incarnation and not persisted: downlink acknowledgements are
 * folded into the next event (or written when the entity stops), so a crash can only cause a
 * resend that the device drops; held frames are sent again by the device. A socket allocates
 * only the machines it uses: no dispatch for a built-in mapping, no relay for an unlinked socket.
 */
public final class SocketEntity
    extends EventSourcedBehaviorWithEnforcedReplies<SocketCommand, SocketEvent, SocketState> {

  // ------------------------------------------------------------------ own messages

  /** The endpoint answered with a peer to link to. */
  private record RequestLink(String peer) implements SocketCommand {}

  /** The link wait ends. */
  private enum LinkDeadline implements SocketCommand { INSTANCE }

  /** Has the peer made progress? If not, send the relay again. */
  private enum RelayCheck implements SocketCommand { INSTANCE }

  /** An offered link is still not up: ask the link entity again (see {@link #acceptOffer}). */
  private enum AcceptAgain implements SocketCommand { INSTANCE }

  /** Writes what the relay gathered since the last write (see {@link #scheduleRelayWrite}). */
  private enum WriteRelay implements SocketCommand { INSTANCE }

  /** Time to see whether an attached socket has been quiet for {@code sleep-after}. */
  private enum SleepCheck implements SocketCommand { INSTANCE }

  /** Pushed frames are still unacknowledged: push them again if nothing progressed. */
  private enum RetryDownlink implements SocketCommand { INSTANCE }

  /** Something may be ready for the HTTP endpoint: look. */
  private enum Dispatch implements SocketCommand { INSTANCE }

  private record EndpointAnswered(MappingActor.Result result) implements SocketCommand {}

  private record CloseByEndpoint(String reason) implements SocketCommand {}

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

  private final ActorContext<SocketCommand> context;
  private final TimerScheduler<SocketCommand> timers;
  private final String socketId;
  private final String shardId;
  private final SocketMeter meter;
  private final SocketSettings settings;
  private final String node;
  /** Null when the entity runs outside sharding: it then never sleeps. */
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  /** Where the socket's state changes are listed for operators; null outside sharding. */
  private final SocketIndex index;
  /** {@code System.nanoTime()} of the last command that was not a heartbeat, query or check. */
  private long lastActivityAt = System.nanoTime();
  /** When this entity asked its shard to passivate it, or 0. */
  private long sleepingSince;

  // The machines (see the class comment). Null: not used now.
  private final DownlinkWindow window;
  /** What an HTTP mapping's endpoint gets next; with its actor and the adapter of its answers. */
  private EndpointDispatch dispatch;
  private ActorRef<MappingActor.Command> endpoint;
  private ActorRef<MappingActor.Result> endpointReplies;
  private RelayOut relayOut;
  private RelayIn relayIn;
  /** A {@code WriteRelay} is on its way: what the relay gathered goes in its write. */
  private boolean relayWriteScheduled;

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
      context.watchWith(state.edge(), new EdgeTerminated(state.edge()));
      // Frames persisted before a crash may never have reached the edge.
      pump(state);
      armSleepCheck(settings.sleepAfter());
    }
    prepareEndpoint(state);
    if (state.status() == Status.OPEN && state.openPending() != 0) {
      // The endpoint's answer to open was lost with the last incarnation: ask again, same id.
      dispatch.openDue();
      dispatch();
    }
    if (state.link() != null && state.link().status() == Link.Status.WAITING) {
      armLinkDeadline(state.link());
    }
    if (LinkSide.acceptsOffer(state)) {
      acceptOffer(state.link().linkId());
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
      return state.isAttached(c.edge()) ? persistChange(new Detached(Instant.now())).thenNoReply()
          : Effect().noReply();
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
    } else if (command instanceof DownlinkAck || command instanceof Resync || command instanceof RetryDownlink
        || command instanceof EdgeTerminated || command instanceof SleepCheck) {
      return Effect().noReply();
    }
    return null;
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
      return onDispatch(state);
    } else if (command instanceof EndpointAnswered c) {
      return onEndpointAnswered(state, c.result());
    } else if (command instanceof CloseByEndpoint c) {
      return onCloseByEndpoint(state, c);
    } else if (command instanceof RequestLink c) {
      return requestLink(state, c.peer());
    } else if (command instanceof Paired c) {
      return LinkSide.takesPartner(state) && !c.partner().isEmpty() ? requestLink(state, c.partner())
          : Effect().noReply();
    } else if (command instanceof LinkOffer c) {
      return onLinkOffer(state, c);
    } else if (command instanceof LinkUp c) {
      return onLinkUp(state, c);
    } else if (command instanceof LinkDown c) {
      return onLinkDown(state, c);
    } else if (command instanceof LinkDeadline) {
      return onLinkDeadline(state);
    } else if (command instanceof Relay c) {
      return onRelay(state, c);
    } else if (command instanceof RelayAck c) {
      return onRelayAck(state, c);
    } else if (command instanceof RelayCheck) {
      return onRelayCheck(state);
    } else if (command instanceof AcceptAgain) {
      if (LinkSide.acceptsOffer(state)) {
        acceptOffer(state.link().linkId());
      }
      return Effect().noReply();
    } else if (command instanceof WriteRelay) {
      return onWriteRelay(state);
    } else if (command instanceof Stop) {
      return onStop(state);
    }
    throw new IllegalArgumentException("unexpected command " + command.getClass().getName());
  }

  // ------------------------------------------------------------------ connections

  private ReplyEffect<SocketEvent, SocketState> onOpen(SocketState state, Open cmd) {
    Opening.Decision decision = Opening.decide(socketId, state, cmd, window.liveAcked(), System.currentTimeMillis(),
        Instant.now());
    if (decision instanceof Opening.Rejected r) {
      cmd.edge().tell(new OpenRejected(r.errorCode(), r.reason()));
      return Effect().noReply();
    } else if (decision instanceof Opening.Confirm c) {
      cmd.edge().tell(new ConfirmTakeover(c.attached()));
      return Effect().noReply();
    }
    Opening.Opens opens = (Opening.Opens) decision;
    return persistChange(opens.events()).thenRun(s -> {
      if (opens.replaced() != null) {
        context.unwatch(opens.replaced());
        opens.replaced().tell(new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection"));
      }
      context.watchWith(cmd.edge(), new EdgeTerminated(cmd.edge()));
      window.restart(s.downlinkAcked());
      cmd.edge().tell(new Welcomed(socketId, node, s.lastAccepted(), s.downlinkAcked()));
      armSleepCheck(settings.sleepAfter());
      pump(s);
      prepareEndpoint(s);
      clearRelay();
      resumeLink(s);
      // A resuming device may have acknowledged relayed frames only by its HELLO: tell the peer.
      reportPeerAcks(s);
      if (opens.pairs()) {
        joinPairing(s);
      }
      if (s.openPending() != 0) {
        dispatch.openDue();
        dispatch();
      }
    }).thenNoReply();
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
      dispatch.close(Ending.byDevice(CloseCode.NORMAL.wire, cmd.reason()));
      dispatch();
      return Effect().noReply();
    }
    return close(state, Ending.byDevice(cmd.code(), cmd.reason()));
  }

  private ReplyEffect<SocketEvent, SocketState> onCloseByOperator(SocketState state, CloseByOperator cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
    }
    Ending ending = Ending.byOperator(cmd.reason(), cmd.replyTo());
    if (state.usesHttp() && !dispatch.isClosing()) {
      // Through the endpoint, as a device's close: the peer hears that its peer closed.
      dispatch.close(ending.toPeer("peer closed its session"));
      dispatch();
      return Effect().noReply();
    }
    return close(state, ending);
  }

  private ReplyEffect<SocketEvent, SocketState> onCloseByEndpoint(SocketState state, CloseByEndpoint cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().noReply();
    }
    if (dispatch != null) {
      dispatch.closedByEndpoint();
    }
    return close(state, Ending.byEndpoint(cmd.reason()));
  }

  /**
   * Ends the session, whoever closes it: the close is written, then the edge is told (and no
   * longer watched), the link is left, and the operator who asked is answered.
   */
  private ReplyEffect<SocketEvent, SocketState> close(SocketState state, Ending ending) {
    ActorRef<ToEdge> edge = state.edge();
    Link link = state.link();
    EffectBuilder<SocketEvent, SocketState> closed = persistChange(
        new Closed(ending.code(), ending.reason(), window.outboxFrames(state), Instant.now())).thenRun(s -> {
          if (edge != null) {
            context.unwatch(edge);
            edge.tell(ending.toEdge());
          }
          leaveLink(link, ending.toPeer());
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
        Sleep.restful(state, window, dispatch, relayOut, relayIn, relayWriteScheduled));
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
    Uplink.Route route = Uplink.route(state);
    return switch (route.to()) {
      case HOLD -> bufferForRelay(state, cmd);
      case ENDPOINT -> bufferForEndpoint(state, cmd);
      case BUILTIN -> toBuiltin(state, cmd, route.builtin());
      case REFUSED -> refuseData(state, cmd, route.refusal());
    };
  }

  /** A built-in endpoint takes the frames, answers go in the outbox, all in one event. */
  private ReplyEffect<SocketEvent, SocketState> toBuiltin(SocketState state, Deliver cmd, BuiltinEndpoint endpoint) {
    Uplink.Delivery d = Uplink.toBuiltin(state, window, cmd.frames(), frame -> endpoint.onData(socketId, frame));
    if (d.frames() == 0) {
      if (d.stalled()) {
        window.stall();
      }
      cmd.edge().tell(new Delivered(d.watermark(), d.watermark(), d.stalled(), d.gap()));
      // All replays, typically resent after this entity restarted: its answers may still be due.
      pump(state);
      return Effect().noReply();
    }
    Accepted event = new Accepted(d.watermark(), 0, d.frames(), d.bytes(), d.duplicates(), d.outbound(),
        window.acked(state), null, null, Instant.now());
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
    if (Uplink.anyNew(cmd.frames(), state.lastAccepted())) {
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
  private void hold(SocketState state, Deliver cmd, long held, Consumer<Frame.Data> holder) {
    Uplink.Held h = Uplink.hold(cmd.frames(), held, holder);
    meter.record(h.frames(), h.bytes());
    cmd.edge().tell(new Delivered(state.lastAccepted(), h.upTo(), false, h.gap()));
  }

  /** Whether this delivery is the first on this node after the socket moved here. */
  private boolean resumedAfterMove(SocketState before) {
    return before.suspendedOn() != null && !before.suspendedOn().equals(node);
  }

  /** First delivery on this node after the socket moved here: complete the migration record. */
  private void reportMoveCompleted(SocketState before, Instant at) {
    long pauseMs = Math.max(0, at.toEpochMilli() - before.lastDeliveryAt().toEpochMilli());
    context.getLog().info("Socket {} delivers again on {} after moving from {}: delivery paused {} ms", socketId,
        node, before.suspendedOn(), pauseMs);
    MigrationLog.get(context.getSystem()).completed(socketId, shardId, node, pauseMs, at);
  }

  // ------------------------------------------------------------------ downlink

  /** Sends outbox frames the edge has not been sent yet, within the downlink window. */
  private void pump(SocketState state) {
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
      reportPeerAcks(state);
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

  // ------------------------------------------------------------------ HTTP endpoint

  /**
   * Makes sure an HTTP mapping's endpoint actor and dispatch match the socket's mapping; a
   * mapping that is no longer HTTP lets them go once nothing of theirs is left.
   */
  private void prepareEndpoint(SocketState s) {
    if (!s.usesHttp()) {
      if (dispatch != null && dispatch.isSpent()) {
        context.stop(endpoint);
        dispatch = null;
        endpoint = null;
      }
      return;
    }
    if (dispatch == null) {
      dispatch = new EndpointDispatch(socketId, s.mapping());
    } else if (dispatch.needsEndpoint(s.mapping())) {
      context.stop(endpoint);
      dispatch.newEndpoint(s.mapping());
    } else {
      return;
    }
    if (endpointReplies == null) {
      endpointReplies = context.messageAdapter(MappingActor.Result.class, EndpointAnswered::new);
    }
    endpoint = context.spawnAnonymous(MappingActor.create(s.mapping(), socketId, s.deviceId()));
  }

  /** Frames for an HTTP endpoint wait in the batcher; the edge may send more, ACKs come later. */
  private ReplyEffect<SocketEvent, SocketState> bufferForEndpoint(SocketState state, Deliver cmd) {
    prepareEndpoint(state);
    long now = System.nanoTime();
    hold(state, cmd, dispatch.taken(state), frame -> dispatch.offer(state, frame, now));
    dispatch();
    return Effect().noReply();
  }

  /**
   * Hands the frames numbered up to {@code upTo} to the HTTP endpoint's batcher, in order after
   * what it has, and looks whether a batch is due.
   */
  private void toBatcher(SocketState state, Iterable<Frame.Data> frames, long upTo) {
    prepareEndpoint(state);
    dispatch.offerAll(state, frames, upTo, System.nanoTime());
    dispatch();
  }

  private void dispatch() {
    if (dispatch.schedule()) {
      context.getSelf().tell(Dispatch.INSTANCE);
    }
  }

  /** Sends the next thing the endpoint should see, if the endpoint is free: one at a time. */
  private ReplyEffect<SocketEvent, SocketState> onDispatch(SocketState s) {
    EndpointDispatch.Step step = dispatch == null ? EndpointDispatch.Idle.INSTANCE
        : dispatch.next(s, System.nanoTime());
    if (step instanceof EndpointDispatch.Call call) {
      invoke(call);
    } else if (step instanceof EndpointDispatch.StartBatch batch) {
      return Effect().persist(batchStarted(batch, Instant.now())).thenRun(st -> invoke(batch.call())).thenNoReply();
    } else if (step instanceof EndpointDispatch.Wait wait) {
      timers.startSingleTimer(Dispatch.INSTANCE, Duration.ofNanos(wait.nanos()));
    } else if (step instanceof EndpointDispatch.Finish finish) {
      return close(s, finish.ending());
    }
    return Effect().noReply();
  }

  private static BatchStarted batchStarted(EndpointDispatch.StartBatch batch, Instant at) {
    Batcher.Cut c = batch.cut();
    return new BatchStarted(batch.call().batchId(), c.seqFrom(), c.offsetFrom(), c.seqTo(), c.offsetTo(),
        c.endsFrame(), at);
  }

  private void invoke(EndpointDispatch.Call call) {
    endpoint.tell(new MappingActor.Invoke(call.batchId(), call.event(), call.seqFrom(), call.seqTo(), call.data(),
        endpointReplies));
  }

  private ReplyEffect<SocketEvent, SocketState> onEndpointAnswered(SocketState s, MappingActor.Result result) {
    EndpointDispatch.Outcome outcome = dispatch == null ? EndpointDispatch.Stale.INSTANCE
        : dispatch.answered(s, result, window.acked(s), System.nanoTime(), Instant.now());
    if (outcome instanceof EndpointDispatch.OpenAnswered open) {
      return settleOpen(s, open.batchId(), open.out(), open.answer());
    }
    if (outcome instanceof EndpointDispatch.Replied replied) {
      requestLinkIfNamed(replied.answer());
      return replied.out().isEmpty() ? afterAnswer(replied.answer())
          : Effect().persist(new Answered(replied.batchId(), replied.out(), Instant.now(), 0)).thenRun(st -> {
            pump(st);
            afterAnswer(replied.answer());
          }).thenNoReply();
    }
    if (!(outcome instanceof EndpointDispatch.BatchDone done)) {
      return Effect().noReply(); // from a replaced endpoint actor
    }
    requestLinkIfNamed(done.answer());
    boolean resumedAfterMove = resumedAfterMove(s);
    Accepted event = done.event();
    EndpointDispatch.StartBatch next = done.next();
    return Effect().persist(next == null ? List.of(event) : List.of(event, batchStarted(next, event.at())))
        .thenRun(st -> {
          if (resumedAfterMove) {
            reportMoveCompleted(s, event.at());
          }
          if (st.edge() != null && st.status() == Status.OPEN) {
            st.edge().tell(new Delivered(st.lastAccepted(), dispatch.taken(st), false));
          }
          pump(st);
          if (next != null) {
            invoke(next.call());
          } else {
            afterAnswer(done.answer());
          }
        }).thenNoReply();
  }

  private void requestLinkIfNamed(EndpointCall.Answer answer) {
    if (answer.link() != null && !answer.link().isBlank()) {
      context.getSelf().tell(new RequestLink(answer.link()));
    }
  }

  /**
   * The endpoint answered this connection's open, which decides where the data held meanwhile
   * goes: a link it names is requested in the same write as the answer, and the held frames go
   * to the peer; without a link they go to the mapping (or are refused if it takes no data).
   * A parked open answers nothing: no link.
   */
  private ReplyEffect<SocketEvent, SocketState> settleOpen(SocketState s, String batchId, List<Frame.Data> out,
      EndpointCall.Answer answer) {
    Instant now = Instant.now();
    Answered answered = new Answered(batchId, out, now, s.openPending());
    Optional<LinkRequested> link = answer.link() == null || answer.link().isBlank() ? Optional.empty()
        : linkRequest(s, answer.link(), now);
    return Effect().persist(link.isEmpty() ? List.of(answered) : List.of(answered, link.get())).thenRun(st -> {
      pump(st);
      link.ifPresent(l -> linkRequested(st, l));
      if (answer.close() == null && !st.holdsData()) {
        releaseHeld(st);
      }
      afterAnswer(answer);
    }).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> afterAnswer(EndpointCall.Answer answer) {
    if (answer.close() != null) {
      context.getSelf().tell(new CloseByEndpoint(answer.close().isBlank() ? "closed by the endpoint" : answer.close()));
    } else {
      dispatch();
    }
    return Effect().noReply();
  }

  // ------------------------------------------------------------------ peer links

  private EntityRef<PeerLinkEntity.Command> linkRef(String linkId) {
    return ClusterSharding.get(context.getSystem()).entityRefFor(PeerLinkEntity.ENTITY_KEY, linkId);
  }

  private EntityRef<PairingEntity.Command> pairingRef() {
    return ClusterSharding.get(context.getSystem()).entityRefFor(PairingEntity.ENTITY_KEY,
        LinkSide.pairingKey(socketId));
  }

  private EntityRef<SocketCommand> peerRef(String peer) {
    return ClusterSharding.get(context.getSystem()).entityRefFor(Sockets.ENTITY_KEY, peer);
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
  private ReplyEffect<SocketEvent, SocketState> requestLink(SocketState s, String peer) {
    Optional<LinkRequested> request = linkRequest(s, peer, Instant.now());
    if (request.isEmpty()) {
      return Effect().noReply();
    }
    return Effect().persist(request.get()).thenRun(st -> linkRequested(st, request.get())).thenNoReply();
  }

  /** The event that makes this socket wait for {@code peer}, if it may link to it now. */
  private Optional<LinkRequested> linkRequest(SocketState s, String peer, Instant at) {
    switch (LinkSide.request(socketId, s, peer)) {
      case REQUEST -> {
        return Optional.of(LinkSide.requested(socketId, s, peer, System.currentTimeMillis(), at));
      }
      case NOT_A_PEER -> context.getLog().warn(
          "Socket {}: the endpoint answered link '{}', which is not another socket's id; ignored", socketId, peer);
      case REFUSED -> context.getLog().warn("Socket {} is {} with {}: link answer to {} refused", socketId,
          s.link().status(), s.link().peer(), peer);
      case NOT_OPEN, ALREADY -> { }
    }
    return Optional.empty();
  }

  private void linkRequested(SocketState st, LinkRequested e) {
    linkRef(e.linkId()).tell(new PeerLinkEntity.Request(socketId, e.peer(), e.deadlineMillis()));
    tellDevice(st, LinkStatus.PENDING, e.peer(), "waiting for " + e.peer());
    armLinkDeadline(st.link());
  }

  /**
   * Joins the pairing point of this socket's name; the socket is already waiting (its device was
   * told so by {@link #resumeLink}).
   */
  private void joinPairing(SocketState s) {
    if (LinkSide.pairingKey(socketId).isEmpty()) {
      context.getLog().warn("Socket {} uses builtin:pair without a socket name: no pairing key", socketId);
      tellDevice(s, LinkStatus.TIMEOUT, "", "builtin:pair pairs sockets by their socket name");
      return;
    }
    pairingRef().tell(new PairingEntity.Join(socketId));
  }

  /** A peer wants a link: taken when this socket is free (or waits for just this peer). */
  private ReplyEffect<SocketEvent, SocketState> onLinkOffer(SocketState s, LinkOffer o) {
    switch (LinkSide.offer(s.link(), o.linkId(), o.from())) {
      case BUSY -> linkRef(o.linkId()).tell(new PeerLinkEntity.Busy(socketId,
          socketId + " is " + s.link().status() + " with another socket"));
      case ACCEPT_AGAIN -> linkRef(o.linkId()).tell(new PeerLinkEntity.Accept(socketId));
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
  private void acceptOffer(String linkId) {
    linkRef(linkId).tell(new PeerLinkEntity.Accept(socketId));
    timers.startSingleTimer(AcceptAgain.INSTANCE, settings.downlinkRetry());
  }

  private ReplyEffect<SocketEvent, SocketState> onLinkUp(SocketState s, LinkUp up) {
    switch (LinkSide.up(s, up.linkId())) {
      case UNLINK -> linkRef(up.linkId()).tell(new PeerLinkEntity.Unlink(socketId, socketId + " is not open", 0));
      case TELL -> tellDevice(s, LinkStatus.LINKED, up.peer(), "");
      case ESTABLISH -> {
        return Effect().persist(new LinkEstablished(up.linkId(), up.peer(), Instant.now())).thenRun(st -> {
          timers.cancel(LinkDeadline.INSTANCE);
          tellDevice(st, LinkStatus.LINKED, up.peer(), "");
          context.getLog().info("Socket {} linked to {}", socketId, up.peer());
          sendRelay(st);
        }).thenNoReply();
      }
    }
    return Effect().noReply();
  }

  /** The link ended: frames the peer took are acknowledged; the rest goes to the endpoint again. */
  private ReplyEffect<SocketEvent, SocketState> onLinkDown(SocketState s, LinkDown down) {
    Link current = s.link();
    if (!LinkSide.isCurrent(current, down.linkId())) {
      return Effect().noReply();
    }
    Instant now = Instant.now();
    LinkEnded ended = new LinkEnded(current.linkId(), now);
    List<SocketEvent> events = down.peerAccepted() <= s.lastAccepted() ? List.of(ended) : List.of(
        RelayOut.accepted(s, relayOut == null ? List.of() : relayOut.held(), down.peerAccepted(), window.acked(s), now),
        ended);
    LinkStatus status = LinkStatus.fromWire(down.status());
    boolean close = LinkSide.closes(current, status);
    return Effect().persist(events).thenRun(st -> {
      timers.cancel(LinkDeadline.INSTANCE);
      tellDevice(st, LinkSide.ended(status), down.peer(), down.reason());
      if (close) {
        // The socket closes: what its device sent after the last ACK goes nowhere.
        endGathering();
        context.getSelf().tell(new CloseByEndpoint("no peer within " + st.mapping().linkWaitMs() + " ms"));
      } else {
        releaseHeld(st);
      }
    }).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onLinkDeadline(SocketState s) {
    switch (LinkSide.deadline(s.link())) {
      case LEAVE_PAIRING -> {
        pairingRef().tell(new PairingEntity.Leave(socketId));
        return onLinkDown(s, new LinkDown("", "", LinkStatus.TIMEOUT.wire,
            "no device with the same pairing key came", 0));
      }
      case EXPIRE -> linkRef(s.link().linkId()).tell(new PeerLinkEntity.Expire(socketId));
      case NONE -> { }
    }
    return Effect().noReply();
  }

  private void armLinkDeadline(Link link) {
    timers.startSingleTimer(LinkDeadline.INSTANCE,
        Duration.ofMillis(LinkSide.millisLeft(link, System.currentTimeMillis())));
  }

  /** A reconnecting device learns its link status; an offer waiting for this socket is taken. */
  private void resumeLink(SocketState s) {
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

  private void leaveLink(Link link, String reason) {
    endGathering();
    if (link == null) {
      return;
    }
    if (LinkSide.atPairingPoint(link)) {
      pairingRef().tell(new PairingEntity.Leave(socketId));
    } else {
      linkRef(link.linkId()).tell(new PeerLinkEntity.Unlink(socketId, reason, link.relayIn()));
    }
  }

  // ------------------------------------------------------------------ relay (sending side)

  /**
   * While linked, or while the data's destination is not decided yet, frames wait here for the
   * peer (unacknowledged); the edge may send more, within the device's window. Frames the HTTP
   * endpoint's batcher already took stay with it.
   */
  private ReplyEffect<SocketEvent, SocketState> bufferForRelay(SocketState state, Deliver cmd) {
    if (state.inFlight() != null && state.usesHttp()) {
      // A batch recorded for the endpoint (sent before this incarnation) owns its frames,
      // whatever the data does now: they go back to the batcher, to send the batch again.
      toBatcher(state, cmd.frames(), state.inFlight().seqTo());
    }
    RelayOut out = relayOut();
    hold(state, cmd, out.heldUpTo(dispatch == null ? state.lastAccepted() : dispatch.taken(state)), out::hold);
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
    for (List<Frame.Data> frames : out.nextRelays(s.lastAccepted(), settings.downlinkWindow(), settings.maxPushBytes(),
        System.nanoTime())) {
      peerRef(s.link().peer()).tell(new Relay(socketId, out.accepted(), frames));
    }
    if (out.holdsFrames() && !timers.isTimerActive(RelayCheck.INSTANCE)) {
      timers.startTimerWithFixedDelay(RelayCheck.INSTANCE, Duration.ofSeconds(1));
    }
  }

  /** The peer took frames and its device acknowledged some: those are delivered, ACK them. */
  private ReplyEffect<SocketEvent, SocketState> onRelayAck(SocketState s, RelayAck ack) {
    if (!LinkSide.isLinkedTo(s, ack.from())) {
      return Effect().noReply();
    }
    if (relayOut().peerAcked(ack.accepted(), ack.acked(), ack.full(), s.lastAccepted(), System.nanoTime())) {
      scheduleRelayWrite();
    }
    sendRelay(s);
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onRelayCheck(SocketState s) {
    if (relayOut == null || !relayOut.holdsFrames() || !LinkSide.isLinked(s)) {
      timers.cancel(RelayCheck.INSTANCE);
    } else if (relayOut.sendAgain(System.nanoTime(), settings.downlinkRetry().toNanos())) {
      // Nothing from the peer for a while (it moved, or its node died): send again from what it took.
      sendRelay(s);
    }
    return Effect().noReply();
  }

  /** The link ended: nothing gathered for it may be written any more. */
  private void endGathering() {
    relayOut = null;
    relayIn = null;
    timers.cancel(RelayCheck.INSTANCE);
  }

  /**
   * Forgets the frames held for the peer (the device sends them again after it reconnects);
   * what was gathered for the next write stays: it does not depend on the connection.
   */
  private void clearRelay() {
    if (relayOut != null && relayOut.forgetHeld()) {
      relayOut = null;
    }
    if (relayIn != null && relayIn.forgetReported()) {
      relayIn = null;
    }
    timers.cancel(RelayCheck.INSTANCE);
  }

  /**
   * Unlinked, or the open's answer named no peer: the frames held for the peer go where the
   * socket's data goes now (docs/delivery.md#where-data-goes). An HTTP endpoint that takes data
   * gets them here, in order after what its batcher has, so that a close the device already
   * asked for flushes them too; otherwise the edge sends them again and they are taken (a
   * built-in endpoint) or refused like any new data.
   */
  private void releaseHeld(SocketState s) {
    boolean held = relayOut != null && relayOut.holdsFrames();
    if (held && !s.holdsData() && s.usesHttp() && s.mapping().receives(Mapping.Event.DATA)) {
      toBatcher(s, relayOut.held(), Long.MAX_VALUE);
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
  private ReplyEffect<SocketEvent, SocketState> onRelay(SocketState s, Relay r) {
    if (!LinkSide.isLinkedTo(s, r.from())) {
      peerRef(r.from()).tell(new LinkDown(PeerLinkEntity.idOf(socketId, r.from()), socketId,
          LinkStatus.UNLINKED.wire, socketId + " is not linked to " + r.from(), 0));
      return Effect().noReply();
    }
    if (relayIn == null) {
      relayIn = new RelayIn();
    }
    RelayIn.Offered offered = relayIn.offer(s, window, r.base(), r.frames());
    if (offered.writeDue()) {
      scheduleRelayWrite(); // its write answers the peer
    } else {
      peerRef(r.from()).tell(new RelayAck(socketId, offered.durableIn(), s.link().peerAcked(window.acked(s)),
          offered.full()));
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
      context.getSelf().tell(WriteRelay.INSTANCE);
    }
  }

  /** Writes the gathered relay: the peer's frames into the outbox, own frames the peer has. */
  private ReplyEffect<SocketEvent, SocketState> onWriteRelay(SocketState s) {
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
      events.add(RelayOut.accepted(s, relayOut.held(), acceptUpTo, window.acked(s), now));
    }
    if (events.isEmpty()) {
      return Effect().noReply();
    }
    return Effect().persist(events).thenRun(st -> {
      if (in.event() != null) {
        pump(st);
        long peerAcked = st.link().peerAcked(window.acked(st));
        peerRef(st.link().peer()).tell(new RelayAck(socketId, st.link().relayIn(), peerAcked, in.refused()));
        if (in.refused()) {
          window.stall(); // reused: report room when the device acknowledges
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
  private void reportPeerAcks(SocketState s) {
    if (!LinkSide.isLinked(s)) {
      return;
    }
    long peerAcked = s.link().peerAcked(window.liveAcked());
    boolean room = window.hasRoom(s);
    if (relayIn == null) {
      relayIn = new RelayIn();
    }
    if (relayIn.reports(peerAcked, window.isStalled(), room)) {
      peerRef(s.link().peer()).tell(new RelayAck(socketId, s.link().relayIn(), peerAcked, !room));
    }
  }

  // ------------------------------------------------------------------ status, index, events

  private SocketStatus status(SocketState s) {
    return new SocketStatus(socketId, s.deviceId(), s.status().name().toLowerCase(),
        s.mapping() == null ? "" : s.mapping().name(), s.mapping() == null ? 0 : s.mapping().version(), node,
        s.edgeNode(), s.lastAccepted(), s.lastDownlinkSeq(), window.acked(s),
        window.outboxFrames(s), s.inFlight() == null ? null : s.inFlight().batchId(), s.counters(),
        s.link() == null ? 0 : s.link().framesIn(), s.openedAt(), s.updatedAt());
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
