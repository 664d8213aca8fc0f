package io.berth.node.balance;

import java.time.Duration;
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
  /**
   * Shards moving now → the id of their migration record, completed as they arrive or closed by
   * the deadline set when the move was decided, whichever comes first.
   */
  private final Map<String, String> records = new ConcurrentHashMap<>();
  /** Nodes being drained → the record of their drain. */
  private final Map<String, Drain> drains = new ConcurrentHashMap<>();
  /**
   * Nodes whose drain is over but which are still marked (until they leave or are unmarked): an
   * empty node does not start a new drain, and a new record, every round.
   */
  private final Set<String> drained = ConcurrentHashMap.newKeySet();
  /** When the last automatic round moved something (System.nanoTime), 0 before the first. */
  private long lastAutomaticMove;
  /** How long a handoff may take before sharding gives up on it. */
  private final Duration handoffTimeout;

  public LoadAwareAllocationStrategy(ActorSystem<?> system, MigrationSettings settings) {
    this.system = system;
    this.settings = settings;
    this.view = LoadView.get(system);
    this.handoffTimeout = system.settings().config().getDuration("pekko.cluster.sharding.handoff-timeout");
  }

  // ------------------------------------------------------------------ where

  @Override
  public Future<ActorRef> allocateShard(ActorRef requester, String shardId, Map<ActorRef, IndexedSeq<String>> current) {
    Map<String, ActorRef> byNode = regionsByNode(current);
    String target = planned.remove(shardId);
    ActorRef chosen;
    if (target != null && byNode.containsKey(target) && !isDraining(target)) {
      chosen = byNode.get(target);
    } else {
      ActorRef best = best(current, null);
      chosen = best != null ? best : requester;
    }
    arrived(shardId, nodeOf(chosen));
    return Futures.successful(chosen);
  }

  /**
   * A moved shard is allocated again, on {@code node}: its record waits for the socket's first
   * delivery there, for {@code idle-grace} at most, and a drain notes where its shards went.
   */
  private void arrived(String shardId, String node) {
    String id = records.remove(shardId);
    if (id != null) {
      MigrationLog migrations = MigrationLog.get(system);
      migrations.arrived(id, node, Instant.now());
      system.scheduler().scheduleOnce(settings.idleGrace(), () -> migrations.idle(id, "no delivery within "
          + settings.idleGrace().toMillis() + " ms after the shard arrived: nothing to measure a pause by"),
          system.executionContext());
    }
    for (Drain d : drains.values()) {
      if (d.shards.contains(shardId)) {
        d.targets.add(node);
        d.dirty = true;
      }
    }
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
    finishDrains(current, inProgress);
    drained.removeIf(node -> !isDraining(node));
    boolean anyTarget = current.keySet().stream().anyMatch(r -> !isDraining(nodeOf(r)));
    if (!anyTarget) {
      return;
    }
    for (Map.Entry<ActorRef, IndexedSeq<String>> e : current.entrySet()) {
      String node = nodeOf(e.getKey());
      if (!isDraining(node) || (e.getValue().isEmpty() && drained.contains(node))) {
        continue;
      }
      drained.remove(node);
      NodeLoad load = loads.get(node);
      Drain drain = drains.computeIfAbsent(node, n -> {
        // One record per drain: how many shards it moved, and the sockets running in them.
        Drain d = new Drain(UUID.randomUUID().toString(), load == null ? 0 : load.sockets());
        MigrationLog.Migration m = MigrationLog.Migration.decided(d.id, "*", "*", "drain", node, null, null, null,
            null);
        MigrationLog.get(system).started(new MigrationLog.Migration(m.id(), m.socketId(), m.shardId(), m.cause(),
            m.status(), m.from(), m.to(), null, null, null, m.startedAt(), null, null, null, 0, d.sockets,
            "sockets: the socket entities running on the node when the drain began"));
        return d;
      });
      scala.collection.Iterator<String> it = e.getValue().iterator();
      while (it.hasNext()) {
        String shard = it.next();
        if (inProgress.contains(shard) || !moves.add(shard)) {
          continue;
        }
        drain.shards.add(shard);
        drain.dirty = true;
        Double rate = load == null ? null : load.shardFramesPerSecond().get(shard);
        if (rate != null) {
          // A shard with traffic gets a record of its own, completed with the pause its sockets saw.
          record(UUID.randomUUID().toString(), "*", shard, "drain", node, null, rate, null, null);
        }
      }
    }
    for (Drain d : drains.values()) {
      if (d.dirty) {
        d.dirty = false;
        MigrationLog.get(system).drainProgress(d.id, d.shards.size(), d.sockets, String.join(", ", d.targets), false);
      }
    }
  }

  /**
   * A drain is over once its node holds no shard and none is on its way, or the mark is gone. A
   * shard handed off but not yet allocated again (the coordinator asks for its home right after
   * its deallocation, and a rebalance round can come between) is on its way: its target is not
   * known yet.
   */
  private void finishDrains(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress) {
    Map<String, ActorRef> byNode = regionsByNode(current);
    Set<String> allocated = new HashSet<>();
    for (IndexedSeq<String> shards : current.values()) {
      scala.collection.Iterator<String> it = shards.iterator();
      while (it.hasNext()) {
        allocated.add(it.next());
      }
    }
    for (Map.Entry<String, Drain> e : drains.entrySet()) {
      String node = e.getKey();
      Drain d = e.getValue();
      ActorRef region = byNode.get(node);
      boolean empty = region == null || current.get(region).isEmpty();
      boolean arriving = d.shards.stream().anyMatch(s -> inProgress.contains(s) || !allocated.contains(s));
      if ((empty && !arriving) || !isDraining(node)) {
        drains.remove(node);
        if (isDraining(node)) {
          drained.add(node);
        }
        MigrationLog.get(system).drainProgress(d.id, d.shards.size(), d.sockets, String.join(", ", d.targets), true);
      }
    }
  }

  /** A drain in progress: its record's id, the shards it moved so far, where they went. */
  private static final class Drain {
    final String id;
    final int sockets;
    final Set<String> shards = ConcurrentHashMap.newKeySet();
    final Set<String> targets = new java.util.concurrent.ConcurrentSkipListSet<>();
    volatile boolean dirty = true;

    Drain(String id, int sockets) {
      this.id = id;
      this.sockets = sockets;
    }
  }

  private void requests(Map<ActorRef, IndexedSeq<String>> current, Set<String> inProgress, Set<String> moves,
                        Map<String, String> shardNode, Map<String, ActorRef> byNode, Map<String, NodeLoad> loads) {
    for (MigrationRequest r : newestPerShard(view.requests().values())) {
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
      forget(r.id());
      MigrationLog migrations = MigrationLog.get(system);
      if (to == null) {
        log.warn("Migration request {} for socket {} dropped: no eligible target node (asked: {})", r.id(),
            r.socketId(), r.to() == null || r.to().isEmpty() ? "any" : r.to());
        migrations.decided(r.id(), MigrationLog.NOT_MOVED, from, r.to(), null, null, "no eligible target node (asked: "
            + (r.to() == null || r.to().isEmpty() ? "any" : r.to() + ", not a member or draining") + ")");
        continue;
      }
      if (from == null) {
        planned.put(r.shardId(), to); // not running anywhere: it starts on the target
        migrations.decided(r.id(), MigrationLog.MOVED_IDLE, null, to, 0.0, 0.0, "the socket's shard was not running"
            + " on any node: it starts on " + to + " when next used");
        continue;
      }
      if (from.equals(to)) {
        migrations.decided(r.id(), MigrationLog.NOT_MOVED, from, to, null, null, "the socket is on " + to
            + " already");
        continue;
      }
      moves.add(r.shardId());
      planned.put(r.shardId(), to);
      lastMoved.put(r.shardId(), System.nanoTime());
      double[] rate = socketRate(loads.get(from), r.socketId(), r.shardId());
      migrations.decided(r.id(), MigrationLog.MOVING, from, to, rate == null ? null : rate[0],
          rate == null ? null : rate[1], null);
      track(r.shardId(), r.id(), from, to);
    }
  }

  /**
   * The newest request for each shard; older ones for the same shard are closed now, as
   * superseded: one move carries the shard where the newest asked.
   */
  private List<MigrationRequest> newestPerShard(Iterable<MigrationRequest> requests) {
    Map<String, MigrationRequest> newest = new HashMap<>();
    List<MigrationRequest> older = new ArrayList<>();
    Comparator<MigrationRequest> order = Comparator.comparingLong(MigrationRequest::requestedAtMillis)
        .thenComparing(MigrationRequest::id);
    for (MigrationRequest r : requests) {
      MigrationRequest other = newest.get(r.shardId());
      if (other == null) {
        newest.put(r.shardId(), r);
      } else if (order.compare(r, other) > 0) {
        newest.put(r.shardId(), r);
        older.add(other);
      } else {
        older.add(r);
      }
    }
    for (MigrationRequest r : older) {
      forget(r.id());
      MigrationLog.get(system).decided(r.id(), MigrationLog.NOT_MOVED, null, r.to(), null, null,
          "superseded by " + newest.get(r.shardId()).id());
    }
    return new ArrayList<>(newest.values());
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
      record(UUID.randomUUID().toString(), c.hot.socketId(), shard, "auto", from, target.node(),
          c.hot.framesPerSecond(), c.hot.bytesPerSecond(), Instant.ofEpochMilli(c.hot.hotSinceMillis()));
    }
  }

  private record Candidate(NodeLoad load, NodeLoad.HotSocket hot) {}

  // ------------------------------------------------------------------ helpers

  private void record(String id, String socketId, String shard, String cause, String from, String to, Double fps,
                      Double bps, Instant hotSince) {
    track(shard, id, from, to);
    MigrationLog.get(system).started(MigrationLog.Migration.decided(id, socketId, shard, cause, from, to, fps, bps,
        hotSince));
  }

  /**
   * The move of {@code shard} is recorded as {@code id}: a record still open for the shard is
   * closed as superseded, and a deadline starts. Sharding allocates a handed-off shard again only
   * at its next message, days later for a detached or sleeping socket; a shard not allocated
   * within idle-grace plus the handoff timeout is closed as moved-idle, and its arrival, whenever
   * it comes, finds no record to complete.
   */
  private void track(String shard, String id, String from, String to) {
    MigrationLog migrations = MigrationLog.get(system);
    String replaced = records.put(shard, id);
    if (replaced != null && !replaced.equals(id)) {
      migrations.superseded(replaced, id);
    }
    Duration deadline = settings.idleGrace().plus(handoffTimeout);
    system.scheduler().scheduleOnce(deadline, () -> {
      if (records.remove(shard, id)) {
        migrations.notStarted(id, "the shard left " + from + " and was not started again within "
            + deadline.toMillis() + " ms: it starts on " + (to == null ? "the node with the most headroom" : to)
            + " with its next message");
      }
    }, system.executionContext());
  }

  private void forget(String requestId) {
    LoadReporter.Command forget = new LoadReporter.Forget(requestId);
    if (view.reporter() != null) {
      view.reporter().tell(forget);
    }
  }

  /**
   * The socket's frames/s and bytes/s: published for hot sockets; a socket whose shard carries
   * no published rate (under half a frame a second) is idle, 0; otherwise unknown (null).
   */
  private static double[] socketRate(NodeLoad load, String socketId, String shardId) {
    if (load == null) {
      return null;
    }
    for (NodeLoad.HotSocket h : load.hot()) {
      if (h.socketId().equals(socketId)) {
        return new double[] {h.framesPerSecond(), h.bytesPerSecond()};
      }
    }
    return load.shardFramesPerSecond().containsKey(shardId) ? null : new double[] {0, 0};
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
