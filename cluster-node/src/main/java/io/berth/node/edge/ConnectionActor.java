package io.berth.node.edge;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingRegistry;
import io.berth.node.metrics.Metrics;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.Sockets;
import io.berth.node.tls.DenyList;
import io.berth.protocol.CloseCode;
import io.berth.protocol.Decoded;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.LinkStatus;
import io.berth.protocol.SocketId;
import io.netty.util.NetUtil;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.DeadLetterSuppression;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Signal;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The actor of one device connection on this node's edge: the handshake, then the bridge between
 * the TCP stream ({@link Connection}) and the socket session, the sharded entity that may live on
 * any node (docs/packages.md#vocabulary).
 *
 * <p>Uplink ({@link Uplink}): frames arrive in batches from the connection; DATA is forwarded to
 * the entity and kept until the entity confirms it ({@code Delivered}), then the device gets a
 * cumulative ACK. While more than {@code window} frames (or {@code window-bytes}) are unconfirmed
 * the actor does not ask for the next batch, so TCP stops reading from the device: a fast device
 * is slowed down, never dropped. If the entity does not answer (node crash, rebalance) the
 * unconfirmed frames are sent again; the entity drops what it already has.
 *
 * <p>Downlink ({@link Downlink}): the entity pushes DATA within its downlink window; the device's
 * ACKs go back to it.
 */
final class ConnectionActor extends AbstractBehavior<Object> {

  /**
   * Asked whether debug lines are wanted before the actor context's logger is, for the lines
   * every connection writes: that logger finds its name by walking the stack on first use, which
   * every connection paid for its "opened" line even with debug off (0.5 to 1 % of a node's CPU
   * while devices connected). The lines themselves go through the context's logger, which adds the
   * node's address.
   */
  private static final Logger classLog = LoggerFactory.getLogger(ConnectionActor.class);

  sealed interface Command {}

  /**
   * The connection, sent by the edge right after it made the connection (which needs this actor's
   * ref first), so that the actor can write before the device sent anything (a redirect while
   * draining).
   */
  record Attach(Connection connection) implements Command {}

  /**
   * Frames read since the last batch, in order; the next comes after {@link Connection#ready}.
   * It carries the connection too: it may overtake the {@link Attach}, which comes from the edge.
   * {@code packetIds}: from the MQTT port, pairs of seq and QoS 1 packet id for the DATA frames
   * among them; null otherwise.
   */
  record Inbound(Connection connection, List<Decoded> frames, long[] packetIds) implements Command {

    Inbound(Connection connection, List<Decoded> frames) {
      this(connection, frames, null);
    }
  }

  enum StreamCompleted implements Command {
    INSTANCE
  }

  record StreamFailed(Throwable cause) implements Command {}


  /** The node is leaving: close with a resumable code so the device reconnects elsewhere. */
  record Shutdown(CloseCode code, String reason) implements Command {}

  private record MappingResolved(Frame.Hello hello, String name, Optional<Mapping> found, Throwable failure)
      implements Command {}

  /** The device's client certificate was denied: ERROR 200 and close (docs/tls.md#deny-list). */
  record Revoked(String reason) implements Command {}

  /** The deny list changed: a connection whose device it now names ends with ERROR 200. */
  enum RecheckDenied implements Command {
    INSTANCE
  }

  /**
   * This node is being drained: send the device to another node (PROTOCOL.md#redirect). With
   * {@code shardsHere}, only when the device's session is not in one of those shards (its
   * session left this node, or never lived here) or the device has not named its socket yet;
   * null redirects whatever the session (docs/drain.md).
   */
  record Redirect(String host, int port, String reason, ShardsHere shardsHere) implements Command {
    Redirect(String host, int port, String reason) {
      this(host, port, reason, null);
    }
  }

  /** The socket shards this node's region holds, of {@code numberOfShards}. */
  record ShardsHere(java.util.Set<String> shards, int numberOfShards) {
    boolean holds(String socketId) {
      return shards.contains(Sockets.shardOf(numberOfShards, socketId));
    }
  }

  /** Frames held for the uplink's rate limit may go now (docs/limits.md). */
  private enum Release implements Command, DeadLetterSuppression {
    INSTANCE
  }

  private enum Phase {
    AWAITING_HELLO,
    /** HELLO accepted, waiting for the entity's WELCOME. */
    OPENING,
    OPEN,
    /** The device sent CLOSE; waiting for the entity to end the socket session. */
    ENDING,
    /** The last frame is written; waiting for TCP to close. */
    CLOSING
  }

  /**
   * @param certifiedDevice the device id the connection's client certificate names (null without
   *     one, empty when it names no valid id): the only device its HELLO may open, token optional
   * @param denyList the devices refused whatever they present, at HELLO and, once open, when the
   *     list changes ({@link RecheckDenied})
   */
  static Behavior<Command> create(
      EdgeSettings settings, InetSocketAddress remote, String edgeNode, String certifiedDevice, DenyList denyList) {
    Behavior<Object> actor = Behaviors.setup(ctx ->
        new ConnectionActor(ctx, settings, remote, edgeNode, certifiedDevice, denyList));
    return actor.narrow();
  }

  /**
   * What the connection's queues start with: an idle connection's stay empty, and the default (16
   * slots) cost 64 bytes more each on every socket; a busy connection's grow a few times and stay
   * grown.
   */
  static final int EMPTY_QUEUE = 1;
  /**
   * While a member was lost lately ({@link #MEMBER_LOST_WINDOW}), how long an open waits for its
   * answer, and unconfirmed frames for progress, before they are sent again (otherwise {@code
   * entity-timeout}): one sent to a node that died meanwhile is lost, and the session's shard
   * moves within seconds (docs/failover.md).
   */
  static final java.time.Duration OPEN_RESEND = java.time.Duration.ofSeconds(1);
  /** How long after a member was lost frames waiting for their session are resent every {@link #OPEN_RESEND}. */
  static final java.time.Duration MEMBER_LOST_WINDOW = java.time.Duration.ofSeconds(30);

  private final EdgeSettings settings;
  /** Filled by {@link Attach} or the first {@link Inbound}. */
  private final ConnectionSlot out = new ConnectionSlot();
  /** MQTT port: the packet id of each DATA frame not yet confirmed, by seq; null until one came. */
  private TreeMap<Long, Integer> packetIds;
  private final InetSocketAddress remote;
  private final String edgeNode;
  /** See {@link #create(EdgeSettings, InetSocketAddress, String, String, DenyList)}. */
  private final String certifiedDevice;
  private final DenyList denyList;
  private final ActorRef<ToEdge> self;
  private final ClusterSharding sharding;
  private final TickSchedule ticks;

  private Phase phase = Phase.AWAITING_HELLO;
  private Frame.Close closeRequest;
  private boolean closeSent;
  private long lastHeartbeatAt = System.nanoTime();
  /**
   * The entity said it sleeps ({@link ToEdge.Sleeping}): no heartbeats, which would
   * wake it, until a message goes to it or comes from it again.
   */
  private boolean entityAsleep;
  /** The entity attached this connection to the socket session ({@link ToEdge.Welcomed}). */
  private boolean welcomed;
  private long lastResyncAt;
  private final long startedAt = System.nanoTime();
  private long lastInboundAt = startedAt;
  /** When the device ended its input, while the entity had not answered for it all; 0 before that. */
  private long inputEndedAt;
  /** The entity was told that the connection ended, and asked to answer ({@link #endAnswered}). */
  private boolean endTold;
  /**
   * After the end of input, the last sign that an answer is still to come: the end itself, the
   * last word to the entity (the end, or frames released by the rate limit), its last answer for
   * frames. Silence is counted from here ({@link #endUnanswered}).
   */
  private long endWaitFrom;
  /**
   * The session no longer takes this connection for attached: it answered the end ({@link
   * ToEdge.Detached}) or ended the session ({@link ToEdge.SessionEnded}).
   */
  private boolean detached;
  /** When the actor last let the connection read on. */
  private long lastReleasedAt = startedAt;
  private long deadline;
  private String socketId;
  private EntityRef<SocketCommand> entity;
  /** The open sent to the entity, until it is answered: sent again, confirmed, when asked. */
  private SocketCommand.Open opening;
  /** The open last sent (with its takeover confirmation, if any), and when. */
  private SocketCommand.Open openSent;
  private long openSentAt;

  /**
   * The last {@link Inbound} is not answered with {@code ready} yet: held while the window is
   * full or frames wait for the handshake, so that the connection stops reading.
   */
  private boolean readHeld;
  /** Frames read and not processed yet; null while none wait (an idle connection's case). */
  private ArrayDeque<Decoded> pending;

  /** Frames sent to the entity and not yet confirmed durable. */
  private final Uplink uplink;
  /** Frames written to the device and not yet acknowledged by it. */
  private final Downlink downlink = new Downlink();
  private final Metrics metrics;

  private ConnectionActor(
      ActorContext<Object> context, EdgeSettings settings,
      InetSocketAddress remote, String edgeNode, String certifiedDevice, DenyList denyList) {
    super(context);
    this.settings = settings;
    this.remote = remote;
    this.edgeNode = edgeNode;
    this.certifiedDevice = certifiedDevice;
    this.denyList = denyList;
    // The socket session's messages come straight to this actor (it takes Object): a message
    // adapter would be a child ref, a name and a path on every connection, idle ones included.
    this.self = context.getSelf().narrow();
    this.sharding = ClusterSharding.get(context.getSystem());
    this.ticks = new TickSchedule(context.getSystem().scheduler(), context.getSelf(), settings.tick());
    this.metrics = Metrics.get(context.getSystem());
    this.uplink = new Uplink(settings, metrics);
  }

  private boolean isQuiet() {
    return phase == Phase.OPEN && uplink.allConfirmed() && downlink.allAcked() && inputEndedAt == 0;
  }

  /** After a message: a sleeping actor that has something in flight again ticks at once. */
  private Behavior<Object> retimed(Behavior<Object> next) {
    ticks.afterMessage(isQuiet());
    return next;
  }

  /** After a tick: a quiet connection's actor sleeps until the nearer of its two deadlines. */
  private Behavior<Object> afterTick(Behavior<Object> next) {
    long due = lastInboundAt + settings.idleTimeout().toNanos();
    if (!entityAsleep) {
      due = Math.min(due, lastHeartbeatAt + settings.entityHeartbeat().toNanos());
    }
    ticks.afterTick(System.nanoTime(), isQuiet(), lastInboundAt, due);
    return next;
  }

  /**
   * One dispatching method instead of a receive builder, whose cases and lambdas would be built
   * again for every actor: one per connection.
   */
  @Override
  public Receive<Object> createReceive() {
    return new Receive<>() {
      @Override
      public Behavior<Object> receiveMessage(Object message) {
        return handle(message);
      }

      @Override
      public Behavior<Object> receiveSignal(Signal signal) {
        if (signal instanceof PostStop) {
          ticks.cancel();
          if (socketId != null) {
            // Its HELLO was admitted: the device's connection no longer counts (docs/limits.md).
            EdgeLimits.get(getContext().getSystem()).gate().release(SocketId.deviceOf(socketId), System.nanoTime());
          }
        }
        return Behaviors.unhandled();
      }
    };
  }

  private Behavior<Object> handle(Object message) {
    if (message instanceof Inbound m) {
      return retimed(onInbound(m));
    } else if (message instanceof ToEdge m) {
      Behavior<Object> next = onEntity(m);
      if (inputEndedAt != 0) {
        if (m instanceof ToEdge.Delivered) {
          // The session answers for frames: it is alive and working through them. Other words
          // from it (downlink pushes it retries, link news) say nothing of an answer to come.
          endWaitFrom = System.nanoTime();
        }
        if (endAnswered()) {
          return stop("connection closed");
        }
      }
      return retimed(next);
    } else if (message instanceof TickSchedule.Wake wake) {
      ticks.woke(wake);
      if (inputEndedAt != 0) {
        long now = System.nanoTime();
        if (endAnswered() || endUnanswered(now)) {
          return stop("connection closed");
        }
        if (endTold && !detached && resendDue(now - endWaitFrom, now)) {
          // Neither the end nor a CLOSE being confirmed was answered: both may have gone to a
          // node that died. Sent again, they reach the session's next incarnation.
          tellEnd(true);
        }
      }
      return afterTick(onTick());
    } else if (message instanceof Attach m) {
      out.attach(m.connection());
      return this;
    } else if (message instanceof MappingResolved m) {
      return retimed(onMappingResolved(m));
    } else if (message instanceof RecheckDenied) {
      if (socketId != null && denyList.matchDevice(SocketId.deviceOf(socketId)).isPresent()) {
        fail(ErrorCode.AUTH_FAILED, Handshake.revoked(SocketId.deviceOf(socketId)));
      }
      return retimed(this);
    } else if (message instanceof Revoked m) {
      fail(ErrorCode.AUTH_FAILED, m.reason());
      return retimed(this);
    } else if (message instanceof Shutdown m) {
      if (phase != Phase.CLOSING) {
        if (phase == Phase.OPEN || phase == Phase.ENDING) {
          metrics.disconnect("node_shutdown");
        }
        close(new Frame.Close(m.code(), m.reason()));
      }
      return retimed(this);
    } else if (message instanceof Redirect m) {
      if (phase != Phase.CLOSING && (m.shardsHere() == null || socketId == null || !m.shardsHere().holds(socketId))) {
        getContext().getLog().debug("Redirecting {} ({}) to {}:{}", remote, socketId, m.host(), m.port());
        if (phase == Phase.OPEN || phase == Phase.ENDING) {
          metrics.disconnect("redirect");
        }
        close(new Frame.Redirect(m.host(), m.port(), m.reason()));
      }
      return retimed(this);
    } else if (message instanceof StreamCompleted) {
      return endOfInput();
    } else if (message instanceof StreamFailed m) {
      // What the device sent before its connection failed is answered for as after a clean end.
      if (classLog.isDebugEnabled()) {
        getContext().getLog().debug("Connection from {} ({}) failed: {}", remote, socketId, m.cause().getMessage());
      }
      return endOfInput();
    } else if (message instanceof Release) {
      ticks.onceArrived();
      drain();
      return retimed(this);
    }
    throw new IllegalArgumentException("unexpected message " + message.getClass().getName());
  }

  // ------------------------------------------------------------------ uplink

  private Behavior<Object> onInbound(Inbound m) {
    out.attach(m.connection());
    if (phase == Phase.CLOSING) {
      out.ready();
      return this;
    }
    readHeld = true;
    lastInboundAt = System.nanoTime();
    if (pending == null) {
      pending = new ArrayDeque<>(Math.max(EMPTY_QUEUE, m.frames().size()));
    }
    pending.addAll(m.frames());
    if (m.packetIds() != null) {
      if (packetIds == null) {
        packetIds = new TreeMap<>();
      }
      for (int i = 0; i + 1 < m.packetIds().length; i += 2) {
        packetIds.put(m.packetIds()[i], (int) m.packetIds()[i + 1]);
      }
    }
    drain();
    return this;
  }

  /** The packet ids of a delivery's frames, for the session to journal; null when none has one. */
  private int[] packetIdsOf(List<Frame.Data> batch) {
    if (packetIds == null || packetIds.isEmpty()) {
      return null;
    }
    int[] ids = new int[batch.size()];
    boolean any = false;
    for (int i = 0; i < ids.length; i++) {
      Integer id = packetIds.get(batch.get(i).seq());
      ids[i] = id == null ? -1 : id;
      any |= id != null;
    }
    return any ? ids : null;
  }

  private boolean hasPending() {
    if (pending != null && pending.isEmpty()) {
      pending = null;
    }
    return pending != null;
  }

  /** Processes pending frames as far as the phase allows. */
  private void drain() {
    List<Frame.Data> forward = null;
    boolean repeatAck = false;
    long now = System.nanoTime();
    while (hasPending() && (phase == Phase.AWAITING_HELLO || phase == Phase.OPEN)) {
      if (phase == Phase.OPEN && heldForLimit(pending.peek(), now)) {
        break;
      }
      Decoded decoded = pending.poll();
      if (decoded instanceof Decoded.Malformed bad) {
        flush(forward);
        fail(bad.code(), bad.reason());
        return;
      }
      Frame frame = ((Decoded.Ok) decoded).frame();
      if (phase == Phase.AWAITING_HELLO) {
        if (frame instanceof Frame.Hello hello) {
          onHello(hello);
        } else {
          fail(ErrorCode.UNEXPECTED_FRAME, "expected HELLO as the first frame, got " + frame.type());
        }
        continue;
      }
      if (frame instanceof Frame.Data data) {
        switch (uplink.take(data.seq())) {
          case ZERO -> {
            // Never a replay: no DATA is numbered 0. Dropping it as one would lose the frame of a
            // device that counts from 0 without telling it (PROTOCOL.md#data).
            flush(forward);
            fail(ErrorCode.BAD_SEQUENCE, "DATA seq 0: sequence numbers start at 1");
            return;
          }
          case REPLAY -> {
            // A replay of a frame the entity has or is about to confirm: acknowledge, do not forward.
            repeatAck = true;
          }
          case GAP -> {
            flush(forward);
            fail(ErrorCode.BAD_SEQUENCE, "DATA seq " + data.seq() + " after " + uplink.highestForwarded()
                + ": sequence numbers must increase by one");
            return;
          }
          case NEXT -> {
            if (forward == null) {
              forward = new ArrayList<>();
            }
            forward.add(data);
          }
        }
      } else if (frame instanceof Frame.Ack ack) {
        // Recorded at once (an error later in this read still counts it); the session hears of
        // it when Downlink#reportDue says so.
        downlink.acked(ack.seq(), now);
      } else if (frame instanceof Frame.Ping ping) {
        offer(new Frame.Pong(ping.nonce()));
      } else if (frame instanceof Frame.Pong) {
        // Keep-alive answer: receiving it already refreshed the idle timer.
      } else if (frame instanceof Frame.Close close) {
        // Frames read before the CLOSE are delivered first (PROTOCOL.md#close), and so is an ACK
        // read before it: once closed, the entity no longer takes this connection's ACKs.
        flush(forward);
        forward = null;
        tellDeviceAck();
        phase = Phase.ENDING;
        closeRequest = close;
        long closeReadAt = System.nanoTime();
        uplink.progressed(closeReadAt);
        // Until the session has taken every frame before the CLOSE, and then the CLOSE itself.
        deadline = closeReadAt + settings.openTimeout().toNanos();
        maybeSendClose();
      } else {
        flush(forward);
        fail(ErrorCode.UNEXPECTED_FRAME, frame.type() + " is not allowed from a device after the handshake");
        return;
      }
    }
    flush(forward);
    if (downlink.reportDue(settings.downlinkAckEvery())) {
      tellDeviceAck();
    }
    if (repeatAck && uplink.lastConfirmed() > 0) {
      offer(new Frame.Ack(uplink.lastConfirmed()));
    }
    releaseStream();
  }

  /** Tells the session of every acknowledgement of the device it has not heard of yet. */
  private void tellDeviceAck() {
    if (downlink.unreported()) {
      tellEntity(new SocketCommand.DownlinkAck(self, downlink.report()));
    }
  }

  /**
   * The next frame is DATA over the uplink's rate limit (docs/limits.md): it stays pending, so the
   * connection is not asked for more and TCP slows the device down, until {@link Release}.
   */
  private boolean heldForLimit(Decoded next, long now) {
    if (!(next instanceof Decoded.Ok ok) || !(ok.frame() instanceof Frame.Data data)) {
      return false;
    }
    long wait = uplink.holdFor(data.payload().length, now);
    if (wait > 0) {
      ticks.once(Release.INSTANCE, wait);
      return true;
    }
    return false;
  }

  /** The entity gets the CLOSE once it has every frame read before it (it flushes them itself). */
  private void maybeSendClose() {
    if (phase == Phase.ENDING && !closeSent && uplink.sessionHasAllTaken()) {
      closeSent = true;
      deadline = System.nanoTime() + settings.closeTimeout().toNanos();
      tellEntity(new SocketCommand.Close(self, closeRequest.code(), closeRequest.reason()));
    }
  }

  /** Queues frames for the entity and sends what the in-flight limit allows. */
  private void flush(List<Frame.Data> forward) {
    if (forward == null || forward.isEmpty()) {
      return;
    }
    long now = System.nanoTime();
    uplink.forward(forward, now);
    if (inputEndedAt != 0) {
      // Released by the rate limit after the end: the session has yet to answer for them.
      endWaitFrom = now;
    }
    sendDeliveries();
  }

  /** Sends the Deliver messages the uplink allows ({@link Uplink#nextDelivery}). */
  private void sendDeliveries() {
    if (entity == null) {
      return;
    }
    for (List<Frame.Data> batch = uplink.nextDelivery(); batch != null; batch = uplink.nextDelivery()) {
      tellEntity(new SocketCommand.Deliver(self, batch, packetIdsOf(batch)));
    }
  }

  /**
   * Lets the stream read more unless frames wait for the handshake or the device exceeded the
   * window it was given in WELCOME. A device within its window is always read, so that its ACKs
   * and PINGs get through even while its DATA waits (PROTOCOL.md#backpressure); reading stops
   * only for a device that ignores the window, and TCP then slows it down.
   */
  private void releaseStream() {
    if (readHeld && !hasPending()
        && (phase == Phase.AWAITING_HELLO || phase == Phase.OPEN)
        && uplink.windowOpen()) {
      readHeld = false;
      lastReleasedAt = System.nanoTime();
      out.ready();
    }
  }

  private void onHello(Frame.Hello hello) {
    Handshake.Refusal refusal = Handshake.check(hello, settings.tokenKeys(), certifiedDevice, Instant.now());
    if (refusal == null && denyList.matchDevice(hello.deviceId()).isPresent()) {
      refusal = new Handshake.Refusal(ErrorCode.AUTH_FAILED, Handshake.revoked(hello.deviceId()));
    }
    if (refusal == null) {
      refusal = EdgeLimits.get(getContext().getSystem()).gate().admit(hello.deviceId(), System.nanoTime());
    }
    if (refusal != null) {
      fail(refusal.code(), refusal.message());
      return;
    }
    String mapping = Handshake.mapping(hello, settings.defaultMapping());
    socketId = SocketId.of(hello.deviceId(), hello.socketName());
    entity = sharding.entityRefFor(Sockets.ENTITY_KEY, socketId);
    phase = Phase.OPENING;
    deadline = System.nanoTime() + settings.openTimeout().toNanos();
    getContext().pipeToSelf(MappingRegistry.get(getContext().getSystem()).find(mapping),
        (found, failure) -> new MappingResolved(hello, mapping, found, failure));
  }

  /** The socket opens with the mapping's current version, which it keeps until it reopens. */
  private Behavior<Object> onMappingResolved(MappingResolved m) {
    if (phase != Phase.OPENING) {
      return this;
    }
    if (m.failure() != null) {
      getContext().getLog().warn("Cannot read mapping '{}': {}", m.name(), m.failure().getMessage());
      fail(ErrorCode.UNAVAILABLE, "the mapping registry is not available; reconnect later");
    } else if (m.found().isEmpty()) {
      Handshake.Refusal unknown = Handshake.unknownMapping(m.hello(), m.name(), settings.defaultMapping());
      fail(unknown.code(), unknown.message());
    } else {
      Frame.Hello hello = m.hello();
      EdgeLimits.Limited limited = EdgeLimits.get(getContext().getSystem()).open(m.found().get());
      uplink.limit(limited.throttle());
      opening = new SocketCommand.Open(hello.deviceId(), limited.mapping(), hello.resume(), hello.lastReceived(),
          self, edgeNode, null, address(remote));
      sendOpen(opening);
    }
    return this;
  }

  // ------------------------------------------------------------------ from the entity

  /** Sends the open (or its confirmed form) and notes it, for sending again while no answer comes. */
  private void sendOpen(SocketCommand.Open open) {
    openSent = open;
    openSentAt = System.nanoTime();
    tellEntity(open);
  }

  /** Anything for the entity but a heartbeat: it wakes the entity if it sleeps. */
  private void tellEntity(SocketCommand command) {
    awake();
    entity.tell(command);
  }

  private void awake() {
    if (entityAsleep) {
      entityAsleep = false;
      long now = System.nanoTime();
      lastHeartbeatAt = now;
      // A quiet connection planned its wake-up for the idle timeout alone: the heartbeat is due first
      // now, or sharding's own idle passivation could stop the entity, taking it for a handoff.
      ticks.wakeWithin(now, settings.entityHeartbeat());
    }
  }

  private Behavior<Object> onEntity(ToEdge message) {
    if (message instanceof ToEdge.Sleeping) {
      entityAsleep = true;
      return this;
    }
    if (message instanceof ToEdge.Detached) {
      detached = true;
      return this;
    }
    awake();
    if (message instanceof ToEdge.Delivered d) {
      onDelivered(d);
    } else if (message instanceof ToEdge.Push p) {
      onPush(p);
    } else if (message instanceof ToEdge.Resume) {
      resendUnconfirmed();
    } else if (message instanceof ToEdge.Moving) {
      // Sent after the entity stopped taking frames: whatever it did not confirm is resent now
      // instead of after entity-timeout; sharding delivers it on the new node.
      resendUnconfirmed();
    } else if (message instanceof ToEdge.LinkChanged l) {
      LinkStatus status = LinkStatus.fromWire(l.status());
      if (status != null && (phase == Phase.OPEN || phase == Phase.ENDING)) {
        offer(new Frame.Link(status, l.peer(), l.reason()));
      }
    } else if (message instanceof ToEdge.Welcomed w) {
      onWelcomed(w);
    } else if (message instanceof ToEdge.ConfirmTakeover c) {
      // Another connection holds the session: this one takes it only while it still waits.
      if (phase == Phase.OPENING && opening != null) {
        sendOpen(opening.confirm(c.attached()));
      }
    } else if (message instanceof ToEdge.DataRefused r) {
      if (phase == Phase.OPEN || phase == Phase.ENDING) {
        ErrorCode code = ErrorCode.fromWire(r.errorCode());
        fail(code != null ? code : ErrorCode.INTERNAL, r.reason());
      }
    } else if (message instanceof ToEdge.OpenRejected r) {
      if (phase == Phase.OPENING) {
        ErrorCode code = ErrorCode.fromWire(r.errorCode());
        fail(code != null ? code : ErrorCode.INTERNAL, r.reason());
      }
    } else if (message instanceof ToEdge.SessionEnded e) {
      // The session let go of this connection: it has nothing more to answer for it.
      detached = true;
      if (phase != Phase.CLOSING) {
        // The answer to the device's own CLOSE counts as the device's leaving.
        metrics.disconnect(phase == Phase.ENDING ? "device" : "session_ended");
        close(new Frame.Close(e.closeCode(), e.reason()));
      }
    }
    return this;
  }

  private void onWelcomed(ToEdge.Welcomed w) {
    if (phase != Phase.OPENING) {
      return;
    }
    phase = Phase.OPEN;
    welcomed = true;
    opening = null;
    openSent = null;
    uplink.start(w.lastAccepted());
    downlink.start(w.downlinkAcked());
    out.opened(new SessionOpened(w.sessionPresent(), w.resendable()));
    offer(Handshake.welcome(w, edgeNode, settings, uplink.limits()));
    metrics.handshake("welcome");
    if (classLog.isDebugEnabled()) {
      getContext().getLog().debug("Socket {} opened from {}", socketId, remote);
    }
    drain();
  }

  private void onDelivered(ToEdge.Delivered d) {
    long taken = uplink.sessionTaken();
    long now = System.nanoTime();
    if (uplink.delivered(d, now) && (phase == Phase.OPEN || phase == Phase.ENDING)) {
      offer(new Frame.Ack(d.upTo()));
    }
    if (phase == Phase.ENDING && !closeSent && uplink.sessionTaken() > taken) {
      // The frames before the CLOSE make progress: a resend after a silence is none.
      deadline = now + settings.openTimeout().toNanos();
    }
    if (packetIds != null) {
      packetIds.headMap(uplink.lastConfirmed(), true).clear();
    }
    sendDeliveries();
    maybeSendClose();
    releaseStream();
  }

  private void onPush(ToEdge.Push p) {
    if (phase != Phase.OPEN) {
      return;
    }
    int written = 0;
    long bytes = 0;
    boolean ackedAgain = false;
    for (Frame.Data d : p.frames()) {
      switch (downlink.push(d.seq(), System.nanoTime())) {
        // Sent again by the entity after a retry or a restart: the device has it or will get it.
        // One it acknowledged already is acknowledged again: the session (a new incarnation, or
        // one whose word of it is still gathering here) would otherwise push it until it hears.
        case WRITTEN -> ackedAgain |= d.seq() <= downlink.deviceAcked();
        case GAP -> {
          // A Push was lost between nodes: never let the device see a gap, ask from where we are.
          resync();
          metrics.downlink(written, bytes);
          return;
        }
        case NEXT -> {
          offer(d);
          written++;
          bytes += d.payload().length;
        }
      }
    }
    metrics.downlink(written, bytes);
    if (ackedAgain) {
      tellEntity(new SocketCommand.DownlinkAck(self, downlink.report()));
    }
  }

  private void resync() {
    long now = System.nanoTime();
    if (now - lastResyncAt > settings.tick().toNanos()) {
      lastResyncAt = now;
      tellEntity(new SocketCommand.Resync(self, downlink.highestPushed()));
    }
  }

  /**
   * Whether unconfirmed frames (or the open) go to the session again, {@code silent} nanoseconds
   * after the last progress (or the last send): after {@code entity-timeout}, or after {@link
   * #OPEN_RESEND} while a member was lost lately, since the session may be starting on another
   * node (docs/failover.md). The edge's state is looked up only then, not on every tick of every
   * connection.
   */
  private boolean resendDue(long silent, long now) {
    if (silent > settings.entityTimeout().toNanos()) {
      return true;
    }
    return silent > OPEN_RESEND.toNanos()
        && EdgeState.get(getContext().getSystem()).memberLostWithin(now, MEMBER_LOST_WINDOW.toNanos());
  }

  /** Go-back-N: everything not confirmed is sent again; the entity drops what it has. */
  private void resendUnconfirmed() {
    uplink.rewind(System.nanoTime());
    sendDeliveries();
  }

  /**
   * The device's address as the socket's status shows it, {@code host:port} ({@code [v6]:port}):
   * the TCP peer, or the PROXY header's source behind a balancer (docs/edge.md#proxy-protocol).
   */
  static String address(InetSocketAddress remote) {
    // RFC 5952's short form for IPv6 ("[2001:db8::7]:4711"), not the JDK's long one.
    return remote == null ? null : NetUtil.toSocketAddressString(remote);
  }

  // ------------------------------------------------------------------ timers

  private Behavior<Object> onTick() {
    long now = System.nanoTime();
    switch (phase) {
      case AWAITING_HELLO -> {
        if (now - startedAt > settings.handshakeTimeout().toNanos()) {
          fail(ErrorCode.HANDSHAKE_TIMEOUT, "no HELLO within " + settings.handshakeTimeout().toSeconds() + " s");
        }
      }
      case OPENING -> {
        if (now > deadline) {
          fail(ErrorCode.UNAVAILABLE, "the socket's session did not answer in time; reconnect later");
        } else if (openSent != null && resendDue(now - openSentAt, now)) {
          // The HELLO is held, not refused: the open may have gone to a node that died, and the
          // session is starting elsewhere (docs/failover.md). A repeated open from this
          // connection is answered as the first one.
          sendOpen(openSent);
        }
      }
      case OPEN -> {
        // Acknowledgements gathered short of a report (Downlink#reportDue) wait at most a tick.
        tellDeviceAck();
        if (hasPending()) {
          // Its frames wait for the uplink's rate limit (docs/limits.md): held by us, not idle.
          lastInboundAt = now;
        }
        if (readHeld && !uplink.allConfirmed() && now - lastReleasedAt < settings.idleTimeout().toNanos()) {
          // We are not reading: the device is blocked by us, not idle. It exceeded its window,
          // so the ack timeout still runs (PROTOCOL.md#backpressure): a device that neither
          // reads nor keeps to its window would otherwise hold the connection forever. And the
          // idle timeout is held off for one idle timeout at most: a device over its window that
          // vanished while its frames wait for an endpoint that is down is closed all the same.
          lastInboundAt = now;
        }
        if (now - lastInboundAt > settings.idleTimeout().toNanos()) {
          fail(ErrorCode.IDLE_TIMEOUT, "no frame for " + settings.idleTimeout().toSeconds() + " s");
        } else if (downlink.overdue(now, settings.ackTimeout().toNanos())) {
          fail(ErrorCode.SLOW_CONSUMER, "downlink frames unacknowledged for "
              + settings.ackTimeout().toSeconds() + " s");
        } else if (!uplink.allConfirmed() && resendDue(uplink.sinceProgress(now), now)) {
          // Frames the entity said it holds (waiting for an endpoint or a linked peer) are sent
          // again only in case it restarted and lost them: expected, so not worth an INFO line.
          String message = "Socket {}: no confirmation for {} frames in {} ms, sending them again";
          long silentMs = TimeUnit.NANOSECONDS.toMillis(uplink.sinceProgress(now));
          if (uplink.sessionHoldsAllUnconfirmed()) {
            getContext().getLog().debug(message, socketId, uplink.unconfirmedCount(), silentMs);
          } else {
            getContext().getLog().info(message, socketId, uplink.unconfirmedCount(), silentMs);
          }
          resendUnconfirmed();
        } else if (!entityAsleep && now - lastHeartbeatAt > settings.entityHeartbeat().toNanos()) {
          // Keeps an attached socket session from being passivated while its device is only pinging.
          lastHeartbeatAt = now;
          entity.tell(new SocketCommand.Heartbeat(self));
        }
      }
      case ENDING -> {
        if (!uplink.allConfirmed() && uplink.sinceProgress(now) > settings.entityTimeout().toNanos()) {
          resendUnconfirmed();
        }
        if (now > deadline) {
          fail(ErrorCode.UNAVAILABLE, "the socket's session did not confirm the close in time");
        }
      }
      case CLOSING -> {
        if (now > deadline) {
          // The device does not read what we write: stop waiting for the flush.
          out.abort("close did not complete in time");
        }
      }
    }
    return this;
  }

  // ------------------------------------------------------------------ closing

  /** Answers with ERROR and closes (PROTOCOL.md#errors). */
  private void fail(ErrorCode code, String message) {
    if (phase == Phase.CLOSING) {
      return;
    }
    if (code != ErrorCode.THROTTLED) {
      getContext().getLog().info("Closing connection from {} ({}): ERROR {} {}", remote,
          socketId == null ? "before handshake" : socketId, code, message);
    } else if (classLog.isDebugEnabled()) {
      // A line per attempt of a device connecting in a tight loop would flood the log.
      getContext().getLog().debug("Closing connection from {}: ERROR {} {}", remote, code, message);
    }
    String label = code.name().toLowerCase(java.util.Locale.ROOT);
    if (phase == Phase.OPEN || phase == Phase.ENDING) {
      metrics.disconnect(label);
    } else {
      metrics.handshake(label);
    }
    close(new Frame.Error(code, message));
  }

  /** Writes a last frame, completes the outbound stream and waits (bounded) for TCP to close. */
  private void close(Frame last) {
    if (phase == Phase.OPEN || phase == Phase.ENDING) {
      // Whatever ends the connection (an error, a redirect, a shutdown), the session hears of
      // every acknowledgement first: the device may be opening it elsewhere already.
      tellDeviceAck();
    }
    pending = null;
    offer(last);
    out.complete();
    phase = Phase.CLOSING;
    deadline = System.nanoTime() + settings.closeLinger().toNanos();
    if (readHeld) {
      // Keep reading (and discarding) so that a device still writing sees our frame and the close.
      readHeld = false;
      out.ready();
    }
  }

  private void offer(Frame frame) {
    if (!out.offer(frame)) {
      getContext().getLog().info("Connection from {} ({}) does not read its frames: aborting", remote, socketId);
      out.abort("outbound buffer full");
    }
  }

  /**
   * The device ended its input. What it sent before may still be on its way to the entity
   * through the shard region (frames, a downlink ACK, a CLOSE), and the entity's death watch on
   * this actor, which takes no such detour, would overtake it: the entity would detach the
   * connection first and drop the rest (PROTOCOL.md: the complete frames before the end are
   * processed). So the actor stays until the entity has answered for all of it; their ACKs still
   * go out on the half of the connection that is open. Bounded: {@code entity-timeout} of silence
   * ({@link #endUnanswered}); a CLOSE, by its own deadlines (ERROR 500); and all of it by {@code
   * close-timeout} after the end.
   */
  private Behavior<Object> endOfInput() {
    if (inputEndedAt == 0) {
      // Only the first end counts: our own abort of a connection that had half-closed fails it
      // once more, and must not start the wait again.
      inputEndedAt = System.nanoTime();
      endWaitFrom = inputEndedAt;
      // At once, not after the frames in flight: a device that reconnects takes the session over
      // from this connection, whose acknowledgements it then no longer takes.
      tellDeviceAck();
    }
    return endAnswered() ? stop("connection closed") : retimed(this);
  }

  /**
   * After the end of input: whether the entity has answered for everything the device sent. Its
   * frames are confirmed (none wait for the rate limit), a CLOSE has gone to it, and an entity
   * that may still take this connection for attached was told the end ({@code EdgeTerminated})
   * and answered {@link ToEdge.Detached}, which it sends after whatever came before. After a
   * CLOSE the answer comes once the close is recorded, or, when an HTTP endpoint is still getting
   * the rest of the data, once the session is detached: the close goes on without the connection,
   * whose device did not wait for it, and its max-connections slot is not held for the
   * endpoint's {@code close-timeout}.
   */
  private boolean endAnswered() {
    boolean inputAnswered = switch (phase) {
      case OPEN -> uplink.nothingInFlight() && !hasPending();
      case ENDING -> closeSent; // the CLOSE waits for the frames before it
      default -> true;
    };
    if (!inputAnswered) {
      return false;
    }
    if (!welcomed || detached) {
      return true;
    }
    if (!endTold) {
      tellEnd(false);
    }
    return false;
  }

  /**
   * Tells the entity the connection ended; told again ({@code again}), the CLOSE being confirmed
   * goes before it once more, since it may have been lost with the same node.
   */
  private void tellEnd(boolean again) {
    endTold = true;
    endWaitFrom = System.nanoTime();
    if (again && phase == Phase.ENDING && closeSent) {
      tellEntity(new SocketCommand.Close(self, closeRequest.code(), closeRequest.reason()));
    }
    tellEntity(new SocketCommand.EdgeTerminated(self, true));
  }

  /**
   * The entity has been silent for {@code entity-timeout} since the last sign that an answer is
   * to come ({@link #endWaitFrom}; its node died, say): the actor stops, and the session's next
   * incarnation learns of the end from its death watch. Not while frames wait for the rate limit
   * (each release restarts the silence), nor while a CLOSE is being confirmed: that has its own
   * deadline (ERROR 500). And never later than {@code close-timeout} after the end, which is
   * also what bounds a rate-limited backlog: one read can hold more than the window.
   */
  private boolean endUnanswered(long now) {
    if (now - inputEndedAt > settings.closeTimeout().toNanos()) {
      return true;
    }
    return phase != Phase.ENDING && !hasPending() && now - endWaitFrom > settings.entityTimeout().toNanos();
  }

  private Behavior<Object> stop(String why) {
    if (phase == Phase.OPEN || phase == Phase.ENDING) {
      metrics.disconnect("device");
    }
    if (classLog.isDebugEnabled()) {
      getContext().getLog().debug("Connection from {} ({}) ended: {}", remote, socketId, why);
    }
    if (welcomed && !detached && !endTold) {
      // A sleeping entity watches nothing: it learns here that its device is gone (an awake one
      // also from its death watch, and takes the second word for a no-op). Told even when the
      // actor thinks the entity awake: its Sleeping may still be on the way.
      tellEntity(SocketCommand.EdgeTerminated.watched(self));
    }
    out.complete();
    return Behaviors.stopped();
  }
}
