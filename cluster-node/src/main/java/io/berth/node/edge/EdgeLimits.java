package io.berth.node.edge;

import io.berth.node.mapping.Mapping;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * The edge's abuse protection, one per node and shared by every {@link ConnectionActor}
 * (docs/limits.md): the {@link DeviceGate} that admits HELLOs by device, and the uplink limits each
 * connection gets from its mapping and this node's settings. An extension, so that the edge's
 * actors find it without it being handed down to each of them.
 */
public final class EdgeLimits implements Extension {

  private static final ExtensionId<EdgeLimits> ID = new ExtensionId<>() {
    @Override
    public EdgeLimits createExtension(ActorSystem<?> system) {
      return new EdgeLimits(LimitSettings.fromConfig(system.settings().config()));
    }
  };

  /**
   * Mappings resolved so far: connections opened with the same mapping share its resolved form and
   * its unstarted throttle instead of holding copies. Mappings change rarely; the map is emptied
   * should it ever hold more than this many versions.
   */
  private static final int MAX_RESOLVED = 1024;

  /** A mapping as a connection opens it: its limits resolved, and their throttle (null: none). */
  record Limited(Mapping mapping, UplinkThrottle throttle) {}

  private final LimitSettings settings;
  private final DeviceGate gate;
  private final ConcurrentHashMap<Mapping, Limited> resolved = new ConcurrentHashMap<>();

  EdgeLimits(LimitSettings settings) {
    this.settings = settings;
    this.gate = new DeviceGate(settings.connectsPerSecond(), settings.connectBurst(),
        settings.maxConnectionsPerDevice(), settings.trackedDevices());
  }

  public static EdgeLimits get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  DeviceGate gate() {
    return gate;
  }

  /**
   * The mapping a HELLO opens, with the limits its connection runs with: the mapping's own,
   * what it leaves out from this node's. The socket session keeps them with the mapping, which is
   * how an operator sees them ({@code GET /api/sockets/{id}}).
   */
  Limited open(Mapping registered) {
    Limited known = resolved.get(registered);
    if (known != null) {
      return known;
    }
    Mapping.Limits limits =
        registered.limits() == null ? settings.socket() : registered.limits().over(settings.socket());
    Limited opened = limits.none()
        ? new Limited(registered.limits() == null ? registered : registered.withLimits(null), null)
        : new Limited(registered.withLimits(limits), new UplinkThrottle(limits));
    if (resolved.size() >= MAX_RESOLVED) {
      resolved.clear();
    }
    resolved.put(registered, opened);
    return opened;
  }
}
