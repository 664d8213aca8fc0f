package io.berth.node.edge;

import io.berth.node.edge.api.EdgeControl;
import io.berth.node.socket.api.Sockets;
import io.berth.node.tls.CertificateIdentity;
import io.berth.node.tls.DenyList;
import io.berth.node.tls.EdgeTls;
import io.berth.protocol.CloseCode;
import java.security.cert.X509Certificate;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The TCP edge of a node: gives each device connection that its {@link EdgeSockets} accept a
 * {@link ConnectionActor} and a {@link Connection} between the two. Accepting is backpressured
 * too: past {@code max-connections} the sockets stop accepting until a connection ends. On
 * shutdown it unbinds, then closes every connection with a resumable close code so that devices
 * reconnect to another node while this one hands its shards off.
 */
public final class EdgeServer {

  public sealed interface Command {}

  private record Accepted(Connection connection) implements Command {}

  /** The deny list changed: close the connections whose certificate it now denies. */
  private enum DenyListChanged implements Command {
    INSTANCE
  }

  private record ActorStopped(ActorRef<ConnectionActor.Command> actor) implements Command {}

  /** A member became unreachable or was removed: sessions that lived there start elsewhere. */
  private enum MemberLost implements Command {
    INSTANCE
  }

  private record Unbind(ActorRef<Done> replyTo) implements Command {}

  private record CloseConnections(ActorRef<Done> replyTo) implements Command {}

  /** The node is being drained: redirect every device, and every new one, to other nodes. */
  private enum Drain implements Command {
    INSTANCE
  }

  private enum Undrain implements Command {
    INSTANCE
  }

  /** While draining: time to ask the local region which socket shards are still here. */
  private record DrainTick(long drain) implements Command {}

  /** The region's answer: the socket shards this node holds, or why it did not answer. */
  private record RegionShards(long drain, Set<String> shards, Throwable failure) implements Command {}

  /** How often a draining edge asks its region which shards are left. */
  private static final Duration DRAIN_POLL = Duration.ofMillis(250);

  /** Coordinated-shutdown reason when the edge cannot listen: the node cannot serve devices. */
  public static final CoordinatedShutdown.Reason BIND_FAILED = new CoordinatedShutdown.Reason() {
    @Override
    public String toString() {
      return "EdgeBindFailed";
    }
  };

  public static Behavior<Command> create(EdgeSettings settings) {
    return create(settings, new DenyList());
  }

  /**
   * @param denyList client certificates refused although their CA is trusted: checked in each
   *     TLS handshake, and a connection open with one that becomes denied is closed
   */
  public static Behavior<Command> create(EdgeSettings settings, DenyList denyList) {
    return Behaviors.setup(ctx -> new EdgeServer(ctx, settings, denyList).binding());
  }

  /** What load balancing reads of this edge and tells it; the drain mark reaches it as a message. */
  public static EdgeControl control(ActorSystem<?> system, ActorRef<Command> edge) {
    return new Control(EdgeState.get(system), edge);
  }

  private record Control(EdgeState state, ActorRef<Command> edge) implements EdgeControl {
    @Override
    public int connections() {
      return state.connections();
    }

    @Override
    public void setDraining(boolean draining) {
      // Set here rather than when the edge takes the message: readiness reports the mark at once.
      state.setDraining(draining);
      edge.tell(draining ? Drain.INSTANCE : Undrain.INSTANCE);
    }
  }

  private final ActorContext<Command> ctx;
  private final EdgeSettings settings;
  private final DenyList denyList;
  /** Null on a plaintext port. */
  private EdgeTls tls;
  private final String edgeNode;
  private final EdgeState state;
  /** Each connection's actor, and its connection. */
  private final Map<ActorRef<ConnectionActor.Command>, Connection> connections = new HashMap<>();
  private final List<ActorRef<Done>> waitingForConnections = new ArrayList<>();
  private EdgeSockets sockets;
  /** The WebSocket port's and the MQTT port's; null when off. */
  private EdgeSockets websockets;
  private EdgeSockets mqtt;
  private long counter;
  private boolean draining;
  /** Counts drains, so that the ticks and answers of an earlier one are told apart. */
  private long drain;
  private long drainStartedAt;
  /** The socket shards here at the last answer: devices are told again only when it changes. */
  private Set<String> shardsHere;
  private int nextTarget;

