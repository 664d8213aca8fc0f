package io.berth.node.balance;

import io.berth.node.edge.api.EdgeControl;
import io.berth.node.socket.api.Sockets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.ddata.Key;
import org.apache.pekko.cluster.ddata.LWWMap;
import org.apache.pekko.cluster.ddata.ORSet;
import org.apache.pekko.cluster.ddata.ReplicatedData;
import org.apache.pekko.cluster.ddata.SelfUniqueAddress;
import org.apache.pekko.cluster.ddata.typed.javadsl.DistributedData;
import org.apache.pekko.cluster.ddata.typed.javadsl.Replicator;
import org.apache.pekko.cluster.ddata.typed.javadsl.ReplicatorMessageAdapter;
import org.apache.pekko.cluster.sharding.ClusterSharding;
import org.apache.pekko.cluster.sharding.ShardRegion;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * One per node. Every check interval it turns the socket meters into smoothed rates, publishes
 * this node's {@link NodeLoad} to Distributed Data (a local write that gossip spreads, or a write
 * to every node when a socket has newly turned hot, so that the coordinator's sustain clock is not
 * behind by a gossip round), and keeps {@link LoadView} up to date with every node's load, the
 * pending migration requests and the drain marks. When this node is marked for draining it tells
 * the edge to redirect its devices.
 */
public final class LoadReporter {

  /** How long a write to every node waits for their answers (gossip spreads it anyway). */
  private static final Duration WRITE_ALL_TIMEOUT = Duration.ofSeconds(1);

  public sealed interface Command {}

  private enum Tick implements Command {
    INSTANCE
  }

  /**
   * One adapter for the three keys: typed message adapters are chosen by message class, so
   * separate adapters for the same {@code Changed} class would shadow each other.
   */
  private record DataChanged(Replicator.SubscribeResponse<ReplicatedData> response) implements Command {}

  private record Written(Object response) implements Command {}

  private record RegionStats(ShardRegion.ShardRegionStats stats) implements Command {}

  /** Adds a migration request (from the operator route). */
  public record Request(MigrationRequest request) implements Command {}

  /** The coordinator acted on the request with this id: remove it. */
  public record Forget(String requestId) implements Command {}

  /** Marks a node (its address) for draining, or clears the mark. */
  public record SetDraining(String node, boolean draining) implements Command {}

  /**
   * @param edgePort the device port devices are redirected to; {@code websocketPort} the same on
   *     the WebSocket port and {@code mqttPort} on the MQTT port, 0 when off
   */
  public static Behavior<Command> create(MigrationSettings settings, String edgeHost, int edgePort, int websocketPort,
                                         int mqttPort, EdgeControl edge) {
    return Behaviors.setup(ctx ->
        DistributedData.<Command, ReplicatedData>withReplicatorMessageAdapter(replicator ->
            Behaviors.withTimers(timers -> {
              timers.startTimerWithFixedDelay(Tick.INSTANCE, settings.checkInterval());
              return new LoadReporter(ctx, settings, edgeHost, edgePort, websocketPort, mqttPort, edge, replicator).behavior();
            })));
  }

  private final ActorContext<Command> ctx;
  private final MigrationSettings settings;
  private final String edgeHost;
  private final int edgePort;
  private final int websocketPort;
  private final int mqttPort;
  private final EdgeControl edge;
  private final ReplicatorMessageAdapter<Command, ReplicatedData> replicator;
  private final LoadRegistry registry;
  private final LoadView view;
  private final Cluster cluster;
  private final SelfUniqueAddress self;
  private final String node;
  private long lastTick = System.nanoTime();
  /** Sockets hot at the last tick: a socket not among them is news worth sending to every node. */
  private Set<String> lastHot = Set.of();
  private int shards;
  private boolean draining;
  /** The classic region of the socket entities, asked for its shards' entity counts. */
  private final org.apache.pekko.actor.ActorRef region;
  private final ActorRef<ShardRegion.ShardRegionStats> statsReply;

