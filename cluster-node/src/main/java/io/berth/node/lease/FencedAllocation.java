package io.berth.node.lease;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;
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
 * refused from its revocation on (a member downed before it took its lease gets a revoked row, and
 * its journal is checked from its take on, which finds it). So no session runs in two places that
 * can both write, even when a revocation outlasts the removal margin (it waits up to a second for
 * the member's own lock on its lease row, then ends the member's database sessions and tries
 * again).
 *
 * <p>The question goes to this node's {@link NodeLease} actor, behind the membership events it
 * already has: the coordinator hears of a member's removal after every node saw its down, and
 * NodeLease was told of that down first, so it knows of the revocation when it answers. A
 * revocation that has not succeeded after {@code maxWait} (the database away, say) lets the
 * allocation go on, with a warning: sessions must not stay dark for as long as the database is
 * away from one node, and a member that cannot reach the database cannot write either.
 *
 * <p>The delegate decides at once, on the coordinator's thread (the load-aware strategy keeps state
 * that only that thread touches); only its answer waits. A shard asked for again before the
 * coordinator's allocations show it gets the same answer, so a delegate decides each shard once,
 * and decisions not shown yet count in the next ones. One instance per entity type: decisions
 * are kept by shard id.
 */
public final class FencedAllocation implements ShardCoordinator.StartableAllocationStrategy {

  private static final Logger log = LoggerFactory.getLogger(FencedAllocation.class);

  /**
   * A shard's answer, given or waiting: the same answer for the shard until the coordinator's
   * allocations show it, and the region it names counted in later decisions until then.
   */
  private record Decision(Future<ActorRef> answer, ActorRef region, long decidedAt) {}

  private final ShardCoordinator.ShardAllocationStrategy delegate;
  private final ActorSystem<?> system;
  private final org.apache.pekko.actor.typed.ActorRef<NodeLease.Command> lease;
  private final Duration maxWait;
  /**
   * Decisions the coordinator's allocations do not show yet, by shard. Read and written only by
   * {@code allocateShard} and {@code rebalance}, on the coordinator's thread: the answers' own
   * completions do not touch it.
   */
  private final Map<String, Decision> decisions = new HashMap<>();

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
    long now = System.nanoTime();
    forgetShown(current, now);
    // A decision for a region no longer offered (leaving, gone) is taken again, and one whose
    // region was not known at once (an asynchronous delegate) only while it waits.
    Decision already = decisions.get(shardId);
    if (already != null && (already.region() != null ? current.contains(already.region())
        : !already.answer().isCompleted())) {
      return already.answer();
    }
    // An answer that waits lets the coordinator decide other shards meanwhile, against
    // allocations that do not show this one yet: counted here, the shards of a downed member do
    // not all go to the region that looked emptiest before the first of them.
    Future<ActorRef> decided = delegate.allocateShard(requester, shardId, withUndisplayed(current));
    ActorRef region = decided.isCompleted() && decided.value().get().isSuccess() ? decided.value().get().get() : null;
    CompletionStage<ActorRef> answer = fenced(shardId).thenCompose(done -> FutureConverters.asJava(decided));
    Future<ActorRef> result = FutureConverters.asScala(answer);
    decisions.put(shardId, new Decision(result, region, now));
    return result;
  }

  @Override
  public Future<Set<String>> rebalance(scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current,
                                       Set<String> rebalanceInProgress) {
    // A shard moved by this round is in its allocations: its decision goes before it can be
    // answered again for the shard's next home.
    forgetShown(current, System.nanoTime());
    return delegate.rebalance(current, rebalanceInProgress);
  }

  /**
   * Forgets the decisions the coordinator's allocations show, and those it never took (the region
   * left meanwhile, the answer timed out): after the longest wait and as long again.
   */
  private void forgetShown(scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current, long now) {
    if (decisions.isEmpty()) {
      return;
    }
    java.util.Set<String> shown = new java.util.HashSet<>();
    current.valuesIterator().foreach(shards -> {
      shards.foreach(shown::add);
      return null;
    });
    long stale = maxWait.multipliedBy(2).toNanos();
    decisions.entrySet().removeIf(e -> shown.contains(e.getKey()) || now - e.getValue().decidedAt() > stale);
  }

  /** {@code current} with the shards decided but not shown yet added to the regions they went to. */
  private scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> withUndisplayed(
      scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current) {
    scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> counted = current;
    for (Map.Entry<String, Decision> e : decisions.entrySet()) {
      ActorRef region = e.getValue().region();
      if (region != null && counted.contains(region)) {
        counted = counted.updated(region, counted.apply(region).appended(e.getKey()));
      }
    }
    return counted;
  }

  /** Completes once no downed member's revocation is pending here, or after {@link #maxWait}. */
  private CompletionStage<Done> fenced(String shardId) {
    return AskPattern.<NodeLease.Command, Done>ask(lease, NodeLease.AwaitFence::new, maxWait, system.scheduler())
        .handle((done, failure) -> {
          if (failure != null) {
            log.warn("Shard {} is allocated although a downed member's lease is not revoked after {} ms ({}): "
                + "that member's journal writes are not refused until it is", shardId, maxWait.toMillis(),
                failure.getMessage());
          }
          return Done.getInstance();
        });
  }
}
