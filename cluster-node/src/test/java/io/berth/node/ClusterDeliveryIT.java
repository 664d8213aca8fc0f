package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.socket.api.SocketStatus;
import io.berth.protocol.Frame;
import java.time.Duration;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Leave;
import org.junit.jupiter.api.Test;

/**
 * Three nodes in this JVM sharing the PostgreSQL test database; a real device over TCP.
 * Figures are printed for the record, not asserted: timings belong to the benchmark harness.
 */
class ClusterDeliveryIT {

  private static final int FRAMES = 10_000;
  private static final String CRASHABLE = """
      pekko.coordinated-shutdown.run-by-actor-system-terminate = off
      """;

  @Test
  void tenThousandFramesAreAcknowledgedAndEchoedExactlyOnce() {
    try (TestNodes nodes = new TestNodes().start(3)) {
      String device = TestNodes.uniqueDevice("bulk");
      long started = System.nanoTime();
      try (EchoStreamer streamer = new EchoStreamer(TestNodes.device(device, nodes.node(0).edge()), FRAMES,
          Duration.ZERO).start()) {
        streamer.awaitComplete(Duration.ofMinutes(3));
        double seconds = (System.nanoTime() - started) / 1e9;
        System.out.printf("FIGURE echo %d frames through 3 nodes: %.2f s, %.0f frames/s (edge %s, entity %s)%n",
            FRAMES, seconds, FRAMES / seconds, nodes.node(0).address(), nodes.entityNode(device));
        assertThat(streamer.distinctEchoed()).isEqualTo(FRAMES);
        assertThat(streamer.duplicateEchoes()).isZero();
        assertThat(streamer.client().lastAcked()).isEqualTo(FRAMES);
        assertThat(streamer.client().connectionCount()).isEqualTo(1);
      }
    }
  }

  @Test
  void anAbruptStopOfTheEntityNodeLosesAndDuplicatesNothing() {
    try (TestNodes nodes = new TestNodes(CRASHABLE).start(3)) {
      String device = TestNodes.uniqueDevice("crash");
      TestNodes.Node victim = nodes.nodeAt(nodes.entityNode(device));
      TestNodes.Node survivor = nodes.nodes().stream().filter(n -> n != victim).findFirst().orElseThrow();
      // The device is connected to the victim too: both its edge and its entity die.
      try (EchoStreamer streamer = new EchoStreamer(TestNodes.device(device, victim.edge(), survivor.edge()),
          FRAMES, Duration.ofMillis(1)).start()) {
        await().atMost(Duration.ofMinutes(1)).until(() -> streamer.distinctEchoed() >= 2_000);
        long echoedAtCrash = streamer.distinctEchoed();
        long crashedAt = System.nanoTime();
        nodes.crash(victim);
        await().atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(50))
            .until(() -> streamer.distinctEchoed() > echoedAtCrash + 10);
        double recovery = (System.nanoTime() - crashedAt) / 1e9;
        streamer.awaitComplete(Duration.ofMinutes(3));
        System.out.printf("FIGURE abrupt stop of the entity+edge node: echoes resumed after %.1f s%n", recovery);
        assertThat(streamer.distinctEchoed()).isEqualTo(FRAMES);
        assertThat(streamer.duplicateEchoes()).isZero();
        assertThat(streamer.client().connectionCount()).isGreaterThanOrEqualTo(2);
        assertThat(nodes.entityNode(device)).isNotEqualTo(victim.address().toString());
      }
    }
  }

  /**
   * The device acknowledged its downlink, but only the session's memory held that when its node
   * crashed (docs/delivery.md): the next incarnation pushes the frame again, and the edge, whose
   * device has it, answers with the acknowledgement instead of dropping the push in silence,
   * which left the session pushing it every downlink-retry and never asleep.
   */
  @Test
  void aSessionRestartedAfterACrashHearsWhatItsDeviceHadAcknowledged() throws Exception {
    try (TestNodes nodes = new TestNodes(CRASHABLE).start(3)) {
      TestNodes.Node edgeNode = nodes.node(0);
      String device = nodes.deviceNotOn(edgeNode, "reacked");
      TestNodes.Node victim = nodes.nodeAt(nodes.entityNode(device));
      try (RawDevice raw = new RawDevice(edgeNode.edge(), Duration.ofSeconds(20))) {
        raw.send(RawDevice.hello(device, "echo"));
        Frame.Welcome w = (Frame.Welcome) raw.read();
        raw.send(new Frame.Data(w.lastAccepted() + 1, new byte[] {7}));
        long echo = -1;
        while (echo < 0) {
          if (raw.read() instanceof Frame.Data data) {
            echo = data.seq();
          }
        }
        raw.send(new Frame.Ack(echo));
        long acked = echo;
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(nodes.status(device).downlinkAcked())
            .isEqualTo(acked));

        nodes.crash(victim);
        await().atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() -> {
          SocketStatus status = nodes.status(device);
          assertThat(status.node()).isNotEqualTo(victim.address().toString());
          assertThat(status.downlinkAcked()).as("the restarted session's word of the device's ACK").isEqualTo(acked);
        });
      }
    }
  }

  @Test
  void aGracefulLeaveHandsTheSocketOffWithoutLossOrDuplicates() {
    try (TestNodes nodes = new TestNodes().start(3)) {
      TestNodes.Node edgeNode = nodes.node(0);
      String device = nodes.deviceNotOn(edgeNode, "leave");
      TestNodes.Node leaving = nodes.nodeAt(nodes.entityNode(device));
      try (EchoStreamer streamer = new EchoStreamer(TestNodes.device(device, edgeNode.edge()),
          FRAMES, Duration.ofMillis(1)).start()) {
        await().atMost(Duration.ofMinutes(1)).until(() -> streamer.distinctEchoed() >= 2_000);
        long leftAt = System.nanoTime();
        Cluster.get(leaving.system()).manager().tell(Leave.create(leaving.address()));
        await().atMost(Duration.ofMinutes(1)).until(() -> leaving.system().whenTerminated().isCompleted());
        double handoff = (System.nanoTime() - leftAt) / 1e9;
        streamer.awaitComplete(Duration.ofMinutes(3));
        System.out.printf("FIGURE graceful leave of the entity node: node gone after %.1f s%n", handoff);
        assertThat(streamer.distinctEchoed()).isEqualTo(FRAMES);
        assertThat(streamer.duplicateEchoes()).isZero();
        assertThat(streamer.client().connectionCount()).as("the device never noticed").isEqualTo(1);
        assertThat(nodes.entityNode(device)).isNotEqualTo(leaving.address().toString());
        assertThat(Cluster.get(edgeNode.system()).state().getMembers())
            .noneMatch(m -> m.address().equals(leaving.address()) && m.status() == MemberStatus.up());
      }
    }
  }
}
