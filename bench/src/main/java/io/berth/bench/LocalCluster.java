package io.berth.bench;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.BerthNode;
import io.berth.node.ops.OperatorKey;
import io.berth.node.ops.OperatorRole;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/** Berth nodes in the harness's JVM, wired as Main wires them, on the benchmark database. */
final class LocalCluster implements AutoCloseable {

  static final String SECRET = "bench-fleet-secret-0123456789";
  /** The admin key of the benchmark's nodes, in-JVM and processes alike. */
  static final String OPERATOR_KEY = "bench-admin.YmVuY2gtYWRtaW4ta2V5LW9mLXRoZS1iZW5jaG1hcmtz";
  /** Its configuration entry ({@code berth.management.keys}, {@code BERTH_OPERATOR_KEYS}). */
  static final String OPERATOR_KEY_ENTRY =
      new OperatorKey("bench-admin", OperatorRole.ADMIN, OperatorKey.hash(OPERATOR_KEY)).entry();
  /** The key mapping secrets are sealed with (docs/secrets.md): the benchmarks pay what production pays. */
  static final String SECRETS_KEYS = "bench=YmVuY2gta2V5LW5vdC1zZWNyZXQtMzItYnl0ZXMhISE=";

  /** A node; {@code mqttPort} is its MQTT port (docs/edges.md), with {@code pair} for clients naming none. */
  record Node(ActorSystem<Void> system, int edgePort, int managementPort, int mqttPort) {
    InetSocketAddress edge() {
      return new InetSocketAddress("127.0.0.1", edgePort);
    }

    String address() {
      return Cluster.get(system).selfMember().address().toString();
    }
  }

  private final List<Node> nodes = new ArrayList<>();

  LocalCluster(DatabaseSettings db, int count, String overrides) {
    SchemaInstaller.install(db);
    for (int i = 0; i < count; i++) {
      int edge = freePort();
      int management = freePort();
      int mqtt = freePort();
      Config config = ConfigFactory.parseString(overrides)
          .withFallback(ConfigFactory.parseMap(Map.of("berth.management.keys", OPERATOR_KEY_ENTRY,
              "berth.management.tls.enabled", false, "berth.edge.mqtt.enabled", true, "berth.edge.mqtt.port", mqtt,
              "berth.edge.mqtt.mapping", "pair")))
          .withFallback(ConfigFactory.parseMap(Map.of(
              "berth.edge.host", "127.0.0.1", "berth.edge.port", edge, "berth.edge.tls.enabled", false,
              "berth.cluster.tls.enabled", false,
              "pekko.management.http.port", management, "berth.auth.secret", SECRET,
              "berth.db.url", db.url(), "berth.db.user", db.user(), "berth.db.password", db.password(),
              "berth.db.pool-size", 4)))
          .withFallback(ConfigFactory.parseMap(Map.of("berth.secrets.keys", SECRETS_KEYS)))
          .withFallback(ConfigFactory.parseString("""
              pekko.remote.artery.canonical.port = 0
              pekko.cluster.jmx.multi-mbeans-in-same-jvm = on
              pekko.cluster.shutdown-after-unsuccessful-join-seed-nodes = off
              """))
          .withFallback(ConfigFactory.load());
      ActorSystem<Void> system = BerthNode.start(BerthNode.config(config));
      var joinTo = nodes.isEmpty() ? Cluster.get(system).selfMember().address()
          : Cluster.get(nodes.get(0).system()).selfMember().address();
      Cluster.get(system).manager().tell(Join.create(joinTo));
      nodes.add(new Node(system, edge, management, mqtt));
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!allUp(count) || !allReady()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the benchmark cluster did not come up within 120 s");
      }
      pause(100);
    }
  }

  private boolean allReady() {
    java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
    for (Node n : nodes) {
      try {
        var r = http.send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + n.managementPort() + "/ready")).build(),
            java.net.http.HttpResponse.BodyHandlers.discarding());
        if (r.statusCode() != 200) {
          return false;
        }
      } catch (IOException e) {
        return false;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return true;
  }

  private boolean allUp(int count) {
    for (Node n : nodes) {
      long up = 0;
      for (var m : Cluster.get(n.system()).state().getMembers()) {
        if (m.status() == MemberStatus.up()) {
          up++;
        }
      }
      if (up < count) {
        return false;
      }
    }
    return true;
  }

  List<Node> nodes() {
    return nodes;
  }

  List<InetSocketAddress> edges() {
    return nodes.stream().map(Node::edge).toList();
  }

  /** The node hosting a socket's entity (asking starts it). */
  String entityNode(String socketId) {
    return status(socketId).node();
  }

  /** A socket's status as its entity reports it (asking starts it): watermarks and counters. */
  SocketStatus status(String socketId) {
    try {
      return Sockets.status(nodes.get(0).system(), socketId, Duration.ofSeconds(10))
          .toCompletableFuture().get(40, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("socket " + socketId + " did not answer", e);
    }
  }

  @Override
  public void close() {
    nodes.forEach(n -> n.system().terminate());
    for (Node n : nodes) {
      try {
        n.system().getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        // The harness exits afterwards anyway.
      }
    }
  }

  static void pause(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Waits for a condition with a bound: the harness's loops never wait forever. */
  static void awaitCondition(Duration timeout, BooleanSupplier condition) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("condition not met within " + timeout);
      }
      pause(20);
    }
  }

  static int freePort() {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
