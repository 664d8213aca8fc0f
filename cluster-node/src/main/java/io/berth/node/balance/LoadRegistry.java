package io.berth.node.balance;

import java.util.Collection;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/** The meters of the sockets whose entities run on this node. */
public final class LoadRegistry implements Extension {

  private static final ExtensionId<LoadRegistry> ID = new ExtensionId<>() {
    @Override
    public LoadRegistry createExtension(ActorSystem<?> system) {
      return new LoadRegistry();
    }
  };

  private final ConcurrentHashMap<String, SocketMeter> meters = new ConcurrentHashMap<>();

  public static LoadRegistry get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Called by a socket entity when it starts on this node. */
  public SocketMeter register(String socketId, String shardId) {
    SocketMeter meter = new SocketMeter(socketId, shardId);
    meters.put(socketId, meter);
    return meter;
  }

  /** Called when the entity stops (passivation, handoff, node shutdown). */
  public void unregister(String socketId, SocketMeter meter) {
    meters.remove(socketId, meter);
  }

  Collection<SocketMeter> meters() {
    return meters.values();
  }
}
