package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.DeviceClient;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Quiet attached sockets sleep (docs/sleep.md): one node, real TCP and PostgreSQL. The node's
 * {@code sockets} figure counts running socket entities, {@code connections} the edge's
 * connections: a sleeping socket is a connection without an entity.
 */
class SleepIT {

  private static final String QUICK_SLEEP = """
      berth.socket.sleep-after = 1s
      berth.edge.entity-heartbeat = 1s
      berth.migration.check-interval = 300ms
      """;
  private static final Pattern SOCKETS = Pattern.compile("\"sockets\":(\\d+),\"connections\":(\\d+)");

  /** Running socket entities and edge connections, as the node last reported them. */
  private static int[] load(TestNodes nodes) {
    Matcher m = SOCKETS.matcher(HttpProbe.get(nodes.node(0).managementUrl() + "/api/nodes").body());
    return m.find() ? new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))} : new int[] {-1, -1};
  }

  /**
   * Until the node has had no socket entity running for a while: a heartbeat the session sent
   * before it heard that its socket sleeps starts the entity once more, and it sleeps again.
   */
  private static void awaitAsleep(TestNodes nodes, int connections) {
    await().during(Duration.ofMillis(1500)).atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100))
        .until(() -> {
          int[] l = load(nodes);
          return l[0] == 0 && l[1] == connections;
        });
  }

  @Test
  void aQuietDeviceKeepsItsConnectionWhileItsSocketSleepsAndWakesItWithAFrame() throws Exception {
    try (TestNodes nodes = new TestNodes(QUICK_SLEEP).start(1)) {
      String device = TestNodes.uniqueDevice("sleepy");
      List<String> got = new CopyOnWriteArrayList<>();
      DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).mapping("echo")
          .listener(TestNodes.collecting(got)).build().connect();
      try {
        for (int i = 0; i < 10; i++) {
          client.send(("a" + i).getBytes(StandardCharsets.UTF_8));
        }
        assertThat(client.awaitAllAcked(Duration.ofSeconds(30))).isTrue();
        await().atMost(Duration.ofSeconds(30)).until(() -> got.size() == 10);

        awaitAsleep(nodes, 1);
        // Heartbeats (every second here) stop while the socket sleeps: it stays asleep.
        await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(10)).until(() -> load(nodes)[0] == 0);

        // A frame wakes it, attached to the same connection: acknowledged and echoed.
        for (int i = 0; i < 10; i++) {
          client.send(("b" + i).getBytes(StandardCharsets.UTF_8));
        }
        assertThat(client.awaitAllAcked(Duration.ofSeconds(30))).isTrue();
        await().atMost(Duration.ofSeconds(30)).until(() -> got.size() == 20);

        // So does a message from outside, and it reaches the device.
        awaitAsleep(nodes, 1);
        HttpProbe.Response injected = HttpProbe.send("POST",
            nodes.node(0).managementUrl() + "/api/sockets/" + device + "/messages", "wake up");
        assertThat(injected.status()).as(injected.body()).isEqualTo(202);
        await().atMost(Duration.ofSeconds(30)).until(() -> got.size() == 21);

        assertThat(got).containsExactlyElementsOf(
            IntStream.range(0, 21).mapToObj(i -> i < 10 ? "a" + i : i < 20 ? "b" + (i - 10) : "wake up").toList());
        assertThat(client.connectionCount()).as("the device never had to reconnect").isEqualTo(1);
        String status = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device).body();
        assertThat(status).contains("\"state\":\"open\"").contains("\"lastAccepted\":20");
      } finally {
        client.close();
      }
    }
  }

  @Test
  void aSleepingSocketLearnsThatItsDeviceVanished() throws Exception {
    try (TestNodes nodes = new TestNodes(QUICK_SLEEP).start(1)) {
      String device = TestNodes.uniqueDevice("vanishing");
      try (RawDevice raw = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(30))) {
        raw.send(RawDevice.hello(device, "echo"));
        assertThat(raw.read()).isInstanceOf(Frame.Welcome.class);
        awaitAsleep(nodes, 1);
      }
      // The connection ends without a CLOSE: the session wakes the socket to say so (nothing
      // else would), and the socket is detached at once rather than at its next wake-up.
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100)).until(() -> {
        int[] l = load(nodes);
        return l[0] == 1 && l[1] == 0;
      });
      await().atMost(Duration.ofSeconds(30)).until(() ->
          HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device).body()
              .contains("\"state\":\"detached\""));
    }
  }
}
