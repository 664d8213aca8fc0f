package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Berth node in a JVM of its own (a one-node cluster, or a member of a cluster of such
 * processes), started from {@code berth-node.jar} and configured
 * through the environment the way {@code scripts/cluster.sh} starts a node. The idle scenario needs
 * the node out of the harness's process: each process may have only so many open files, and with
 * the node inside, both ends of every loopback connection would count against the one limit; it
 * also makes the node's memory its own to measure.
 */
final class NodeProcess implements AutoCloseable {

  private static final Duration READY_TIMEOUT = Duration.ofSeconds(120);

  private static final Pattern SOCKETS = Pattern.compile("\"sockets\":(\\d+)");
  private static final Pattern CONNECTIONS = Pattern.compile("\"connections\":(\\d+)");

  private final ChildProcess process;
  private final int edgePort;
  private final int managementPort;
  private final int remotePort;
  /** For the node's operator routes: one client, asked once a second while the sockets settle. */
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  private NodeProcess(ChildProcess process, int edgePort, int managementPort, int remotePort) {
    this.process = process;
    this.edgePort = edgePort;
    this.managementPort = managementPort;
    this.remotePort = remotePort;
  }

  /**
   * The node jar: {@code BERTH_BENCH_NODE_JAR}, else {@code cluster-node/target/berth-node.jar} of
   * the checkout the harness jar was built in (scripts/bench.sh builds both).
   */
  static Path locateJar() {
    String configured = System.getenv("BERTH_BENCH_NODE_JAR");
    Path jar;
    if (configured != null && !configured.isBlank()) {
      jar = Path.of(configured);
    } else {
      Path benchJar = harnessJar();
      Path root = benchJar.toAbsolutePath().getParent().getParent().getParent();
      jar = root.resolve("cluster-node/target/berth-node.jar");
    }
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException("the node jar " + jar + " is missing: build it (mvn -B -q package -DskipTests)"
          + " or set BERTH_BENCH_NODE_JAR");
    }
    return jar;
  }

  /** The jar (or classes directory) this harness runs from. */
  static Path harnessJar() {
    try {
      return Path.of(NodeProcess.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (Exception e) {
      throw new IllegalStateException("cannot tell where the harness runs from", e);
    }
  }

  /**
   * Starts the node with {@code javaOptions} and extra {@code -D} settings, logging to {@code log},
   * and waits (bounded) until it is Up and ready.
   */
  static NodeProcess start(DatabaseSettings db, String javaOptions, List<String> settings, Path log)
      throws IOException {
    return start(db, javaOptions, settings, Map.of(), log);
  }

  /**
   * The same, with {@code env} added to (or replacing) the node's environment: the edge's TLS
   * settings ({@code BERTH_EDGE_TLS=true} and its files), where the default is plaintext.
   */
  static NodeProcess start(DatabaseSettings db, String javaOptions, List<String> settings, Map<String, String> env,
      Path log) throws IOException {
    return start(db, javaOptions, settings, env, log, null);
  }

  /**
   * A member of a cluster of such processes: {@code seed} (a started node) is its seed, or none
   * for the first node, which seeds itself. Returns once it is Up and ready.
   */
  static NodeProcess start(DatabaseSettings db, String javaOptions, List<String> settings, Map<String, String> env,
      Path log, NodeProcess seed) throws IOException {
    int edge = LocalCluster.freePort();
    int management = LocalCluster.freePort();
    int remote = LocalCluster.freePort();
    String seeds = "pekko://berth@127.0.0.1:" + (seed == null ? remote : seed.remotePort);
    List<String> command = new ArrayList<>();
    command.add(ChildProcess.javaBinary());
    command.addAll(Arrays.asList(javaOptions.trim().split("\\s+")));
    command.addAll(settings);
    command.addAll(List.of("-jar", locateJar().toString()));
    Map<String, String> environment = new HashMap<>(Map.of(
        "BERTH_SECRET", LocalCluster.SECRET,
        "BERTH_DB_URL", db.url(), "BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password(),
        "BERTH_EDGE_HOST", "127.0.0.1", "BERTH_EDGE_PORT", Integer.toString(edge), "BERTH_EDGE_TLS", "false",
        "BERTH_MANAGEMENT_PORT", Integer.toString(management), "BERTH_REMOTE_PORT", Integer.toString(remote),
        "BERTH_SEED_NODES", seeds));
    // Between the nodes of the harness, plaintext: what the nodes say to each other is not what
    // the benchmarks measure.
    environment.put("BERTH_CLUSTER_TLS", "false");
    environment.put("BERTH_OPERATOR_KEYS", LocalCluster.OPERATOR_KEY_ENTRY);
    environment.put("BERTH_MANAGEMENT_TLS", "false");
    environment.put("BERTH_SECRETS_KEYS", LocalCluster.SECRETS_KEYS);
    environment.putAll(env);
    ChildProcess process = ChildProcess.start("berth-node", command, environment, log);
    try {
      awaitReady(process, management);
    } catch (RuntimeException e) {
      process.close();
      throw e;
    }
    return new NodeProcess(process, edge, management, remote);
  }

  private static void awaitReady(ChildProcess process, int management) {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    HttpRequest ready = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + management + "/ready"))
        .timeout(Duration.ofSeconds(3)).build();
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (true) {
      process.failIfExited();
      try {
        if (http.send(ready, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // Not listening yet.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the node was not ready within " + READY_TIMEOUT.toSeconds()
            + " s; the end of its log:\n" + process.logTail(30));
      }
      LocalCluster.pause(200);
    }
  }

  long pid() {
    return process.pid();
  }

  InetSocketAddress edge() {
    return new InetSocketAddress("127.0.0.1", edgePort);
  }

  /** The node's cluster address as the operator API takes it: {@code 127.0.0.1:PORT}. */
  String address() {
    return "127.0.0.1:" + remotePort;
  }

  /**
   * {@code method} on one of the node's management routes with the harness's operator key: the
   * status code, or -1 when the node did not answer.
   */
  int call(String method, String path) {
    HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + managementPort + path))
        .header("Authorization", "Bearer " + LocalCluster.OPERATOR_KEY).timeout(Duration.ofSeconds(10))
        .method(method, HttpRequest.BodyPublishers.noBody()).build();
    try {
      return http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (IOException e) {
      return -1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  /** Device connections the node's edge holds, as its load report last said; -1 if it did not answer. */
  int connections() {
    return figure(CONNECTIONS);
  }

  /** Kills the node outright (SIGKILL), as a crash would, and waits for the process to be gone. */
  void kill() {
    process.kill();
  }

  /**
   * Socket entities running on the node, as its load report last said ({@code GET /api/nodes}):
   * a socket that sleeps has a connection and no entity. -1 if the node did not answer.
   */
  int runningSockets() {
    return figure(SOCKETS);
  }

  /** The first figure {@code pattern} finds in this node's entry of {@code GET /api/nodes}. */
  private int figure(Pattern pattern) {
    HttpRequest nodes = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + managementPort + "/api/nodes"))
        .header("Authorization", "Bearer " + LocalCluster.OPERATOR_KEY).timeout(Duration.ofSeconds(10)).build();
    try {
      String body = http.send(nodes, HttpResponse.BodyHandlers.ofString()).body();
      int own = body.indexOf("@" + address() + "\"");
      if (own < 0) {
        return -1;
      }
      int next = body.indexOf("\"node\":", own);
      Matcher m = pattern.matcher(body).region(own, next < 0 ? body.length() : next);
      if (!m.find()) {
        return -1;
      }
      return Integer.parseInt(m.group(1));
    } catch (IOException e) {
      return -1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  /** Stops the node by its PID: SIGTERM (a graceful leave), SIGKILL after a grace. */
  @Override
  public void close() {
    process.close();
  }
}
