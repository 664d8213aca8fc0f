package io.berth.node;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The launch scripts ({@code scripts/cluster.sh}, {@code scripts/device.sh}) run as an operator
 * runs them, against one run folder ({@code BERTH_RUN_DIR}) and the jar already built, for the
 * tests of the real launch.
 */
final class LaunchScripts {

  static final Path ROOT = Path.of("").toAbsolutePath().getParent();
  private static final Duration TIMEOUT = Duration.ofMinutes(5);

  private final Path runDir;

  LaunchScripts(Path runDir) {
    this.runDir = runDir;
  }

  record Result(int code, String output) {}

  Map<String, String> env() {
    return Map.of("BERTH_RUN_DIR", runDir.toString(), "BERTH_SKIP_BUILD", "1");
  }

  static String script(String name) {
    return ROOT.resolve("scripts").resolve(name).toString();
  }

  /** Runs a script to its end (at most 5 minutes), its output printed and returned. */
  Result run(List<String> command, Map<String, String> extraEnv) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).directory(ROOT.toFile());
    pb.environment().putAll(env());
    pb.environment().putAll(extraEnv);
    Process p = pb.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("timed out: " + command + "\n" + output);
    }
    System.out.println("$ " + String.join(" ", command) + "\n" + output);
    return new Result(p.exitValue(), output);
  }

  /** {@code scripts/device.sh} with these arguments, its stderr going to {@code stderr} in the run folder. */
  ProcessBuilder device(String stderr, String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of("bash", script("device.sh")));
    command.addAll(List.of(args));
    ProcessBuilder cli = new ProcessBuilder(command).redirectError(runDir.resolve(stderr).toFile())
        .directory(ROOT.toFile());
    cli.environment().putAll(env());
    return cli;
  }

  /** Copies the run folder's logs to target/process-cluster-logs/TEST: the run folder goes with the test. */
  void keepLogs(org.junit.jupiter.api.TestInfo test) throws IOException {
    Path kept = Path.of("target", "process-cluster-logs", test.getTestMethod().orElseThrow().getName());
    java.nio.file.Files.createDirectories(kept);
    try (var logs = java.nio.file.Files.newDirectoryStream(runDir, "*.{log,err}")) {
      for (Path log : logs) {
        java.nio.file.Files.copy(log, kept.resolve(log.getFileName()),
            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }
}
