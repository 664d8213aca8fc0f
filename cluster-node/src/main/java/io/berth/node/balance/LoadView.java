package io.berth.node.balance;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.cluster.ddata.Key;
import org.apache.pekko.cluster.ddata.LWWMap;
import org.apache.pekko.cluster.ddata.LWWMapKey;
import org.apache.pekko.cluster.ddata.ORSet;
import org.apache.pekko.cluster.ddata.ORSetKey;

/**
 * This node's latest view of the cluster's load, kept by its {@link LoadReporter} from
 * Distributed Data. The allocation strategy and the operator routes read it without messaging.
 */
public final class LoadView implements Extension {

  static final Key<LWWMap<String, NodeLoad>> LOADS = LWWMapKey.create("berth-node-load");
  static final Key<LWWMap<String, MigrationRequest>> REQUESTS = LWWMapKey.create("berth-migration-requests");
  static final Key<ORSet<String>> DRAINING = ORSetKey.create("berth-draining");

  private static final ExtensionId<LoadView> ID = new ExtensionId<>() {
    @Override
    public LoadView createExtension(ActorSystem<?> system) {
      return new LoadView();
    }
  };

  private final AtomicReference<Map<String, NodeLoad>> loads = new AtomicReference<>(Map.of());
  private final AtomicReference<Map<String, MigrationRequest>> requests = new AtomicReference<>(Map.of());
  private final AtomicReference<Set<String>> draining = new AtomicReference<>(Set.of());
  private volatile ActorRef<LoadReporter.Command> reporter;

  public static LoadView get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Latest published load per node address (including nodes that may have left meanwhile). */
  public Map<String, NodeLoad> loads() {
    return loads.get();
  }

  public Map<String, MigrationRequest> requests() {
    return requests.get();
  }

  /** Addresses of the nodes being drained. */
  public Set<String> draining() {
    return draining.get();
  }

  /** This node's reporter, which writes requests and drain marks to Distributed Data. */
  public ActorRef<LoadReporter.Command> reporter() {
    return reporter;
  }

  void setLoads(Map<String, NodeLoad> value) {
    loads.set(Map.copyOf(value));
  }

  void setRequests(Map<String, MigrationRequest> value) {
    requests.set(Map.copyOf(value));
  }

  void setDraining(Set<String> value) {
    draining.set(Set.copyOf(value));
  }

  void setReporter(ActorRef<LoadReporter.Command> value) {
    reporter = value;
  }
}
