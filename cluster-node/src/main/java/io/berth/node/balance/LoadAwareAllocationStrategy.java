package io.berth.node.balance;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.dispatch.Futures;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.immutable.IndexedSeq;
import scala.concurrent.Future;

/**
 * Places and moves socket shards by throughput instead of by count. Runs inside the shard
 * coordinator (on the oldest node): {@code rebalance} is called every decision interval and
 * decides which shards move; after the handoff {@code allocateShard} decides where. Both read the load
 * view kept by this node's {@link LoadReporter} and answer at once.
 *
 * <p>What moves, in order: every shard of a node marked for draining; shards named in operator
 * requests; and shards of sockets whose rate stayed above the threshold for {@code sustain},
 * when that helps: the target's load must be below what the source carries <em>without</em> the
 * socket, by {@code min-gain}. A socket alone on its node therefore stays (moving it gains
 * nothing), and the move can never pay to be undone, so shards do not ping-pong; a per-shard
 * {@code cooldown} bounds moves further, and automatic moves happen at most once per check
 * interval, so that each decision sees loads published after the previous move. New shards go to
 * the node with the most headroom.
 */
public final class LoadAwareAllocationStrategy extends ShardCoordinator.AbstractShardAllocationStrategy {

  private static final Logger log = LoggerFactory.getLogger(LoadAwareAllocationStrategy.class);

  private final ActorSystem<?> system;
  private final MigrationSettings settings;
  private final LoadView view;
  private final Map<String, String> planned = new ConcurrentHashMap<>();
  private final Map<String, Long> lastMoved = new ConcurrentHashMap<>();
  /** When the last automatic round moved something (System.nanoTime), 0 before the first. */
  private long lastAutomaticMove;

  public LoadAwareAllocationStrategy(ActorSystem<?> system, MigrationSettings settings) {
    this.system = system;
    this.settings = settings;
    this.view = LoadView.get(system);
  }