  private EdgeServer(ActorContext<Command> ctx, EdgeSettings settings, DenyList denyList) {
    this.ctx = ctx;
    this.settings = settings;
    this.denyList = denyList;
    this.edgeNode = Cluster.get(ctx.getSystem()).selfMember().address().toString();
    this.state = EdgeState.get(ctx.getSystem());
  }

  private Behavior<Command> binding() {
    ActorSystem<Void> system = ctx.getSystem();
    ActorRef<Command> self = ctx.getSelf();
    try {
      if (settings.tls().enabled()) {
        // The edge's setup timer bounds the PROXY header and the handshake together: no second timer.
        tls = EdgeTls.start(settings.tls(), Duration.ZERO, denyList);
      }
      sockets = EdgeSockets.bind(settings.socketOptions(tls == null ? null : tls::newHandler),
          state.refusalCounts(), state.backlog(), connection -> self.tell(new Accepted(connection)));
      if (settings.websocket().enabled()) {
        websockets = EdgeSockets.bind(settings.websocketOptions(tls == null ? null : tls::newHandler),
            state.refusalCounts(), state.backlog(), connection -> self.tell(new Accepted(connection)));
      }
      if (settings.mqtt().enabled()) {
        mqtt = EdgeSockets.bind(settings.mqttOptions(tls == null ? null : tls::newHandler),
            state.refusalCounts(), state.backlog(), connection -> self.tell(new Accepted(connection)));
      }
    } catch (IOException | RuntimeException e) {
      ctx.getLog().error("Cannot listen for devices on {}:{}{}{}: {}", settings.host(), settings.port(),
          settings.websocket().enabled() ? ", " + settings.websocket().port() : "",
          settings.mqtt().enabled() ? ", " + settings.mqtt().port() : "", e.getMessage());
      for (EdgeSockets bound : new EdgeSockets[] {sockets, websockets, mqtt}) {
        if (bound != null) {
          bound.close();
        }
      }
      if (tls != null) {
        tls.close();
      }
      CoordinatedShutdown.get(system).run(BIND_FAILED);
      return Behaviors.stopped();
    }
    state.setAccepting(true);
    ctx.getLog().info("Edge listening for devices on {} ({}; {})", localAddress(),
        tls == null ? "plaintext: TLS is off" : "TLS, " + tls.provider() + " provider, client certificates "
            + settings.tls().clientAuth().name().toLowerCase(java.util.Locale.ROOT),
        sockets.transport());
    if (websockets != null) {
      ctx.getLog().info("Edge listening for WebSocket devices on {}://{}{}", tls == null ? "ws" : "wss",
          websockets.localAddress(), settings.websocket().path());
    }
    if (mqtt != null) {
      ctx.getLog().info("Edge listening for MQTT clients on {}{}", mqtt.localAddress(),
          tls == null ? " (plaintext)" : " (TLS)");
    }
    Runnable stopListening = denyList.addListener(entries -> self.tell(DenyListChanged.INSTANCE));
    // Connections waiting on a session whose node is gone send their frames (or their open)
    // again sooner than entity-timeout while this lasts (docs/failover.md).
    Cluster cluster = Cluster.get(system);
    cluster.subscriptions().tell(org.apache.pekko.cluster.typed.Subscribe.create(
        ctx.messageAdapter(org.apache.pekko.cluster.ClusterEvent.UnreachableMember.class, e -> MemberLost.INSTANCE),
        org.apache.pekko.cluster.ClusterEvent.UnreachableMember.class));
    cluster.subscriptions().tell(org.apache.pekko.cluster.typed.Subscribe.create(
        ctx.messageAdapter(org.apache.pekko.cluster.ClusterEvent.MemberRemoved.class, e -> MemberLost.INSTANCE),
        org.apache.pekko.cluster.ClusterEvent.MemberRemoved.class));

    CoordinatedShutdown shutdown = CoordinatedShutdown.get(system);
    Duration ask = Duration.ofSeconds(4);
    shutdown.addTask(CoordinatedShutdown.PhaseServiceUnbind(), "berth-edge-unbind",
        () -> AskPattern.ask(ctx.getSelf(), Unbind::new, ask, system.scheduler()));
    shutdown.addTask(CoordinatedShutdown.PhaseServiceRequestsDone(), "berth-edge-close-connections",
        () -> AskPattern.ask(ctx.getSelf(), CloseConnections::new, ask, system.scheduler()));

    return Behaviors.receive(Command.class)
        .onMessage(Accepted.class, this::onAccepted)
        .onMessage(MemberLost.class, m -> {
          state.markMemberLost(System.nanoTime());
          return Behaviors.same();
        })
        .onMessage(ActorStopped.class, m -> {
          // An actor that failed did not complete its outbound side: abort now. One that ended
          // normally did, and its last frames are flushing; if the device does not read them,
          // the connection is aborted after close-linger. This is the only backstop: TCP's own
          // idle timeout would be a periodic timer on every connection (docs/edge.md).
          Connection connection = connections.remove(m.actor());
          if (connection != null) {
            connection.ownerStopped();
            system.scheduler().scheduleOnce(settings.closeLinger(),
                () -> connection.abort(new IllegalStateException("not closed within close-linger")),
                ctx.getExecutionContext());
          }
          state.setConnections(connections.size());
          if (connections.isEmpty()) {
            waitingForConnections.forEach(r -> r.tell(Done.getInstance()));
            waitingForConnections.clear();
          }
          return Behaviors.same();
        })
        .onMessage(Drain.class, m -> {
          if (draining) {
            return Behaviors.same();
          }
          draining = true;
          drain++;
          drainStartedAt = System.nanoTime();
          shardsHere = null;
          Map<EdgeKind, List<LoadViewTargets.Target>> targets = targets();
          if (targets.get(EdgeKind.DEVICE).isEmpty()) {
            ctx.getLog().warn("Draining, but no other node publishes an edge: {} devices stay connected",
                connections.size());
          } else {
            ctx.getLog().info("Draining: redirecting {} devices to {} as their sessions leave, all within {} s",
                connections.size(), targets, settings.drainHold().toSeconds());
          }
          ctx.getSelf().tell(new DrainTick(drain));
          return Behaviors.same();
        })
        .onMessage(Undrain.class, m -> {
          draining = false;
          return Behaviors.same();
        })
        .onMessage(DrainTick.class, this::onDrainTick)
        .onMessage(RegionShards.class, this::onRegionShards)
        .onMessage(Unbind.class, m -> {
          state.setAccepting(false);
          CompletionStage<Void> unbound = sockets.unbind();
          for (EdgeSockets more : new EdgeSockets[] {websockets, mqtt}) {
            if (more != null) {
              unbound = unbound.thenCombine(more.unbind(), (a, b) -> null);
            }
          }
          ctx.pipeToSelf(unbound, (ok, err) -> new Unbound(m.replyTo()));
          return Behaviors.same();
        })
        .onMessage(Unbound.class, m -> {
          ctx.getLog().info("Edge stopped listening");
          m.replyTo().tell(Done.getInstance());
          return Behaviors.same();
        })
        .onMessage(CloseConnections.class, m -> {
          state.setAccepting(false);
          if (connections.isEmpty()) {
            m.replyTo().tell(Done.getInstance());
          } else {
            ctx.getLog().info("Closing {} device connections: node shutting down", connections.size());
            waitingForConnections.add(m.replyTo());
            connections.keySet().forEach(a -> a.tell(new ConnectionActor.Shutdown(CloseCode.NODE_SHUTDOWN,
                "node is shutting down; reconnect to another node")));
          }
          return Behaviors.same();
        })
        .onMessage(DenyListChanged.class, m -> {
          closeDenied();
          return Behaviors.same();
        })
        .onSignal(PostStop.class, signal -> {
          stopListening.run();
          sockets.close();
          if (websockets != null) {
            websockets.close();
          }
          if (mqtt != null) {
            mqtt.close();
          }
          if (tls != null) {
            tls.close();
          }
          return Behaviors.same();
        })
        .build();
  }

