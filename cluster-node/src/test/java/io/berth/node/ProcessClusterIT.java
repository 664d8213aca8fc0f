package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.LaunchScripts.Result;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.TestDatabase;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real launch: {@code scripts/cluster.sh} starts node processes, {@code scripts/device.sh}
 * is the device, {@code cluster.sh kill} is a real SIGKILL. Uses the fixed ports the script
 * documents (7000+i, 8550+i, 2550+i), so no other local cluster may be running. Devices connect
 * over TLS with the launch's own CA, as the default launch serves them.
 */
class ProcessClusterIT {

  private static final Path ROOT = LaunchScripts.ROOT;
  /** Kills of the node holding the streaming device's connection. */
  private static final int ROUNDS = 6;

  @TempDir
  Path runDir;

  @AfterEach
  void down(TestInfo test) throws Exception {
    run(List.of("bash", script("cluster.sh"), "down"), Map.of());
    // The run directory goes with the test: keep the logs that explain a failure.
    new LaunchScripts(runDir).keepLogs(test);
  }

  @Test
  void aDeviceFinishesEveryLineExactlyOnceWhenItsNodeIsKilledMidStream() throws Exception {
    DatabaseSettings db = TestDatabase.settings();
    Result up = run(List.of("bash", script("cluster.sh"), "up", "-n", "3", "--db", db.url(), "--",
        "-Dpekko.cluster.split-brain-resolver.stable-after=5s"),
        Map.of("BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password()));
    assertThat(up.code()).as(up.output()).isZero();
    assertThat(up.output()).contains("members up: 3/3").contains("device secret:");

    int lines = 2_000;
    List<String> expected = IntStream.rangeClosed(1, lines).mapToObj(i -> "line-" + i).toList();
    String device = TestNodes.uniqueDevice("cli");
    Process deviceProcess = startDevice("device.err", "--connect", "127.0.0.1:7002,127.0.0.1:7001",
        "--device", device, "--mapping", "echo", "--expect", Integer.toString(lines), "--verbose");
    List<String> received = Collections.synchronizedList(new ArrayList<>());
    Thread reader = readLines(deviceProcess, received);
    // The writer holds the second half back until the kill is done: on a loaded machine the
    // kill could otherwise come after the last line.
    java.util.concurrent.CountDownLatch killed = new java.util.concurrent.CountDownLatch(1);
    Thread writer = new Thread(() -> {
      try (OutputStream in = deviceProcess.getOutputStream()) {
        for (int i = 0; i < expected.size(); i++) {
          if (i == lines / 2 && !killed.await(3, TimeUnit.MINUTES)) {
            return;
          }
          in.write((expected.get(i) + "\n").getBytes(StandardCharsets.UTF_8));
          in.flush();
          Thread.sleep(2);
        }
      } catch (IOException | InterruptedException e) {
        // Reported by the assertions below.
      }
    });
    writer.start();

    await().atMost(Duration.ofMinutes(2)).until(() -> received.size() >= 400);
    Result kill = run(List.of("bash", script("cluster.sh"), "kill", "2"), Map.of());
    killed.countDown();
    assertThat(kill.code()).as(kill.output()).isZero();
    long killedAtLine = received.size();

    assertThat(deviceProcess.waitFor(4, TimeUnit.MINUTES)).as("device finished").isTrue();
    reader.join(10_000);
    String stderr = Files.readString(runDir.resolve("device.err"));
    assertThat(deviceProcess.exitValue()).as(stderr).isZero();
    assertThat(received).as("every line echoed exactly once, in order").isEqualTo(expected);
    assertThat(killedAtLine).as("the kill happened mid-stream").isLessThan(lines);
    assertThat(stderr).contains("reconnecting").contains("connected to /127.0.0.1:7001");
    System.out.printf("FIGURE process kill drill: node 2 killed at line %d of %d; device output exact%n",
        killedAtLine, lines);
  }

  /**
   * A rolling restart by kill: six times, the node holding a streaming device's connection is
   * killed and started again at once (FailoverProcessIT kills every node in turn under six more
   * devices; six rounds here keep the suite's time). Each time the device gives up on nodes that cannot open
   * its session yet (ERROR 500) and reconnects elsewhere; an open it abandoned must never take
   * the session from the connection it is using. Every line is echoed once, in order, and the
   * device is never closed as REPLACED.
   */
  @Test
  void aDeviceSurvivesSixKillsAndRestartsOfTheNodeHoldingItsConnection() throws Exception {
    DatabaseSettings db = TestDatabase.settings();
    Result up = run(List.of("bash", script("cluster.sh"), "up", "-n", "3", "--db", db.url()),
        Map.of("BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password()));
    assertThat(up.code()).as(up.output()).isZero();

    String device = TestNodes.uniqueDevice("rolling");
    Process deviceProcess = startDevice("device.err", "--connect", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
        "--device", device, "--mapping", "echo", "--verbose", "--give-up-after", "300");
    List<String> received = Collections.synchronizedList(new ArrayList<>());
    Thread reader = readLines(deviceProcess, received);
    // Paced lines for as long as the rounds run, so that every kill finds the device streaming.
    OutputStream stdin = deviceProcess.getOutputStream();
    AtomicBoolean streaming = new AtomicBoolean(true);
    AtomicInteger written = new AtomicInteger();
    Thread writer = new Thread(() -> {
      try {
        while (streaming.get() && written.get() < 1_000_000) {
          stdin.write(("line-" + (written.get() + 1) + "\n").getBytes(StandardCharsets.UTF_8));
          stdin.flush();
          written.incrementAndGet();
          Thread.sleep(3);
        }
      } catch (IOException | InterruptedException e) {
        // Reported by the assertions below.
      }
    });
    writer.start();

    List<String> rounds = new ArrayList<>();
    try {
      for (int round = 1; round <= ROUNDS; round++) {
        // The device is attached and being served: its echoes move on.
        int before = received.size();
        String[] edge = new String[1];
        await().atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(250)).until(() -> {
          edge[0] = edgeOf(device);
          return edge[0] != null && received.size() > before + 50 || !deviceProcess.isAlive();
        });
        assertThat(deviceProcess.isAlive()).as("round %d: the device is still running; its stderr:%n%s", round,
            Files.readString(runDir.resolve("device.err"))).isTrue();
        int node = Integer.parseInt(edge[0].substring(edge[0].lastIndexOf(':') + 1)) - 2550;
        long connections = connectionsOf(runDir.resolve("device.err"));
        long killedAt = System.nanoTime();
        int atKill = received.size();
        Result kill = run(List.of("bash", script("cluster.sh"), "kill", Integer.toString(node)), Map.of());
        assertThat(kill.code()).as(kill.output()).isZero();
        // Started again at once; the device is watched meanwhile, so the time is the kill's, not the start's.
        CompletableFuture<Result> start = CompletableFuture.supplyAsync(() -> {
          try {
            return run(List.of("bash", script("cluster.sh"), "start", Integer.toString(node)), Map.of());
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        });
        // Served again: connected anew, and echoed on that connection.
        int[] atReconnect = {Integer.MAX_VALUE};
        await().atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(50)).until(() -> {
          if (atReconnect[0] == Integer.MAX_VALUE && connectionsOf(runDir.resolve("device.err")) > connections) {
            atReconnect[0] = received.size();
          }
          return received.size() > atReconnect[0] || !deviceProcess.isAlive();
        });
        double servedAfter = (System.nanoTime() - killedAt) / 1e9;
        assertThat(deviceProcess.isAlive()).as("round %d: the device is still running; its stderr:%n%s", round,
            Files.readString(runDir.resolve("device.err"))).isTrue();
        Result started = start.get(5, TimeUnit.MINUTES);
        assertThat(started.code()).as(started.output()).isZero();
        rounds.add(String.format("%d: node %d killed at line %d, served again %.1f s later, node back after %.1f s",
            round, node, atKill, servedAfter, (System.nanoTime() - killedAt) / 1e9));
      }
    } finally {
      streaming.set(false);
      writer.join(10_000);
    }
    // Every line sent is echoed before the device ends its session (a close drops pending echoes).
    int lines = written.get();
    await().atMost(Duration.ofMinutes(2)).until(() -> received.size() >= lines || !deviceProcess.isAlive());
    stdin.close();
    assertThat(deviceProcess.waitFor(3, TimeUnit.MINUTES)).as("device finished").isTrue();
    reader.join(10_000);
    String stderr = Files.readString(runDir.resolve("device.err"));
    assertThat(deviceProcess.exitValue()).as(stderr).isZero();
    assertThat(stderr).doesNotContain("REPLACED");
    List<String> expected = IntStream.rangeClosed(1, lines).mapToObj(i -> "line-" + i).toList();
    assertThat(received).as("every line echoed exactly once, in order").isEqualTo(expected);
    System.out.printf("FIGURE rolling kill and restart, %d rounds, %d lines echoed exactly once:%n  %s%n", ROUNDS,
        lines, String.join("\n  ", rounds));
  }

  /** How many connections the device made so far ({@code --verbose} reports each on stderr). */
  private static long connectionsOf(Path deviceErr) throws IOException {
    try (var lines = Files.lines(deviceErr)) {
      return lines.filter(l -> l.startsWith("device: connected to ")).count();
    }
  }

  /** Starts {@code scripts/device.sh} with these arguments, its stderr going to {@code stderr} in the run directory. */
  private Process startDevice(String stderr, String... args) throws IOException {
    return new LaunchScripts(runDir).device(stderr, args).start();
  }

  /** Reads the device's stdout lines into {@code into} until the process ends. */
  private static Thread readLines(Process device, List<String> into) {
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(device.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          into.add(line);
        }
      } catch (IOException e) {
        // The process ended.
      }
    });
    reader.start();
    return reader;
  }

