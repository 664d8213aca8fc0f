package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.read.ListAppender;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.protocol.Frame;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * A fleet that drops at once (a load balancer or a carrier network failing): every socket of a
 * node records its device's departure in the same instant, one journal write each. One node,
 * real TCP and PostgreSQL.
 */
class FleetDropIT {

  /** More than the journal plugin's stock write queue (1,000) ever held; two ends each in this JVM. */
  private static final int DEVICES = 3_000;
  private static final int CONNECTING_THREADS = 16;
  /**
   * However slow the opening, no socket sleeps and no device is timed out before the drop: the
   * departures all come at once, and none of them first needs a recovery.
   */
  private static final String AWAKE = """
      berth.socket.sleep-after = off
      berth.edge.idle-timeout = 10m
      """;
  /** What the node logs when the journal refuses a write or its breaker is open. */
  private static final List<String> JOURNAL_FAILURES = List.of("Failed to persist event", "queue buffer was full",
      "Circuit Breaker is open");

  @Test
  void aWholeFleetDroppingAtOnceIsRecordedAndTheNodeKeepsTakingDevices() throws Exception {
    ListAppender<ILoggingEvent> log = new ListAppender<>();
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    log.start();
    root.addAppender(log);
    try (TestNodes nodes = new TestNodes(AWAKE).start(1)) {
      TestNodes.Node node = nodes.node(0);
      String prefix = TestNodes.uniqueDevice("fleet");
      List<RawDevice> fleet = connectAll(node, prefix);

      // All at once, with a reset: the devices just vanish.
      for (RawDevice device : fleet) {
        device.socket().setSoLinger(true, 0);
        device.close();
      }

      // A device arriving in the middle of it is welcomed, not told to come back later
      // (a journal that failed the departures' writes would have opened its circuit breaker
      // and failed this socket's recovery too).
      try (RawDevice late = handshake(node, TestNodes.uniqueDevice("late"))) {
        assertThat(late.socket().isConnected()).isTrue();
      }

      // Every departure is recorded (each socket detached), and not by retrying: the journal
      // refused no write on the way.
      await().atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() ->
          assertThat(notYetDetached(node, prefix)).as("sockets not recorded as detached").isEmpty());
      assertThat(journalFailures(log)).as("journal failures in the node's log").isEmpty();
    } finally {
      root.detachAppender(log);
    }
  }

  /** A device that connected and was welcomed; fails with what the node answered otherwise. */
  private static RawDevice handshake(TestNodes.Node node, String deviceId) throws IOException {
    RawDevice device = new RawDevice(node.edge(), Duration.ofSeconds(30));
    try {
      device.send(RawDevice.hello(deviceId, "discard"));
      Frame answer = device.read();
      if (!(answer instanceof Frame.Welcome)) {
        throw new IOException(deviceId + " was answered " + answer);
      }
      return device;
    } catch (IOException | RuntimeException e) {
      device.close();
      throw e;
    }
  }

  /** Opens the fleet, several handshakes at a time; closes what it opened if one fails. */
  private static List<RawDevice> connectAll(TestNodes.Node node, String prefix) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(CONNECTING_THREADS);
    List<Future<RawDevice>> opening = new ArrayList<>();
    try {
      for (int i = 0; i < DEVICES; i++) {
        String id = prefix + "-" + i;
        opening.add(pool.submit(() -> handshake(node, id)));
      }
      List<RawDevice> fleet = new ArrayList<>();
      for (Future<RawDevice> f : opening) {
        fleet.add(f.get(3, TimeUnit.MINUTES));
      }
      return fleet;
    } catch (Exception e) {
      pool.shutdownNow();
      for (Future<RawDevice> f : opening) {
        if (f.isDone() && !f.isCancelled()) {
          try {
            f.get().close();
          } catch (Exception ignored) {
            // failed handshakes closed their own connection
          }
        }
      }
      throw e;
    } finally {
      pool.shutdownNow();
    }
  }

  /** Sockets of the fleet whose entity does not (yet) say "detached", or did not answer. */
  private static List<String> notYetDetached(TestNodes.Node node, String prefix) {
    List<CompletableFuture<SocketStatus>> asks = new ArrayList<>();
    for (int i = 0; i < DEVICES; i++) {
      asks.add(Sockets.status(node.system(), prefix + "-" + i, Duration.ofSeconds(10)).toCompletableFuture());
    }
    List<String> waiting = new ArrayList<>();
    for (int i = 0; i < DEVICES; i++) {
      String state;
      try {
        state = asks.get(i).get(60, TimeUnit.SECONDS).state();
      } catch (Exception e) {
        state = "no answer (" + e + ")";
      }
      if (!"detached".equals(state)) {
        waiting.add(prefix + "-" + i + ": " + state);
      }
    }
    return waiting.size() > 5 ? List.of(waiting.size() + " sockets, e.g. " + waiting.subList(0, 5)) : waiting;
  }

  private static List<String> journalFailures(ListAppender<ILoggingEvent> log) {
    List<String> found = new ArrayList<>();
    for (ILoggingEvent e : List.copyOf(log.list)) {
      String text = e.getFormattedMessage()
          + (e.getThrowableProxy() == null ? "" : ThrowableProxyUtil.asString(e.getThrowableProxy()));
      if (JOURNAL_FAILURES.stream().anyMatch(text::contains) && found.size() < 3) {
        found.add(e.getLevel() + " " + e.getFormattedMessage());
      }
    }
    return found;
  }
}
