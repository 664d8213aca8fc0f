package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.ops.OperatorKey;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.TestDatabase;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Cluster bootstrap as Kubernetes runs it (deploy/kubernetes/, docs/cluster.md#bootstrap-on-kubernetes),
 * with local processes: three node processes started at once, given no seed node, only Pekko
 * Discovery's {@code config} method listing the three management ports in place of the Kubernetes
 * API's pod list. They probe each other over HTTPS, without a key, trusting only node certificates
 * of the cluster's CA, and form one cluster with TLS between them. Ports are picked free at run
 * time, so the test runs next to a local cluster and other test runs.
 */
class BootstrapProcessIT {

  private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
  private static final Duration FORMED_WITHIN = Duration.ofMinutes(3);
  private static final Pattern UP = Pattern.compile("\"status\"\\s*:\\s*\"Up\"");

  @TempDir
  Path runDir;

  private final List<Process> nodes = new ArrayList<>();

  @AfterEach
  void stop() throws Exception {
    for (Process node : nodes) {
      node.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    }
    Path kept = Path.of("target", "bootstrap-logs");
    Files.createDirectories(kept);
    try (var logs = Files.newDirectoryStream(runDir, "*.log")) {
      for (Path log : logs) {
        Files.copy(log, kept.resolve(log.getFileName()), StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }

  @Test
  void threeNodesWithoutSeedNodesFormOneClusterByBootstrapAlone() throws Exception {
    Path tls = runDir.resolve("tls");
    Process init = new ProcessBuilder("java", "-Xmx128m", "-cp", jar().toString(), "io.berth.node.tls.CertCli",
        "init", "--dir", tls.toString(), "--nodes", "3")
        .redirectErrorStream(true).redirectOutput(runDir.resolve("certcli.log").toFile()).start();
    assertThat(init.waitFor(2, TimeUnit.MINUTES)).as("CertCli init ended").isTrue();
    assertThat(init.exitValue()).as(Files.readString(runDir.resolve("certcli.log"))).isZero();

    String adminKey = OperatorKey.newKey("it-admin");
    String operatorKeys = "it-admin:admin:" + HexFormat.of().formatHex(OperatorKey.hash(adminKey));
    byte[] sealing = new byte[32];
    new SecureRandom().nextBytes(sealing);
    String secretsKeys = "it=" + Base64.getEncoder().encodeToString(sealing);
    int[] free = freePorts(9);
    int[][] ports = new int[3][];
    for (int i = 0; i < 3; i++) {
      ports[i] = java.util.Arrays.copyOfRange(free, 3 * i, 3 * i + 3); // edge, management, remoting
    }
    DatabaseSettings db = TestDatabase.settings();

    for (int i = 0; i < 3; i++) {
      nodes.add(startNode(i + 1, ports, tls, db, operatorKeys, secretsKeys));
    }

    HttpProbe operator = HttpProbe.trusting(tls.resolve("ca.pem"), adminKey);
    for (int i = 0; i < 3; i++) {
      String members = "https://127.0.0.1:" + ports[i][1] + "/cluster/members";
      int node = i + 1;
      await().atMost(FORMED_WITHIN).pollInterval(Duration.ofSeconds(2)).ignoreExceptions()
          .untilAsserted(() -> {
            assertThat(nodes).as("every node still runs").allMatch(Process::isAlive);
            HttpProbe.Response answer = operator.fetch(members);
            assertThat(answer.status()).as("node %d's /cluster/members", node).isEqualTo(200);
            assertThat(count(UP, answer.body())).as("members Up seen by node %d: %s", node, answer.body())
                .isEqualTo(3);
          });
      String body = operator.fetch(members).body();
      for (int[] p : ports) {
        assertThat(body).as("node %d's members", node).contains("127.0.0.1:" + p[2]);
      }
    }

    // What the probes read passes the gate without a key; the rest of the port still needs one.
    HttpProbe anonymous = HttpProbe.trusting(tls.resolve("ca.pem"), null);
    HttpProbe.Response seeds = anonymous.fetch("https://127.0.0.1:" + ports[0][1] + "/bootstrap/seed-nodes");
    assertThat(seeds.status()).isEqualTo(200);
    assertThat(seeds.body()).contains("127.0.0.1:" + ports[0][2]);
    assertThat(anonymous.fetch("https://127.0.0.1:" + ports[0][1] + "/cluster/members").status()).isEqualTo(401);

    for (int i = 1; i <= 3; i++) {
      assertThat(Files.readString(runDir.resolve("node-" + i + ".log"))).as("node %d's log", i)
          .contains("Joining the cluster by bootstrap (discovery config)");
    }
  }

  private Process startNode(int i, int[][] ports, Path tls, DatabaseSettings db, String operatorKeys,
      String secretsKeys) throws IOException {
    List<String> command = new ArrayList<>(List.of("java", "-Xmx256m", "-XX:+UseSerialGC"));
    // Discovery's config method: the three management ports, where Kubernetes would list pods.
    for (int n = 0; n < 3; n++) {
      String endpoint = "-Dpekko.discovery.config.services.berth.endpoints." + n;
      command.add(endpoint + ".host=127.0.0.1");
      command.add(endpoint + ".port=" + ports[n][1]);
    }
    command.addAll(List.of("-jar", jar().toString()));
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(runDir.resolve("node-" + i + ".log").toFile());
    Map<String, String> e = pb.environment();
    e.remove("BERTH_SEED_NODES");
    String cert = tls.resolve("node-" + i + ".pem").toString();
    String key = tls.resolve("node-" + i + "-key.pem").toString();
    Map<String, String> env = new HashMap<>();
    env.put("BERTH_BOOTSTRAP", "on");
    env.put("BERTH_BOOTSTRAP_DISCOVERY", "config");
    env.put("BERTH_BOOTSTRAP_REQUIRED_CONTACT_POINTS", "3");
    env.put("BERTH_SECRET", "the-bootstrap-test-fleet-secret");
    env.put("BERTH_SECRETS_KEYS", secretsKeys);
    env.put("BERTH_OPERATOR_KEYS", operatorKeys);
    env.put("BERTH_DB_URL", db.url());
    env.put("BERTH_DB_USER", db.user());
    env.put("BERTH_DB_PASSWORD", db.password());
    env.put("BERTH_EDGE_TLS", "false");
    env.put("BERTH_EDGE_HOST", "127.0.0.1");
    env.put("BERTH_EDGE_PORT", Integer.toString(ports[i - 1][0]));
    env.put("BERTH_MANAGEMENT_PORT", Integer.toString(ports[i - 1][1]));
    env.put("BERTH_REMOTE_PORT", Integer.toString(ports[i - 1][2]));
    env.put("BERTH_MANAGEMENT_TLS", "true");
    env.put("BERTH_MANAGEMENT_TLS_CERTIFICATE", cert);
    env.put("BERTH_MANAGEMENT_TLS_PRIVATE_KEY", key);
    env.put("BERTH_CLUSTER_TLS", "true");
    env.put("BERTH_CLUSTER_TLS_CERTIFICATE", cert);
    env.put("BERTH_CLUSTER_TLS_PRIVATE_KEY", key);
    env.put("BERTH_CLUSTER_TLS_TRUST", tls.resolve("ca.pem").toString());
    e.putAll(env);
    return pb.start();
  }

  /** Ports free now; each is bound until all are picked, so that none is picked twice. */
  private static int[] freePorts(int n) throws IOException {
    List<ServerSocket> held = new ArrayList<>();
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        ServerSocket socket = new ServerSocket(0);
        held.add(socket);
        ports[i] = socket.getLocalPort();
      }
      return ports;
    } finally {
      for (ServerSocket socket : held) {
        socket.close();
      }
    }
  }

  private static int count(Pattern pattern, String text) {
    Matcher m = pattern.matcher(text);
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  private static Path jar() {
    return ROOT.resolve("cluster-node").resolve("target").resolve("berth-node.jar");
  }
}
