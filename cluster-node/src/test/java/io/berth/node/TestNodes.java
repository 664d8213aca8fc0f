package io.berth.node;

import static org.awaitility.Awaitility.await;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.EdgeState;
import io.berth.node.ops.OperatorKey;
import io.berth.node.ops.OperatorRole;
import io.berth.node.secrets.TestKeys;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/**
 * Berth nodes in this JVM, wired exactly as {@link Main} wires them, sharing the PostgreSQL test
 * database. Each node listens on free loopback ports.
 */
public final class TestNodes implements AutoCloseable {

  public static final String SECRET = "test-fleet-secret-0123456789";
  /** The operator key every test node accepts as an admin's (HttpProbe presents it). */
  public static final String ADMIN_KEY = "test-admin.dGVzdC1hZG1pbi1rZXktb2YtdGhlLXRlc3Qtbm9kZXM";
  private static final AtomicBoolean SCHEMA = new AtomicBoolean();

  /**
   * A node; {@code websocketPort} and {@code mqttPort} are reserved for it, and served where the
   * test turned them on.
   */
  public record Node(ActorSystem<Void> system, int edgePort, int managementPort, int websocketPort, int mqttPort) {
    /** The WebSocket port's URL (berth.edge.websocket.enabled = on in the test's config). */
    public java.net.URI websocketUrl() {
      return java.net.URI.create("ws://127.0.0.1:" + websocketPort + "/devices");
    }

    public InetSocketAddress edge() {
      return new InetSocketAddress("127.0.0.1", edgePort);
    }

    public Address address() {
      return Cluster.get(system).selfMember().address();
    }

    public String managementUrl() {
      return "http://127.0.0.1:" + managementPort;
    }
  }

  private final List<Node> nodes = new ArrayList<>();
  private final String overrides;

  public TestNodes(String overrides) {
    this.overrides = overrides;
    DatabaseSettings db = TestDatabase.settings();
    if (SCHEMA.compareAndSet(false, true)) {
      SchemaInstaller.install(db);
    }
  }

  public TestNodes() {
    this("");
  }

  /** Starts {@code n} nodes and waits until all are Up. */
  public TestNodes start(int n) {
    for (int i = 0; i < n; i++) {
      startNode("");
    }
    awaitUp(n);
    return this;
  }

  /**
   * Starts one more node with extra config, joining the first node if there is one. A free port
   * can be taken by someone else before the node binds it (the node then stops: it cannot serve
   * devices); it is started again on other ports rather than leaving a cluster one node short.
   */
  public Node startNode(String extra) {
    for (int attempt = 1; ; attempt++) {
      Node node = tryStartNode(extra);
      await().atMost(Duration.ofSeconds(30)).until(() -> EdgeState.get(node.system()).accepting()
          || node.system().whenTerminated().isCompleted());
      if (!node.system().whenTerminated().isCompleted()) {
        Address joinTo = nodes.isEmpty() ? node.address() : nodes.get(0).address();
        Cluster.get(node.system()).manager().tell(Join.create(joinTo));
        nodes.add(node);
        return node;
      }
      if (attempt == 3) {
        throw new IllegalStateException("a test node could not bind its ports three times in a row");
      }
    }
  }

  private Node tryStartNode(String extra) {
    int edge = freePort();
    int management = freePort();
    int websocket = freePort();
    int mqtt = freePort();
    DatabaseSettings db = TestDatabase.settings();
    Config config = ConfigFactory.parseString(extra)
        .withFallback(ConfigFactory.parseString(overrides))
        .withFallback(ConfigFactory.parseMap(Map.of("berth.management.keys",
            new OperatorKey("test-admin", OperatorRole.ADMIN, OperatorKey.hash(ADMIN_KEY)).entry(),
            "berth.management.tls.enabled", false, "berth.edge.websocket.port", websocket,
            "berth.edge.mqtt.port", mqtt)))
        .withFallback(ConfigFactory.parseMap(Map.of(
            "berth.edge.host", "127.0.0.1",
            "berth.edge.port", edge,
            "berth.edge.tls.enabled", false,
            "berth.cluster.tls.enabled", false,
            "pekko.management.http.port", management,
            "berth.auth.secret", SECRET,
            "berth.db.url", db.url(),
            "berth.db.user", db.user(),
            "berth.db.password", db.password(),
            "berth.db.pool-size", 4)))
        .withFallback(ConfigFactory.parseMap(Map.of("berth.secrets.keys", TestKeys.KEYS)))
        .withFallback(ConfigFactory.parseString("""
            pekko.remote.artery.canonical.port = 0
            # Test endpoints (TestEndpoint) listen on loopback, which "*" refuses at every call.
            berth.endpoints.allowed-hosts = ["127.0.0.1"]
            pekko.cluster.jmx.multi-mbeans-in-same-jvm = on
            pekko.cluster.split-brain-resolver.stable-after = 3s
            pekko.cluster.shutdown-after-unsuccessful-join-seed-nodes = off
            pekko.coordinated-shutdown.terminate-actor-system = on
            pekko.loglevel = INFO
            """))
        .withFallback(ConfigFactory.load());
    ActorSystem<Void> system = BerthNode.start(BerthNode.config(config));
    return new Node(system, edge, management, websocket, mqtt);
  }

