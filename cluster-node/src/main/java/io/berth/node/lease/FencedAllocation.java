package io.berth.node.lease;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.Done;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Set;
import scala.concurrent.Future;
import scala.jdk.javaapi.FutureConverters;

/**
 * A shard allocation strategy that answers where a shard goes only once every downed member's
 * lease is revoked on this node (docs/failover.md, "The fence before a shard moves"). The shards
 * of a downed member start elsewhere only through an allocation; the member's journal writes are
 * refused from its revocation on. So no session runs in two places that can both write, even when
 * a revocation outlasts the removal margin (it waits up to a second for the member's own lock on
 * its lease row, then ends the member's database sessions and tries again).
 *
 * <p>The question goes to this node's {@link NodeLease} actor, behind the membership events it
 * already has: the coordinator hears of a member's removal after every node saw its down, and
 * NodeLease was told of that down first, so it knows of the revocation when it answers. A
 * revocation that has not succeeded after {@code maxWait} (the database away, say) lets the
 * allocation go on, with a warning: the member is then held off by the removal margin alone, as
 * without leases.
 *
 * <p>The delegate decides at once, on the coordinator's thread (the load-aware strategy keeps state
 * that only that thread touches); only its answer waits. A shard asked for again while its answer
 * waits gets the same answer, so a delegate decides each shard once. One instance per entity type:
 * the answers waiting are kept by shard id.
 */
public final class FencedAllocation implements ShardCoordinator.StartableAllocationStrategy {

  private static final Logger log = LoggerFactory.getLogger(FencedAllocation.class);

  private final ShardCoordinator.ShardAllocationStrategy delegate;
  private final ActorSystem<?> system;
  private final org.apache.pekko.actor.typed.ActorRef<NodeLease.Command> lease;
  private final Duration maxWait;
  /** Answers waiting for the fence, by shard. */
  private final Map<String, Future<ActorRef>> waiting = new ConcurrentHashMap<>();

  private FencedAllocation(ShardCoordinator.ShardAllocationStrategy delegate, ActorSystem<?> system,
                           org.apache.pekko.actor.typed.ActorRef<NodeLease.Command> lease, Duration maxWait) {
    this.delegate = delegate;
    this.system = system;
    this.lease = lease;
    this.maxWait = maxWait;
  }

  /** {@code delegate}, its answers held until {@code lease} has revoked every downed member's lease. */
  public static FencedAllocation around(ShardCoordinator.ShardAllocationStrategy delegate, ActorSystem<?> system,
                                        org.apache.pekko.actor.typed.ActorRef<NodeLease.Command> lease,
                                        Duration maxWait) {
    return new FencedAllocation(delegate, system, lease, maxWait);
  }

  @Override
  public void start() {
    if (delegate instanceof ShardCoordinator.StartableAllocationStrategy startable) {
      startable.start();
    } else if (delegate instanceof ShardCoordinator.ActorSystemDependentAllocationStrategy dependent) {
      // Pekko's newer least-shard strategy reads the cluster's membership from the system.
      dependent.start(Adapter.toClassic(system));
    }
  }

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId,
                                        scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current) {
    Future<ActorRef> already = waiting.get(shardId);
    if (already != null) {
      return already;
    }
    Future<ActorRef> decided = delegate.allocateShard(requester, shardId, current);
    CompletionStage<ActorRef> answer = fenced(shardId).thenCompose(done -> FutureConverters.asJava(decided));
    Future<ActorRef> result = FutureConverters.asScala(answer);
    waiting.put(shardId, result);
    answer.whenComplete((region, failure) -> waiting.remove(shardId, result));
    return result;
  }

  @Override
  public Future<Set<String>> rebalance(scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current,
                                       Set<String> rebalanceInProgress) {
    return delegate.rebalance(current, rebalanceInProgress);
  }

  /** Completes once no downed member's revocation is pending here, or after {@link #maxWait}. */
  private CompletionStage<Done> fenced(String shardId) {
    return AskPattern.<NodeLease.Command, Done>ask(lease, NodeLease.AwaitFence::new, maxWait, system.scheduler())
        .handle((done, failure) -> {
          if (failure != null) {
            log.warn("Shard {} is allocated although a downed member's lease is not revoked after {} ms ({}): "
                + "the member is held off by the removal margin alone", shardId, maxWait.toMillis(),
                failure.getMessage());
          }
          return Done.getInstance();
        });
  }
}
