package io.berth.node.socket;

import com.fasterxml.jackson.annotation.JsonAlias;
import com.fasterxml.jackson.annotation.JsonIgnore;
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
import io.berth.node.link.RelayMark;
import io.berth.node.mapping.Batcher;
import io.berth.node.mapping.BuiltinEndpoint;
import io.berth.node.mapping.EndpointCall;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingActor;
import io.berth.node.socket.SocketEvent;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Answered;
import io.berth.node.socket.SocketEvent.BatchStarted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.Detached;
import io.berth.node.socket.SocketEvent.DownlinkAcked;
import io.berth.node.socket.SocketEvent.Injected;
import io.berth.node.socket.SocketEvent.LinkEnded;
import io.berth.node.socket.SocketEvent.LinkEstablished;
import io.berth.node.socket.SocketEvent.LinkOffered;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.SocketEvent.Relayed;
import io.berth.node.socket.SocketEvent.Suspended;
import io.berth.node.socket.SocketState;
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
import io.berth.persistence.CborSerializable;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.LinkStatus;
import io.berth.protocol.SocketId;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
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
import org.apache.pekko.cluster.sharding.typed.HashCodeMessageExtractor;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.pattern.Patterns;
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
 * with, the edge currently holding the device's connection, and counters.
 *
 * <p>Delivery contract (PROTOCOL.md#delivery-contract): data reaches the endpoint, the new
 * watermark and the endpoint's answers are persisted as one event, and only then is the edge told
 * to ACK. Frames at or below the watermark are dropped as replays.
 *
 * <p>Built-in endpoints run here, frame by frame, in the same event. HTTP endpoints are called by
 * a child {@link MappingActor}: frames are buffered (in memory: the device keeps them until they
 * are acknowledged) and cut into batches by the mapping's criteria; a batch's boundaries are
 * persisted before it is sent, so that after a crash or a move the same batch, with the same id,
 * is sent again (docs/ENDPOINTS.md#delivery). One batch at a time, in order.
 *
 * <p>Downlink acknowledgements are not persisted one by one: they are folded into the next event
 * (or written when the entity stops), so a crash can only cause a resend that the device drops.
 */
public final class SocketEntity
    extends EventSourcedBehaviorWithEnforcedReplies<SocketCommand, SocketEvent, SocketState> {



  // ------------------------------------------------------------------ own messages

  /** The endpoint answered an open with a peer to link to. */
  private record RequestLink(String peer) implements SocketCommand {}

  private enum LinkDeadline implements SocketCommand {
    INSTANCE
  }

  private enum RelayCheck implements SocketCommand {
    INSTANCE
  }

  /** An offered link is still not up: ask the link entity again (see {@link #acceptOffer}). */
  private enum AcceptAgain implements SocketCommand {
    INSTANCE
  }

  /** Writes what the relay gathered since the last write (see {@link #scheduleRelayWrite}). */
  private enum WriteRelay implements SocketCommand {
    INSTANCE
  }

  /** Time to see whether an attached socket has been quiet for {@code sleep-after}. */
  private enum SleepCheck implements SocketCommand {
    INSTANCE
  }

  /** Pushed frames are still unacknowledged: push them again if nothing progressed. */
  private enum RetryDownlink implements SocketCommand {
    INSTANCE
  }

  /** Something may be ready for the HTTP endpoint: look. */
  private enum Dispatch implements SocketCommand {
    INSTANCE
  }

  private record EndpointAnswered(MappingActor.Result result) implements SocketCommand {}

  private record CloseByEndpoint(String reason) implements SocketCommand {}

  /** A close the HTTP endpoint must see first: flush the buffer, send the close event, then end. */
  private record CloseRequest(ActorRef<ToEdge> deviceEdge, int code, String reason,
                              ActorRef<OperatorCloseResult> operator) {}

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
  private final ActorRef<MappingActor.Result> endpointReplies;
  /** Null when the entity runs outside sharding: it then never sleeps. */
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  /** Where the socket's state changes are listed for operators; null outside sharding. */
  private final SocketIndex index;
  /** {@code System.nanoTime()} of the last command that was not a heartbeat, query or check. */
  private long lastActivityAt = System.nanoTime();
  /** When this entity asked its shard to passivate it, or 0. */
  private long sleepingSince;

  // Per-incarnation cursors and buffers: deliberately not persisted (see class comment).
  private long liveDownlinkAcked;
  private long sentUpTo;
  private boolean edgeStalled;
  private long ackedAtLastRetry = -1;
  private Batcher batcher;
  private ActorRef<MappingActor.Command> endpoint;
  private long endpointVersion = -1;
  private String invoking;
  private Batcher.Cut currentCut;
  private boolean openDue;
  private boolean dispatchScheduled;
  private CloseRequest closeRequest;
  private boolean closeEventDone;
  // Relay to a linked peer (sending side): frames read and not yet acknowledged by the peer's device.
  private final ArrayDeque<Frame.Data> relayQueue = new ArrayDeque<>();
  private long relaySent;
  private long relayAccepted;
  private boolean peerFull;
  private long lastRelayProgress;
  // Receiving side: highest of the peer's seqs whose acknowledgement was reported to it.
  private long peerAckReported;
  // Gathered for the next journal write: the peer's frames taken (receiving side) and the
  // highest own frame the peer's device acknowledged (sending side). Not durable until written.
  private final List<Frame.Data> relayInPending = new ArrayList<>();
  private long relayInPendingBytes;
  private boolean relayInRefused;
  private long acceptPending;
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
    this.endpointReplies = context.messageAdapter(MappingActor.Result.class, EndpointAnswered::new);
    this.shard = shard;
    this.index = index;
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
        .onSignal(RecoveryCompleted.instance(), state -> {
          if (state.status() != Status.NEW) {
            // A change written just before the last incarnation ended may not have been listed.
            list(state);
          }
          liveDownlinkAcked = state.downlinkAcked();
          sentUpTo = state.downlinkAcked();
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
            openDue = true;
            dispatch();
          }
          if (state.link() != null && state.link().status().equals("waiting")) {
            armLinkDeadline(state.link());
          }
          if (state.status() == Status.OPEN && state.link() != null && state.link().status().equals("offered")) {
            acceptOffer(state.link().linkId());
          }
        })
        .build();
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
    if (state.status() == Status.OPEN) {
      // A device connection is attached: data flows.
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
      } else if (command instanceof RetryDownlink c) {
        return onRetryDownlink(state, c);
      } else if (command instanceof EdgeTerminated c) {
        return onEdgeTerminated(state, c);
      } else if (command instanceof SleepCheck) {
        return onSleepCheck(state);
      }
    } else {
      // New, detached or closed: only an Open brings the socket back; stale edges are told so.
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
    }
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
      return onEndpointAnswered(state, c);
    } else if (command instanceof CloseByEndpoint c) {
      return onCloseByEndpoint(state, c);
    } else if (command instanceof RequestLink c) {
      return requestLink(state, c.peer());
    } else if (command instanceof Paired c) {
      return onPaired(state, c);
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
      Link link = state.link();
      if (state.status() == Status.OPEN && link != null && link.status().equals("offered")) {
        acceptOffer(link.linkId());
      }
      return Effect().noReply();
    } else if (command instanceof WriteRelay) {
      return onWriteRelay(state);
    } else if (command instanceof Stop c) {
      return onStop(state, c);
    }
    throw new IllegalArgumentException("unexpected command " + command.getClass().getName());
  }

  private ReplyEffect<SocketEvent, SocketState> onOpen(SocketState state, Open cmd) {
    if (!SocketId.deviceOf(socketId).equals(cmd.deviceId())) {
      // The edge derives socket ids from the authenticated device; this is a second line of defence.
      cmd.edge().tell(new OpenRejected(ErrorCode.AUTH_FAILED.wire,
          "socket " + socketId + " does not belong to device " + cmd.deviceId()));
      return Effect().noReply();
    }
    if (cmd.resume() && cmd.lastReceived() > state.lastDownlinkSeq()) {
      // The device claims frames this socket never sent: its state is another socket's or
      // stale. Taking the claim would drop the outbox unsent (PROTOCOL.md#resuming).
      cmd.edge().tell(new OpenRejected(ErrorCode.BAD_SEQUENCE.wire, "HELLO lastReceived " + cmd.lastReceived()
          + " is beyond the last downlink seq " + state.lastDownlinkSeq() + " of socket " + socketId
          + ": the device's state is not this socket's; open it with resume = 0"));
      return Effect().noReply();
    }
    ActorRef<ToEdge> previous = state.status() == Status.OPEN ? state.edge() : null;
    if (previous != null && !previous.equals(cmd.edge()) && !previous.equals(cmd.replacing())) {
      // Another connection is attached: this open takes the session from it only if its own
      // connection still waits for the answer (PROTOCOL.md#takeover).
      cmd.edge().tell(new ConfirmTakeover(previous));
      return Effect().noReply();
    }
    long acked = cmd.resume() ? Math.max(state.downlinkAcked(), cmd.lastReceived()) : state.downlinkAcked();
    acked = Math.max(acked, liveDownlinkAcked);
    Instant now = Instant.now();
    List<SocketEvent> events = new ArrayList<>();
    // An HTTP endpoint's answer to open decides where this connection's data goes.
    boolean asksEndpoint = !cmd.mapping().isBuiltin() && cmd.mapping().receives(Mapping.Event.OPEN);
    events.add(new Opened(cmd.deviceId(), cmd.mapping(), cmd.edge(), cmd.edgeNode(), acked, now, asksEndpoint));
    boolean pairs = state.link() == null && "pair".equals(cmd.mapping().builtinName());
    if (pairs && !pairingKey().isEmpty()) {
      // Waiting from the first moment: data sent before the pairing point answers is held for
      // the peer, not taken by the mapping.
      events.add(new LinkRequested("", "", System.currentTimeMillis() + cmd.mapping().linkWaitMs(),
          cmd.mapping().closeOnLinkTimeout(), now));
    }
    return persistChange(events).thenRun(s -> {
      if (previous != null && !previous.equals(cmd.edge())) {
        context.unwatch(previous);
        previous.tell(new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection"));
      }
      context.watchWith(cmd.edge(), new EdgeTerminated(cmd.edge()));
      liveDownlinkAcked = s.downlinkAcked();
      sentUpTo = s.downlinkAcked();
      edgeStalled = false;
      cmd.edge().tell(new Welcomed(socketId, node, s.lastAccepted(), s.downlinkAcked()));
      armSleepCheck(settings.sleepAfter());
      pump(s);
      prepareEndpoint(s);
      clearRelay();
      resumeLink(s, cmd.edge());
      // A resuming device may have acknowledged relayed frames only by its HELLO: tell the peer.
      reportPeerAcks(s);
      if (pairs) {
        joinPairing(s);
      }
      if (s.openPending() != 0) {
        openDue = true;
        dispatch();
      }
    }).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onDeliver(SocketState state, Deliver cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    if (state.holdsData()) {
      return bufferForRelay(state, cmd);
    }
    if (state.usesHttp()) {
      return state.mapping().receives(Mapping.Event.DATA) ? bufferForEndpoint(state, cmd)
          : refuseData(state, cmd, "mapping '" + state.mapping().name() + "' receives no data events");
    }
    Optional<BuiltinEndpoint> builtin = state.mapping() == null ? Optional.empty()
        : BuiltinEndpoint.named(state.mapping().builtinName());
    if (builtin.isEmpty() || !builtin.get().takesData()) {
      return refuseData(state, cmd, builtin.map(b -> "builtin:" + b.mappingName() + " takes no data of its own")
          .orElse("the socket has no endpoint"));
    }
    BuiltinEndpoint endpoint = builtin.get();
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    int boxFrames = outboxFrames(state);
    long boxBytes = outboxBytes(state);
    long watermark = state.lastAccepted();
    long nextOut = state.lastDownlinkSeq();
    int frames = 0;
    long bytes = 0;
    int duplicates = 0;
    boolean stalled = false;
    boolean gap = false;
    List<Frame.Data> outbound = new ArrayList<>();
    for (Frame.Data frame : cmd.frames()) {
      if (frame.seq() <= watermark) {
        duplicates++;
        continue;
      }
      if (frame.seq() != watermark + 1) {
        gap = true; // frames before these were lost (this entity restarted): the edge resends
        break;
      }
      List<byte[]> answers = endpoint.onData(socketId, frame);
      long answerBytes = 0;
      for (byte[] a : answers) {
        answerBytes += a.length;
      }
      boolean full = boxFrames + answers.size() > settings.maxOutboxFrames()
          || boxBytes + answerBytes > settings.maxOutboxBytes();
      if (!answers.isEmpty() && full && boxFrames > 0) {
        stalled = true;
        break;
      }
      for (byte[] a : answers) {
        outbound.add(new Frame.Data(++nextOut, a));
      }
      boxFrames += answers.size();
      boxBytes += answerBytes;
      watermark = frame.seq();
      frames++;
      bytes += frame.payload().length;
    }
    boolean refused = stalled;
    if (frames == 0) {
      if (refused) {
        edgeStalled = true;
      }
      cmd.edge().tell(new Delivered(watermark, watermark, refused, gap));
      // All replays, typically resent after this entity restarted: its answers may still be due.
      pump(state);
      return Effect().noReply();
    }
    Accepted event = new Accepted(watermark, 0, frames, bytes, duplicates, outbound, acked, null, null, Instant.now());
    meter.record(frames, bytes);
    boolean resumedAfterMove = state.suspendedOn() != null && !state.suspendedOn().equals(node);
    return Effect().persist(event).thenRun(s -> {
      if (resumedAfterMove) {
        reportMoveCompleted(state, event.at());
      }
      if (refused) {
        edgeStalled = true;
      }
      cmd.edge().tell(new Delivered(s.lastAccepted(), s.lastAccepted(), refused));
      pump(s);
    }).thenNoReply();
  }

  /**
   * Data that nothing takes is refused, never acknowledged into nothing
   * (docs/delivery.md#where-data-goes): the edge answers ERROR 204 and closes, and the device
   * keeps its unacknowledged frames. Replays of frames taken before are confirmed as usual.
   */
  private ReplyEffect<SocketEvent, SocketState> refuseData(SocketState state, Deliver cmd, String why) {
    // Frames come in seq order: the last one tells whether any is new.
    if (!cmd.frames().isEmpty() && cmd.frames().get(cmd.frames().size() - 1).seq() > state.lastAccepted()) {
      cmd.edge().tell(new DataRefused(ErrorCode.NO_DESTINATION.wire,
          "nothing takes the data of socket " + socketId + ": " + why + " and the socket is not linked"));
    } else {
      cmd.edge().tell(new Delivered(state.lastAccepted(), state.lastAccepted(), false));
    }
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onDownlinkAck(SocketState state, DownlinkAck cmd) {
    if (state.isAttached(cmd.edge()) && cmd.upTo() > liveDownlinkAcked) {
      liveDownlinkAcked = Math.min(cmd.upTo(), state.lastDownlinkSeq());
      pump(state);
      reportPeerAcks(state);
      if (edgeStalled && outboxFrames(state) <= settings.maxOutboxFrames() / 2
          && outboxBytes(state) <= settings.maxOutboxBytes() / 2) {
        edgeStalled = false;
        state.edge().tell(Resume.INSTANCE);
      }
    }
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onResync(SocketState state, Resync cmd) {
    if (state.isAttached(cmd.edge())) {
      sentUpTo = Math.max(Math.max(state.downlinkAcked(), liveDownlinkAcked), Math.min(cmd.from(), sentUpTo));
      pump(state);
    }
    return Effect().noReply();
  }

  /**
   * A Push can be lost on its way (node trouble): when pushed frames stay unacknowledged for a
   * retry interval, push them again from the acknowledged point; the edge drops what it has.
   */
  private ReplyEffect<SocketEvent, SocketState> onRetryDownlink(SocketState state, RetryDownlink cmd) {
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    if (sentUpTo > acked) {
      if (acked == ackedAtLastRetry) {
        sentUpTo = acked;
        pump(state);
      }
      ackedAtLastRetry = acked;
      timers.startSingleTimer(RetryDownlink.INSTANCE, settings.downlinkRetry());
    }
    return Effect().noReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onClose(SocketState state, Close cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    if (state.usesHttp()) {
      // The endpoint sees the rest of the data and the close event before the session ends.
      closeRequest = new CloseRequest(cmd.edge(), CloseCode.NORMAL.wire, cmd.reason(), null);
      dispatch();
      return Effect().noReply();
    }
    Closed event = new Closed(cmd.code(), cmd.reason(), outboxFrames(state), Instant.now());
    Link link = state.link();
    return persistChange(event).thenRun(s -> {
      context.unwatch(cmd.edge());
      cmd.edge().tell(new SessionEnded(CloseCode.NORMAL.wire, "session closed"));
      leaveLink(link, "peer closed its session");
    }).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onCloseByOperator(SocketState state, CloseByOperator cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
    }
    if (state.usesHttp() && closeRequest == null) {
      closeRequest = new CloseRequest(null, CloseCode.CLOSED_BY_OPERATOR.wire, cmd.reason(), cmd.replyTo());
      dispatch();
      return Effect().noReply();
    }
    ActorRef<ToEdge> edge = state.edge();
    Closed event = new Closed(CloseCode.CLOSED_BY_OPERATOR.wire, cmd.reason(), outboxFrames(state), Instant.now());
    Link link = state.link();
    return persistChange(event).thenRun(s -> {
      if (edge != null) {
        context.unwatch(edge);
        edge.tell(new SessionEnded(CloseCode.CLOSED_BY_OPERATOR.wire, cmd.reason()));
      }
      leaveLink(link, "peer was closed by an operator");
    }).thenReply(cmd.replyTo(), s -> new OperatorCloseResult.Closed());
  }

  private ReplyEffect<SocketEvent, SocketState> onCloseByEndpoint(SocketState state, CloseByEndpoint cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().noReply();
    }
    ActorRef<ToEdge> edge = state.edge();
    if (batcher != null) {
      batcher.clear();
    }
    closeRequest = null;
    Closed event = new Closed(CloseCode.CLOSED_BY_ENDPOINT.wire, cmd.reason(), outboxFrames(state), Instant.now());
    Link link = state.link();
    return persistChange(event).thenRun(s -> {
      if (edge != null) {
        context.unwatch(edge);
        edge.tell(new SessionEnded(CloseCode.CLOSED_BY_ENDPOINT.wire, cmd.reason()));
      }
      leaveLink(link, "peer was closed: " + cmd.reason());
    }).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onInject(SocketState state, Inject cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN));
    }
    List<Frame.Data> frames = frames(state.lastDownlinkSeq(), cmd.payload());
    if (outboxFrames(state) + frames.size() > settings.maxOutboxFrames()
        || outboxBytes(state) + cmd.payload().length > settings.maxOutboxBytes()) {
      return Effect().reply(cmd.replyTo(), new InjectResult.Refused(InjectResult.Refusal.OUTBOX_FULL));
    }
    return Effect().persist(new Injected(frames, Instant.now())).thenRun(this::pump)
        .thenReply(cmd.replyTo(), s -> new InjectResult.Injected(s.lastDownlinkSeq()));
  }

  private ReplyEffect<SocketEvent, SocketState> onEdgeTerminated(SocketState state, EdgeTerminated cmd) {
    if (!state.isAttached(cmd.edge())) {
      return Effect().noReply();
    }
    return persistChange(new Detached(Instant.now())).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> onStop(SocketState state, Stop cmd) {
    // Write what is not yet durable of the session before handing it off or going to sleep.
    List<SocketEvent> events = new ArrayList<>();
    Instant now = Instant.now();
    if (liveDownlinkAcked > state.downlinkAcked()) {
      events.add(new DownlinkAcked(liveDownlinkAcked, now));
    }
    boolean asleep = sleepingSince != 0;
    if (state.status() == Status.OPEN && !asleep) {
      // A handoff: the next incarnation runs elsewhere and reports the move.
      events.add(new Suspended(node, state.lastDeliveryAt() != null ? state.lastDeliveryAt() : now, now));
    }
    // Frames in the mailbox behind this stop are lost with it: the edge sends them again at once.
    // Going to sleep, there are none, unless something arrived after the entity asked to sleep.
    ActorRef<ToEdge> edge = state.status() == Status.OPEN && (!asleep || lastActivityAt > sleepingSince)
        ? state.edge() : null;
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
    long quietFor = System.nanoTime() - lastActivityAt;
    long after = settings.sleepAfter().toNanos();
    if (quietFor < after) {
      armSleepCheck(Duration.ofNanos(after - quietFor));
    } else if (!restful(state)) {
      armSleepCheck(settings.sleepAfter());
    } else {
      sleepingSince = System.nanoTime();
      state.edge().tell(Sleeping.INSTANCE);
      shard.tell(new ClusterSharding.Passivate<>(context.getSelf()));
      armSleepCheck(settings.sleepAfter());
    }
    return Effect().noReply();
  }

  /** Nothing in flight that a stopped entity would have to pick up again. */
  private boolean restful(SocketState s) {
    return s.edge() != null && s.link() == null && s.openPending() == 0 && s.inFlight() == null
        && s.lastDownlinkSeq() <= liveDownlinkAcked && !edgeStalled
        && invoking == null && (batcher == null || batcher.isEmpty()) && !openDue && !dispatchScheduled
        && closeRequest == null && relayQueue.isEmpty() && relayInPending.isEmpty() && acceptPending == 0
        && !relayWriteScheduled;
  }

  /** First delivery on this node after the socket moved here: complete the migration record. */
  private void reportMoveCompleted(SocketState before, Instant at) {
    long pauseMs = Math.max(0, at.toEpochMilli() - before.lastDeliveryAt().toEpochMilli());
    context.getLog().info("Socket {} delivers again on {} after moving from {}: delivery paused {} ms", socketId,
        node, before.suspendedOn(), pauseMs);
    MigrationLog.get(context.getSystem()).completed(socketId, shardId, node, pauseMs, at);
  }

  // ------------------------------------------------------------------ HTTP endpoint

  /** Makes sure the endpoint child and the batcher match the socket's mapping. */
  private void prepareEndpoint(SocketState s) {
    if (!s.usesHttp()) {
      return;
    }
    if (endpoint == null || endpointVersion != s.mapping().version()) {
      if (endpoint != null) {
        context.stop(endpoint);
        invoking = null;
        currentCut = null;
      }
      endpoint = context.spawnAnonymous(MappingActor.create(s.mapping(), socketId, s.deviceId()));
      endpointVersion = s.mapping().version();
      batcher = new Batcher(s.mapping().criteria());
    }
  }

  /** Frames for an HTTP endpoint wait in the batcher; the edge may send more, ACKs come later. */
  private ReplyEffect<SocketEvent, SocketState> bufferForEndpoint(SocketState state, Deliver cmd) {
    prepareEndpoint(state);
    long now = System.nanoTime();
    hold(state, cmd, Math.max(state.lastAccepted(), batcher.highestSeq()), frame -> toBatcher(state, frame, now));
    dispatch();
    return Effect().noReply();
  }

  /**
   * Hands the frames numbered up to {@code upTo} to the HTTP endpoint's batcher, in order after
   * what it has, and looks whether a batch is due.
   */
  private void toBatcher(SocketState state, Iterable<Frame.Data> frames, long upTo) {
    prepareEndpoint(state);
    long now = System.nanoTime();
    for (Frame.Data frame : frames) {
      if (frame.seq() <= upTo) {
        toBatcher(state, frame, now);
      }
    }
    dispatch();
  }

  /**
   * Adds the frame to the batcher if it is the next one the endpoint has not had (from where an
   * earlier batch cut it, for the first after the watermark).
   */
  private void toBatcher(SocketState state, Frame.Data frame, long nowNanos) {
    if (frame.seq() == Math.max(state.lastAccepted(), batcher.highestSeq()) + 1) {
      int from = frame.seq() == state.lastAccepted() + 1 ? (int) state.partialOffset() : 0;
      batcher.add(frame.seq(), frame.payload(), from, nowNanos);
    }
  }

  /**
   * Takes the delivered frames that follow {@code held} without a gap into {@code holder}, and
   * tells the edge how far the entity now holds them (not yet acknowledged): the edge's pipeline
   * moves on, and a gap (frames lost while this entity restarted) makes it send again.
   */
  private void hold(SocketState state, Deliver cmd, long held, Consumer<Frame.Data> holder) {
    long next = held;
    int frames = 0;
    long bytes = 0;
    boolean gap = false;
    for (Frame.Data frame : cmd.frames()) {
      if (frame.seq() <= next) {
        continue;
      }
      if (frame.seq() != next + 1) {
        gap = true;
        break;
      }
      holder.accept(frame);
      next = frame.seq();
      frames++;
      bytes += frame.payload().length;
    }
    meter.record(frames, bytes);
    cmd.edge().tell(new Delivered(state.lastAccepted(), next, false, gap));
  }

  private void dispatch() {
    if (!dispatchScheduled) {
      dispatchScheduled = true;
      context.getSelf().tell(Dispatch.INSTANCE);
    }
  }

  /** Sends the next thing the endpoint should see, if the endpoint is free: one at a time. */
  private ReplyEffect<SocketEvent, SocketState> onDispatch(SocketState s) {
    dispatchScheduled = false;
    boolean live = s.status() == Status.OPEN || s.status() == Status.DETACHED;
    if (!s.usesHttp() || invoking != null || !live) {
      return Effect().noReply();
    }
    prepareEndpoint(s);
    if (openDue) {
      openDue = false;
      if (s.openPending() != 0) {
        invoke(s, openBatchId(s.openPending()), Mapping.Event.OPEN, s.lastAccepted(), s.lastAccepted(), null);
        return Effect().noReply();
      }
    }
    if (s.inFlight() != null) {
      // A batch recorded before this incarnation: send it again, identical, once its bytes are back.
      Optional<Batcher.Cut> again = batcher.readyUpTo(s.inFlight().seqTo(), s.inFlight().offsetTo());
      if (again.isPresent()) {
        currentCut = again.get();
        invoke(s, s.inFlight().batchId(), Mapping.Event.DATA, currentCut.seqFrom(), currentCut.seqTo(),
            currentCut.data());
      }
      return Effect().noReply();
    }
    Optional<Batcher.Cut> cut = batcher.ready(System.nanoTime(), closeRequest != null);
    if (cut.isPresent()) {
      Batcher.Cut c = cut.get();
      currentCut = c;
      String id = c.batchId(socketId);
      invoking = id;
      return Effect().persist(new BatchStarted(id, c.seqFrom(), c.offsetFrom(), c.seqTo(), c.offsetTo(), c.endsFrame(),
          Instant.now())).thenRun(st -> invoke(st, id, Mapping.Event.DATA, c.seqFrom(), c.seqTo(), c.data()))
          .thenNoReply();
    }
    long due = batcher.dueAtNanos();
    if (due > 0) {
      timers.startSingleTimer(Dispatch.INSTANCE, Duration.ofNanos(Math.max(1_000_000, due - System.nanoTime())));
    }
    if (closeRequest != null && batcher.isEmpty()) {
      if (s.mapping().receives(Mapping.Event.CLOSE) && !closeEventDone) {
        closeEventDone = true;
        invoke(s, socketId + ":close:" + s.lastAccepted(), Mapping.Event.CLOSE, s.lastAccepted(), s.lastAccepted(),
            null);
        return Effect().noReply();
      }
      return finishClose(s);
    }
    return Effect().noReply();
  }

  private void invoke(SocketState s, String batchId, Mapping.Event event, long seqFrom, long seqTo, byte[] data) {
    invoking = batchId;
    endpoint.tell(new MappingActor.Invoke(batchId, event, seqFrom, seqTo, data, endpointReplies));
  }

  private ReplyEffect<SocketEvent, SocketState> onEndpointAnswered(SocketState s, EndpointAnswered m) {
    MappingActor.Result result = m.result();
    String batchId = result instanceof MappingActor.Delivered d ? d.batchId() : ((MappingActor.Parked) result).batchId();
    if (!batchId.equals(invoking)) {
      return Effect().noReply(); // from a replaced endpoint actor
    }
    invoking = null;
    EndpointCall.Answer answer = result instanceof MappingActor.Delivered d ? d.answer() : EndpointCall.Answer.NOTHING;
    String parkedId = result instanceof MappingActor.Parked p ? p.parkedId() : null;
    List<Frame.Data> out = answer.reply() == null ? List.of() : frames(s.lastDownlinkSeq(), answer.reply());
    if (s.openPending() != 0 && batchId.equals(openBatchId(s.openPending()))) {
      return settleOpen(s, batchId, out, answer);
    }
    if (answer.link() != null && !answer.link().isBlank()) {
      context.getSelf().tell(new RequestLink(answer.link()));
    }
    if (currentCut != null && s.inFlight() != null && s.inFlight().batchId().equals(batchId)) {
      Batcher.Cut c = currentCut;
      currentCut = null;
      long watermark = c.endsFrame() ? c.seqTo() : c.seqTo() - 1;
      long partial = c.endsFrame() ? 0 : c.offsetTo();
      long acked = Math.max(s.downlinkAcked(), liveDownlinkAcked);
      Accepted event = new Accepted(watermark, partial, (int) (watermark - s.lastAccepted()), c.data().length, 0, out,
          acked, batchId, parkedId, Instant.now());
      boolean resumedAfterMove = s.suspendedOn() != null && !s.suspendedOn().equals(node);
      // The next batch, if one is due, is recorded in the same journal write as this one's
      // result: one write per batch instead of two.
      Optional<Batcher.Cut> next = answer.close() == null && closeRequest == null
          ? batcher.ready(System.nanoTime(), false) : Optional.empty();
      List<SocketEvent> events = new ArrayList<>();
      events.add(event);
      next.ifPresent(n -> {
        currentCut = n;
        invoking = n.batchId(socketId);
        events.add(new BatchStarted(invoking, n.seqFrom(), n.offsetFrom(), n.seqTo(), n.offsetTo(), n.endsFrame(),
            event.at()));
      });
      return Effect().persist(events).thenRun(st -> {
        if (resumedAfterMove) {
          reportMoveCompleted(s, event.at());
        }
        if (st.edge() != null && st.status() == Status.OPEN) {
          st.edge().tell(new Delivered(st.lastAccepted(), Math.max(st.lastAccepted(), batcher.highestSeq()), false));
        }
        pump(st);
        if (next.isPresent()) {
          Batcher.Cut n = next.get();
          invoke(st, n.batchId(socketId), Mapping.Event.DATA, n.seqFrom(), n.seqTo(), n.data());
        } else {
          afterAnswer(answer);
        }
      }).thenNoReply();
    }
    if (out.isEmpty()) {
      afterAnswer(answer);
      return Effect().noReply();
    }
    return Effect().persist(new Answered(batchId, out, Instant.now(), 0)).thenRun(st -> {
      pump(st);
      afterAnswer(answer);
    }).thenNoReply();
  }

  private String openBatchId(long connection) {
    return socketId + ":open:" + connection;
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
    List<SocketEvent> events = new ArrayList<>();
    events.add(new Answered(batchId, out, now, s.openPending()));
    Optional<LinkRequested> link = answer.link() == null || answer.link().isBlank() ? Optional.empty()
        : linkRequest(s, answer.link(), now);
    link.ifPresent(events::add);
    return Effect().persist(events).thenRun(st -> {
      pump(st);
      link.ifPresent(l -> linkRequested(st, l));
      if (answer.close() == null && !st.holdsData()) {
        releaseHeld(st);
      }
      afterAnswer(answer);
    }).thenNoReply();
  }

  private void afterAnswer(EndpointCall.Answer answer) {
    if (answer.close() != null) {
      context.getSelf().tell(new CloseByEndpoint(answer.close().isBlank() ? "closed by the endpoint" : answer.close()));
    } else {
      dispatch();
    }
  }

  private ReplyEffect<SocketEvent, SocketState> finishClose(SocketState s) {
    CloseRequest request = closeRequest;
    closeRequest = null;
    closeEventDone = false;
    ActorRef<ToEdge> attached = s.edge();
    Closed event = new Closed(request.code(), request.reason(), outboxFrames(s), Instant.now());
    Link link = s.link();
    return persistChange(event).thenRun(st -> {
      leaveLink(link, "peer closed its session");
      if (attached != null) {
        context.unwatch(attached);
        attached.tell(request.code() == CloseCode.NORMAL.wire
            ? new SessionEnded(CloseCode.NORMAL.wire, "session closed")
            : new SessionEnded(request.code(), request.reason()));
      }
      if (request.operator() != null) {
        request.operator().tell(new OperatorCloseResult.Closed());
      }
    }).thenNoReply();
  }

  /** Downlink frames for a payload, split to fit the largest DATA frame. */
  private static List<Frame.Data> frames(long lastSeq, byte[] payload) {
    int max = FrameCodec.DEFAULT_MAX_FRAME_SIZE - FrameCodec.DATA_OVERHEAD;
    List<Frame.Data> out = new ArrayList<>();
    long seq = lastSeq;
    int offset = 0;
    do {
      int end = Math.min(payload.length, offset + max);
      out.add(new Frame.Data(++seq, Arrays.copyOfRange(payload, offset, end)));
      offset = end;
    } while (offset < payload.length);
    return out;
  }

  // ------------------------------------------------------------------ peer links

  private EntityRef<PeerLinkEntity.Command> linkRef(
      String linkId) {
    return ClusterSharding.get(context.getSystem()).entityRefFor(PeerLinkEntity.ENTITY_KEY, linkId);
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
    if (!SocketId.isValid(peer) || peer.equals(socketId)) {
      context.getLog().warn("Socket {}: the endpoint answered link '{}', which is not another socket's id; ignored",
          socketId, peer);
      return Optional.empty();
    }
    if (s.status() != Status.OPEN) {
      return Optional.empty();
    }
    Link current = s.link();
    if (current != null && !current.peer().isEmpty()) {
      if (!current.peer().equals(peer)) {
        context.getLog().warn("Socket {} is {} with {}: link answer to {} refused", socketId, current.status(),
            current.peer(), peer);
      }
      return Optional.empty();
    }
    long deadline = System.currentTimeMillis() + s.mapping().linkWaitMs();
    return Optional.of(new LinkRequested(PeerLinkEntity.idOf(socketId, peer), peer, deadline,
        s.mapping().closeOnLinkTimeout(), at));
  }

  private void linkRequested(SocketState st, LinkRequested e) {
    linkRef(e.linkId()).tell(new PeerLinkEntity.Request(socketId, e.peer(), e.deadlineMillis()));
    tellDevice(st, LinkStatus.PENDING, e.peer(), "waiting for " + e.peer());
    armLinkDeadline(st.link());
  }

  /** {@code builtin:pair} pairs sockets by their socket name: the part of the id after '/'. */
  private String pairingKey() {
    return socketId.contains("/") ? socketId.substring(socketId.indexOf('/') + 1) : "";
  }

  /**
   * Joins the pairing point of this socket's name; the socket is already waiting (its device was
   * told so by {@link #resumeLink}).
   */
  private void joinPairing(SocketState s) {
    String key = pairingKey();
    if (key.isEmpty()) {
      context.getLog().warn("Socket {} uses builtin:pair without a socket name: no pairing key", socketId);
      tellDevice(s, LinkStatus.TIMEOUT, "", "builtin:pair pairs sockets by their socket name");
      return;
    }
    ClusterSharding.get(context.getSystem()).entityRefFor(PairingEntity.ENTITY_KEY, key)
        .tell(new PairingEntity.Join(socketId));
  }

  /** The pairing point found a partner; a socket no longer waiting there ignores it. */
  private ReplyEffect<SocketEvent, SocketState> onPaired(SocketState s, Paired p) {
    boolean atPairingPoint = s.link() != null && s.link().linkId().isEmpty() && s.link().status().equals("waiting");
    if (s.status() != Status.OPEN || !atPairingPoint || p.partner().isEmpty()) {
      return Effect().noReply();
    }
    return requestLink(s, p.partner());
  }

  /** A peer wants a link: taken when this socket is free (or waits for just this peer). */
  private ReplyEffect<SocketEvent, SocketState> onLinkOffer(SocketState s, LinkOffer o) {
    Link current = s.link();
    boolean free = current == null || current.peer().isEmpty() || current.peer().equals(o.from());
    if (!free) {
      linkRef(o.linkId()).tell(new PeerLinkEntity.Busy(socketId,
          socketId + " is " + current.status() + " with another socket"));
      return Effect().noReply();
    }
    if (current != null && current.isLinked() && current.linkId().equals(o.linkId())) {
      linkRef(o.linkId()).tell(new PeerLinkEntity.Accept(socketId));
      return Effect().noReply();
    }
    return Effect().persist(new LinkOffered(o.linkId(), o.from(), Instant.now())).thenRun(st -> {
      if (st.status() == Status.OPEN) {
        acceptOffer(o.linkId());
      }
    }).thenNoReply();
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
    Link current = s.link();
    boolean expected = current != null && (current.linkId().equals(up.linkId()) || current.peer().isEmpty());
    if (!expected || (s.status() != Status.OPEN && s.status() != Status.DETACHED)) {
      // This socket moved on (closed, or linked elsewhere): end that link.
      linkRef(up.linkId()).tell(new PeerLinkEntity.Unlink(socketId, socketId + " is not open", 0));
      return Effect().noReply();
    }
    if (current.isLinked()) {
      tellDevice(s, LinkStatus.LINKED, up.peer(), "");
      return Effect().noReply();
    }
    return Effect().persist(new LinkEstablished(up.linkId(), up.peer(), Instant.now())).thenRun(st -> {
      timers.cancel(LinkDeadline.INSTANCE);
      tellDevice(st, LinkStatus.LINKED, up.peer(), "");
      context.getLog().info("Socket {} linked to {}", socketId, up.peer());
      sendRelay(st);
    }).thenNoReply();
  }

  /** The link ended: frames the peer took are acknowledged; the rest goes to the endpoint again. */
  private ReplyEffect<SocketEvent, SocketState> onLinkDown(SocketState s, LinkDown down) {
    Link current = s.link();
    if (current == null || !(current.linkId().equals(down.linkId()) || current.peer().isEmpty())) {
      return Effect().noReply();
    }
    List<SocketEvent> events = new ArrayList<>();
    Instant now = Instant.now();
    long acked = Math.max(s.downlinkAcked(), liveDownlinkAcked);
    if (down.peerAccepted() > s.lastAccepted()) {
      events.add(acceptRelayed(s, down.peerAccepted(), acked, now));
    }
    events.add(new LinkEnded(current.linkId(), now));
    LinkStatus status = LinkStatus.fromWire(down.status());
    boolean close = status == LinkStatus.TIMEOUT && current.closeOnTimeout();
    return Effect().persist(events).thenRun(st -> {
      timers.cancel(LinkDeadline.INSTANCE);
      tellDevice(st, status == null ? LinkStatus.UNLINKED : status, down.peer(), down.reason());
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
    Link current = s.link();
    if (current == null || !current.status().equals("waiting")) {
      return Effect().noReply();
    }
    if (current.linkId().isEmpty()) {
      // Waiting at the pairing point: nobody came.
      ClusterSharding.get(context.getSystem()).entityRefFor(PairingEntity.ENTITY_KEY, pairingKey())
          .tell(new PairingEntity.Leave(socketId));
      return onLinkDown(s, new LinkDown("", "", LinkStatus.TIMEOUT.wire,
          "no device with the same pairing key came", 0));
    }
    linkRef(current.linkId()).tell(new PeerLinkEntity.Expire(socketId));
    return Effect().noReply();
  }

  private void armLinkDeadline(Link link) {
    long left = Math.max(0, link.deadlineMillis() - System.currentTimeMillis());
    timers.startSingleTimer(LinkDeadline.INSTANCE, Duration.ofMillis(left));
  }

  /** A reconnecting device learns its link status; an offer waiting for this socket is taken. */
  private void resumeLink(SocketState s, ActorRef<ToEdge> edge) {
    Link link = s.link();
    if (link == null) {
      return;
    }
    switch (link.status()) {
      case "linked" -> tellDevice(s, LinkStatus.LINKED, link.peer(), "");
      case "waiting" -> {
        tellDevice(s, LinkStatus.PENDING, link.peer(), link.peer().isEmpty()
            ? "waiting for a device with the same pairing key" : "waiting for " + link.peer());
        armLinkDeadline(link);
      }
      case "offered" -> acceptOffer(link.linkId());
      default -> { }
    }
  }

  private void leaveLink(Link link, String reason) {
    endGathering();
    if (link == null) {
      return;
    }
    if (link.linkId().isEmpty()) {
      ClusterSharding.get(context.getSystem()).entityRefFor(PairingEntity.ENTITY_KEY, pairingKey())
          .tell(new PairingEntity.Leave(socketId));
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
    long taken = Math.max(state.lastAccepted(), batcher == null ? 0 : batcher.highestSeq());
    long held = relayQueue.isEmpty() ? taken : Math.max(taken, relayQueue.peekLast().seq());
    hold(state, cmd, held, relayQueue::addLast);
    sendRelay(state);
    return Effect().noReply();
  }

  /** Sends queued frames to the peer's entity, within the relay window and message size. */
  private void sendRelay(SocketState s) {
    if (s.link() == null || !s.link().isLinked() || peerFull) {
      return;
    }
    if (relaySent < s.lastAccepted()) {
      relaySent = s.lastAccepted();
    }
    if (relayAccepted < s.lastAccepted()) {
      relayAccepted = s.lastAccepted();
    }
    EntityRef<SocketCommand> peer = peerRef(s.link().peer());
    long before = relaySent;
    relaySent = sendInMessages(relayQueue, relaySent, relayAccepted + settings.downlinkWindow(),
        frames -> peer.tell(new Relay(socketId, relayAccepted, frames)));
    if (relaySent > before && lastRelayProgress == 0) {
      lastRelayProgress = System.nanoTime();
    }
    if (!relayQueue.isEmpty() && !timers.isTimerActive(RelayCheck.INSTANCE)) {
      timers.startTimerWithFixedDelay(RelayCheck.INSTANCE, Duration.ofSeconds(1));
    }
  }

  /** The peer took frames and its device acknowledged some: those are delivered, ACK them. */
  private ReplyEffect<SocketEvent, SocketState> onRelayAck(SocketState s, RelayAck ack) {
    Link link = s.link();
    if (link == null || !link.isLinked() || !link.peer().equals(ack.from())) {
      return Effect().noReply();
    }
    long before = relayAccepted;
    relayAccepted = Math.max(relayAccepted, ack.accepted());
    if (ack.full()) {
      // The peer's outbox is full: go back to what it took; it says when it has room.
      peerFull = true;
      relaySent = relayAccepted;
    } else {
      peerFull = false;
    }
    if (relayAccepted > before) {
      lastRelayProgress = System.nanoTime();
    }
    long upTo = Math.min(ack.acked(), relayQueue.isEmpty() ? s.lastAccepted() : relayQueue.peekLast().seq());
    if (upTo > Math.max(s.lastAccepted(), acceptPending)) {
      lastRelayProgress = System.nanoTime();
      acceptPending = upTo;
      scheduleRelayWrite();
    }
    sendRelay(s);
    return Effect().noReply();
  }

  /** The watermark advanced over frames the peer's device acknowledged (or the peer took). */
  private Accepted acceptRelayed(SocketState s, long upTo, long downlinkAcked, Instant at) {
    int frames = 0;
    long bytes = 0;
    for (Frame.Data d : relayQueue) {
      if (d.seq() > s.lastAccepted() && d.seq() <= upTo) {
        frames++;
        bytes += d.payload().length;
      }
    }
    return new Accepted(upTo, 0, (int) Math.max(frames, upTo - s.lastAccepted()), bytes, 0, List.of(), downlinkAcked,
        null, null, at);
  }

  private ReplyEffect<SocketEvent, SocketState> onRelayCheck(SocketState s) {
    if (relayQueue.isEmpty() || s.link() == null || !s.link().isLinked()) {
      timers.cancel(RelayCheck.INSTANCE);
      return Effect().noReply();
    }
    if (System.nanoTime() - lastRelayProgress > settings.downlinkRetry().toNanos()) {
      // Nothing from the peer for a while (it moved, or its node died): send again from what it took.
      relaySent = relayAccepted;
      peerFull = false;
      lastRelayProgress = System.nanoTime();
      sendRelay(s);
    }
    return Effect().noReply();
  }

  /** The link ended: nothing gathered for it may be written any more. */
  private void endGathering() {
    relayInPending.clear();
    relayInPendingBytes = 0;
    relayInRefused = false;
    acceptPending = 0;
    clearRelay();
  }

  /**
   * Forgets the frames held for the peer (the device sends them again after it reconnects);
   * what was gathered for the next write stays: it does not depend on the connection.
   */
  private void clearRelay() {
    relayQueue.clear();
    relaySent = 0;
    relayAccepted = 0;
    peerFull = false;
    lastRelayProgress = 0;
    peerAckReported = 0;
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
    if (s.holdsData() || !s.usesHttp() || !s.mapping().receives(Mapping.Event.DATA) || relayQueue.isEmpty()) {
      // Still undecided (the open's answer is due), or not for the batcher: through the edge.
      endRelay(s);
      return;
    }
    toBatcher(s, relayQueue, Long.MAX_VALUE);
    endGathering();
  }

  /** What was held for the peer is forgotten: the edge sends it again, to go where data goes now. */
  private void endRelay(SocketState s) {
    boolean had = !relayQueue.isEmpty();
    endGathering();
    if (had && s.edge() != null && s.status() == Status.OPEN) {
      s.edge().tell(new Delivered(s.lastAccepted(), s.lastAccepted(), false, true));
    }
  }

  // ------------------------------------------------------------------ relay (receiving side)

  /** Frames of the linked peer go into this socket's outbox, in order, once each. */
  private ReplyEffect<SocketEvent, SocketState> onRelay(SocketState s, Relay r) {
    Link link = s.link();
    if (link == null || !link.isLinked() || !link.peer().equals(r.from())) {
      String linkId = PeerLinkEntity.idOf(socketId, r.from());
      peerRef(r.from()).tell(new LinkDown(linkId, socketId, LinkStatus.UNLINKED.wire,
          socketId + " is not linked to " + r.from(), 0));
      return Effect().noReply();
    }
    int boxFrames = outboxFrames(s) + relayInPending.size();
    long boxBytes = outboxBytes(s) + relayInPendingBytes;
    // Nothing taken on this link yet: start where the peer's numbering stands.
    long durableIn = link.relayIn() == 0 ? r.base() : link.relayIn();
    long in = relayInPending.isEmpty() ? durableIn : relayInPending.get(relayInPending.size() - 1).seq();
    boolean full = false;
    int taken = 0;
    for (Frame.Data d : r.frames()) {
      if (d.seq() <= in) {
        continue;
      }
      if (d.seq() != in + 1) {
        break;
      }
      if (boxFrames + 1 > settings.maxOutboxFrames() || boxBytes + d.payload().length > settings.maxOutboxBytes()) {
        full = true;
        break;
      }
      relayInPending.add(d);
      relayInPendingBytes += d.payload().length;
      in = d.seq();
      boxFrames++;
      boxBytes += d.payload().length;
      taken++;
    }
    relayInRefused |= full;
    if (taken > 0 || !relayInPending.isEmpty()) {
      scheduleRelayWrite(); // its write answers the peer
    } else {
      long acked = Math.max(s.downlinkAcked(), liveDownlinkAcked);
      peerRef(r.from()).tell(new RelayAck(socketId, durableIn, link.peerAcked(acked), full));
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
    Link link = s.link();
    Instant now = Instant.now();
    List<SocketEvent> events = new ArrayList<>();
    boolean refused = relayInRefused;
    if (!relayInPending.isEmpty() && link != null && link.isLinked()) {
      long seq = s.lastDownlinkSeq();
      List<Frame.Data> out = new ArrayList<>(relayInPending.size());
      for (Frame.Data d : relayInPending) {
        out.add(new Frame.Data(++seq, d.payload()));
      }
      long peerTo = relayInPending.get(relayInPending.size() - 1).seq();
      events.add(new Relayed(link.peer(), peerTo, out, relayInPending.get(0).seq(), now));
    }
    boolean taken = !events.isEmpty();
    relayInPending.clear();
    relayInPendingBytes = 0;
    relayInRefused = false;
    long acked = Math.max(s.downlinkAcked(), liveDownlinkAcked);
    boolean accepting = acceptPending > s.lastAccepted() && link != null && link.isLinked();
    if (accepting) {
      events.add(acceptRelayed(s, acceptPending, acked, now));
    }
    acceptPending = 0;
    if (events.isEmpty()) {
      return Effect().noReply();
    }
    return Effect().persist(events).thenRun(st -> {
      if (taken) {
        pump(st);
        long peerAcked = st.link().peerAcked(Math.max(st.downlinkAcked(), liveDownlinkAcked));
        peerRef(st.link().peer()).tell(new RelayAck(socketId, st.link().relayIn(), peerAcked, refused));
        if (refused) {
          edgeStalled = true; // reused: report room when the device acknowledges
        }
      }
      if (accepting) {
        while (!relayQueue.isEmpty() && relayQueue.peekFirst().seq() <= st.lastAccepted()) {
          relayQueue.pollFirst();
        }
        if (st.edge() != null && st.status() == Status.OPEN) {
          long buffered = relayQueue.isEmpty() ? st.lastAccepted() : relayQueue.peekLast().seq();
          st.edge().tell(new Delivered(st.lastAccepted(), buffered, false));
        }
      }
      sendRelay(st);
    }).thenNoReply();
  }

  /** The device acknowledged relayed frames: tell the peer, whose device gets its ACK. */
  private void reportPeerAcks(SocketState s) {
    Link link = s.link();
    if (link == null || !link.isLinked()) {
      return;
    }
    long peerAcked = link.peerAcked(liveDownlinkAcked);
    boolean room = outboxFrames(s) <= settings.maxOutboxFrames() / 2 && outboxBytes(s) <= settings.maxOutboxBytes() / 2;
    if (peerAcked > peerAckReported || (edgeStalled && room)) {
      peerAckReported = Math.max(peerAckReported, peerAcked);
      peerRef(link.peer()).tell(new RelayAck(socketId, link.relayIn(), peerAcked, !room));
    }
  }

  // ------------------------------------------------------------------ downlink

  /** Sends outbox frames the edge has not been sent yet, within the downlink window. */
  private void pump(SocketState state) {
    if (state.status() != Status.OPEN || state.edge() == null) {
      return;
    }
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    if (sentUpTo < acked) {
      sentUpTo = acked;
    }
    ActorRef<ToEdge> edge = state.edge();
    sentUpTo = sendInMessages(state.outbox(), sentUpTo, acked + settings.downlinkWindow(),
        frames -> edge.tell(new Push(frames)));
    if (sentUpTo > acked && !timers.isTimerActive(RetryDownlink.INSTANCE)) {
      ackedAtLastRetry = acked;
      timers.startSingleTimer(RetryDownlink.INSTANCE, settings.downlinkRetry());
    }
  }

  /**
   * Sends the frames numbered after {@code after} up to {@code limit} (in ascending order in
   * {@code frames}) in messages of at most {@code maxPushBytes} each, so that every message fits
   * one Artery frame; returns the number of the last frame sent.
   */
  private long sendInMessages(Iterable<Frame.Data> frames, long after, long limit,
      Consumer<List<Frame.Data>> send) {
    List<Frame.Data> batch = new ArrayList<>();
    long bytes = 0;
    long last = after;
    for (Frame.Data d : frames) {
      if (d.seq() <= after) {
        continue;
      }
      if (d.seq() > limit) {
        break;
      }
      if (!batch.isEmpty() && bytes + d.payload().length > settings.maxPushBytes()) {
        send.accept(List.copyOf(batch));
        batch.clear();
        bytes = 0;
      }
      batch.add(d);
      bytes += d.payload().length;
      last = d.seq();
    }
    if (!batch.isEmpty()) {
      send.accept(List.copyOf(batch));
    }
    return last;
  }

  private long outboxBytes(SocketState state) {
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    long bytes = 0;
    for (Frame.Data d : state.outbox()) {
      if (d.seq() > acked) {
        bytes += d.payload().length;
      }
    }
    return bytes;
  }

  private int outboxFrames(SocketState state) {
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    return (int) Math.max(0, state.lastDownlinkSeq() - acked);
  }

  /** An edge that is not (or no longer) the socket's connection learns that its session ended. */
  private ReplyEffect<SocketEvent, SocketState> tellNotAttached(SocketState state, ActorRef<ToEdge> edge) {
    edge.tell(state.status() == Status.OPEN
        ? new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection")
        : new SessionEnded(CloseCode.NORMAL.wire, "socket is not open"));
    return Effect().noReply();
  }

  private SocketStatus status(SocketState s) {
    return new SocketStatus(socketId, s.deviceId(), s.status().name().toLowerCase(),
        s.mapping() == null ? "" : s.mapping().name(), s.mapping() == null ? 0 : s.mapping().version(), node,
        s.edgeNode(), s.lastAccepted(), s.lastDownlinkSeq(), Math.max(s.downlinkAcked(), liveDownlinkAcked),
        outboxFrames(s), s.inFlight() == null ? null : s.inFlight().batchId(), s.counters(),
        s.link() == null ? 0 : s.link().framesIn(), s.openedAt(), s.updatedAt());
  }

  // ------------------------------------------------------------------ event handler

  /** Applying an event needs nothing but the state and the event ({@link #apply}, shared by every entity). */
  @Override
  public EventHandler<SocketState, SocketEvent> eventHandler() {
    return SocketEntity::apply;
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

  static SocketState apply(SocketState state, SocketEvent event) {
    if (event instanceof Accepted e) {
      return state.accepted(e);
    } else if (event instanceof Relayed e) {
      return state.relayed(e);
    } else if (event instanceof DownlinkAcked e) {
      return state.downlinkAcked(e);
    } else if (event instanceof BatchStarted e) {
      return state.batchStarted(e);
    } else if (event instanceof Answered e) {
      return state.answered(e);
    } else if (event instanceof Injected e) {
      return state.answered(e.outbound(), e.at());
    } else if (event instanceof Opened e) {
      return state.opened(e);
    } else if (event instanceof Detached) {
      return state.with(Status.DETACHED, null, "");
    } else if (event instanceof Suspended e) {
      return state.suspended(e);
    } else if (event instanceof Closed e) {
      return state.closed(e);
    } else if (event instanceof LinkRequested e) {
      return state.withLink(Link.fresh(e.linkId(), e.peer(), "waiting", e.at(), e.deadlineMillis(),
          e.closeOnTimeout()), e.at());
    } else if (event instanceof LinkOffered e) {
      return state.withLink(Link.fresh(e.linkId(), e.peer(), "offered", e.at(), 0, false), e.at());
    } else if (event instanceof LinkEstablished e) {
      return state.withLink(state.link() == null
          ? Link.fresh(e.linkId(), e.peer(), "linked", e.at(), 0, false)
          : state.link().withStatus("linked", e.linkId(), e.peer(), e.at()), e.at());
    } else if (event instanceof LinkEnded e) {
      return state.withLink(null, e.at());
    }
    throw new IllegalArgumentException("unexpected event " + event.getClass().getName());
  }
}
