package io.berth.node.balance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.typesafe.config.ConfigFactory;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import scala.collection.immutable.IndexedSeq;
import scala.jdk.javaapi.CollectionConverters;

/** The placement and move policy, fed with loads as the reporters would publish them. */
class LoadAwareAllocationStrategyTest {

  private static final DatabaseSettings DB = TestDatabase.settings();
  private static final ActorTestKit KIT = ActorTestKit.create("StrategyTest", ConfigFactory.parseMap(Map.of(
          "berth.db.url", DB.url(), "berth.db.user", DB.user(), "berth.db.password", DB.password()))
      .withFallback(ConfigFactory.parseString("""
          pekko.actor.provider = cluster
          pekko.remote.artery.canonical.hostname = 127.0.0.1
          pekko.remote.artery.canonical.port = 0
          pekko.cluster.sharding.handoff-timeout = 300ms
          """))
      .withFallback(ConfigFactory.load()));

  private static final String A = "pekko://berth@10.0.0.1:2551";
  private static final String B = "pekko://berth@10.0.0.2:2551";
  private static final String C = "pekko://berth@10.0.0.3:2551";

  private final MigrationSettings settings = new MigrationSettings(true, 300, 100e6, Duration.ofSeconds(2),
      Duration.ofSeconds(2), Duration.ofSeconds(30), 10_000, Duration.ofSeconds(1), Duration.ofMillis(200), 0.2, 1,
      Duration.ofSeconds(10));
  private LoadView view;
  private LoadAwareAllocationStrategy strategy;
  private Instant testStarted;
  private final Map<String, ActorRef> regions = new HashMap<>();

  @BeforeAll
  static void installSchema() throws Exception {
    // Migrations are recorded in berth_migration: this test must not rely on another having made it.
    SchemaInstaller.install(DB);
  }

  @AfterAll
  static void shutdown() {
    KIT.shutdownTestKit();
  }

  @BeforeEach
  void setUp() {
    view = LoadView.get(KIT.system());
    view.setDraining(Set.of());
    view.setRequests(Map.of());
    strategy = new LoadAwareAllocationStrategy(KIT.system(), settings);
    testStarted = Instant.now();
    ExtendedActorSystem classic = (ExtendedActorSystem) Adapter.toClassic(KIT.system());
    for (String node : List.of(A, B, C)) {
      regions.put(node, classic.provider().resolveActorRef(node + "/system/sharding/socket"));
    }
  }

  private static NodeLoad load(String node, double fps, NodeLoad.HotSocket... hot) {
    return new NodeLoad(node, 10_000, fps, fps * 100, 10, 10, 3, "127.0.0.1", 7000, 0, 0, false, Map.of(),
        Arrays.asList(hot), System.currentTimeMillis());
  }

  private static NodeLoad.HotSocket hot(String socket, String shard, double fps, Duration hotFor) {
    return new NodeLoad.HotSocket(socket, shard, fps, fps * 100, System.currentTimeMillis() - hotFor.toMillis());
  }

  private Map<ActorRef, IndexedSeq<String>> allocation(Map<String, List<String>> shardsByNode) {
    Map<ActorRef, IndexedSeq<String>> current = new HashMap<>();
    shardsByNode.forEach((node, shards) ->
        current.put(regions.get(node), CollectionConverters.asScala(shards).toIndexedSeq()));
    return current;
  }

  private Set<String> rebalance(Map<ActorRef, IndexedSeq<String>> current) {
    return strategy.rebalance(current, Set.of()).value().get().get();
  }

  private String allocate(String shard, Map<ActorRef, IndexedSeq<String>> current) {
    ActorRef region = strategy.allocateShard(regions.get(A), shard, current).value().get().get();
    return region.path().address().toString();
  }

  private final Map<String, List<String>> layout = Map.of(A, List.of("1", "2"), B, List.of("3"), C, List.of("4"));

  @Test
  void aSustainedHotSocketOnABusyNodeMovesToTheLeastLoadedNode() {
    view.setLoads(Map.of(
        A, load(A, 2000, hot("hot", "1", 1500, Duration.ofSeconds(5))),
        B, load(B, 300),
        C, load(C, 50)));
    Map<ActorRef, IndexedSeq<String>> current = allocation(layout);
    assertThat(rebalance(current)).containsExactly("1");
    assertThat(allocate("1", allocation(Map.of(A, List.of("2"), B, List.of("3"), C, List.of("4"))))).isEqualTo(C);
  }

