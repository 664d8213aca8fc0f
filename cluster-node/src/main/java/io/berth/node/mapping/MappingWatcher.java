package io.berth.node.mapping;

import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ddata.Key;
import org.apache.pekko.cluster.ddata.LWWMap;
import org.apache.pekko.cluster.ddata.LWWMapKey;
import org.apache.pekko.cluster.ddata.SelfUniqueAddress;
import org.apache.pekko.cluster.ddata.typed.javadsl.DistributedData;
import org.apache.pekko.cluster.ddata.typed.javadsl.Replicator;

/**
 * Spreads "mapping X is now at version N" through Distributed Data, so that every node's
 * {@link MappingRegistry} cache drops what is stale.
 */
public final class MappingWatcher {

  static final Key<LWWMap<String, Long>> VERSIONS = LWWMapKey.create("berth-mapping-versions");

  public sealed interface Command {}

  record Announce(String name, long version) implements Command {}

  private record Changed(Replicator.SubscribeResponse<LWWMap<String, Long>> response) implements Command {}

  private record Written(Replicator.UpdateResponse<LWWMap<String, Long>> response) implements Command {}

  public static Behavior<Command> create() {
    return Behaviors.setup(ctx -> DistributedData.<Command, LWWMap<String, Long>>withReplicatorMessageAdapter(r -> {
      MappingRegistry registry = MappingRegistry.get(ctx.getSystem());
      registry.setWatcher(ctx.getSelf());
      SelfUniqueAddress self = DistributedData.get(ctx.getSystem()).selfUniqueAddress();
      r.subscribe(VERSIONS, Changed::new);
      return Behaviors.receive(Command.class)
          .onMessage(Announce.class, m -> {
            r.askUpdate(reply -> new Replicator.Update<>(VERSIONS, LWWMap.empty(), Replicator.writeLocal(), reply,
                map -> map.put(self, m.name(), m.version())), Written::new);
            return Behaviors.same();
          })
          .onMessage(Changed.class, m -> {
            if (m.response() instanceof Replicator.Changed<LWWMap<String, Long>> changed) {
              registry.versionsChanged(changed.dataValue().getEntries());
            }
            return Behaviors.same();
          })
          .onMessage(Written.class, m -> Behaviors.same())
          .build();
    }));
  }
}
