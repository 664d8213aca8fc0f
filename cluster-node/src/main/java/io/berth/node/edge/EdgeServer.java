package io.berth.node.edge;

import io.berth.protocol.CloseCode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Tcp;
import org.apache.pekko.stream.typed.javadsl.ActorSink;

/**
 * The TCP edge of a node: accepts device connections and gives each its {@link DeviceSession}.
 * Accepting is backpressured too: past {@code max-connections} the edge stops accepting until a
 * connection ends. On shutdown it unbinds, then closes every session with a resumable close code
 * so that devices reconnect to another node while this one hands its shards off.
 */
public final class EdgeServer {

  public sealed interface Command {}

  private record Bound(Tcp.ServerBinding binding) implements Command {}

  private record BindFailed(Throwable cause) implements Command {}

  private record AcceptInit(ActorRef<AcceptAck> ackTo) implements Command {}

  private record Accepted(ActorRef<AcceptAck> ackTo, Tcp.IncomingConnection connection) implements Command {}

  private enum AcceptsEnded implements Command {
    INSTANCE
  }

  private record AcceptsFailed(Throwable cause) implements Command {}

  private record SessionStopped(ActorRef<DeviceSession.Command> session) implements Command {}

  private record Unbind(ActorRef<Done> replyTo) implements Command {}

  private record CloseSessions(ActorRef<Done> replyTo) implements Command {}

  private enum AcceptAck {
    INSTANCE
  }

  /** The node is being drained: redirect every device, and every new one, to other nodes. */
  public enum Drain implements Command {
    INSTANCE
  }

  public enum Undrain implements Command {
    INSTANCE
  }

  /** Coordinated-shutdown reason when the edge cannot listen: the node cannot serve devices. */
  public static final CoordinatedShutdown.Reason BIND_FAILED = new CoordinatedShutdown.Reason() {
    @Override
    public String toString() {
      return "EdgeBindFailed";
    }
  };

  public static Behavior<Command> create(EdgeSettings settings) {
    return Behaviors.setup(ctx -> new EdgeServer(ctx, settings).binding());
  }

  private final ActorContext<Command> ctx;
  private final EdgeSettings settings;
  private final String edgeNode;
  private final EdgeState state;
  private final Map<ActorRef<DeviceSession.Command>, ConnectionStage.Connection> sessions = new HashMap<>();
  private final List<ActorRef<Done>> waitingForSessions = new ArrayList<>();
  private Tcp.ServerBinding binding;
  private ActorRef<AcceptAck> heldAccept;
  private long counter;
  private boolean draining;
  private int nextTarget;

  private EdgeServer(ActorContext<Command> ctx, EdgeSettings settings) {
    this.ctx = ctx;
    this.settings = settings;
    this.edgeNode = Cluster.get(ctx.getSystem()).selfMember().address().toString();
    this.state = EdgeState.get(ctx.getSystem());
  }

