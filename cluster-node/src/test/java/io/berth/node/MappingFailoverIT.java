package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A socket that moves, or whose node dies, while a batch is with its HTTP endpoint: the batch is
 * sent again with the same id and boundaries, so an endpoint that keeps the first answer per
 * batch id sees every byte exactly once, in order.
 */
class MappingFailoverIT {

  private static final String SECRET = "endpoint-secret-0123456789";

  /** Every byte the endpoint took, first copy per batch id, in batch order. */
  private static byte[] delivered(TestEndpoint endpoint) {
    Map<String, byte[]> batches = new LinkedHashMap<>();
    for (TestEndpoint.Call c : endpoint.calls("data")) {
      batches.putIfAbsent(c.batchId(), c.data());
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    batches.values().forEach(out::writeBytes);
    return out.toByteArray();
  }

  private static byte[] expected(int frames) {
    ByteBuffer b = ByteBuffer.allocate(frames * 4);
    for (int i = 0; i < frames; i++) {
      b.putInt(i);
    }
    return b.array();
  }

  private void run(String name, java.util.function.BiConsumer<TestNodes, String> disruption, String extra)
      throws Exception {
    try (TestNodes nodes = new TestNodes("berth.endpoints.allowed-hosts = [\"127.0.0.1\"]\n" + extra).start(3);
         TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      // Slow answers keep a batch with the endpoint when the disruption hits.
      endpoint.answer(c -> new TestEndpoint.Answer(204, null, 150));
      String mapping = TestNodes.uniqueDevice("fo");
      HttpProbe.Response put = HttpProbe.send("PUT", nodes.node(0).managementUrl() + "/api/mappings/" + mapping,
          "{\"endpoint\":\"" + endpoint.url() + "\",\"secret\":\"" + SECRET + "\",\"events\":[\"data\"],"
              + "\"criteria\":{\"maxBytes\":64}}");
      assertThat(put.status()).as(put.body()).isEqualTo(200);
      String device = null;
      TestNodes.Node edge = nodes.node(0);
      for (int i = 0; i < 50 && device == null; i++) {
        String candidate = TestNodes.uniqueDevice(name);
        if (!nodes.entityNode(candidate).equals(edge.address().toString())) {
          device = candidate;
        }
      }
      assertThat(device).isNotNull();
      io.berth.protocol.DeviceClient client = TestNodes.device(device, edge.edge()).mapping(mapping).build().connect();
      int frames = 400;
      Thread sender = new Thread(() -> {
        try {
          for (int i = 0; i < frames; i++) {
            client.send(ByteBuffer.allocate(4).putInt(i).array());
            Thread.sleep(5);
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      sender.start();
      await().atMost(Duration.ofSeconds(30)).until(() -> endpoint.calls("data").size() >= 5);
      disruption.accept(nodes, device);
      sender.join(120_000);
      assertThat(client.awaitAllAcked(Duration.ofMinutes(2))).isTrue();
      assertThat(delivered(endpoint)).as("each byte once, in order, counting each batch id once")
          .isEqualTo(expected(frames));
      long resent = endpoint.calls("data").size() - endpoint.calls("data").stream()
          .map(TestEndpoint.Call::batchId).distinct().count();
      System.out.printf("FIGURE %s mid-batch: %d batches, %d sent again with the same id%n", name,
          endpoint.calls("data").stream().map(TestEndpoint.Call::batchId).distinct().count(), resent);
      client.close();
    }
  }

  @Test
  void aSocketMovedMidBatchDeliversEveryByteOnce() throws Exception {
    run("moved", (nodes, device) -> {
      String from = nodes.entityNode(device);
      TestNodes.Node target = nodes.nodes().stream().filter(n -> !n.address().toString().equals(from)
          && n != nodes.node(0)).findFirst().orElseThrow();
      HttpProbe.Response r = HttpProbe.send("POST", nodes.node(0).managementUrl() + "/api/sockets/" + device
          + "/migrate?to=" + target.address().getHost().orElseThrow() + ":" + target.address().getPort().orElseThrow(),
          null);
      assertThat(r.status()).as(r.body()).isEqualTo(202);
      await().atMost(Duration.ofSeconds(30)).until(() -> nodes.entityNode(device).equals(target.address().toString()));
    }, "berth.migration.enabled = off\n");
  }

  @Test
  void aSocketWhoseNodeDiesMidBatchDeliversEveryByteOnce() throws Exception {
    run("crashed", (nodes, device) -> nodes.crash(nodes.nodeAt(nodes.entityNode(device))),
        "pekko.coordinated-shutdown.run-by-actor-system-terminate = off\n");
  }
}