  private LoadReporter(ActorContext<Command> ctx, MigrationSettings settings, String edgeHost, int edgePort,
                       int websocketPort, int mqttPort, EdgeControl edge,
                       ReplicatorMessageAdapter<Command, ReplicatedData> replicator) {
    this.ctx = ctx;
    this.settings = settings;
    this.edgeHost = edgeHost;
    this.edgePort = edgePort;
    this.websocketPort = websocketPort;
    this.mqttPort = mqttPort;
    this.edge = edge;
    this.replicator = replicator;
    this.registry = LoadRegistry.get(ctx.getSystem());
    this.view = LoadView.get(ctx.getSystem());
    this.cluster = Cluster.get(ctx.getSystem());
    this.self = DistributedData.get(ctx.getSystem()).selfUniqueAddress();
    this.node = cluster.selfMember().address().toString();
    view.setReporter(ctx.getSelf());
    this.region = ClusterSharding.get(Adapter.toClassic(ctx.getSystem()))
        .shardRegion(Sockets.ENTITY_KEY.name());
    this.statsReply = ctx.messageAdapter(ShardRegion.ShardRegionStats.class, RegionStats::new);
    replicator.subscribe(untyped(LoadView.LOADS), DataChanged::new);
    replicator.subscribe(untyped(LoadView.REQUESTS), DataChanged::new);
    replicator.subscribe(untyped(LoadView.DRAINING), DataChanged::new);
  }

  private Behavior<Command> behavior() {
    return Behaviors.receive(Command.class)
        .onMessage(Tick.class, m -> onTick())
        .onMessage(DataChanged.class, m -> {
          if (m.response() instanceof Replicator.Changed<ReplicatedData> changed) {
            onChanged(changed);
          }
          return Behaviors.same();
        })
        .onMessage(RegionStats.class, m -> {
          shards = m.stats().getStats().size();
          return Behaviors.same();
        })
        .onMessage(Request.class, m -> {
          // Keyed by request: a second request for a socket of the same shard must not replace
          // the first, whose record would then never be decided.
          this.<LWWMap<String, MigrationRequest>>update(LoadView.REQUESTS, LWWMap.empty(), everyNode(),
              map -> map.put(self, m.request().id(), m.request()));
          return Behaviors.same();
        })
        .onMessage(Forget.class, m -> {
          // By the request's id, whatever its key: a node of the previous version keys requests
          // by shard, and such an entry would otherwise be carried out again every round.
          this.<LWWMap<String, MigrationRequest>>update(LoadView.REQUESTS, LWWMap.empty(), Replicator.writeLocal(),
              map -> {
                LWWMap<String, MigrationRequest> left = map;
                for (Map.Entry<String, MigrationRequest> e : map.getEntries().entrySet()) {
                  if (e.getKey().equals(m.requestId()) || e.getValue().id().equals(m.requestId())) {
                    left = left.remove(self, e.getKey());
                  }
                }
                return left;
              });
          return Behaviors.same();
        })
        .onMessage(SetDraining.class, m -> {
          this.<ORSet<String>>update(LoadView.DRAINING, ORSet.empty(), everyNode(),
              set -> m.draining() ? set.add(self, m.node()) : set.remove(self, m.node()));
          return Behaviors.same();
        })
        .onMessage(Written.class, m -> Behaviors.same())
        .build();
  }