  public void awaitUp(int n) {
    await().atMost(Duration.ofSeconds(60)).until(() -> nodes.stream()
        .filter(node -> !node.system().whenTerminated().isCompleted())
        .allMatch(node -> upCount(node) == n));
    for (Node node : nodes) {
      if (!node.system().whenTerminated().isCompleted()) {
        await().atMost(Duration.ofSeconds(60)).until(() -> HttpProbe.status(node.managementUrl() + "/ready") == 200);
      }
    }
  }

  private static long upCount(Node node) {
    var members = Cluster.get(node.system()).state().getMembers();
    long up = 0;
    for (var m : members) {
      if (m.status() == MemberStatus.up()) {
        up++;
      }
    }
    return up;
  }

  /** Where the socket's entity lives now (asking starts it if it is not running). */
  public String entityNode(String socketId) {
    return status(socketId).node();
  }

  /** The socket's status, asked of its entity through a running node (which starts it if need be). */
  public io.berth.node.socket.api.SocketStatus status(String socketId) {
    try {
      ActorSystem<Void> live = nodes.stream().map(Node::system)
          .filter(sys -> !sys.whenTerminated().isCompleted()).findFirst().orElseThrow();
      return io.berth.node.socket.api.Sockets.status(live, socketId, Duration.ofSeconds(10))
          .toCompletableFuture().get(40, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("socket " + socketId + " did not answer", e);
    }
  }

  /** A new device ({@link #uniqueDevice}) whose socket's entity lives on another node than {@code node}. */
  public String deviceNotOn(Node node, String prefix) {
    for (int i = 0; i < 50; i++) {
      String candidate = uniqueDevice(prefix);
      if (!entityNode(candidate).equals(node.address().toString())) {
        return candidate;
      }
    }
    throw new IllegalStateException("50 sockets in a row had their entity on " + node.address());
  }

  public Node nodeAt(String address) {
    return nodes.stream().filter(n -> n.address().toString().equals(address)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no node at " + address));
  }

  /**
   * Stops a node without leaving the cluster or handing anything off, as a crash would: its
   * TCP connections drop and the others must notice it is gone (nodes of this instance run
   * with run-by-actor-system-terminate = off).
   */
  public void crash(Node node) {
    node.system().terminate();
    try {
      node.system().getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("node did not stop", e);
    }
  }

  public Node node(int i) {
    return nodes.get(i);
  }

  public List<Node> nodes() {
    return nodes;
  }

  public static String uniqueDevice(String prefix) {
    return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  /** A listener that adds every DATA payload the device receives, as UTF-8 text, to {@code into}. */
  public static DeviceListener collecting(java.util.Collection<String> into) {
    return new DeviceListener() {
      @Override
      public void onData(long seq, byte[] payload) {
        into.add(new String(payload, StandardCharsets.UTF_8));
      }
    };
  }

  public static DeviceClient.Builder device(String deviceId, InetSocketAddress... addresses) {
    return DeviceClient.builder()
        .addresses(List.of(addresses))
        .deviceId(deviceId)
        .tls(ClientTls.PLAINTEXT)
        .secret(SECRET.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1))
        .reconnectBackoff(Duration.ofMillis(100), Duration.ofSeconds(1))
        .giveUpAfter(Duration.ofSeconds(90));
  }

  public static DeviceListener ignore() {
    return new DeviceListener() {};
  }

  @Override
  public void close() {
    for (Node node : nodes) {
      node.system().terminate();
    }
    for (Node node : nodes) {
      try {
        node.system().getWhenTerminated().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS);
      } catch (Exception e) {
        // Best effort: the JVM ends with the test run anyway.
      }
    }
  }

  static int freePort() {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
