package io.berth.node.balance;

import java.util.Collection;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
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
  /** Frames and payload bytes every socket on this node took, since the node started. */
  private final LongAdder frames = new LongAdder();
  private final LongAdder bytes = new LongAdder();

  public static LoadRegistry get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Called by a socket entity when it starts on this node. */
  public SocketMeter register(String socketId, String shardId) {
    SocketMeter meter = new SocketMeter(socketId, shardId, frames, bytes);
    meters.put(socketId, meter);
    return meter;
  }

  /** Called when the entity stops (passivation, handoff, node shutdown). */
  public void unregister(String socketId, SocketMeter meter) {
    meters.remove(socketId, meter);
  }

  /** Socket entities running on this node now. */
  public int running() {
    return meters.size();
  }

  /** Uplink frames the sockets on this node took since it started (their destination had them). */
  public long framesTaken() {
    return frames.sum();
  }

  /** Their payload bytes. */
  public long bytesTaken() {
    return bytes.sum();
  }

  Collection<SocketMeter> meters() {
    return meters.values();
  }
}
