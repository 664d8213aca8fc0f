package io.berth.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.EdgeServer;
import io.berth.node.edge.EdgeSettings;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts a node: checks its settings, installs the schema, starts the actor system, and exits
 * when the system terminates (non-zero when the node could not serve).
 */
public final class Main {

  private static final Logger log = LoggerFactory.getLogger(Main.class);

  private Main() {}

  public static void main(String[] args) {
    ActorSystem<Void> system;
    try {
      Config config = BerthNode.config(ConfigFactory.load());
      EdgeSettings.fromConfig(config);
      DatabaseSettings db = DatabaseSettings.fromConfig(config);
      SchemaInstaller.install(db);
      system = BerthNode.start(config);
    } catch (RuntimeException e) {
      log.error("Berth node cannot start: {}", e.getMessage(), e);
      // The log is asynchronous: without this the one line that says why can be lost.
      flushLogs();
      System.exit(1);
      return;
    }
    awaitTermination(system);
    CoordinatedShutdown.Reason reason = CoordinatedShutdown.get(system).getShutdownReason().orElse(null);
    if (reason == CoordinatedShutdown.jvmExitReason()) {
      return; // The JVM is already exiting (SIGTERM): calling System.exit here would block.
    }
    int code = reason == EdgeServer.BIND_FAILED ? 2
        : reason == CoordinatedShutdown.clusterDowningReason() ? 3
        : reason == CoordinatedShutdown.clusterJoinUnsuccessfulReason() ? 4
        : reason == BerthNode.MANAGEMENT_FAILED ? 5
        : 0;
    log.info("Node stopped ({}), exit code {}", reason, code);
    flushLogs();
    System.exit(code);
  }

  /**
   * Waits until the actor system terminated, or until {@link #TERMINATION_BOUND} after its
   * coordinated shutdown began: a node that was downed must exit, so that its supervisor starts
   * it again, even when something keeps the actor system from terminating (seen once after a
   * node frozen by SIGSTOP woke up downed; the threads are logged to say what).
   */
  private static void awaitTermination(ActorSystem<Void> system) {
    java.util.concurrent.CompletableFuture<?> terminated = system.getWhenTerminated().toCompletableFuture();
    CoordinatedShutdown shutdown = CoordinatedShutdown.get(system);
    long shutdownSeenAt = 0;
    while (true) {
      try {
        terminated.get(1, java.util.concurrent.TimeUnit.SECONDS);
        return;
      } catch (java.util.concurrent.TimeoutException e) {
        if (shutdown.getShutdownReason().isEmpty()) {
          continue;
        }
        long now = System.nanoTime();
        if (shutdownSeenAt == 0) {
          shutdownSeenAt = now;
        } else if (now - shutdownSeenAt > TERMINATION_BOUND.toNanos()) {
          log.error("The node did not stop within {} s of its shutdown ({}); exiting anyway. Its threads:\n{}",
              TERMINATION_BOUND.toSeconds(), shutdown.getShutdownReason().get(), threads());
          return;
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (java.util.concurrent.ExecutionException e) {
        log.error("Waiting for the node to stop failed", e.getCause());
        return;
      }
    }
  }

  /** Above the sum of the coordinated shutdown's phase timeouts that a slow graceful leave may use up (75 s). */
  private static final java.time.Duration TERMINATION_BOUND = java.time.Duration.ofSeconds(80);

  private static String threads() {
    StringBuilder out = new StringBuilder();
    Thread.getAllStackTraces().forEach((thread, stack) -> {
      out.append('"').append(thread.getName()).append("\" ").append(thread.getState()).append('\n');
      for (int i = 0; i < Math.min(stack.length, 12); i++) {
        out.append("    at ").append(stack[i]).append('\n');
      }
    });
    return out.toString();
  }

  private static void flushLogs() {
    if (LoggerFactory.getILoggerFactory() instanceof ch.qos.logback.classic.LoggerContext ctx) {
      ctx.stop();
    }
  }
}