  @Test
  void aHotSocketAloneOnItsNodeStays() {
    // Moving it would only move the same load elsewhere.
    view.setLoads(Map.of(A, load(A, 1500, hot("hot", "1", 1500, Duration.ofSeconds(5))), B, load(B, 0), C, load(C, 0)));
    assertThat(rebalance(allocation(layout))).isEmpty();
  }

  @Test
  void aMoveIsNeverWorthUndoing() {
    // After the move of the previous test: the socket on C, A keeps its 500 frames/s.
    view.setLoads(Map.of(A, load(A, 500), B, load(B, 300), C, load(C, 1550, hot("hot", "1", 1500, Duration.ofSeconds(5)))));
    assertThat(rebalance(allocation(Map.of(A, List.of("2"), B, List.of("3"), C, List.of("4", "1"))))).isEmpty();
  }

  @Test
  void aSocketNotHotForTheSustainPeriodStays() {
    view.setLoads(Map.of(A, load(A, 2000, hot("hot", "1", 1500, Duration.ofMillis(500))), B, load(B, 0), C, load(C, 0)));
    assertThat(rebalance(allocation(layout))).isEmpty();
  }

  @Test
  void aShardMovesAtMostOncePerCooldown() {
    view.setLoads(Map.of(A, load(A, 2000, hot("hot", "1", 1500, Duration.ofSeconds(5))), B, load(B, 300), C, load(C, 50)));
    assertThat(rebalance(allocation(layout))).containsExactly("1");
    // Later the socket is back on a busy node and hot again: the cooldown holds it.
    view.setLoads(Map.of(A, load(A, 50), B, load(B, 300), C, load(C, 2000, hot("hot", "1", 1500, Duration.ofSeconds(5)))));
    assertThat(rebalance(allocation(Map.of(A, List.of("2"), B, List.of("3"), C, List.of("4", "1"))))).isEmpty();
  }