  private String localAddress() {
    return sockets.localAddress().toString();
  }

  private record Unbound(ActorRef<Done> replyTo) implements Command {}

  private Behavior<Command> onAccepted(Accepted m) {
    Connection connection = m.connection();
    InetSocketAddress remote = connection.remote();
    ActorRef<ConnectionActor.Command> actor;
    try {
      actor = ctx.spawn(ConnectionActor.create(settings, remote, edgeNode, certifiedDevice(connection), denyList),
          "connection-" + ++counter);
    } catch (RuntimeException e) {
      ctx.getLog().error("Cannot start an actor for the device connection from {}", remote, e);
      connection.abort(e);
      return Behaviors.same();
    }
    ctx.watchWith(actor, new ActorStopped(actor));
    connections.put(actor, connection);
    state.setConnections(connections.size());
    actor.tell(new ConnectionActor.Attach(connection));
    connection.start(actor);
    if (draining) {
      redirect(actor, targets(), null);
    }
    return Behaviors.same();
  }

  /**
   * The device the connection's client certificate names: null without a certificate, empty when
   * it names no valid device id (every HELLO is then refused, saying why).
   */
  private String certifiedDevice(Connection connection) {
    X509Certificate certificate = connection.clientCertificate();
    if (certificate == null) {
      return null;
    }
    CertificateIdentity.Result identity = CertificateIdentity.of(certificate, settings.tls().identity());
    if (identity instanceof CertificateIdentity.Identified id) {
      return id.deviceId();
    }
    ctx.getLog().info("Client certificate from {} names no device: {}", connection.remote(),
        ((CertificateIdentity.Refused) identity).reason());
    return "";
  }

