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
    try {
      system.getWhenTerminated().toCompletableFuture().get();
    } catch (Exception e) {
      log.error("Waiting for the node to stop failed", e);
    }
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

  private static void flushLogs() {
    if (LoggerFactory.getILoggerFactory() instanceof ch.qos.logback.classic.LoggerContext ctx) {
      ctx.stop();
    }
  }
}
