package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.metrics.Metrics;
import io.berth.protocol.DeviceClient;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /metrics} on a node with PostgreSQL (docs/metrics.md): after a device's session,
 * the figures it moved are there in the Prometheus text format, with no socket or device in a
 * label, and only for a caller with a key; and the shipped Grafana dashboard queries only
 * metrics the node registers.
 */
class MetricsIT {

  @Test
  void aDevicesSessionShowsInTheNodesMetricsWithoutItsIdInAnyLabel() throws Exception {
    try (TestNodes nodes = new TestNodes().start(1)) {
      String url = nodes.node(0).managementUrl() + "/metrics";
      ConcurrentLinkedQueue<String> got = new ConcurrentLinkedQueue<>();
      String device = TestNodes.uniqueDevice("metered");
      DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).mapping("echo")
          .listener(TestNodes.collecting(got)).build().connect();
      for (int i = 0; i < 100; i++) {
        client.send(("m" + i).getBytes(StandardCharsets.UTF_8));
      }
      assertThat(client.awaitAllAcked(Duration.ofSeconds(30))).isTrue();
      await().atMost(Duration.ofSeconds(30)).until(() -> got.size() >= 100);
      client.close();

      await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
        String text = HttpProbe.get(url).body();
        assertThat(value(text, "berth_handshakes_total{result=\"welcome\"}")).isGreaterThanOrEqualTo(1);
        assertThat(value(text, "berth_uplink_frames_total")).isGreaterThanOrEqualTo(100);
        assertThat(value(text, "berth_uplink_bytes_total")).isGreaterThanOrEqualTo(290);
        assertThat(value(text, "berth_downlink_frames_total")).isGreaterThanOrEqualTo(100);
        assertThat(value(text, "berth_ack_latency_seconds_count")).isGreaterThanOrEqualTo(1);
        assertThat(value(text, "berth_disconnects_total{reason=\"session_ended\"}")
            + value(text, "berth_disconnects_total{reason=\"device\"}")).isGreaterThanOrEqualTo(1);
        // The session's events went to the journal in batches; nothing waits on the edge after it.
        assertThat(value(text, "berth_journal_write_seconds_count")).isGreaterThanOrEqualTo(1);
        assertThat(value(text, "berth_journal_batch_events_sum")).isGreaterThanOrEqualTo(2);
        assertThat(value(text, "berth_journal_write_failures_total")).isZero();
        assertThat(text).contains("berth_edge_queued_frames 0.0", "berth_edge_blocked_connections 0.0");
        assertThat(text).contains("berth_connections_open ", "berth_socket_entities ", "berth_shards ",
            "berth_connections_refused_total{outcome=\"tls-not-tls\"}", "jvm_memory_used_bytes",
            "# TYPE berth_ack_latency_seconds histogram");
        assertThat(text).as("no socket or device id in a label").doesNotContain(device);
      });
      assertThat(HttpProbe.send("GET", url, null, null).status()).as("without a key").isEqualTo(401);

      // Every metric the shipped dashboard queries is one the node registers (a labelled one
      // shows in the text only once it has a sample).
      Set<String> exported = new TreeSet<>();
      for (MetricSnapshot snapshot : Metrics.get(nodes.node(0).system()).registry().scrape()) {
        exported.add(base(snapshot.getMetadata().getPrometheusName()));
      }
      String dashboard = Files.readString(Path.of("..", "deploy", "grafana", "berth-dashboard.json"));
      Set<String> queried = new TreeSet<>();
      Matcher name = Pattern.compile("\\b(berth_[a-z_]+|jvm_[a-z_]+|process_[a-z_]+)").matcher(dashboard);
      while (name.find()) {
        queried.add(base(name.group(1)));
      }
      assertThat(queried).isNotEmpty();
      assertThat(exported).containsAll(queried);
    }
  }

  /** A metric's name without the suffixes its samples add. */
  private static String base(String name) {
    return name.replaceAll("_(bucket|sum|count|total|created)$", "");
  }

  /** The value of one sample line, 0 when absent. */
  private static double value(String text, String sample) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(sample) + " (\\S+)$").matcher(text);
    return m.find() ? Double.parseDouble(m.group(1)) : 0;
  }
}