  /**
   * Ends, with ERROR 200, every connection whose certificate the deny list now holds; every
   * connection checks its device against it too ({@link ConnectionActor.RecheckDenied}).
   */
  private void closeDenied() {
    connections.forEach((actor, connection) -> {
      actor.tell(ConnectionActor.RecheckDenied.INSTANCE);
      X509Certificate certificate = connection.clientCertificate();
      if (certificate != null) {
        denyList.match(certificate).ifPresent(entry -> {
          ctx.getLog().info("Closing the connection from {}: its client certificate is denied ({} {})",
              connection.remote(), entry.kind().name().toLowerCase(java.util.Locale.ROOT), entry.value());
          actor.tell(new ConnectionActor.Revoked("the client certificate was revoked"));
        });
      }
    });
  }

  /**
   * A drain redirects each device once its session has left: the shard moves first (sharding's
   * hand-off, while the device stays connected here and is served), then the device resumes
   * on another node where the session already is, instead of waiting there for the hand-off
   * (docs/drain.md). Past {@code drain-hold} every device is redirected.
   */
  private Behavior<Command> onDrainTick(DrainTick tick) {
    if (!draining || tick.drain() != drain) {
      return Behaviors.same();
    }
    if (System.nanoTime() - drainStartedAt > settings.drainHold().toNanos()) {
      Map<EdgeKind, List<LoadViewTargets.Target>> targets = targets();
      ctx.getLog().warn("Drain: {} devices whose sessions have not left within {} s are redirected now",
          connections.size(), settings.drainHold().toSeconds());
      connections.keySet().forEach(a -> redirect(a, targets, null));
      return Behaviors.same();
    }
    ctx.ask(ShardRegion.CurrentShardRegionState.class, ClusterSharding.get(ctx.getSystem()).shardState(),
        Duration.ofSeconds(5), replyTo -> new GetShardRegionState(Sockets.ENTITY_KEY, replyTo),
        (state, failure) -> new RegionShards(tick.drain(), state == null ? null : shards(state), failure));
    return Behaviors.same();
  }

