package io.berth.node.lease;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.Done;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.dispatch.Futures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Set;
import scala.concurrent.Future;
import scala.jdk.javaapi.CollectionConverters;
import scala.jdk.javaapi.FutureConverters;

/** {@link FencedAllocation} with a probe for this node's NodeLease, answering AwaitFence by hand. */
class FencedAllocationTest {

  private static final ActorTestKit KIT = ActorTestKit.create("FencedAllocationTest");

  private TestProbe<NodeLease.Command> lease;
  private ActorRef a;
  private ActorRef b;
  private final AtomicInteger decided = new AtomicInteger();

  /** The region with the fewest shards (the first of equals), counting its decisions. */
  private final ShardCoordinator.ShardAllocationStrategy leastShards = new ShardCoordinator.ShardAllocationStrategy() {
    @Override
    public Future<ActorRef> allocateShard(ActorRef requester, String shardId,
                                          scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current) {
      decided.incrementAndGet();
      ActorRef least = null;
      int fewest = Integer.MAX_VALUE;
      for (ActorRef region : List.of(a, b)) {
        if (current.contains(region) && current.apply(region).size() < fewest) {
          least = region;
          fewest = current.apply(region).size();
        }
      }
      return Futures.successful(least);
    }

    @Override
    public Future<Set<String>> rebalance(scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current,
                                         Set<String> rebalanceInProgress) {
      return Futures.successful(scala.collection.immutable.Set$.MODULE$.empty());
    }
  };

  @AfterAll
  static void stop() {
    KIT.shutdownTestKit();
  }

  @BeforeEach
  void setUp() {
    lease = KIT.createTestProbe();
    // Two shard regions: only their identities matter here.
    a = Adapter.toClassic(KIT.createTestProbe().ref());
    b = Adapter.toClassic(KIT.createTestProbe().ref());
    decided.set(0);
  }

  private FencedAllocation fenced(Duration maxWait) {
    return FencedAllocation.around(leastShards, KIT.system(), lease.ref(), maxWait);
  }

  private static scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> allocation(Map<ActorRef, List<String>> shards) {
    Map<ActorRef, IndexedSeq<String>> current = new LinkedHashMap<>();
    shards.forEach((region, ids) -> current.put(region, CollectionConverters.asScala(ids).toIndexedSeq()));
    return scala.collection.immutable.Map$.MODULE$.from(CollectionConverters.asScala(current));
  }

  private static ActorRef await(Future<ActorRef> answer) throws Exception {
    return FutureConverters.asJava(answer).toCompletableFuture().get(5, TimeUnit.SECONDS);
  }

  private void fenceClears() {
    lease.expectMessageClass(NodeLease.AwaitFence.class).replyTo().tell(Done.getInstance());
  }

  @Test
  void theAnswerWaitsUntilTheNodeLeaseSaysNoRevocationIsPending() throws Exception {
    FencedAllocation strategy = fenced(Duration.ofSeconds(30));
    Future<ActorRef> answer = strategy.allocateShard(a, "1", allocation(Map.of(a, List.of(), b, List.of("2"))));
    NodeLease.AwaitFence asked = lease.expectMessageClass(NodeLease.AwaitFence.class);
    Thread.sleep(200);
    assertThat(answer.isCompleted()).as("answered before the fence").isFalse();
    asked.replyTo().tell(Done.getInstance());
    assertThat(await(answer)).isEqualTo(a);
  }

  @Test
  void shardsDecidedWhileEarlierAnswersWaitAreSpreadNotPiledOnOneRegion() throws Exception {
    FencedAllocation strategy = fenced(Duration.ofSeconds(30));
    scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current = allocation(Map.of(a, List.of(), b, List.of()));
    // The coordinator's allocations do not show the first answer while it waits.
    Future<ActorRef> first = strategy.allocateShard(a, "1", current);
    Future<ActorRef> second = strategy.allocateShard(a, "2", current);
    Future<ActorRef> third = strategy.allocateShard(a, "3", current);
    Future<ActorRef> fourth = strategy.allocateShard(a, "4", current);
    for (int i = 0; i < 4; i++) {
      fenceClears();
    }
    List<ActorRef> regions = List.of(await(first), await(second), await(third), await(fourth));
    assertThat(regions).filteredOn(a::equals).hasSize(2);
    assertThat(regions).filteredOn(b::equals).hasSize(2);
  }

  @Test
  void aShardAskedForAgainBeforeItsAllocationShowsGetsTheSameAnswerDecidedOnce() throws Exception {
    FencedAllocation strategy = fenced(Duration.ofSeconds(30));
    scala.collection.immutable.Map<ActorRef, IndexedSeq<String>> current = allocation(Map.of(a, List.of(), b, List.of("9")));
    Future<ActorRef> first = strategy.allocateShard(a, "1", current);
    Future<ActorRef> again = strategy.allocateShard(b, "1", current);
    assertThat(again).isSameAs(first);
    fenceClears();
    assertThat(await(first)).isEqualTo(a);
    // Answered but not shown yet (the coordinator writes it down): still the same answer.
    assertThat(strategy.allocateShard(b, "1", current)).isSameAs(first);
    assertThat(decided.get()).isEqualTo(1);
  }

  @Test
  void aShardMovedAfterItsAllocationShowedIsDecidedAgain() throws Exception {
    FencedAllocation strategy = fenced(Duration.ofSeconds(30));
    Future<ActorRef> first = strategy.allocateShard(a, "1", allocation(Map.of(a, List.of(), b, List.of("9"))));
    fenceClears();
    assertThat(await(first)).isEqualTo(a);
    // A rebalance round sees it on a, then moves it off: its next home is decided afresh.
    strategy.rebalance(allocation(Map.of(a, List.of("1"), b, List.of("9"))), scala.collection.immutable.Set$.MODULE$.empty());
    Future<ActorRef> next = strategy.allocateShard(b, "1", allocation(Map.of(a, List.of("5", "6"), b, List.of("9"))));
    fenceClears();
    assertThat(await(next)).isEqualTo(b);
    assertThat(decided.get()).isEqualTo(2);
  }

  @Test
  void aDecisionForARegionNoLongerOfferedIsTakenAgain() throws Exception {
    FencedAllocation strategy = fenced(Duration.ofSeconds(30));
    Future<ActorRef> first = strategy.allocateShard(a, "1", allocation(Map.of(a, List.of(), b, List.of("9"))));
    // a leaves before the answer is used: the coordinator offers b alone.
    Future<ActorRef> retried = strategy.allocateShard(b, "1", allocation(Map.of(b, List.of("9"))));
    fenceClears();
    fenceClears();
    assertThat(await(first)).isEqualTo(a);
    assertThat(await(retried)).isEqualTo(b);
  }

  @Test
  void aFenceNotAnsweredWithinTheWaitLetsTheAllocationGoOn() throws Exception {
    FencedAllocation strategy = fenced(Duration.ofMillis(300));
    Future<ActorRef> answer = strategy.allocateShard(a, "1", allocation(Map.of(a, List.of(), b, List.of("9"))));
    lease.expectMessageClass(NodeLease.AwaitFence.class);
    assertThat(await(answer)).isEqualTo(a);
  }
}