  private Behavior<Command> onTick() {
    long now = System.nanoTime();
    double seconds = Math.max(1e-3, (now - lastTick) / 1e9);
    lastTick = now;
    double alpha = 1 - Math.exp(-seconds / Math.max(1e-3, settings.rateWindow().toMillis() / 1000.0));
    long nowMillis = System.currentTimeMillis();

    double fps = 0;
    double bps = 0;
    int sockets = 0;
    Map<String, Double> perShard = new HashMap<>();
    List<NodeLoad.HotSocket> hot = new ArrayList<>();
    Set<String> hotIds = new HashSet<>();
    for (SocketMeter meter : registry.meters()) {
      meter.sample(seconds, alpha);
      sockets++;
      double f = meter.framesPerSecond;
      double b = meter.bytesPerSecond;
      fps += f;
      bps += b;
      if (f >= 0.5) {
        perShard.merge(meter.shardId, f, Double::sum);
      }
      if (settings.isHot(f, b)) {
        if (meter.hotSince == 0) {
          meter.hotSince = now;
        }
        hot.add(new NodeLoad.HotSocket(meter.socketId, meter.shardId, f, b,
            nowMillis - (now - meter.hotSince) / 1_000_000));
        hotIds.add(meter.socketId);
      } else {
        meter.hotSince = 0;
      }
    }
    NodeLoad load = new NodeLoad(node, settings.nodeCapacity(), fps, bps, sockets, edge.connections(), shards,
        edgeHost, edgePort, websocketPort, mqttPort, draining, perShard, hot, nowMillis);
    Replicator.WriteConsistency consistency =
        lastHot.containsAll(hotIds) ? Replicator.writeLocal() : everyNode();
    lastHot = hotIds;
    this.<LWWMap<String, NodeLoad>>update(LoadView.LOADS, LWWMap.empty(), consistency,
        map -> prune(map).put(self, node, load));

    // The shard count only: each shard answers with a number. GetShardRegionState would have
    // every shard build a set of its entity ids, twice a second, for all the node's sockets.
    region.tell(ShardRegion.getRegionStatsInstance(), Adapter.toClassic(statsReply));
    return Behaviors.same();
  }

  @SuppressWarnings("unchecked")
  private void onChanged(Replicator.Changed<ReplicatedData> changed) {
    ReplicatedData data = changed.dataValue();
    if (changed.key().equals(LoadView.LOADS)) {
      view.setLoads(((LWWMap<String, NodeLoad>) data).getEntries());
    } else if (changed.key().equals(LoadView.REQUESTS)) {
      view.setRequests(((LWWMap<String, MigrationRequest>) data).getEntries());
    } else if (changed.key().equals(LoadView.DRAINING)) {
      onDrainMarks(((ORSet<String>) data).getElements());
    }
  }

  /**
   * A write is always applied locally first; with {@link Replicator#writeLocal()} gossip spreads
   * it to the other nodes within about a gossip interval, with {@link #everyNode()} it is sent to
   * each of them at once (and still spread by gossip if one does not answer in time).
   */
  @SuppressWarnings("unchecked")
  private <D extends ReplicatedData> void update(Key<D> key, D initial, Replicator.WriteConsistency consistency,
                                                 java.util.function.Function<D, D> modify) {
    replicator.askUpdate(reply -> new Replicator.Update<>(untyped(key), initial, consistency, reply,
        data -> modify.apply((D) data)), Written::new);
  }

  /** For news the coordinator should act on now: a newly hot socket, a request, a drain mark. */
  private static Replicator.WriteConsistency everyNode() {
    return new Replicator.WriteAll(WRITE_ALL_TIMEOUT);
  }

  @SuppressWarnings("unchecked")
  private static Key<ReplicatedData> untyped(Key<? extends ReplicatedData> key) {
    return (Key<ReplicatedData>) (Key<?>) key;
  }

  /** The leader removes the entries of nodes that left, so views do not list ghosts. */
  private LWWMap<String, NodeLoad> prune(LWWMap<String, NodeLoad> map) {
    Address leader = cluster.state().getLeader();
    if (leader == null || !leader.equals(cluster.selfMember().address())) {
      return map;
    }
    Set<String> members = new HashSet<>();
    for (Member m : cluster.state().getMembers()) {
      members.add(m.address().toString());
    }
    LWWMap<String, NodeLoad> pruned = map;
    for (String key : map.getEntries().keySet()) {
      if (!members.contains(key)) {
        pruned = pruned.remove(self, key);
      }
    }
    return pruned;
  }

  private void onDrainMarks(Set<String> marked) {
    view.setDraining(marked);
    boolean nowDraining = marked.contains(node);
    if (nowDraining != draining) {
      draining = nowDraining;
      edge.setDraining(nowDraining);
      ctx.getLog().info(nowDraining ? "Node marked for draining: redirecting devices, moving shards away"
          : "Drain mark cleared: accepting devices again");
    }
  }
}
