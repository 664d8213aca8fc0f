package io.berth.node.socket.api;

import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.HashCodeMessageExtractor;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.Patterns;

/** Where socket sessions live: their entity type, their shard, and the status query. */
public final class Sockets {

  /** Socket sessions: entity type {@code socket}, entity id = socket id. */
  public static final EntityTypeKey<SocketCommand> ENTITY_KEY = EntityTypeKey.create(SocketCommand.class, "socket");

  /** How often {@link #status} asks again after an unanswered ask: three asks in all. */
  private static final int STATUS_RETRIES = 2;

  private Sockets() {}

  /** The socket session {@code socketId}, wherever it runs. */
  public static EntityRef<SocketCommand> ref(ActorSystem<?> system, String socketId) {
    return ClusterSharding.get(system).entityRefFor(ENTITY_KEY, socketId);
  }

  /**
   * Asks a socket for its status, up to three times, each attempt bounded by {@code timeout}.
   * Sharding delivers at most once: a query that reaches the entity while it stops to hand its
   * shard off is stashed behind the stop and dropped with it, while the next one waits in the
   * region and reaches the entity on its new node. The query changes nothing, so asking again is safe.
   */
  public static CompletionStage<SocketStatus> status(ActorSystem<?> system, String socketId, Duration timeout) {
    EntityRef<SocketCommand> entity = ref(system, socketId);
    // Patterns.retry's count is of retries: the first ask is not counted.
    return Patterns.retry(() -> entity.ask(SocketCommand.GetStatus::new, timeout), STATUS_RETRIES, Duration.ZERO, system);
  }

  /** The shard a socket belongs to: what sharding computes with its default extractor. */
  public static String shardOf(ActorSystem<?> system, String socketId) {
    return shardOf(numberOfShards(system), socketId);
  }

  /** The shard a socket belongs to among {@code numberOfShards}. */
  public static String shardOf(int numberOfShards, String socketId) {
    return new HashCodeMessageExtractor<SocketCommand>(numberOfShards).shardId(socketId);
  }

  /** {@code pekko.cluster.sharding.number-of-shards}: the same on every node of a cluster. */
  public static int numberOfShards(ActorSystem<?> system) {
    return system.settings().config().getInt("pekko.cluster.sharding.number-of-shards");
  }
}