  // ------------------------------------------------------------------ where

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId, Map<ActorRef, IndexedSeq<String>> current) {
    Map<String, ActorRef> byNode = regionsByNode(current);
    String target = planned.remove(shardId);
    if (target != null && byNode.containsKey(target) && !isDraining(target)) {
      return Futures.successful(byNode.get(target));
    }
    ActorRef best = best(current, null);
    return Futures.successful(best != null ? best : requester);
  }

  /**
   * The region with the most headroom that is not draining. Headroom is compared in steps of 5 %
   * of a node's capacity: nodes within a step are equally good, and the one with fewer shards
   * wins, so that sockets spread as evenly as by count while loads are similar.
   */
  private ActorRef best(Map<ActorRef, IndexedSeq<String>> current, String excludeNode) {
    Map<String, NodeLoad> loads = view.loads();
    double step = settings.nodeCapacity() * 0.05;
    ActorRef best = null;
    long bestBucket = Long.MIN_VALUE;
    int bestShards = Integer.MAX_VALUE;
    for (Map.Entry<ActorRef, IndexedSeq<String>> e : current.entrySet()) {
      String node = nodeOf(e.getKey());
      if (node.equals(excludeNode) || isDraining(node)) {
        continue;
      }
      NodeLoad load = loads.get(node);
      long bucket = (long) Math.floor((load == null ? settings.nodeCapacity() : load.headroom()) / step);
      int shards = e.getValue().size();
      if (bucket > bestBucket || (bucket == bestBucket && shards < bestShards)) {
        best = e.getKey();
        bestBucket = bucket;
        bestShards = shards;
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ what

  @Override
  public Future<Set<String>> rebalance(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    try {
      return Futures.successful(decide(current, inProgress));
    } catch (RuntimeException e) {
      // Never fail the coordinator's round: a failed future only means "nothing moves now".
      log.warn("Rebalance decision failed", e);
      return Futures.successful(Set.of());
    }
  }

  private Set<String> decide(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    Set<String> moves = new HashSet<>();
    Map<String, String> shardNode = new HashMap<>();
    Map<String, ActorRef> byNode = regionsByNode(current);
    for (Map.Entry<ActorRef, IndexedSeq<String>> e : current.entrySet()) {
      String node = nodeOf(e.getKey());
      scala.collection.Iterator<String> it = e.getValue().iterator();
      while (it.hasNext()) {
        shardNode.put(it.next(), node);
      }
    }
    Map<String, NodeLoad> loads = view.loads();
    drain(current, inProgress, moves, loads);
    requests(current, inProgress, moves, shardNode, byNode, loads);
    if (settings.enabled()) {
      automatic(inProgress, moves, shardNode, byNode, loads);
    }
    return moves;
  }

  private void drain(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress, Set<String> moves,
                     Map<String, NodeLoad> loads) {
    boolean anyTarget = current.keySet().stream().anyMatch(r -> !isDraining(nodeOf(r)));
    if (!anyTarget) {
      return;
    }
    for (Map.Entry<ActorRef, IndexedSeq<String>> e : current.entrySet()) {
      String node = nodeOf(e.getKey());
      if (!isDraining(node)) {
        continue;
      }
      NodeLoad load = loads.get(node);
      scala.collection.Iterator<String> it = e.getValue().iterator();
      while (it.hasNext()) {
        String shard = it.next();
        if (inProgress.contains(shard) || !moves.add(shard)) {
          continue;
        }
        Double rate = load == null ? null : load.shardFramesPerSecond().get(shard);
        if (rate != null) {
          // Only shards that carry traffic are worth a line in the migration log.
          record("*", shard, "drain", node, null, rate, null, null);
        }
      }
    }
  }

  private void requests(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress, Set<String> moves,
                        Map<String, String> shardNode, Map<String, ActorRef> byNode, Map<String, NodeLoad> loads) {
    for (MigrationRequest r : view.requests().values()) {
      if (inProgress.contains(r.shardId()) || moves.contains(r.shardId())) {
        continue;
      }
      String from = shardNode.get(r.shardId());
      String to;
      if (r.to() == null || r.to().isEmpty()) {
        ActorRef best = best(current, from);
        to = best == null ? null : nodeOf(best);
      } else {
        to = byNode.containsKey(r.to()) && !isDraining(r.to()) ? r.to() : null;
      }
      forget(r.shardId());
      if (to == null) {
        log.warn("Migration request {} for socket {} dropped: no eligible target node (asked: {})", r.id(),
            r.socketId(), r.to() == null || r.to().isEmpty() ? "any" : r.to());
        continue;
      }
      if (from == null) {
        planned.put(r.shardId(), to); // not running anywhere: it starts on the target
        continue;
      }
      if (from.equals(to)) {
        continue;
      }
      moves.add(r.shardId());
      planned.put(r.shardId(), to);
      lastMoved.put(r.shardId(), System.nanoTime());
      NodeLoad.HotSocket rate = rateOf(loads.get(from), r.socketId());
      record(r.socketId(), r.shardId(), "manual", from, to, rate == null ? null : rate.framesPerSecond(),
          rate == null ? null : rate.bytesPerSecond(), null);
    }
  }

  private void automatic(Set<String> inProgress, Set<String> moves, Map<String, String> shardNode,
                         Map<String, ActorRef> byNode, Map<String, NodeLoad> loads) {
    long nowNanos = System.nanoTime();
    if (lastAutomaticMove != 0 && nowNanos - lastAutomaticMove < settings.checkInterval().toNanos()) {
      // Decisions run more often than loads are published: until the loads show where the last
      // move went, another one could send a second hot socket to the same target.
      return;
    }
    long nowMillis = System.currentTimeMillis();
    List<Candidate> candidates = new ArrayList<>();
    for (NodeLoad load : loads.values()) {
      if (!byNode.containsKey(load.node()) || isDraining(load.node())) {
        continue;
      }
      for (NodeLoad.HotSocket hot : load.hot()) {
        candidates.add(new Candidate(load, hot));
      }
    }
    candidates.sort(Comparator.comparingDouble((Candidate c) -> c.hot.framesPerSecond()).reversed());
    int moved = 0;
    for (Candidate c : candidates) {
      if (moved >= settings.maxMovesPerCheck()) {
        break;
      }
      String shard = c.hot.shardId();
      String from = c.load.node();
      if (!from.equals(shardNode.get(shard)) || inProgress.contains(shard) || moves.contains(shard)) {
        continue; // stale report, or already moving
      }
      if (nowMillis - c.hot.hotSinceMillis() < settings.sustain().toMillis()) {
        continue;
      }
      Long last = lastMoved.get(shard);
      if (last != null && nowNanos - last < settings.cooldown().toNanos()) {
        continue;
      }
      boolean byFrames = c.hot.framesPerSecond() > settings.thresholdFramesPerSecond();
      double socket = byFrames ? c.hot.framesPerSecond() : c.hot.bytesPerSecond();
      double others = Math.max(0, (byFrames ? c.load.framesPerSecond() : c.load.bytesPerSecond()) - socket);
      NodeLoad target = null;
      for (NodeLoad l : loads.values()) {
        if (l.node().equals(from) || !byNode.containsKey(l.node()) || isDraining(l.node())) {
          continue;
        }
        double m = byFrames ? l.framesPerSecond() : l.bytesPerSecond();
        if (target == null || m < (byFrames ? target.framesPerSecond() : target.bytesPerSecond())) {
          target = l;
        }
      }
      if (target == null) {
        continue;
      }
      double targetLoad = byFrames ? target.framesPerSecond() : target.bytesPerSecond();
      if (targetLoad >= others * (1 - settings.minGain())) {
        log.debug("Socket {} is hot ({} /s) but {} is not less loaded than {} without it; staying", c.hot.socketId(),
            Math.round(socket), target.node(), from);
        continue;
      }
      moves.add(shard);
      planned.put(shard, target.node());
      lastMoved.put(shard, nowNanos);
      lastAutomaticMove = nowNanos;
      moved++;
      log.info("Moving shard {} (socket {} at {} frames/s, {} B/s) from {} to {}", shard, c.hot.socketId(),
          Math.round(c.hot.framesPerSecond()), Math.round(c.hot.bytesPerSecond()), from, target.node());
      record(c.hot.socketId(), shard, "auto", from, target.node(), c.hot.framesPerSecond(), c.hot.bytesPerSecond(),
          Instant.ofEpochMilli(c.hot.hotSinceMillis()));
    }
  }

  private record Candidate(NodeLoad load, NodeLoad.HotSocket hot) {}

  // ------------------------------------------------------------------ helpers

  private void record(String socketId, String shard, String cause, String from, String to, Double fps, Double bps,
                      Instant hotSince) {
    MigrationLog.get(system).started(new MigrationLog.Migration(UUID.randomUUID().toString(), socketId, shard, cause,
        from, to, fps, bps, hotSince, Instant.now(), null, null));
  }

  private void forget(String shardId) {
    LoadReporter.Command forget = new LoadReporter.Forget(shardId);
    if (view.reporter() != null) {
      view.reporter().tell(forget);
    }
  }

  private static NodeLoad.HotSocket rateOf(NodeLoad load, String socketId) {
    if (load == null) {
      return null;
    }
    for (NodeLoad.HotSocket h : load.hot()) {
      if (h.socketId().equals(socketId)) {
        return h;
      }
    }
    return null;
  }

  private boolean isDraining(String node) {
    NodeLoad load = view.loads().get(node);
    return view.draining().contains(node) || (load != null && load.draining());
  }

  private Map<String, ActorRef> regionsByNode(Map<ActorRef, IndexedSeq<String>> current) {
    Map<String, ActorRef> byNode = new HashMap<>();
    for (ActorRef region : current.keySet()) {
      byNode.put(nodeOf(region), region);
    }
    return byNode;
  }

  /** A local region's path has no host and port: it is this node. */
  private String nodeOf(ActorRef region) {
    Address address = region.path().address();
    if (!address.hasGlobalScope()) {
      address = Cluster.get(system).selfMember().address();
    }
    return address.toString();
  }
}
