package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

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
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real launch: {@code scripts/cluster.sh} starts node processes, {@code scripts/device.sh}
 * is the device, {@code cluster.sh kill} is a real SIGKILL. Uses the fixed ports the script
 * documents (7000+i, 8550+i, 2550+i), so no other local cluster may be running.
 */
class ProcessClusterIT {

  private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
  private static final Duration SCRIPT_TIMEOUT = Duration.ofMinutes(5);

  @TempDir
  Path runDir;

  @AfterEach
  void down() throws Exception {
    run(List.of("bash", script("cluster.sh"), "down"), Map.of());
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
    ProcessBuilder cli = new ProcessBuilder("bash", script("device.sh"), "--connect", "127.0.0.1:7002,127.0.0.1:7001",
        "--device", device, "--mapping", "echo", "--expect", Integer.toString(lines), "--verbose")
        .redirectError(runDir.resolve("device.err").toFile())
        .directory(ROOT.toFile());
    cli.environment().putAll(env());
    Process deviceProcess = cli.start();
    List<String> received = Collections.synchronizedList(new ArrayList<>());
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(deviceProcess.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          received.add(line);
        }
      } catch (IOException e) {
        // The process ended.
      }
    });
    reader.start();
    Thread writer = new Thread(() -> {
      try (OutputStream in = deviceProcess.getOutputStream()) {
        for (String line : expected) {
          in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
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

  @Test
  void theDefaultLaunchRunsOnTheEmbeddedDatabase() throws Exception {
    Result up = run(List.of("bash", script("cluster.sh"), "up", "-n", "2"), Map.of());
    assertThat(up.code()).as(up.output()).isZero();
    assertThat(up.output()).contains("jdbc:h2:tcp://127.0.0.1:");

    String device = TestNodes.uniqueDevice("embedded");
    ProcessBuilder cli = new ProcessBuilder("bash", script("device.sh"), "--connect", "127.0.0.1:7002",
        "--device", device, "--mapping", "echo", "--expect", "100")
        .redirectInput(writeLines(100).toFile())
        .redirectErrorStream(true)
        .directory(ROOT.toFile());
    cli.environment().putAll(env());
    Process p = cli.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(2, TimeUnit.MINUTES)).isTrue();
    assertThat(p.exitValue()).as(output).isZero();
    assertThat(output.lines().toList()).hasSize(100).startsWith("line-1").endsWith("line-100");

    HttpProbe.Response socket = HttpProbe.get("http://127.0.0.1:8551/api/sockets/" + device);
    assertThat(socket.status()).isEqualTo(200);
    assertThat(socket.body()).contains("\"framesIn\":100").contains("\"state\":\"closed\"");
    assertThat(HttpProbe.get("http://127.0.0.1:8551/api/sockets/nobody-" + device).status()).isEqualTo(404);

    Result status = run(List.of("bash", script("cluster.sh"), "status"), Map.of());
    assertThat(status.output()).contains("pekko://berth@127.0.0.1:2551  Up").contains("pekko://berth@127.0.0.1:2552  Up");
  }

  @Test
  void aHotDeviceMigratesInTheLaunchedCluster() throws Exception {
    DatabaseSettings db = TestDatabase.settings();
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
            .secret(secret, Duration.ofHours(1)), 2_000, Duration.ofMillis(10)).start());
      }
    }
    assertThat(warm).hasSize(3);

    int lines = 20_000;
    List<String> expected = IntStream.rangeClosed(1, lines).mapToObj(i -> "hot-" + i).toList();
    ProcessBuilder cli = new ProcessBuilder("bash", script("device.sh"), "--connect", "127.0.0.1:7003",
        "--device", hot, "--mapping", "echo", "--expect", Integer.toString(lines))
        .redirectError(runDir.resolve("hot.err").toFile())
        .directory(ROOT.toFile());
    cli.environment().putAll(env());
    Process device = cli.start();
    List<String> received = Collections.synchronizedList(new ArrayList<>());
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(device.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          received.add(line);
        }
      } catch (IOException e) {
        // The process ended.
      }
    });
    reader.start();
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
        HttpProbe.get("http://127.0.0.1:8551/api/sockets/" + hot).body().contains("\"node\":\"")
            && !HttpProbe.get("http://127.0.0.1:8551/api/sockets/" + hot).body().contains("\"node\":\"" + busy + "\""));
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
    String migrations = HttpProbe.get("http://127.0.0.1:8552/api/migrations?socket=" + hot).body();
    assertThat(migrations).contains("\"cause\":\"auto\"").contains("\"from\":\"" + busy + "\"");
    System.out.printf("FIGURE process migration: hot device moved off %s %.1f s after it started; %s%n", busy,
        movedAfter, migrations);
  }

  /** Opens the socket once (so that it exists) and returns the node hosting its entity. */
  private static String nodeOf(String device, byte[] secret, List<java.net.InetSocketAddress> edges) throws Exception {
    io.berth.protocol.DeviceClient c = io.berth.protocol.DeviceClient.builder().addresses(edges).deviceId(device)
        .secret(secret, Duration.ofHours(1)).mapping("discard").build().connect();
    c.send(new byte[] {0});
    c.awaitAllAcked(Duration.ofSeconds(30));
    c.close();
    String body = HttpProbe.get("http://127.0.0.1:8551/api/sockets/" + device).body();
    return body.replaceAll(".*\"node\":\"([^\"]*)\".*", "$1");
  }

  private Path writeLines(int n) throws IOException {
    Path file = runDir.resolve("lines.txt");
    Files.write(file, IntStream.rangeClosed(1, n).mapToObj(i -> "line-" + i).toList());
    return file;
  }

  private Map<String, String> env() {
    return Map.of("BERTH_RUN_DIR", runDir.toString(), "BERTH_SKIP_BUILD", "1");
  }

  private static String script(String name) {
    return ROOT.resolve("scripts").resolve(name).toString();
  }

  record Result(int code, String output) {}

  private Result run(List<String> command, Map<String, String> extraEnv) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).directory(ROOT.toFile());
    pb.environment().putAll(env());
    pb.environment().putAll(extraEnv);
    Process p = pb.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(SCRIPT_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("timed out: " + command + "\n" + output);
    }
    System.out.println("$ " + String.join(" ", command) + "\n" + output);
    return new Result(p.exitValue(), output);
  }
}
