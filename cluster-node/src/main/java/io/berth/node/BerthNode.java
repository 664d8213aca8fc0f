package io.berth.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.berth.node.balance.LoadAwareAllocationStrategy;
import io.berth.node.balance.LoadReporter;
import io.berth.node.balance.LoadRegistry;
import io.berth.node.balance.LoadView;
import io.berth.node.balance.MigrationSettings;
import io.berth.node.balance.NodeLoad;
import io.berth.node.edge.EdgeServer;
import io.berth.node.edge.EdgeSettings;
import io.berth.node.edge.EdgeState;
import io.berth.node.edge.LimitSettings;
import io.berth.node.lease.FencedAllocation;
import io.berth.node.lease.LeaseSettings;
import io.berth.node.lease.NodeLease;
import io.berth.node.link.PairingEntity;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.mapping.EndpointBreakers;
import io.berth.node.mapping.MappingRegistry;
import io.berth.node.mapping.MappingWatcher;
import io.berth.node.metrics.CountingAsyncAppender;
import io.berth.node.metrics.Metrics;
import io.berth.node.ops.BootstrapSettings;
import io.berth.node.ops.ManagementServer;
import io.berth.node.ops.ManagementSettings;
import io.berth.node.secrets.SecretSettings;
import io.berth.node.socket.SocketEntity;
import io.berth.node.socket.SocketSettings;
import io.berth.node.tls.BootstrapTls;
import io.berth.node.tls.ClusterTls;
import io.berth.node.tls.ClusterTlsSettings;
import io.berth.node.tls.DenyList;
import io.berth.node.tls.DenyListStore;
import io.berth.node.tls.ManagementTlsSettings;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.JournalWrites;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.ConnectionContext;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap;

/** Assembles one node: socket sharding, the TCP edge, and the management HTTP server. */
public final class BerthNode {

  public static final String SYSTEM_NAME = "berth";

  /** Coordinated-shutdown reason when the management HTTP server cannot start. */
  public static final org.apache.pekko.actor.CoordinatedShutdown.Reason MANAGEMENT_FAILED =
      new org.apache.pekko.actor.CoordinatedShutdown.Reason() {
        @Override
        public String toString() {
          return "ManagementFailed";
        }
      };

  private BerthNode() {}