  private Behavior<Command> binding() {
    ActorSystem<Void> system = ctx.getSystem();
    // No TCP idle timeout: sessions enforce the protocol's timeouts with an ERROR frame, and a
    // connection outliving its session is aborted after close-linger (SessionStopped).
    // Half-close: finishing our side sends FIN after the last frame but keeps reading, so an
    // ERROR reaches a device that is still writing instead of being lost to a TCP reset.
    CompletionStage<Tcp.ServerBinding> bound = Tcp.get(system)
        .bind(settings.host(), settings.port(), settings.backlog(), List.of(), true, Optional.empty())
        .to(ActorSink.actorRefWithBackpressure(ctx.getSelf(), Accepted::new, AcceptInit::new,
            AcceptAck.INSTANCE, AcceptsEnded.INSTANCE, AcceptsFailed::new))
        .run(system);
    ctx.pipeToSelf(bound, (b, err) -> err == null ? new Bound(b) : new BindFailed(err));

    CoordinatedShutdown shutdown = CoordinatedShutdown.get(system);
    Duration ask = Duration.ofSeconds(4);
    shutdown.addTask(CoordinatedShutdown.PhaseServiceUnbind(), "berth-edge-unbind",
        () -> AskPattern.ask(ctx.getSelf(), Unbind::new, ask, system.scheduler()));
    shutdown.addTask(CoordinatedShutdown.PhaseServiceRequestsDone(), "berth-edge-close-sessions",
        () -> AskPattern.ask(ctx.getSelf(), CloseSessions::new, ask, system.scheduler()));

    return Behaviors.receive(Command.class)
        .onMessage(Bound.class, m -> {
          binding = m.binding();
          state.setAccepting(true);
          ctx.getLog().info("Edge listening for devices on {}", binding.localAddress());
          return Behaviors.same();
        })
        .onMessage(BindFailed.class, m -> {
          ctx.getLog().error("Cannot listen for devices on {}:{}: {}", settings.host(), settings.port(),
              m.cause().getMessage());
          CoordinatedShutdown.get(system).run(BIND_FAILED);
          return Behaviors.stopped();
        })
        .onMessage(AcceptInit.class, m -> {
          m.ackTo().tell(AcceptAck.INSTANCE);
          return Behaviors.same();
        })
        .onMessage(Accepted.class, this::onAccepted)
        .onMessage(SessionStopped.class, m -> {
          // A session that failed did not complete its outbound side: abort now. One that ended
          // normally did, and its last frames are flushing; if the device does not read them,
          // the connection is aborted after close-linger. This is the only backstop: TCP's own
          // idle timeout would be a periodic timer on every connection (docs/edge.md).
          ConnectionStage.Connection connection = sessions.remove(m.session());
          if (connection != null) { // null only if materializing its connection failed
            connection.ownerStopped();
            system.scheduler().scheduleOnce(settings.closeLinger(),
                () -> connection.abort(new IllegalStateException("not closed within close-linger")),
                ctx.getExecutionContext());
          }
          state.setConnections(sessions.size());
          if (heldAccept != null && sessions.size() < settings.maxConnections()) {
            heldAccept.tell(AcceptAck.INSTANCE);
            heldAccept = null;
          }
          if (sessions.isEmpty()) {
            waitingForSessions.forEach(r -> r.tell(Done.getInstance()));
            waitingForSessions.clear();
          }
          return Behaviors.same();
        })
        .onMessage(Drain.class, m -> {
          draining = true;
          List<LoadViewTargets.Target> targets = LoadViewTargets.of(system);
          if (targets.isEmpty()) {
            ctx.getLog().warn("Draining, but no other node publishes an edge: {} devices stay connected",
                sessions.size());
          } else {
            ctx.getLog().info("Draining: redirecting {} devices to {}", sessions.size(), targets);
            sessions.keySet().forEach(s -> redirect(s, targets));
          }
          return Behaviors.same();
        })
        .onMessage(Undrain.class, m -> {
          draining = false;
          return Behaviors.same();
        })
        .onMessage(AcceptsEnded.class, m -> Behaviors.same())
        .onMessage(AcceptsFailed.class, m -> {
          ctx.getLog().error("Edge stopped accepting connections", m.cause());
          state.setAccepting(false);
          return Behaviors.same();
        })
        .onMessage(Unbind.class, m -> {
          state.setAccepting(false);
          if (binding == null) {
            m.replyTo().tell(Done.getInstance());
          } else {
            ctx.pipeToSelf(binding.unbind(), (ok, err) -> new Unbound(m.replyTo()));
          }
          return Behaviors.same();
        })
        .onMessage(Unbound.class, m -> {
          ctx.getLog().info("Edge stopped listening");
          m.replyTo().tell(Done.getInstance());
          return Behaviors.same();
        })
        .onMessage(CloseSessions.class, m -> {
          state.setAccepting(false);
          if (sessions.isEmpty()) {
            m.replyTo().tell(Done.getInstance());
          } else {
            ctx.getLog().info("Closing {} device connections: node shutting down", sessions.size());
            waitingForSessions.add(m.replyTo());
            sessions.keySet().forEach(s -> s.tell(new DeviceSession.Shutdown(CloseCode.NODE_SHUTDOWN,
                "node is shutting down; reconnect to another node")));
          }
          return Behaviors.same();
        })
        .build();
  }

  private record Unbound(ActorRef<Done> replyTo) implements Command {}

  private Behavior<Command> onAccepted(Accepted m) {
    ActorSystem<Void> system = ctx.getSystem();
    Tcp.IncomingConnection connection = m.connection();
    ActorRef<DeviceSession.Command> session = ctx.spawn(
        DeviceSession.create(settings, connection.remoteAddress(), edgeNode), "connection-" + ++counter);
    ctx.watchWith(session, new SessionStopped(session));
    // One stage per connection, both directions (docs/edge.md).
    ConnectionStage.Connection out = connection.handleWith(Flow.fromGraph(new ConnectionStage(
        session, settings.maxFrameSize(), settings.maxBatchBytes(), settings.outboundBuffer())), system);
    sessions.put(session, out);
    state.setConnections(sessions.size());
    session.tell(new DeviceSession.Attach(out));
    if (draining) {
      List<LoadViewTargets.Target> targets = LoadViewTargets.of(system);
      if (!targets.isEmpty()) {
        redirect(session, targets);
      }
    }
    if (sessions.size() < settings.maxConnections()) {
      m.ackTo().tell(AcceptAck.INSTANCE);
    } else {
      ctx.getLog().warn("Edge at its limit of {} connections: not accepting until one ends",
          settings.maxConnections());
      heldAccept = m.ackTo();
    }
    return Behaviors.same();
  }

  /** Spreads redirected devices over the other nodes in turn. */
  private void redirect(ActorRef<DeviceSession.Command> session, List<LoadViewTargets.Target> targets) {
    LoadViewTargets.Target t = targets.get(Math.floorMod(nextTarget++, targets.size()));
    session.tell(new DeviceSession.Redirect(t.host(), t.port(), "node is draining; resume on " + t.host() + ":"
        + t.port()));
  }
}
