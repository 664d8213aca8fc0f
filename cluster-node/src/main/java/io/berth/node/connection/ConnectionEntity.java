package io.berth.node.connection;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.berth.node.balance.LoadRegistry;
import io.berth.node.balance.MigrationLog;
import io.berth.node.balance.SocketMeter;
import io.berth.node.mapping.Batcher;
import io.berth.node.mapping.EndpointCall;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingActor;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.SocketId;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
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
public final class ConnectionEntity
    extends EventSourcedBehaviorWithEnforcedReplies<ConnectionEntity.Command, ConnectionEntity.Event, ConnectionEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "socket");

  // ------------------------------------------------------------------ commands

  public sealed interface Command {}

  /** The edge opens (or resumes) the socket for an authenticated device, with a resolved mapping. */
  public record Open(
      String deviceId,
      Mapping mapping,
      boolean resume,
      long lastReceived,
      ActorRef<ToEdge> edge,
      String edgeNode)
      implements Command, CborSerializable {}

  /** Uplink DATA frames read from the device, in seq order. Hot path: binary serializer. */
  public record Deliver(ActorRef<ToEdge> edge, List<Frame.Data> frames) implements Command {}

  /** The device acknowledged downlink frames up to {@code upTo}. Hot path: binary serializer. */
  public record DownlinkAck(ActorRef<ToEdge> edge, long upTo) implements Command {}

  /** The device (through its edge) ends the session. */
  public record Close(ActorRef<ToEdge> edge, int code, String reason) implements Command, CborSerializable {}

  /** The edge saw a gap in the downlink: push again everything after {@code from}. */
  public record Resync(ActorRef<ToEdge> edge, long from) implements Command, CborSerializable {}

  /** The edge's connection is alive: keeps an attached session from being passivated. */
  public record Heartbeat(ActorRef<ToEdge> edge) implements Command, CborSerializable {}

  public record GetStatus(ActorRef<SocketStatus> replyTo) implements Command, CborSerializable {}

  /** Sends data down the socket from outside ({@code POST /api/sockets/{id}/messages}). */
  public record Inject(byte[] payload, ActorRef<InjectResult> replyTo) implements Command, CborSerializable {}

  /** An operator closes the socket ({@code DELETE /api/sockets/{id}}). */
  public record CloseByOperator(String reason, ActorRef<OperatorCloseResult> replyTo)
      implements Command, CborSerializable {}

  public record InjectResult(boolean accepted, long seq, String problem) implements CborSerializable {}

  public record OperatorCloseResult(boolean closed, String problem) implements CborSerializable {}

  /** The edge holding the device's connection stopped (connection lost, node down). */
  record EdgeTerminated(ActorRef<ToEdge> edge) implements Command {}

  /** Pushed frames are still unacknowledged: push them again if nothing progressed. */
  private enum RetryDownlink implements Command {
    INSTANCE
  }

  /** Something may be ready for the HTTP endpoint: look. */
  private enum Dispatch implements Command {
    INSTANCE
  }

  private record EndpointAnswered(MappingActor.Result result) implements Command {}

  private record CloseByEndpoint(String reason) implements Command {}

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
   * Every uplink frame up to {@code upTo} reached its destination and is durable: the edge ACKs
   * it. Frames up to {@code buffered} have reached the entity (waiting for their batch): the edge
   * may send more. {@code stalled}: frames after the watermark were refused because the outbox is
   * full; a {@link Resume} follows when there is room. Hot path: binary serializer.
   */
  public record Delivered(long upTo, long buffered, boolean stalled) implements ToEdge {}

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
      Mapping mapping,
      ActorRef<ToEdge> edge,
      String edgeNode,
      long downlinkAcked,
      Instant at)
      implements Event {}

  /**
   * Data reached the endpoint: the new watermark (and how far into the next frame delivery got),
   * what it cost, and the endpoint's answers, already numbered. {@code downlinkAcked} folds in the
   * device's acknowledgements seen so far. For an HTTP endpoint, {@code batchId} completes the
   * batch started before, and {@code parkedId} says it was parked instead of delivered.
   */
  public record Accepted(
      long lastAccepted,
      long partialOffset,
      int frames,
      long bytes,
      int duplicates,
      List<Frame.Data> outbound,
      long downlinkAcked,
      String batchId,
      String parkedId,
      Instant at)
      implements Event {}

  /** A batch for the HTTP endpoint, recorded before it is sent: its boundaries and id. */
  public record BatchStarted(String batchId, long seqFrom, int offsetFrom, long seqTo, int offsetTo, boolean endsFrame,
                             Instant at) implements Event {}

  /** The endpoint's answer to an open or close event: downlink frames. */
  public record Answered(String batchId, List<Frame.Data> outbound, Instant at) implements Event {}

  /** Downlink frames sent from outside. */
  public record Injected(List<Frame.Data> outbound, Instant at) implements Event {}

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
      long framesIn, long bytesIn, long duplicates, long framesOut, long bytesOut, long connections, long discarded,
      long batches, long parked)
      implements CborSerializable {
    static final Counters ZERO = new Counters(0, 0, 0, 0, 0, 0, 0, 0, 0);

    Counters in(int frames, long bytes, int dups, List<Frame.Data> out, boolean batch, boolean wasParked) {
      long outBytes = 0;
      for (Frame.Data d : out) {
        outBytes += d.payload().length;
      }
      return new Counters(framesIn + frames, bytesIn + bytes, duplicates + dups, framesOut + out.size(),
          bytesOut + outBytes, connections, discarded, batches + (batch ? 1 : 0), parked + (wasParked ? 1 : 0));
    }

    Counters out(List<Frame.Data> out) {
      return in(0, 0, 0, out, false, false);
    }

    Counters connected() {
      return new Counters(framesIn, bytesIn, duplicates, framesOut, bytesOut, connections + 1, discarded, batches,
          parked);
    }

    Counters discarding(long n) {
      return new Counters(framesIn, bytesIn, duplicates, framesOut, bytesOut, connections, discarded + n, batches,
          parked);
    }
  }

  public record State(
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
      Instant lastDeliveryAt)
      implements CborSerializable {

    static final State EMPTY = new State(Status.NEW, "", null, null, "", 0, 0, null, 0, 0, List.of(), Counters.ZERO,
        null, null, null, null);

    State with(Status status, ActorRef<ToEdge> edge, String edgeNode) {
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, partialOffset, inFlight,
          lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, suspendedOn, lastDeliveryAt);
    }

    State opened(Opened e) {
      long acked = Math.max(downlinkAcked, e.downlinkAcked());
      return new State(Status.OPEN, e.deviceId(), e.mapping(), e.edge(), e.edgeNode(), lastAccepted, partialOffset,
          inFlight, lastDownlinkSeq, acked, trim(outbox, acked), counters.connected(), e.at(), e.at(), suspendedOn,
          lastDeliveryAt);
    }

    State accepted(Accepted e) {
      long acked = Math.max(downlinkAcked, e.downlinkAcked());
      List<Frame.Data> box = append(trim(outbox, acked), e.outbound(), acked);
      boolean batchDone = e.batchId() != null && inFlight != null && inFlight.batchId().equals(e.batchId());
      return new State(status, deviceId, mapping, edge, edgeNode, e.lastAccepted(), e.partialOffset(),
          batchDone ? null : inFlight, lastSeq(e.outbound()), acked, box,
          counters.in(e.frames(), e.bytes(), e.duplicates(), e.outbound(), e.batchId() != null, e.parkedId() != null),
          openedAt, e.at(), null, e.at());
    }

    State batchStarted(BatchStarted e) {
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, partialOffset, e, lastDownlinkSeq,
          downlinkAcked, outbox, counters, openedAt, e.at(), suspendedOn, lastDeliveryAt);
    }

    State answered(List<Frame.Data> out, Instant at) {
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, partialOffset, inFlight,
          lastSeq(out), downlinkAcked, append(outbox, out, downlinkAcked), counters.out(out), openedAt, at,
          suspendedOn, lastDeliveryAt);
    }

    State downlinkAcked(DownlinkAcked e) {
      long acked = Math.max(downlinkAcked, e.upTo());
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, partialOffset, inFlight,
          lastDownlinkSeq, acked, trim(outbox, acked), counters, openedAt, e.at(), suspendedOn, lastDeliveryAt);
    }

    State closed(Closed e) {
      // Discarded downlink frames count as acknowledged so that numbering continues past them.
      return new State(Status.CLOSED, deviceId, mapping, null, "", lastAccepted, partialOffset, null,
          lastDownlinkSeq, lastDownlinkSeq, List.of(), counters.discarding(e.discarded()), openedAt, e.at(), null,
          lastDeliveryAt);
    }

    State suspended(Suspended e) {
      return new State(status, deviceId, mapping, edge, edgeNode, lastAccepted, partialOffset, inFlight,
          lastDownlinkSeq, downlinkAcked, outbox, counters, openedAt, updatedAt, e.node(), e.lastDeliveryAt());
    }

    @JsonIgnore
    boolean isAttached(ActorRef<ToEdge> ref) {
      return status == Status.OPEN && edge != null && edge.equals(ref);
    }

    @JsonIgnore
    boolean usesHttp() {
      return mapping != null && !mapping.isBuiltin();
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

  /** A close the HTTP endpoint must see first: flush the buffer, send the close event, then end. */
  private record CloseRequest(ActorRef<ToEdge> deviceEdge, int code, String reason,
                              ActorRef<OperatorCloseResult> operator) {}

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
  private final ActorRef<MappingActor.Result> endpointReplies;

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
    this.endpointReplies = context.messageAdapter(MappingActor.Result.class, EndpointAnswered::new);
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
          prepareEndpoint(state);
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
        .onCommand(Inject.class, this::onInject)
        .onCommand(CloseByOperator.class, this::onCloseByOperator)
        .onCommand(Dispatch.class, (state, cmd) -> onDispatch(state))
        .onCommand(EndpointAnswered.class, this::onEndpointAnswered)
        .onCommand(CloseByEndpoint.class, this::onCloseByEndpoint)
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
      prepareEndpoint(s);
      if (s.usesHttp() && s.mapping().receives(Mapping.Event.OPEN)) {
        openDue = true;
        dispatch();
      }
    }).thenNoReply();
  }

  private ReplyEffect<Event, State> onDeliver(State state, Deliver cmd) {
    if (!state.isAttached(cmd.edge())) {
      return tellNotAttached(state, cmd.edge());
    }
    if (state.usesHttp() && state.mapping().receives(Mapping.Event.DATA)) {
      return bufferForEndpoint(state, cmd);
    }
    Optional<BuiltinEndpoint> builtin = state.mapping() == null ? Optional.empty()
        : BuiltinEndpoint.named(state.mapping().builtinName());
    BuiltinEndpoint endpoint = builtin.orElse(BuiltinEndpoint.DISCARD);
    long acked = Math.max(state.downlinkAcked(), liveDownlinkAcked);
    int boxFrames = outboxFrames(state);
    long boxBytes = outboxBytes(state);
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
      cmd.edge().tell(new Delivered(watermark, watermark, refused));
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
    if (state.usesHttp()) {
      // The endpoint sees the rest of the data and the close event before the session ends.
      closeRequest = new CloseRequest(cmd.edge(), CloseCode.NORMAL.wire, cmd.reason(), null);
      dispatch();
      return Effect().noReply();
    }
    Closed event = new Closed(cmd.code(), cmd.reason(), outboxFrames(state), Instant.now());
    return Effect().persist(event).thenRun(s -> {
      context.unwatch(cmd.edge());
      cmd.edge().tell(new SessionEnded(CloseCode.NORMAL.wire, "session closed"));
    }).thenNoReply();
  }

  private ReplyEffect<Event, State> onCloseByOperator(State state, CloseByOperator cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new OperatorCloseResult(false, "socket is not open"));
    }
    if (state.usesHttp() && closeRequest == null) {
      closeRequest = new CloseRequest(null, CloseCode.CLOSED_BY_OPERATOR.wire, cmd.reason(), cmd.replyTo());
      dispatch();
      return Effect().noReply();
    }
    ActorRef<ToEdge> edge = state.edge();
    Closed event = new Closed(CloseCode.CLOSED_BY_OPERATOR.wire, cmd.reason(), outboxFrames(state), Instant.now());
    return Effect().persist(event).thenRun(s -> {
      if (edge != null) {
        context.unwatch(edge);
        edge.tell(new SessionEnded(CloseCode.CLOSED_BY_OPERATOR.wire, cmd.reason()));
      }
    }).thenReply(cmd.replyTo(), s -> new OperatorCloseResult(true, null));
  }

  private ReplyEffect<Event, State> onCloseByEndpoint(State state, CloseByEndpoint cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().noReply();
    }
    ActorRef<ToEdge> edge = state.edge();
    if (batcher != null) {
      batcher.clear();
    }
    closeRequest = null;
    Closed event = new Closed(CloseCode.CLOSED_BY_ENDPOINT.wire, cmd.reason(), outboxFrames(state), Instant.now());
    return Effect().persist(event).thenRun(s -> {
      if (edge != null) {
        context.unwatch(edge);
        edge.tell(new SessionEnded(CloseCode.CLOSED_BY_ENDPOINT.wire, cmd.reason()));
      }
    }).thenNoReply();
  }

  private ReplyEffect<Event, State> onInject(State state, Inject cmd) {
    if (state.status() != Status.OPEN && state.status() != Status.DETACHED) {
      return Effect().reply(cmd.replyTo(), new InjectResult(false, 0, "socket is not open"));
    }
    List<Frame.Data> frames = frames(state.lastDownlinkSeq(), cmd.payload());
    if (outboxFrames(state) + frames.size() > settings.maxOutboxFrames()
        || outboxBytes(state) + cmd.payload().length > settings.maxOutboxBytes()) {
      return Effect().reply(cmd.replyTo(), new InjectResult(false, 0, "the socket's outbox is full"));
    }
    return Effect().persist(new Injected(frames, Instant.now())).thenRun(this::pump)
        .thenReply(cmd.replyTo(), s -> new InjectResult(true, s.lastDownlinkSeq(), null));
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

  // ------------------------------------------------------------------ HTTP endpoint

  /** Makes sure the endpoint child and the batcher match the socket's mapping. */
  private void prepareEndpoint(State s) {
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
  private ReplyEffect<Event, State> bufferForEndpoint(State state, Deliver cmd) {
    prepareEndpoint(state);
    long next = Math.max(state.lastAccepted(), batcher.highestSeq());
    int frames = 0;
    long bytes = 0;
    long now = System.nanoTime();
    for (Frame.Data frame : cmd.frames()) {
      if (frame.seq() <= next) {
        continue;
      }
      if (frame.seq() != next + 1) {
        break;
      }
      int from = frame.seq() == state.lastAccepted() + 1 ? (int) state.partialOffset() : 0;
      batcher.add(frame.seq(), frame.payload(), from, now);
      next = frame.seq();
      frames++;
      bytes += frame.payload().length;
    }
    meter.record(frames, bytes);
    cmd.edge().tell(new Delivered(state.lastAccepted(), next, false));
    dispatch();
    return Effect().noReply();
  }

  private void dispatch() {
    if (!dispatchScheduled) {
      dispatchScheduled = true;
      context.getSelf().tell(Dispatch.INSTANCE);
    }
  }

  /** Sends the next thing the endpoint should see, if the endpoint is free: one at a time. */
  private ReplyEffect<Event, State> onDispatch(State s) {
    dispatchScheduled = false;
    boolean live = s.status() == Status.OPEN || s.status() == Status.DETACHED;
    if (!s.usesHttp() || invoking != null || !live) {
      return Effect().noReply();
    }
    prepareEndpoint(s);
    if (openDue) {
      openDue = false;
      invoke(s, socketId + ":open:" + s.counters().connections(), Mapping.Event.OPEN, s.lastAccepted(),
          s.lastAccepted(), null);
      return Effect().noReply();
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

  private void invoke(State s, String batchId, Mapping.Event event, long seqFrom, long seqTo, byte[] data) {
    invoking = batchId;
    endpoint.tell(new MappingActor.Invoke(batchId, event, seqFrom, seqTo, data, endpointReplies));
  }

  private ReplyEffect<Event, State> onEndpointAnswered(State s, EndpointAnswered m) {
    MappingActor.Result result = m.result();
    String batchId = result instanceof MappingActor.Delivered d ? d.batchId() : ((MappingActor.Parked) result).batchId();
    if (!batchId.equals(invoking)) {
      return Effect().noReply(); // from a replaced endpoint actor
    }
    invoking = null;
    EndpointCall.Answer answer = result instanceof MappingActor.Delivered d ? d.answer() : EndpointCall.Answer.NOTHING;
    String parkedId = result instanceof MappingActor.Parked p ? p.parkedId() : null;
    if (answer.link() != null) {
      context.getLog().info("Socket {}: endpoint answered link {}, but peer links are not available", socketId,
          answer.link());
    }
    List<Frame.Data> out = answer.reply() == null ? List.of() : frames(s.lastDownlinkSeq(), answer.reply());
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
      List<Event> events = new ArrayList<>();
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
    return Effect().persist(new Answered(batchId, out, Instant.now())).thenRun(st -> {
      pump(st);
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

  private ReplyEffect<Event, State> finishClose(State s) {
    CloseRequest request = closeRequest;
    closeRequest = null;
    closeEventDone = false;
    ActorRef<ToEdge> attached = s.edge();
    Closed event = new Closed(request.code(), request.reason(), outboxFrames(s), Instant.now());
    return Effect().persist(event).thenRun(st -> {
      if (attached != null) {
        context.unwatch(attached);
        attached.tell(request.code() == CloseCode.NORMAL.wire
            ? new SessionEnded(CloseCode.NORMAL.wire, "session closed")
            : new SessionEnded(request.code(), request.reason()));
      }
      if (request.operator() != null) {
        request.operator().tell(new OperatorCloseResult(true, null));
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
    return new SocketStatus(socketId, s.deviceId(), s.status().name().toLowerCase(),
        s.mapping() == null ? "" : s.mapping().name(), s.mapping() == null ? 0 : s.mapping().version(), node,
        s.edgeNode(), s.lastAccepted(), s.lastDownlinkSeq(), Math.max(s.downlinkAcked(), liveDownlinkAcked),
        outboxFrames(s), s.inFlight() == null ? null : s.inFlight().batchId(), s.counters(), s.openedAt(),
        s.updatedAt());
  }

  // ------------------------------------------------------------------ event handler

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(Opened.class, (state, e) -> state.opened(e))
        .onEvent(Accepted.class, (state, e) -> state.accepted(e))
        .onEvent(BatchStarted.class, (state, e) -> state.batchStarted(e))
        .onEvent(Answered.class, (state, e) -> state.answered(e.outbound(), e.at()))
        .onEvent(Injected.class, (state, e) -> state.answered(e.outbound(), e.at()))
        .onEvent(DownlinkAcked.class, (state, e) -> state.downlinkAcked(e))
        .onEvent(Detached.class, (state, e) -> state.with(Status.DETACHED, null, ""))
        .onEvent(Suspended.class, (state, e) -> state.suspended(e))
        .onEvent(Closed.class, (state, e) -> state.closed(e))
        .build();
  }
}
