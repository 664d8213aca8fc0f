package io.berth.node.edge;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/** What the rest of the node (readiness check, operator routes) may read of the edge. */
public final class EdgeState implements Extension {

  private static final ExtensionId<EdgeState> ID = new ExtensionId<>() {
    @Override
    public EdgeState createExtension(ActorSystem<?> system) {
      return new EdgeState();
    }
  };

  private final AtomicBoolean accepting = new AtomicBoolean();
  private final AtomicInteger connections = new AtomicInteger();
  private final AtomicBoolean draining = new AtomicBoolean();
  private final EdgeOutcome.Counts refusals = new EdgeOutcome.Counts();
  private final EdgeBacklog backlog = new EdgeBacklog();
  /** When ({@link System#nanoTime}) a member last became unreachable or was removed; 0: never. */
  private volatile long memberLostAt;

  public static EdgeState get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Bound and accepting devices (false before the bind and once the node is shutting down). */
  public boolean accepting() {
    return accepting.get();
  }

  /** Marked for draining: devices are redirected elsewhere, shards move away. */
  public boolean draining() {
    return draining.get();
  }

  void setDraining(boolean value) {
    draining.set(value);
  }

  public int connections() {
    return connections.get();
  }

  /**
   * Connections ended before their first frame, by outcome (a plaintext client on the TLS port,
   * an untrusted or expired certificate, a handshake that never completed, a bad PROXY header...),
   * zeros included, since the node started.
   */
  public java.util.Map<String, Long> refusals() {
    return refusals.snapshot();
  }

  /** Frames queued on the edge for devices that have not taken them yet (ACKs not counted). */
  public long queuedFrames() {
    return backlog.queuedFrames();
  }

  /** Connections whose TCP send buffer is full: their devices read slower than they are sent to. */
  public int blockedConnections() {
    return backlog.blockedConnections();
  }

  void markMemberLost(long now) {
    memberLostAt = now == 0 ? 1 : now;
  }

  /** Whether a member became unreachable or was removed within {@code window} before {@code now}. */
  boolean memberLostWithin(long now, long windowNanos) {
    long at = memberLostAt;
    return at != 0 && now - at < windowNanos;
  }

  EdgeBacklog backlog() {
    return backlog;
  }

  EdgeOutcome.Counts refusalCounts() {
    return refusals;
  }

  void setAccepting(boolean value) {
    accepting.set(value);
  }

  void setConnections(int value) {
    connections.set(value);
  }
}
