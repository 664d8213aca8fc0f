package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.connection.ConnectionEntity;
import io.berth.protocol.Frame;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A fleet that drops at once (a load balancer or a carrier network failing): every socket of a
 * node records its device's departure in the same instant, one journal write each. One node,
 * real TCP and PostgreSQL.
 */
class FleetDropIT {

  /** More than the journal plugin's stock write queue (1,000) ever held; two ends each in this JVM. */
  private static final int DEVICES = 3_000;
  private static final int CONNECTING_THREADS = 16;

  @Test
  void aWholeFleetDroppingAtOnceIsRecordedAndTheNodeKeepsTakingDevices() throws Exception {
    try (TestNodes nodes = new TestNodes().start(1)) {
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
      String late = TestNodes.uniqueDevice("late");
      try (RawDevice device = new RawDevice(node.edge(), Duration.ofSeconds(30))) {
        device.send(RawDevice.hello(late, "discard"));
        assertThat(device.read()).isInstanceOf(Frame.Welcome.class);
      }

      // Every departure is recorded: each socket is detached, none failed on the way.
      await().atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() ->
          assertThat(notYetDetached(node, prefix)).as("sockets not recorded as detached").isEmpty());
    }
  }

  /** Opens the fleet: HELLO and WELCOME for each device, several handshakes at a time. */
  private static List<RawDevice> connectAll(TestNodes.Node node, String prefix) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(CONNECTING_THREADS);
    try {
      List<Future<RawDevice>> opening = new ArrayList<>();
      for (int i = 0; i < DEVICES; i++) {
        String id = prefix + "-" + i;
        opening.add(pool.submit(() -> {
          RawDevice device = new RawDevice(node.edge(), Duration.ofSeconds(30));
          device.send(RawDevice.hello(id, "discard"));
          Frame answer = device.read();
          if (!(answer instanceof Frame.Welcome)) {
            device.close();
            throw new IOException(id + " was answered " + answer);
          }
          return device;
        }));
      }
      List<RawDevice> fleet = new ArrayList<>();
      for (Future<RawDevice> f : opening) {
        fleet.add(f.get(3, TimeUnit.MINUTES));
      }
      return fleet;
    } finally {
      pool.shutdownNow();
    }
  }

  private static List<String> notYetDetached(TestNodes.Node node, String prefix) throws Exception {
    List<String> waiting = new ArrayList<>();
    List<java.util.concurrent.CompletableFuture<ConnectionEntity.SocketStatus>> asks = new ArrayList<>();
    for (int i = 0; i < DEVICES; i++) {
      asks.add(ConnectionEntity.status(node.system(), prefix + "-" + i, Duration.ofSeconds(10)).toCompletableFuture());
    }
    for (int i = 0; i < DEVICES; i++) {
      String state = asks.get(i).get(60, TimeUnit.SECONDS).state();
      if (!"detached".equals(state)) {
        waiting.add(prefix + "-" + i + ": " + state);
      }
    }
    return waiting.size() > 5 ? List.of(waiting.size() + " sockets, e.g. " + waiting.subList(0, 5)) : waiting;
  }
}
