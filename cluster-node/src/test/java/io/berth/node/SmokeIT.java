package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.DeviceClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;

class SmokeIT {

  @Test
  void echoesThroughOneNode() throws Exception {
    try (TestNodes nodes = new TestNodes().start(1)) {
      ConcurrentLinkedQueue<String> got = new ConcurrentLinkedQueue<>();
      String device = TestNodes.uniqueDevice("smoke");
      DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).mapping("echo")
          .listener(TestNodes.collecting(got)).build().connect();
      for (int i = 0; i < 200; i++) {
        client.send(("m" + i).getBytes(StandardCharsets.UTF_8));
      }
      assertThat(client.awaitAllAcked(Duration.ofSeconds(30))).isTrue();
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> got.size() >= 200);
      assertThat(got).hasSize(200);
      HttpProbe.Response r = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device);
      System.out.println(r);
      assertThat(r.status()).isEqualTo(200);
      client.close();
    }
  }
}
