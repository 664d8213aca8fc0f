package io.berth.node.ops;

import io.berth.node.socket.api.Sockets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.cluster.sharding.ClusterSharding;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.pattern.Patterns;

/**
 * Readiness: the socket shard region has registered with the shard coordinator, so this node can
 * reach socket sessions. Replaces sharding's own check, which answers only "not ok". Once passed
 * it always passes (as sharding's does): a later coordinator move is not this node's fault.
 */
public final class ShardRegionReadiness extends BerthHealthCheck {

  private final ActorSystem system;
  private final Duration timeout;
  private volatile boolean registered;

  public ShardRegionReadiness(ActorSystem system) {
    this.system = system;
    // Half of Management's own bound on a check, so that the region's silence is reported as such.
    this.timeout = system.settings().config().getDuration("pekko.management.health-checks.check-timeout")
        .dividedBy(2);
  }

  @Override
  protected CompletionStage<Optional<String>> problem() {
    if (registered) {
      return now(Optional.empty());
    }
    String type = Sockets.ENTITY_KEY.name();
    org.apache.pekko.actor.ActorRef region;
    try {
      region = ClusterSharding.get(system).shardRegion(type);
    } catch (IllegalStateException | IllegalArgumentException e) {
      return now(Optional.of("the '" + type + "' shard region is not started yet"));
    }
    return Patterns.ask(region, ShardRegion.GetShardRegionStatus$.MODULE$, timeout)
        .thenApply(answer -> {
          if (((ShardRegion.ShardRegionStatus) answer).registeredWithCoordinator()) {
            registered = true;
            return Optional.<String>empty();
          }
          return Optional.of("the '" + type + "' shard region has not registered with the shard coordinator yet"
              + " (it runs on the oldest node)");
        })
        .exceptionally(e -> Optional.of("the '" + type + "' shard region did not answer within "
            + timeout.toMillis() + " ms"));
  }
}