  /** Every shard the region holds: those that answered and those that did not in time. */
  private static Set<String> shards(ShardRegion.CurrentShardRegionState state) {
    Set<String> shards = new HashSet<>(state.getFailed());
    state.getShards().forEach(s -> shards.add(s.shardId()));
    return shards;
  }

  private Behavior<Command> onRegionShards(RegionShards m) {
    if (!draining || m.drain() != drain) {
      return Behaviors.same();
    }
    Map<EdgeKind, List<LoadViewTargets.Target>> targets = targets();
    if (m.failure() != null) {
      ctx.getLog().debug("Drain: the shard region did not say which shards are here: {}", m.failure().getMessage());
    } else if (targets.values().stream().allMatch(List::isEmpty)) {
      // No other node publishes an edge: the set is not taken as told, so that devices hear it
      // once one does (within drain-hold). A kind with no listener elsewhere (WebSocket, MQTT)
      // stays connected, as it always did (redirect).
      shardsHere = null;
    } else if (!m.shards().equals(shardsHere)) {
      shardsHere = m.shards();
      ConnectionActor.ShardsHere here = new ConnectionActor.ShardsHere(Set.copyOf(shardsHere),
          Sockets.numberOfShards(ctx.getSystem()));
      connections.keySet().forEach(a -> redirect(a, targets, here));
      if (shardsHere.isEmpty()) {
        // Every session has left: every device was told; later ones are redirected as they come.
        ctx.getLog().info("Drain: no socket shard left here, {} s after the drain began",
            String.format(java.util.Locale.ROOT, "%.1f", (System.nanoTime() - drainStartedAt) / 1e9));
        return Behaviors.same();
      }
    }
    ctx.scheduleOnce(DRAIN_POLL, ctx.getSelf(), new DrainTick(m.drain()));
    return Behaviors.same();
  }

  /** Where each kind of device may be redirected now: other nodes' listeners of its kind. */
  private Map<EdgeKind, List<LoadViewTargets.Target>> targets() {
    Map<EdgeKind, List<LoadViewTargets.Target>> byKind = new java.util.EnumMap<>(EdgeKind.class);
    for (EdgeKind kind : EdgeKind.values()) {
      byKind.put(kind, LoadViewTargets.of(ctx.getSystem(), kind));
    }
    return byKind;
  }

  /**
   * Spreads redirected devices over the other nodes in turn, each to the listener of its kind: a
   * device on the WebSocket port to another node's WebSocket port. With no such node it stays.
   */
  private void redirect(ActorRef<ConnectionActor.Command> actor, Map<EdgeKind, List<LoadViewTargets.Target>> byKind,
                        ConnectionActor.ShardsHere unlessHere) {
    Connection connection = connections.get(actor);
    List<LoadViewTargets.Target> targets = byKind.get(connection == null ? EdgeKind.DEVICE : connection.kind());
    if (targets.isEmpty()) {
      return;
    }
    LoadViewTargets.Target t = targets.get(Math.floorMod(nextTarget++, targets.size()));
    actor.tell(new ConnectionActor.Redirect(t.host(), t.port(), "node is draining; resume on " + t.host() + ":"
        + t.port(), unlessHere));
  }
}
