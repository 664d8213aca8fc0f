package io.berth.node.connection;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.SocketId;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import io.berth.node.balance.LoadRegistry;
import io.berth.node.balance.MigrationLog;
import io.berth.node.balance.SocketMeter;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.cluster.sharding.typed.HashCodeMessageExtractor;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReplyBuilderByState;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;

/**
 * One device socket (entity type {@code socket}, id = socket id): the session that outlives TCP
 * connections. It keeps the uplink watermark (highest DATA seq that reached the endpoint), the
 * downlink outbox (frames the device has not acknowledged yet), the edge currently holding the
 * device's connection, and counters.
 *
 * <p>Delivery contract (PROTOCOL.md#delivery-contract): a batch of DATA frames is handed to the
 * endpoint, the new watermark and the endpoint's answers are persisted as one event, and only then
 * is the edge told to ACK. Frames at or below the watermark are dropped as replays. Downlink
 * acknowledgements are not persisted one by one: they are folded into the next event (or written
 * when the entity stops), so a crash can only cause a resend that the device drops by seq.
 */
public final class ConnectionEntity
    extends EventSourcedBehaviorWithEnforcedReplies<ConnectionEntity.Command, ConnectionEntity.Event, ConnectionEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "socket");

  // ------------------------------------------------------------------ commands

  public sealed interface Command {}

  /** The edge opens (or resumes) the socket for an authenticated device. */
  public record Open(
      String deviceId,
      String mapping,
      boolean resume,
      long lastReceived,
      ActorRef<ToEdge> edge,
      String edgeNode)
      implements Command, CborSerializable {}

  /** Uplink DATA frames read from the device, in seq order. Hot path: binary serializer. */
  public record Deliver(ActorRef<ToEdge> edge, List<Frame.Data> frames) implements Command {}

  /** The device acknowledged downlink frames up to {@code upTo}. Hot path: binary serializer. */
  public record DownlinkAck(ActorRef<ToEdge> edge, long upTo) implements Command {}

  /** The edge saw a gap in the downlink: push again everything after {@code from}. */
  public record Resync(ActorRef<ToEdge> edge, long from) implements Command, CborSerializable {}

  /** The edge's connection is alive: keeps an attached session from being passivated. */
  public record Heartbeat(ActorRef<ToEdge> edge) implements Command, CborSerializable {}

  /** Pushed frames are still unacknowledged: push them again if nothing progressed. */
  private enum RetryDownlink implements Command {
    INSTANCE
  }

  /** The device (through its edge) ends the session. */
  public record Close(ActorRef<ToEdge> edge, int code, String reason) implements Command, CborSerializable {}

  public record GetStatus(ActorRef<SocketStatus> replyTo) implements Command, CborSerializable {}

  /** The edge holding the device's connection stopped (connection lost, node down). */
  record EdgeTerminated(ActorRef<ToEdge> edge) implements Command {}

  /** Sent by sharding on passivation and handoff. */
  public enum Stop implements Command, CborSerializable {
    INSTANCE
  }

  // ------------------------------------------------------------------ messages to the edge

  /** What a socket entity tells the edge that holds its device's connection. */
  public sealed interface ToEdge {}

  public record Welcomed(String socketId, String node, long lastAccepted, long downlinkAcked)
      implements ToEdge, CborSerializable {}

  public record OpenRejected(int errorCode, String reason) implements ToEdge, CborSerializable {}

  /**
   * Every uplink frame up to {@code upTo} reached the endpoint and is durable. {@code stalled}:
   * frames after it were refused because the outbox is full; a {@link Resume} follows when there
   * is room again. Hot path: binary serializer.
   */
  public record Delivered(long upTo, boolean stalled) implements ToEdge {}

  /** Downlink frames for the device, in seq order. Hot path: binary serializer. */
  public record Push(List<Frame.Data> frames) implements ToEdge {}

  /** The outbox has room again: resend the frames that were refused. */
  public enum Resume implements ToEdge, CborSerializable {
    INSTANCE
  }

  /**
   * The entity is stopping to move (handoff): frames it did not confirm are lost with it, so the
   * edge sends them again at once; sharding buffers them until the shard runs on its new node.
   */
  public enum Moving implements ToEdge, CborSerializable {
    INSTANCE
  }

  /** The session ended or moved to another connection; the edge closes its connection. */
  public record SessionEnded(int closeCode, String reason) implements ToEdge, CborSerializable {}

  // ------------------------------------------------------------------ events

  public sealed interface Event extends CborSerializable {}

  public record Opened(
      String deviceId,
      String mapping,
      ActorRef<ToEdge> edge,
      String edgeNode,
      long downlinkAcked,
      Instant at)
      implements Event {}

  /**
   * One batch reached the endpoint: the new watermark, what it cost, and the endpoint's answers,
   * already numbered. {@code downlinkAcked} folds in the device's acknowledgements seen so far.
   */
  public record Accepted(
      long lastAccepted,
      int frames,
      long bytes,
      int duplicates,
      List<Frame.Data> outbound,
      long downlinkAcked,
      Instant at)
      implements Event {}

  public record DownlinkAcked(long upTo, Instant at) implements Event {}

  public record Detached(Instant at) implements Event {}

  /**
   * The entity stopped while a device was attached (handoff to another node, node shutdown): where
   * it ran and when it last delivered, so that its next incarnation can tell how long delivery
   * paused.
   */
  public record Suspended(String node, Instant lastDeliveryAt, Instant at) implements Event {}

  public record Closed(int code, String reason, long discarded, Instant at) implements Event {}

  // ------------------------------------------------------------------ state

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

  public record Counters(
      long framesIn, long bytesIn, long duplicates, long framesOut, long bytesOut, long connections, long discarded)
      implements CborSerializable {
    static final Counters ZERO = new Counters(0, 0, 0, 0, 0, 0, 0);
  }

  public record State(
      Status status,
      String deviceId,
      String mapping,
      ActorRef<ToEdge> edge,
      String edgeNode,
      long lastAccepted,
      long lastDownlinkSeq,
      long downlinkAcked,
      List<Frame.Data> outbox,
      Counters counters,
      Instant openedAt,
      Instant updatedAt,
      String suspendedOn,
      Instant lastDeliveryAt)
      implements CborSerializable {

    static final State EMPTY =
        new State(Status.NEW, "", "", null, "", 0, 0, 0, List.of(), Counters.ZERO, null, null, null, null);

    State opened(Opened e) {
      long acked = Math.max(downlinkAcked, e.downlinkAcked());
      Counters c = new Counters(counters.framesIn, counters.bytesIn, counters.duplicates,
          counters.framesOut, counters.bytesOut, counters.connections + 1, counters.discarded);
      return new State(Status.OPEN, e.deviceId(), e.mapping(), e.edge(), e.edgeNode(), lastAccepted,
          lastDownlinkSeq, acked, trim(outbox, acked), c, e.at(), e.at(), suspendedOn, lastDeliveryAt);
    }

    State accepted(Accepted e) {
      long acked = Math.max(downlinkAcked, e.downlinkAcked());
      List<Frame.Data> box = new ArrayList<>(outbox.size() + e.outbound().size());
      for (Frame.Data d : outbox) {
        if (d.seq() > acked) {
          box.add(d);
        }
      }
      long outBytes = 0;
      for (Frame.Data d : e.outbound()) {
        outBytes += d.payload().length;
        if (d.seq() > acked) {
          box.add(d);
        }
      }
      long lastSeq = e.outbound().isEmpty() ? lastDownlinkSeq : e.outbound().get(e.outbound().size() - 1).seq();
      Counters c = new Counters(counters.framesIn + e.frames(), counters.bytesIn + e.bytes(),
          counters.duplicates + e.duplicates(), counters.framesOut + e.outbound().size(),
          counters.bytesOut + outBytes, counters.connections, counters.discarded);
      return new State(status, deviceId, mapping, edge, edgeNode, e.lastAccepted(), lastSeq, acked,
          List.copyOf(box), c, openedAt, e.at(), null, e.at());
    }

    State downlinkAcked(DownlinkAcked e) {
      long acked = Math.max(downlinkAcked, e.upTo());
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, lastDownlinkSeq, acked,
          trim(outbox, acked), counters, openedAt, e.at(), suspendedOn, lastDeliveryAt);
    }

    State detached(Detached e) {
      return new State(Status.DETACHED, deviceId, mapping, null, "", lastAccepted, lastDownlinkSeq,
          downlinkAcked, outbox, counters, openedAt, e.at(), suspendedOn, lastDeliveryAt);
    }

    State closed(Closed e) {
      Counters c = new Counters(counters.framesIn, counters.bytesIn, counters.duplicates,
          counters.framesOut, counters.bytesOut, counters.connections, counters.discarded + e.discarded());
      // Discarded downlink frames count as acknowledged so that numbering continues past them.
      return new State(Status.CLOSED, deviceId, mapping, null, "", lastAccepted, lastDownlinkSeq,
          lastDownlinkSeq, List.of(), c, openedAt, e.at(), null, lastDeliveryAt);
    }

    State suspended(Suspended e) {
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, lastDownlinkSeq, downlinkAcked,
          outbox, counters, openedAt, updatedAt, e.node(), e.lastDeliveryAt());
    }

    @JsonIgnore
    boolean isAttached(ActorRef<ToEdge> ref) {
      return status == Status.OPEN && edge != null && edge.equals(ref);
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

  /** What an operator sees of a socket: {@code GET /api/sockets/{id}}. */
  public record SocketStatus(
      String socketId,
      String deviceId,
      String state,
      String mapping,
      String node,
      String edge,
      long lastAccepted,
      long lastDownlinkSeq,
      long downlinkAcked,
      int outboxFrames,
      Counters counters,
      Instant openedAt,
      Instant updatedAt)
      implements CborSerializable {

    @JsonIgnore
    public boolean exists() {
      return !"new".equals(state);
    }
  }

  // ------------------------------------------------------------------ wiring

  public static void init(ActorSystem<?> system, ConnectionSettings settings,
                          ShardCoordinator.ShardAllocationStrategy allocation) {
    ClusterSharding.get(system).init(
        Entity.of(ENTITY_KEY, ctx -> create(ctx.getEntityId(), settings))
            .withStopMessage(Stop.INSTANCE)
            .withAllocationStrategy(allocation));
  }

  /** The shard a socket belongs to: what sharding computes with its default extractor. */
  public static String shardOf(ActorSystem<?> system, String socketId) {
    int shards = system.settings().config().getInt("pekko.cluster.sharding.number-of-shards");
    return new HashCodeMessageExtractor<Command>(shards).shardId(socketId);
  }

  public static Behavior<Command> create(String socketId, ConnectionSettings settings) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new ConnectionEntity(ctx, timers, socketId, settings)));
  }

  private final ActorContext<Command> context;
  private final TimerScheduler<Command> timers;
  private final String socketId;
  private final String shardId;
  private final SocketMeter meter;
  private final ConnectionSettings settings;
  private final String node;

  // Per-incarnation delivery cursors: deliberately not persisted (see class comment).
  private long liveDownlinkAcked;
  private long sentUpTo;
  private boolean edgeStalled;
  private long ackedAtLastRetry = -1;

  private ConnectionEntity(ActorContext<Command> context, TimerScheduler<Command> timers, String socketId,
      ConnectionSettings settings) {
    super(PersistenceId.of(ENTITY_KEY.name(), socketId),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2));
    this.context = context;
    this.timers = timers;
    this.socketId = socketId;
    this.settings = settings;
    this.node = Cluster.get(context.getSystem()).selfMember().address().toString();
    this.shardId = shardOf(context.getSystem(), socketId);
    this.meter = LoadRegistry.get(context.getSystem()).register(socketId, shardId);
  }

  @Override
  public State emptyState() {
    return State.EMPTY;
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    // Older events (echo payloads included) are deleted once a snapshot covers them.
    return RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2).withDeleteEventsOnSnapshot();
  }

  @Override
  public SignalHandler<State> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(PostStop.instance(), state -> LoadRegistry.get(context.getSystem()).unregister(socketId, meter))
        .onSignal(RecoveryCompleted.instance(), state -> {
          liveDownlinkAcked = state.downlinkAcked();
          sentUpTo = state.downlinkAcked();
          if (state.status() == Status.OPEN && state.edge() != null) {
            // If the edge died while this entity was not running, the watch fires at once.
            context.watchWith(state.edge(), new EdgeTerminated(state.edge()));
            // Frames persisted before a crash may never have reached the edge.
            pump(state);
          }
        })
        .build();
  }

  // ------------------------------------------------------------------ command handlers

  @Override
  public CommandHandlerWithReply<Command, Event, State> commandHandler() {
    return attached()
        .orElse(detached())
        .orElse(anyState())
        .build();
  }

  /** A device connection is attached: data flows. */
  private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> attached() {
    return newCommandHandlerWithReplyBuilder()
        .forState(s -> s.status() == Status.OPEN)
        .onCommand(Deliver.class, this::onDeliver)
        .onCommand(DownlinkAck.class, this::onDownlinkAck)
        .onCommand(Close.class, this::onClose)
        .onCommand(Resync.class, this::onResync)
        .onCommand(Heartbeat.class, (state, cmd) -> state.isAttached(cmd.edge())
            ? Effect().noReply() : tellNotAttached(state, cmd.edge()))
        .onCommand(RetryDownlink.class, this::onRetryDownlink)
        .onCommand(EdgeTerminated.class, this::onEdgeTerminated);
  }

  /** New, detached or closed: only an Open brings the socket back; stale edges are told so. */
  private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> detached() {
    return newCommandHandlerWithReplyBuilder()
        .forState(s -> s.status() != Status.OPEN)
        .onCommand(Deliver.class, (state, cmd) -> tellNotAttached(state, cmd.edge()))
        .onCommand(Close.class, (state, cmd) -> tellNotAttached(state, cmd.edge()))
        .onCommand(Heartbeat.class, (state, cmd) -> tellNotAttached(state, cmd.edge()))
        .onCommand(DownlinkAck.class, (state, cmd) -> Effect().noReply())
        .onCommand(Resync.class, (state, cmd) -> Effect().noReply())
        .onCommand(RetryDownlink.class, (state, cmd) -> Effect().noReply())
        .onCommand(EdgeTerminated.class, (state, cmd) -> Effect().noReply());
  }

  private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> anyState() {
    return newCommandHandlerWithReplyBuilder()
        .forAnyState()
        .onCommand(Open.class, this::onOpen)
        .onCommand(GetStatus.class, (state, cmd) -> Effect().reply(cmd.replyTo(), status(state)))
        .onCommand(Stop.class, this::onStop);
  }

  private ReplyEffect<Event, State> onOpen(State state, Open cmd) {
    if (!SocketId.deviceOf(socketId).equals(cmd.deviceId())) {
      // The edge derives socket ids from the authenticated device; this is a second line of defence.
      cmd.edge().tell(new OpenRejected(ErrorCode.AUTH_FAILED.wire,
          "socket " + socketId + " does not belong to device " + cmd.deviceId()));
      return Effect().noReply();
    }
    ActorRef<ToEdge> previous = state.status() == Status.OPEN ? state.edge() : null;
    long acked = cmd.resume() ? Math.max(state.downlinkAcked(), Math.min(cmd.lastReceived(), state.lastDownlinkSeq()))
        : state.downlinkAcked();
    acked = Math.max(acked, liveDownlinkAcked);
    Opened event = new Opened(cmd.deviceId(), cmd.mapping(), cmd.edge(), cmd.edgeNode(), acked, Instant.now());
    return Effect().persist(event).thenRun(s -> {
      if (previous != null && !previous.equals(cmd.edge())) {
        context.unwatch(previous);
        previous.tell(new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection"));
      }
      context.watchWith(cmd.edge(), new EdgeTerminated(cmd.edge()));
      liveDownlinkAcked = s.downlinkAcked();
      sentUpTo = s.downlinkAcked();
      edgeStalled = false;
      cmd.edge().tell(new Welcomed(socketId, node, s.lastAccepted(), s.downlinkAcked()));
      pump(s);
    }).thenNoReply();
  }

  private ReplyEffect<Event, State> onDeliver(State state, Deliver cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    BuiltinEndpoint endpoint = BuiltinEndpoint.named(state.mapping()).orElse(BuiltinEndpoint.DISCARD);
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    int boxFrames = 0;
    long boxBytes = 0;
    for (Frame.Data d : state.outbox()) {
      if (d.seq() > acked) {
        boxFrames++;
        boxBytes += d.payload().length;
      }
    }
    long watermark = state.lastAccepted();
    long nextOut = state.lastDownlinkSeq();
    int frames = 0;
    long bytes = 0;
    int duplicates = 0;
    boolean stalled = false;
    List<Frame.Data> outbound = new ArrayList<>();
    for (Frame.Data frame : cmd.frames()) {
      if (frame.seq() <= watermark) {
        duplicates++;
        continue;
      }
      if (frame.seq() != watermark + 1) {
        break; // a gap: the edge resends from the watermark
      }
      List<byte[]> answers = endpoint.onData(frame);
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
      cmd.edge().tell(new Delivered(watermark, refused));
      // All replays, typically resent after this entity restarted: its answers may still be due.
      pump(state);
      return Effect().noReply();
    }
    Accepted event = new Accepted(watermark, frames, bytes, duplicates, outbound, acked, Instant.now());
    meter.record(frames, bytes);
    boolean resumedAfterMove = state.suspendedOn() != null && !state.suspendedOn().equals(node);
    return Effect().persist(event).thenRun(s -> {
      if (resumedAfterMove) {
        reportMoveCompleted(state, event.at());
      }
      if (refused) {
        edgeStalled = true;
      }
      cmd.edge().tell(new Delivered(s.lastAccepted(), refused));
      pump(s);
    }).thenNoReply();
  }

  private ReplyEffect<Event, State> onDownlinkAck(State state, DownlinkAck cmd) {
    if (state.isAttached(cmd.edge()) && cmd.upTo() > liveDownlinkAcked) {
      liveDownlinkAcked = Math.min(cmd.upTo(), state.lastDownlinkSeq());
      pump(state);
      if (edgeStalled && outboxFrames(state) <= settings.maxOutboxFrames() / 2
          && outboxBytes(state) <= settings.maxOutboxBytes() / 2) {
        edgeStalled = false;
        state.edge().tell(Resume.INSTANCE);
      }
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, State> onResync(State state, Resync cmd) {
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
  private ReplyEffect<Event, State> onRetryDownlink(State state, RetryDownlink cmd) {
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

  private ReplyEffect<Event, State> onClose(State state, Close cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    int pending = outboxFrames(state);
    Closed event = new Closed(cmd.code(), cmd.reason(), pending, Instant.now());
    return Effect().persist(event).thenRun(s -> {
      context.unwatch(cmd.edge());
      cmd.edge().tell(new SessionEnded(CloseCode.NORMAL.wire, "session closed"));
    }).thenNoReply();
  }

  private ReplyEffect<Event, State> onEdgeTerminated(State state, EdgeTerminated cmd) {
    if (!state.isAttached(cmd.edge())) {
      return Effect().noReply();
    }
    return Effect().persist(new Detached(Instant.now())).thenNoReply();
  }

  private ReplyEffect<Event, State> onStop(State state, Stop cmd) {
    // Write what is not yet durable of the session before handing it off.
    List<Event> events = new ArrayList<>();
    Instant now = Instant.now();
    if (liveDownlinkAcked > state.downlinkAcked()) {
      events.add(new DownlinkAcked(liveDownlinkAcked, now));
    }
    if (state.status() == Status.OPEN) {
      events.add(new Suspended(node, state.lastDeliveryAt() != null ? state.lastDeliveryAt() : now, now));
    }
    if (events.isEmpty()) {
      return Effect().stop().thenNoReply();
    }
    ActorRef<ToEdge> edge = state.status() == Status.OPEN ? state.edge() : null;
    return Effect().persist(events).thenRun(s -> {
      if (edge != null) {
        edge.tell(Moving.INSTANCE);
      }
    }).thenStop().thenNoReply();
  }

  /** First delivery on this node after the socket moved here: complete the migration record. */
  private void reportMoveCompleted(State before, Instant at) {
    long pauseMs = Math.max(0, at.toEpochMilli() - before.lastDeliveryAt().toEpochMilli());
    context.getLog().info("Socket {} delivers again on {} after moving from {}: delivery paused {} ms", socketId,
        node, before.suspendedOn(), pauseMs);
    MigrationLog.get(context.getSystem()).completed(socketId, shardId, node, pauseMs, at);
  }

  // ------------------------------------------------------------------ downlink

  /** Sends outbox frames the edge has not been sent yet, within the downlink window. */
  private void pump(State state) {
    if (state.status() != Status.OPEN || state.edge() == null) {
      return;
    }
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    if (sentUpTo < acked) {
      sentUpTo = acked;
    }
    long limit = acked + settings.downlinkWindow();
    List<Frame.Data> batch = new ArrayList<>();
    long bytes = 0;
    for (Frame.Data d : state.outbox()) {
      if (d.seq() <= sentUpTo || d.seq() > limit) {
        continue;
      }
      if (!batch.isEmpty() && bytes + d.payload().length > settings.maxPushBytes()) {
        // Each Push must fit one Artery message: send what we have and start another.
        state.edge().tell(new Push(List.copyOf(batch)));
        batch.clear();
        bytes = 0;
      }
      batch.add(d);
      bytes += d.payload().length;
      sentUpTo = d.seq();
    }
    if (!batch.isEmpty()) {
      state.edge().tell(new Push(List.copyOf(batch)));
    }
    if (sentUpTo > acked && !timers.isTimerActive(RetryDownlink.INSTANCE)) {
      ackedAtLastRetry = acked;
      timers.startSingleTimer(RetryDownlink.INSTANCE, settings.downlinkRetry());
    }
  }

  private long outboxBytes(State state) {
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    long bytes = 0;
    for (Frame.Data d : state.outbox()) {
      if (d.seq() > acked) {
        bytes += d.payload().length;
      }
    }
    return bytes;
  }

  private int outboxFrames(State state) {
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    return (int) Math.max(0, state.lastDownlinkSeq() - acked);
  }

  /** An edge that is not (or no longer) the socket's connection learns that its session ended. */
  private ReplyEffect<Event, State> tellNotAttached(State state, ActorRef<ToEdge> edge) {
    edge.tell(state.status() == Status.OPEN
        ? new SessionEnded(CloseCode.REPLACED.wire, "socket opened by a newer connection")
        : new SessionEnded(CloseCode.NORMAL.wire, "socket is not open"));
    return Effect().noReply();
  }

  private SocketStatus status(State s) {
    return new SocketStatus(socketId, s.deviceId(), s.status().name().toLowerCase(), s.mapping(), node,
        s.edgeNode(), s.lastAccepted(), s.lastDownlinkSeq(), Math.max(s.downlinkAcked(), liveDownlinkAcked),
        outboxFrames(s), s.counters(), s.openedAt(), s.updatedAt());
  }

  // ------------------------------------------------------------------ event handler

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(Opened.class, (state, e) -> state.opened(e))
        .onEvent(Accepted.class, (state, e) -> state.accepted(e))
        .onEvent(DownlinkAcked.class, (state, e) -> state.downlinkAcked(e))
        .onEvent(Detached.class, (state, e) -> state.detached(e))
        .onEvent(Closed.class, (state, e) -> state.closed(e))
        .onEvent(Suspended.class, (state, e) -> state.suspended(e))
        .build();
  }
}