  /** The node holding the device's connection ({@code pekko://berth@host:port}), or null. */
  private String edgeOf(String socketId) {
    for (int i = 1; i <= 3; i++) {
      HttpProbe.Response r = management().fetch("https://127.0.0.1:" + (8550 + i) + "/api/sockets/" + socketId);
      if (r.status() == 200) {
        String edge = r.body().replaceAll("(?s).*\"edge\":\"([^\"]*)\".*", "$1");
        return r.body().contains("\"state\":\"open\"") && edge.startsWith("pekko://") ? edge : null;
      }
    }
    return null;
  }

  @Test
  void theDefaultLaunchRunsOnTheEmbeddedDatabase() throws Exception {
    Result up = run(List.of("bash", script("cluster.sh"), "up", "-n", "2"), Map.of());
    assertThat(up.code()).as(up.output()).isZero();
    assertThat(up.output()).contains("jdbc:h2:tcp://127.0.0.1:");

    String device = TestNodes.uniqueDevice("embedded");
    assertThat(echoLines(device, 100)).hasSize(100).startsWith("line-1").endsWith("line-100");

    HttpProbe.Response socket = management().fetch("https://127.0.0.1:8551/api/sockets/" + device);
    assertThat(socket.status()).isEqualTo(200);
    assertThat(socket.body()).contains("\"framesIn\":100").contains("\"state\":\"closed\"");
    assertThat(management().fetch("https://127.0.0.1:8551/api/sockets/nobody-" + device).status()).isEqualTo(404);

    Result status = run(List.of("bash", script("cluster.sh"), "status"), Map.of());
    assertThat(status.output()).contains("pekko://berth@127.0.0.1:2551  Up").contains("pekko://berth@127.0.0.1:2552  Up");

    // Operators: HTTPS with the run folder's CA and its admin key, shown once, kept for its owner.
    String key = Files.readString(runDir.resolve("admin-key")).strip();
    assertThat(up.output()).contains("admin key (shown this once").contains(key);
    assertThat(status.output()).doesNotContain(key);
    assertThat(Files.getPosixFilePermissions(runDir.resolve("admin-key")))
        .isEqualTo(java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    assertThat(Files.readString(runDir.resolve("node-1.log"))).doesNotContain(key);
    HttpProbe anonymous = HttpProbe.trusting(runDir.resolve("tls").resolve("ca.pem"), null);
    assertThat(anonymous.fetch("https://127.0.0.1:8551/api/sockets/" + device).status()).isEqualTo(401);
    assertThat(anonymous.fetch("https://127.0.0.1:8551/ready").status()).isEqualTo(200);
    assertThat(HttpProbe.trusting(runDir.resolve("tls").resolve("ca.pem"), "admin.not-the-key")
        .fetch("https://127.0.0.1:8551/cluster/members").status()).isEqualTo(401);
    assertThat(HttpProbe.get("http://127.0.0.1:8551/ready").status()).as("plain HTTP on the HTTPS port").isNotEqualTo(200);
  }

  @Test
  void aHotDeviceMigratesInTheLaunchedCluster() throws Exception {
    // A database that does not exist yet: the launch creates it, as the README promises.
    DatabaseSettings db = TestDatabase.settings().withDatabase("berth_launch_" + System.nanoTime());
    try {
      hotDeviceMigrates(db);
    } finally {
      run(List.of("bash", script("cluster.sh"), "down"), Map.of());
      TestDatabase.dropDatabase(db);
    }
  }

  private void hotDeviceMigrates(DatabaseSettings db) throws Exception {
    Result up = run(List.of("bash", script("cluster.sh"), "up", "-n", "3", "--db", db.url(), "--",
        "-Dberth.migration.socket-threshold.frames-per-second=200", "-Dberth.migration.sustain=2s",
        "-Dberth.migration.rate-window=2s", "-Dberth.migration.check-interval=1s"),
        Map.of("BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password()));
    assertThat(up.code()).as(up.output()).isZero();
    byte[] secret = Files.readString(runDir.resolve("secret")).strip().getBytes(StandardCharsets.UTF_8);
    List<java.net.InetSocketAddress> edges = List.of(new java.net.InetSocketAddress("127.0.0.1", 7001),
        new java.net.InetSocketAddress("127.0.0.1", 7002), new java.net.InetSocketAddress("127.0.0.1", 7003));

    String hot = TestNodes.uniqueDevice("hot");
    String busy = nodeOf(hot, secret, edges);
    List<EchoStreamer> warm = new ArrayList<>();
    for (int i = 0; i < 100 && warm.size() < 3; i++) {
      String candidate = TestNodes.uniqueDevice("warm");
      if (nodeOf(candidate, secret, edges).equals(busy)) {
        warm.add(new EchoStreamer(io.berth.protocol.DeviceClient.builder().addresses(edges).deviceId(candidate)
            .tls(io.berth.protocol.ClientTls.trusting(runDir.resolve("tls/ca.pem")))
            .secret(secret, Duration.ofHours(1)), 2_000, Duration.ofMillis(10)).start());
      }
    }
    assertThat(warm).hasSize(3);

    int lines = 20_000;
    List<String> expected = IntStream.rangeClosed(1, lines).mapToObj(i -> "hot-" + i).toList();
    Process device = startDevice("hot.err", "--connect", "127.0.0.1:7003", "--device", hot, "--mapping", "echo",
        "--expect", Integer.toString(lines));
    List<String> received = Collections.synchronizedList(new ArrayList<>());
    Thread reader = readLines(device, received);
    Thread writer = new Thread(() -> {
      try (OutputStream in = device.getOutputStream()) {
        for (String line : expected) {
          in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
          in.flush();
          java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
      } catch (IOException e) {
        // Reported by the assertions below.
      }
    });
    writer.start();

    long started = System.nanoTime();
    await().atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(500)).until(() ->
        management().fetch("https://127.0.0.1:8551/api/sockets/" + hot).body().contains("\"node\":\"")
            && !management().fetch("https://127.0.0.1:8551/api/sockets/" + hot).body().contains("\"node\":\"" + busy + "\""));
    double movedAfter = (System.nanoTime() - started) / 1e9;
    assertThat(device.waitFor(4, TimeUnit.MINUTES)).isTrue();
    reader.join(10_000);
    assertThat(device.exitValue()).as(Files.readString(runDir.resolve("hot.err"))).isZero();
    assertThat(received).as("every line echoed exactly once, in order").isEqualTo(expected);
    for (EchoStreamer w : warm) {
      w.awaitComplete(Duration.ofMinutes(2));
      assertThat(w.duplicateEchoes()).isZero();
      w.close();
    }
    String migrations = management().fetch("https://127.0.0.1:8552/api/migrations?socket=" + hot).body();
    assertThat(migrations).contains("\"cause\":\"auto\"").contains("\"from\":\"" + busy + "\"");
    System.out.printf("FIGURE process migration: hot device moved off %s %.1f s after it started; %s%n", busy,
        movedAfter, migrations);
  }

  /** Opens the socket once (so that it exists) and returns the node hosting its entity. */
  private String nodeOf(String device, byte[] secret, List<java.net.InetSocketAddress> edges) throws Exception {
    io.berth.protocol.DeviceClient c = io.berth.protocol.DeviceClient.builder().addresses(edges).deviceId(device)
        .tls(io.berth.protocol.ClientTls.trusting(runDir.resolve("tls/ca.pem")))
        .secret(secret, Duration.ofHours(1)).mapping("discard").build().connect();
    c.send(new byte[] {0});
    c.awaitAllAcked(Duration.ofSeconds(30));
    c.close();
    String body = management().fetch("https://127.0.0.1:8551/api/sockets/" + device).body();
    return body.replaceAll(".*\"node\":\"([^\"]*)\".*", "$1");
  }

  private Path writeLines(int n) throws IOException {
    Path file = runDir.resolve("lines.txt");
    Files.write(file, IntStream.rangeClosed(1, n).mapToObj(i -> "line-" + i).toList());
    return file;
  }

  /**
   * The cluster is closed to strangers (docs/cluster-tls.md): a node process with a certificate
   * from another CA (trusting the cluster's), and one that speaks plain TCP, both seeded with the
   * cluster's first node and pointed at its database, try to join for as long as a join takes
   * here; neither becomes a member, so no shard (and no socket) is ever placed on either, and the
   * cluster keeps serving.
   */
  @Test
  void aNodeWithoutTheClustersCertificateCannotJoin() throws Exception {
    DatabaseSettings db = TestDatabase.settings();
    Result up = run(List.of("bash", script("cluster.sh"), "up", "-n", "2", "--db", db.url()),
        Map.of("BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password()));
    assertThat(up.code()).as(up.output()).isZero();
    assertThat(up.output()).contains("members up: 2/2").contains("cluster TLS:   on");

    Path rogueCa = runDir.resolve("rogue-tls");
    Result ca = run(List.of("java", "-cp", jar().toString(), "io.berth.node.tls.CertCli", "init", "--dir",
        rogueCa.toString(), "--nodes", "1"), Map.of());
    assertThat(ca.code()).as(ca.output()).isZero();
    Map<String, String> ownCa = Map.of("BERTH_CLUSTER_TLS", "true",
        "BERTH_CLUSTER_TLS_CERTIFICATE", rogueCa.resolve("node-1.pem").toString(),
        "BERTH_CLUSTER_TLS_PRIVATE_KEY", rogueCa.resolve("node-1-key.pem").toString(),
        // The cluster's CA certificate is no secret (every node presents it): the stranger trusts
        // the cluster, so the refusal must come from the cluster's side.
        "BERTH_CLUSTER_TLS_TRUST", runDir.resolve("tls").resolve("ca.pem").toString());
    List<Process> rogues = new ArrayList<>();
    try {
      rogues.add(startRogue(8, db, ownCa));
      rogues.add(startRogue(9, db, Map.of("BERTH_CLUSTER_TLS", "false")));
      // Each rogue is up (its management port answers) and keeps trying to join meanwhile.
      for (int i : new int[] {8, 9}) {
        await().atMost(Duration.ofMinutes(2)).until(() -> HttpProbe.get("http://127.0.0.1:" + (8550 + i)
            + "/alive").status() == 200);
      }
      long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (System.nanoTime() < until) {
        for (int i : new int[] {1, 2}) {
          String members = management().fetch("https://127.0.0.1:" + (8550 + i) + "/cluster/members").body();
          assertThat(members).as("node %d's members", i).contains(":2551").contains(":2552")
              .doesNotContain(":2558").doesNotContain(":2559");
        }
        for (int i : new int[] {8, 9}) {
          assertThat(HttpProbe.get("http://127.0.0.1:" + (8550 + i) + "/ready").status())
              .as("rogue %d ready", i).isNotEqualTo(200);
        }
        Thread.sleep(1000);
      }
      for (Process rogue : rogues) {
        assertThat(rogue.isAlive()).as("the rogue kept trying").isTrue();
      }
    } finally {
      for (Process rogue : rogues) {
        rogue.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
      }
    }
    // It reached the cluster's port and was refused in the handshake, by the cluster.
    assertThat(Files.readString(runDir.resolve("rogue-8.log"))).as("rogue 8's log")
        .containsPattern("SSLHandshakeException.*(certificate_unknown|bad_certificate)");

    // The cluster kept serving throughout.
    assertThat(echoLines(TestNodes.uniqueDevice("closed"), 10)).hasSize(10);
  }

  /** {@code scripts/device.sh} on node 2 with the echo mapping: sends n lines, returns what came back. */
  private List<String> echoLines(String device, int n) throws Exception {
    ProcessBuilder cli = new ProcessBuilder("bash", script("device.sh"),
        "--connect", "127.0.0.1:7002", "--device", device, "--mapping", "echo", "--expect", Integer.toString(n))
        .redirectInput(writeLines(n).toFile())
        .redirectErrorStream(true)
        .directory(ROOT.toFile());
    cli.environment().putAll(env());
    Process p = cli.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(2, TimeUnit.MINUTES)).isTrue();
    assertThat(p.exitValue()).as(output).isZero();
    return output.lines().toList();
  }

  /** A node process of its own (ports 7000+i, 8550+i, 2550+i), seeded with the cluster's node 1. */
  private Process startRogue(int i, DatabaseSettings db, Map<String, String> tls) throws IOException {
    ProcessBuilder pb = new ProcessBuilder("java", "-Xmx256m", "-XX:+UseSerialGC", "-jar", jar().toString())
        .redirectErrorStream(true)
        .redirectOutput(runDir.resolve("rogue-" + i + ".log").toFile());
    Map<String, String> e = pb.environment();
    e.putAll(Map.of("BERTH_SECRET", "the-rogue's-own-secret-of-its-choice", "BERTH_DB_URL", db.url(),
        "BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password(), "BERTH_EDGE_TLS", "false",
        "BERTH_EDGE_HOST", "127.0.0.1", "BERTH_EDGE_PORT", Integer.toString(7000 + i),
        "BERTH_MANAGEMENT_PORT", Integer.toString(8550 + i), "BERTH_REMOTE_PORT", Integer.toString(2550 + i),
        "BERTH_SEED_NODES", "pekko://berth@127.0.0.1:2551"));
    e.put("BERTH_MANAGEMENT_TLS", "false");
    // Its own key for mapping secrets: a stranger does not hold the cluster's.
    e.put("BERTH_SECRETS_KEYS", "rogue=" + java.util.Base64.getEncoder().encodeToString(new byte[32]));
    e.putAll(tls);
    return pb.start();
  }

  private static Path jar() {
    return ROOT.resolve("cluster-node").resolve("target").resolve("berth-node.jar");
  }

  /**
   * The launched cluster's management port as its operators call it: HTTPS trusting the run
   * folder's CA, with the admin key {@code cluster.sh up} keeps there.
   */
  private HttpProbe management() {
    if (management == null) {
      try {
        management = HttpProbe.trusting(runDir.resolve("tls").resolve("ca.pem"),
            Files.readString(runDir.resolve("admin-key")).strip());
      } catch (IOException e) {
        throw new java.io.UncheckedIOException("no admin key in the run folder", e);
      }
    }
    return management;
  }

  private HttpProbe management;

  private Map<String, String> env() {
    return new LaunchScripts(runDir).env();
  }

  private static String script(String name) {
    return LaunchScripts.script(name);
  }

  private Result run(List<String> command, Map<String, String> extraEnv) throws Exception {
    return new LaunchScripts(runDir).run(command, extraEnv);
  }
}