  @Test
  void automaticMovesWaitForLoadsPublishedAfterThePreviousMove() {
    // Two hot sockets on A. Decisions run every 200 ms, loads are published every second: until
    // the loads show the first move, a second one could follow it to the same target.
    view.setLoads(Map.of(
        A, load(A, 3000, hot("hot1", "1", 1500, Duration.ofSeconds(5)), hot("hot2", "2", 1400, Duration.ofSeconds(5))),
        B, load(B, 300),
        C, load(C, 50)));
    assertThat(rebalance(allocation(layout))).containsExactly("1");
    assertThat(rebalance(allocation(Map.of(A, List.of("2"), B, List.of("3"), C, List.of("4", "1"))))).isEmpty();

    MigrationSettings quick = new MigrationSettings(true, 300, 100e6, Duration.ofSeconds(2), Duration.ofSeconds(2),
        Duration.ofSeconds(30), 10_000, Duration.ofMillis(300), Duration.ofMillis(100), 0.2, 1,
        Duration.ofSeconds(10));
    LoadAwareAllocationStrategy often = new LoadAwareAllocationStrategy(KIT.system(), quick);
    assertThat(often.rebalance(allocation(layout), Set.of()).value().get().get()).containsExactly("1");
    Map<ActorRef, IndexedSeq<String>> after = allocation(Map.of(A, List.of("2"), B, List.of("3"), C, List.of("4", "1")));
    assertThat(often.rebalance(after, Set.of()).value().get().get()).isEmpty();
    // The loads after the move: C carries the first socket now, B is the least loaded.
    view.setLoads(Map.of(
        A, load(A, 1500, hot("hot2", "2", 1400, Duration.ofSeconds(5))),
        B, load(B, 50),
        C, load(C, 1550, hot("hot1", "1", 1500, Duration.ofSeconds(5)))));
    AtomicReference<Set<String>> moved = new AtomicReference<>(Set.of());
    await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(20))
        .until(() -> !moved.updateAndGet(m -> often.rebalance(after, Set.of()).value().get().get()).isEmpty());
    assertThat(moved.get()).containsExactly("2");
    assertThat(often.allocateShard(regions.get(A), "2", allocation(Map.of(A, List.of(), B, List.of("3"),
        C, List.of("4", "1")))).value().get().get().path().address().toString()).isEqualTo(B);
  }

  @Test
  void newShardsGoWhereThereIsTheMostHeadroom() {
    view.setLoads(Map.of(A, load(A, 9000), B, load(B, 100), C, load(C, 4000)));
    assertThat(allocate("9", allocation(layout))).isEqualTo(B);
  }

  @Test
  void withSimilarLoadsNewShardsGoWhereThereAreFewerShards() {
    // 300, 100 and 400 frames/s are all within one step (5 % of a 10,000 frames/s node).
    view.setLoads(Map.of(A, load(A, 300), B, load(B, 100), C, load(C, 400)));
    assertThat(allocate("9", allocation(Map.of(A, List.of("1"), B, List.of("2", "3"), C, List.of("4", "5")))))
        .isEqualTo(A);
  }

  @Test
  void aDrainingNodeGivesUpEveryShardAndGetsNoNewOnes() {
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 4000)));
    view.setDraining(Set.of(A));
    assertThat(rebalance(allocation(layout))).containsExactlyInAnyOrder("1", "2");
    assertThat(allocate("1", allocation(Map.of(A, List.of(), B, List.of("3"), C, List.of("4"))))).isEqualTo(B);
  }

  @Test
  void aFinishedDrainOfANodeStillMarkedStartsNoNewDrainEveryRound() {
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 400)));
    view.setDraining(Set.of(A));
    assertThat(rebalance(allocation(layout))).containsExactlyInAnyOrder("1", "2");
    Map<ActorRef, IndexedSeq<String>> emptied = allocation(Map.of(A, List.of(), B, List.of("1", "3"),
        C, List.of("2", "4")));
    for (int round = 0; round < 4; round++) {
      assertThat(rebalance(emptied)).isEmpty();
    }
    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      assertThat(completedDrainOf(A).shards()).isEqualTo(2);
    });
  }

  @Test
  void aDrainIsNotOverWhileAShardItMovedHasNoHomeYet() {
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 400)));
    view.setDraining(Set.of(A));
    assertThat(rebalance(allocation(layout))).containsExactlyInAnyOrder("1", "2");
    // Both handed off; "2" is allocated again, and a round comes before "1" is (the coordinator
    // asks for a shard's home right after its deallocation, but a rebalance round can come between).
    String second = allocate("2", allocation(Map.of(A, List.of(), B, List.of("3"), C, List.of("4"))));
    Map<String, List<String>> between = new HashMap<>(Map.of(A, List.of(), B, List.of("3"), C,
        List.of("4")));
    between.put(second, Stream.concat(between.get(second).stream(), Stream.of("2")).toList());
    assertThat(rebalance(allocation(between))).isEmpty();
    String first = allocate("1", allocation(between));
    Map<String, List<String>> after = new HashMap<>(between);
    after.put(first, Stream.concat(after.get(first).stream(), Stream.of("1")).toList());
    assertThat(rebalance(allocation(after))).isEmpty();
    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      assertThat(completedDrainOf(A).to()).as("where both shards went").contains(first).contains(second);
    });
  }

  /** This test's one drain record of {@code node}, asserted completed. */
  private MigrationLog.Migration completedDrainOf(String node) {
    List<MigrationLog.Migration> drains = MigrationLog.get(KIT.system()).recent(100, null, "drain")
        .toCompletableFuture().join().stream().filter(m -> m.from().equals(node) && "*".equals(m.shardId())
            && m.startedAt().isAfter(testStarted)).toList();
    assertThat(drains).hasSize(1);
    assertThat(drains.get(0).status()).isEqualTo(MigrationLog.COMPLETED);
    return drains.get(0);
  }

  @Test
  void anOperatorRequestMovesTheShardWhereAsked() {
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 400)));
    view.setRequests(Map.of("2", new MigrationRequest("r1", "dev", "2", C, System.currentTimeMillis())));
    assertThat(rebalance(allocation(layout))).containsExactly("2");
    assertThat(allocate("2", allocation(Map.of(A, List.of("1"), B, List.of("3"), C, List.of("4"))))).isEqualTo(C);
  }

  private MigrationLog.Migration requested(String socket, String shard) {
    String id = UUID.randomUUID().toString();
    MigrationLog.Migration m = new MigrationLog.Migration(id, socket, shard, "manual", MigrationLog.REQUESTED, "", C,
        null, null, null, Instant.now(), null, null, null, null, null, null);
    MigrationLog.get(KIT.system()).insert(m).toCompletableFuture().join();
    return m;
  }

  private MigrationLog.Migration record(String id) {
    return MigrationLog.get(KIT.system()).find(id).toCompletableFuture().join().orElseThrow();
  }

  @Test
  void ofTwoRequestsForOneShardTheNewestMovesItAndTheOlderIsClosedAsSuperseded() {
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 400)));
    MigrationLog.Migration first = requested("dev-1", "2");
    MigrationLog.Migration second = requested("dev-2", "2");
    long now = System.currentTimeMillis();
    view.setRequests(Map.of(
        first.id(), new MigrationRequest(first.id(), "dev-1", "2", B, now - 50),
        second.id(), new MigrationRequest(second.id(), "dev-2", "2", C, now)));
    assertThat(rebalance(allocation(layout))).containsExactly("2");
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
      assertThat(record(first.id()).status()).isEqualTo(MigrationLog.NOT_MOVED);
      assertThat(record(first.id()).note()).isEqualTo("superseded by " + second.id());
      assertThat(record(second.id()).status()).isEqualTo(MigrationLog.MOVING);
    });
    assertThat(allocate("2", allocation(Map.of(A, List.of("1"), B, List.of("3"), C, List.of("4"))))).isEqualTo(C);
  }

  @Test
  void aNewMoveOfAShardClosesTheRecordOfThePreviousOneStillOpen() {
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 400)));
    MigrationLog.Migration first = requested("dev-1", "2");
    view.setRequests(Map.of(first.id(), new MigrationRequest(first.id(), "dev-1", "2", C, System.currentTimeMillis())));
    assertThat(rebalance(allocation(layout))).containsExactly("2");
    // The handoff did not happen: the shard is still on A when the next request comes.
    MigrationLog.Migration second = requested("dev-2", "2");
    view.setRequests(Map.of(second.id(), new MigrationRequest(second.id(), "dev-2", "2", B,
        System.currentTimeMillis())));
    assertThat(rebalance(allocation(layout))).containsExactly("2");
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
      assertThat(record(first.id()).status()).isEqualTo(MigrationLog.NOT_MOVED);
      assertThat(record(first.id()).note()).isEqualTo("superseded by " + second.id());
      assertThat(record(second.id()).status()).isEqualTo(MigrationLog.MOVING);
    });
  }

  @Test
  void aMovedShardNotStartedAgainIsClosedAsMovedIdleAndItsLateArrivalChangesNothing() {
    strategy = new LoadAwareAllocationStrategy(KIT.system(), new MigrationSettings(true, 300, 100e6,
        Duration.ofSeconds(2), Duration.ofSeconds(2), Duration.ofSeconds(30), 10_000, Duration.ofSeconds(1),
        Duration.ofMillis(200), 0.2, 1, Duration.ofMillis(200)));
    view.setLoads(Map.of(A, load(A, 0), B, load(B, 100), C, load(C, 400)));
    MigrationLog.Migration m = requested("dev-1", "2");
    view.setRequests(Map.of(m.id(), new MigrationRequest(m.id(), "dev-1", "2", C, System.currentTimeMillis())));
    assertThat(rebalance(allocation(layout))).containsExactly("2");
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
      assertThat(record(m.id()).status()).isEqualTo(MigrationLog.MOVED_IDLE);
      assertThat(record(m.id()).note()).contains("starts on " + C + " with its next message");
      assertThat(record(m.id()).completedAt()).isNotNull();
    });
    // Days later, the socket's next message starts the shard.
    assertThat(allocate("2", allocation(Map.of(A, List.of("1"), B, List.of("3"), C, List.of("4"))))).isEqualTo(C);
    await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
      assertThat(record(m.id()).status()).isEqualTo(MigrationLog.MOVED_IDLE);
      assertThat(record(m.id()).movedAt()).isNull();
    });
  }
}
