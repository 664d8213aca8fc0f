package io.berth.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A process the harness started itself (Mosquitto, a Berth node or the raw-TCP anchor in a JVM of
 * its own), with its output in a log file. It is stopped by its own PID only, never by name: at
 * close, and by a shutdown hook if the harness dies first. Its stdin stays a pipe from the
 * harness, so a child that watches stdin also ends when the harness is killed outright.
 */
final class ChildProcess implements AutoCloseable {

  private static final Duration STOP_GRACE = Duration.ofSeconds(20);

  private final String name;
  private final Process process;
  private final Path log;
  private final Thread killOnExit;

  private ChildProcess(String name, Process process, Path log) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.killOnExit = new Thread(process::destroyForcibly, "kill-" + name + "-" + process.pid());
    Runtime.getRuntime().addShutdownHook(killOnExit);
  }

  /** Starts {@code command} with {@code env} added to the harness's environment. */
  static ChildProcess start(String name, List<String> command, Map<String, String> env, Path log)
      throws IOException {
    Files.createDirectories(log.toAbsolutePath().getParent());
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.to(log.toFile()));
    builder.environment().putAll(env);
    return new ChildProcess(name, builder.start(), log);
  }

  /** How a command that ran to its end exited, and what it printed. */
  record Finished(int exitCode, String output) {}

  /**
   * Runs {@code command} to its end with its output in {@code log}, waiting at most {@code
   * limit}; a command still running then is stopped like any child (by its PID) and the run
   * fails. For the short commands of a run: pgbench, jcmd.
   */
  static Finished runToEnd(String name, List<String> command, Map<String, String> env, Path log, Duration limit)
      throws IOException {
    try (ChildProcess child = start(name, command, env, log)) {
      child.process.getOutputStream().close();
      if (!child.process.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException(name + " did not finish within " + limit.toSeconds()
            + " s; the end of its log (" + log + "):\n" + child.logTail(20));
      }
      return new Finished(child.process.exitValue(), Files.readString(log));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(name + " interrupted", e);
    }
  }

  /** The {@code java} that runs the harness, so that every JVM of a run is the same one. */
  static String javaBinary() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** Waits (bounded) until the child accepts TCP connections on a loopback port. */
  void awaitListening(int port, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      failIfExited();
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return;
      } catch (IOException e) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(name + " did not listen on port " + port + " within "
              + timeout.toSeconds() + " s; the end of its log (" + log + "):\n" + logTail(20));
        }
        LocalCluster.pause(50);
      }
    }
  }

  /** Throws with the end of the child's log when it is no longer running. */
  void failIfExited() {
    if (!process.isAlive()) {
      throw new IllegalStateException(name + " exited with " + process.exitValue() + "; the end of its log ("
          + log + "):\n" + logTail(40));
    }
  }

  /** The last lines of the child's log, for error messages. */
  String logTail(int lines) {
    try {
      List<String> all = Files.readAllLines(log);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size())).strip();
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** Kills exactly this process with SIGKILL, as a crash would, and waits (bounded) until it is gone. */
  void kill() {
    process.destroyForcibly();
    try {
      if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException(name + " still runs " + STOP_GRACE.toSeconds() + " s after SIGKILL");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Stops exactly this process: SIGTERM, then SIGKILL if it has not exited within the grace. */
  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
    try {
      Runtime.getRuntime().removeShutdownHook(killOnExit);
    } catch (IllegalStateException e) {
      // Already shutting down: the hook kills a process that is gone, which is harmless.
    }
  }
}
