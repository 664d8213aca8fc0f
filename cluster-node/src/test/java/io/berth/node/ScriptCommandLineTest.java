package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What the scripts answer to a wrong command line and to {@code --help}: the error says what was
 * wrong in one line (no bash line numbers), help prints only help. No node is started: the run
 * directory is a temporary one, and mvn, psql and friends are stand-ins that record any call.
 */
class ScriptCommandLineTest {

  private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
  private static final List<String> TOOLS = List.of("mvn", "psql", "pg_isready", "pg_ctlcluster", "apt-get", "java");

  @TempDir
  Path runDir;

  @TempDir
  Path bin;

  @BeforeEach
  void standIns() throws IOException {
    for (String tool : TOOLS) {
      Path stub = bin.resolve(tool);
      Files.writeString(stub, "#!/bin/sh\necho " + tool + " >>'" + bin.resolve("calls") + "'\nexit 99\n");
      Files.setPosixFilePermissions(stub, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "--verbose", "stop", "stop x", "pause", "resume 1 2", "nosuch", "help nosuch", "kill",
      "kill x", "kill 1 2",
      "start", "logs", "status extra", "down extra", "up -n", "up -n 12", "up --db", "up --db berth", "up 5",
      "up --nodes 3"})
  void aWrongCommandLineSaysWhatWasWrongInOneLine(String args) throws Exception {
    Result r = run("cluster.sh", args);

    assertThat(r.code()).as(r.stderr()).isEqualTo(2);
    assertThat(r.stdout()).isEmpty();
    List<String> lines = r.stderr().lines().toList();
    assertThat(lines.get(0)).startsWith("error: ");
    assertThat(lines).as("the error line, the usage and where help is").hasSize(3);
    assertThat(lines.get(1)).startsWith("usage: scripts/cluster.sh");
    assertThat(r.stderr()).doesNotContainPattern("line [0-9]+:");
    assertThat(calls()).isEmpty();
  }

  @Test
  void killStartAndLogsAgreeOnANodeThatDoesNotExist() throws Exception {
    assertThat(run("cluster.sh", "kill 9").stderr())
        .isEqualTo("error: no cluster was started from " + runDir + " (scripts/cluster.sh up starts one)\n");
    Files.writeString(runDir.resolve("settings"), "NODES=3\n");
    Files.writeString(runDir.resolve("nodes"), "3\n");

    String expected = "error: there is no node 9: the cluster started from " + runDir + " has nodes 1 to 3\n";
    for (String command : List.of("kill 9", "start 9", "logs 9", "kill 0", "stop 9", "pause 9", "resume 9")) {
      Result r = run("cluster.sh", command);
      assertThat(r.code()).as(command).isEqualTo(1);
      assertThat(r.stderr()).as(command).isEqualTo(expected.replace("node 9", "node " + command.split(" ")[1]));
    }
    assertThat(calls()).as("start did not build or launch").isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"up", "status", "down", "stop", "kill", "pause", "resume", "start", "logs"})
  void everyClusterCommandPrintsOnlyItsHelp(String command) throws Exception {
    for (String args : List.of(command + " --help", command + " -h", "help " + command, command + " 2 --help")) {
      Result r = run("cluster.sh", args);
      assertThat(r.code()).as(args).isZero();
      assertThat(r.stderr()).as(args).isEmpty();
      assertThat(r.stdout()).as(args).startsWith("usage: scripts/cluster.sh " + command);
    }
    assertThat(runDir).isEmptyDirectory();
    assertThat(calls()).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"cluster.sh --help", "cluster.sh -h", "cluster.sh help", "test.sh --help",
      "test.sh -Dit.test=SmokeIT -h", "bench.sh --help", "bench.sh --quick -h"})
  void helpTouchesNothing(String args) throws Exception {
    String[] words = args.split(" ", 2);
    Result r = run(words[0], words[1]);

    assertThat(r.code()).as(r.stderr()).isZero();
    assertThat(r.stderr()).isEmpty();
    assertThat(r.stdout()).contains("scripts/" + words[0]);
    assertThat(calls()).as("no database, Maven or JVM was started").isEmpty();
    assertThat(runDir).isEmptyDirectory();
  }

  @Test
  void benchRefusesAnUnknownScenarioBeforeDroppingItsDatabase() throws Exception {
    Result r = run("bench.sh", "--quick idel");

    assertThat(r.code()).isEqualTo(1);
    assertThat(r.stderr()).startsWith("error: no such scenario: idel");
    assertThat(calls()).isEmpty();
  }

  private String calls() throws IOException {
    Path calls = bin.resolve("calls");
    return Files.exists(calls) ? Files.readString(calls) : "";
  }

  record Result(int code, String stdout, String stderr) {}

  private Result run(String script, String args) throws Exception {
    List<String> command = new ArrayList<>(List.of("bash", ROOT.resolve("scripts").resolve(script).toString()));
    if (!args.isEmpty()) {
      command.addAll(List.of(args.split(" ")));
    }
    ProcessBuilder pb = new ProcessBuilder(command).directory(ROOT.toFile());
    pb.environment().put("BERTH_RUN_DIR", runDir.toString());
    pb.environment().put("PATH", bin + ":" + System.getenv("PATH"));
    pb.environment().remove("BERTH_TEST_DB_URL");
    pb.environment().remove("BERTH_BENCH_DB_URL");
    Process p = pb.start();
    CompletableFuture<String> stderr = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
    String stdout = read(p.getInputStream());
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).as("%s %s finished", script, args).isTrue();
    return new Result(p.exitValue(), stdout, stderr.get(30, TimeUnit.SECONDS));
  }

  private static String read(java.io.InputStream in) {
    try {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
