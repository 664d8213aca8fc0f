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