  /**
   * The node's configuration: application.conf (with its environment overrides), the database
   * settings laid over Pekko Persistence JDBC, seed nodes from {@code BERTH_SEED_NODES}
   * (comma-separated addresses), which HOCON cannot split by itself, and Artery's TLS transport
   * when {@code berth.cluster.tls.enabled} (its files checked here, so that a node without them
   * stops with a sentence that says what to set).
   */
  public static Config config(Config loaded) {
    Config config = loaded;
    if (ClusterTlsSettings.fromConfig(config.resolve()).enabled()) {
      config = ConfigFactory.parseMap(Map.of(
              "pekko.remote.artery.transport", "tls-tcp",
              "pekko.remote.artery.ssl.ssl-engine-provider", ClusterTls.class.getName()))
          .withFallback(config);
    }
    String seeds = System.getenv("BERTH_SEED_NODES");
    if (seeds != null && !seeds.isBlank()) {
      List<String> list = Arrays.stream(seeds.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
      config = ConfigFactory.empty()
          .withValue("pekko.cluster.seed-nodes", ConfigValueFactory.fromIterable(list))
          .withFallback(config);
    }
    if (!config.resolve().getBoolean("berth.cluster.lease.enabled")) {
      // The short removal margin rests on the node leases' fence (docs/failover.md): without
      // them, the resolver's own (as long as stable-after) lets a downed node stop first.
      config = ConfigFactory.parseMap(Map.of("pekko.cluster.down-removal-margin", "off")).withFallback(config);
    }
    return DatabaseSettings.fromConfig(config).pekkoOverrides().withFallback(config).resolve();
  }

  public static Behavior<Void> guardian(Config config) {
    SocketSettings connection = SocketSettings.fromConfig(config);
    EdgeSettings edge = EdgeSettings.fromConfig(config);
    // The edge's limits are read by its connections (EdgeLimits), first at a HELLO: checked here so
    // that a wrong berth.edge.limits stops the node at start.
    LimitSettings.fromConfig(config);
    // The management port's keys and certificate, checked here for the same reason.
    ManagementSettings.fromConfig(config);
    ManagementTlsSettings.fromConfig(config);
    MigrationSettings migration = MigrationSettings.fromConfig(config);
    LeaseSettings lease = LeaseSettings.fromConfig(config);
    // Read again by SecretSealer when first used: checked here so that a node without keys, or
    // with a malformed one, does not start.
    SecretSettings secrets = SecretSettings.fromConfig(config);
    // Seed nodes or bootstrap, never both; and the probes' TLS, when the management ports serve
    // HTTPS, trusts the nodes' CA: checked here so that a node missing it does not start.
    BootstrapSettings bootstrap = BootstrapSettings.fromConfig(config);
    Optional<BootstrapTls> probeTls = bootstrap.enabled() && ManagementTlsSettings.fromConfig(config).enabled()
        ? Optional.of(BootstrapTls.fromSettings(ClusterTlsSettings.fromConfig(config)))
        : Optional.empty();
    return Behaviors.setup(ctx -> {
      ActorSystem<Void> system = ctx.getSystem();
      // Bootstrap's probes use Http's default client context, which cannot be given per request:
      // it becomes one that trusts only node certificates. Nothing else in the node uses that
      // default (webhook calls have their own, EndpointTransport).
      probeTls.ifPresent(tls -> Http.get(system).setDefaultClientHttpsContext(
          ConnectionContext.httpsClient((host, port) -> tls.newEngine(host, port))));
      ShardCoordinator.ShardAllocationStrategy sockets = new LoadAwareAllocationStrategy(system, migration);
      // One strategy per entity type: each coordinator has its own, as sharding gives by default.
      ClusterShardingSettings shardingSettings = ClusterShardingSettings.create(system);
      ShardCoordinator.ShardAllocationStrategy links =
          ClusterSharding.get(system).defaultShardAllocationStrategy(shardingSettings);
      ShardCoordinator.ShardAllocationStrategy pairings =
          ClusterSharding.get(system).defaultShardAllocationStrategy(shardingSettings);
      if (lease.enabled()) {
        // Before the sessions: the journal is fenced from the moment the lease is taken, and no
        // shard of a downed member starts elsewhere before its lease is revoked.
        ActorRef<NodeLease.Command> nodeLease = ctx.spawn(
            Behaviors.supervise(NodeLease.create(lease)).onFailure(SupervisorStrategy.restart()), "node-lease");
        sockets = FencedAllocation.around(sockets, system, nodeLease, lease.fenceWait());
        links = FencedAllocation.around(links, system, nodeLease, lease.fenceWait());
        pairings = FencedAllocation.around(pairings, system, nodeLease, lease.fenceWait());
      }
      SocketEntity.init(system, connection, sockets);
      PeerLinkEntity.init(system, links);
      PairingEntity.init(system, pairings);
      // The node's one deny list, read from berth_certificate_deny from here on (DenyListStore):
      // the edge's TLS refuses the certificates it names, and closes their open connections.
      DenyList denyList = DenyListStore.get(system).denyList();
      ActorRef<EdgeServer.Command> edgeServer = ctx.spawn(EdgeServer.create(edge, denyList), "edge");
      ctx.spawn(LoadReporter.create(migration, edge.advertisedHost(system), edge.port(),
          edge.websocket().enabled() ? edge.websocket().port() : 0, edge.mqtt().enabled() ? edge.mqtt().port() : 0,
          EdgeServer.control(system, edgeServer)), "load-reporter");
      ctx.spawn(MappingWatcher.create(), "mapping-watcher");
      MappingRegistry registry = MappingRegistry.get(system);
      registry.ensureDefaults().whenComplete((ok, failure) -> {
        if (failure != null) {
          system.log().error("Cannot create the built-in mappings: {}", failure.getMessage());
        }
      });
      if (secrets.keys().isEmpty()) {
        system.log().warn("Mapping secrets are stored unencrypted: {} is on and {} is not set",
            SecretSettings.ALLOW_PLAINTEXT, SecretSettings.KEYS);
      } else {
        registry.sealStoredSecrets().whenComplete((resealed, failure) -> {
          if (failure != null) {
            system.log().error("Cannot seal the stored mapping secrets: {}", failure.getMessage());
          } else if (resealed > 0) {
            system.log().info("Sealed the secrets of {} stored mappings with key '{}'", resealed,
                secrets.currentKeyId());
          }
        });
      }
      scraped(system);
      ManagementServer.start(system).whenComplete((binding, failure) -> {
        if (failure != null) {
          // Without management there is no readiness and no operator API: do not run half a node.
          system.log().error("Cannot start the management HTTP server: {}", failure.getMessage());
          org.apache.pekko.actor.CoordinatedShutdown.get(system).run(MANAGEMENT_FAILED);
        } else if (bootstrap.enabled()) {
          // After the bind: the other nodes' probes need this node's port, and bootstrap needs the
          // self contact point that building the management routes gave it.
          system.log().info("Joining the cluster by bootstrap (discovery {})", system.settings().config()
              .getString("pekko.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
          ClusterBootstrap.get(system.classicSystem()).start();
        }
      });
      return Behaviors.empty();
    });
  }

  /**
   * The node's figures that are counted anyway, read by {@link Metrics} when Prometheus scrapes:
   * nothing is added where they are counted (docs/metrics.md).
   */
  private static void scraped(ActorSystem<Void> system) {
    Metrics metrics = Metrics.get(system);
    EdgeState edge = EdgeState.get(system);
    LoadRegistry load = LoadRegistry.get(system);
    LoadView view = LoadView.get(system);
    String self = org.apache.pekko.cluster.typed.Cluster.get(system).selfMember().address().toString();
    metrics.gauge("berth_connections_open", "Device connections open on this node's edge", edge::connections);
    metrics.gauge("berth_node_draining", "1 while this node is draining", () -> edge.draining() ? 1 : 0);
    metrics.counter("berth_connections_refused_total", "Connections ended before their first frame, by outcome "
        + "(not TLS, certificate expired, untrusted, missing, denied, TLS failed, bad PROXY header, setup timeout)",
        "outcome", edge::refusals);
    metrics.counter("berth_uplink_frames_total", "DATA frames the sockets on this node took from their devices "
        + "(their destination had them)", load::framesTaken);
    metrics.counter("berth_uplink_bytes_total", "Payload bytes of those frames", load::bytesTaken);
    metrics.gauge("berth_socket_entities", "Socket sessions running on this node (a quiet socket sleeps)",
        load::running);
    metrics.gauge("berth_shards", "Shards of sockets on this node, as its last load report said",
        () -> Optional.ofNullable(view.loads().get(self)).map(NodeLoad::shards).orElse(0));
    metrics.counter("berth_log_lines_dropped_total", "Log lines the async appender dropped rather than block",
        CountingAsyncAppender::dropped);
    metrics.gauge("berth_endpoint_breaker_open", "1 while the circuit breaker of an endpoint host is open",
        "host", EndpointBreakers.get(system)::openByHost);
    metrics.gauge("berth_edge_queued_frames", "Frames queued on the edge for devices that have not taken them yet",
        edge::queuedFrames);
    metrics.gauge("berth_edge_blocked_connections", "Device connections whose TCP send buffer is full (the device "
        + "reads slower than it is sent to)", edge::blockedConnections);
    JournalWrites.get(Adapter.toClassic(system)).observe(metrics::journalWrite);
  }

  public static ActorSystem<Void> start(Config config) {
    return ActorSystem.create(guardian(config), SYSTEM_NAME, config);
  }
}
