package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.CloseCode;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The runnable example of docs/ENDPOINTS.md works as the document says. */
class EndpointExampleIT {

  private static final Path EXAMPLE = Path.of("..", "docs", "examples", "endpoint.py");
  private static final String SECRET = "change-me-16-chars-or-more";

  @Test
  void theExampleEndpointAnswersInUpperCaseAndClosesOnBye() throws Exception {
    Assumptions.assumeTrue(new File("/usr/bin/python3").canExecute() || new File("/usr/local/bin/python3").canExecute()
        || System.getenv("PATH").contains("python"), "python3 is needed to run the example");
    int port = TestNodes.freePort();
    Path log = Files.createTempFile("endpoint", ".log");
    Process endpoint = new ProcessBuilder("python3", EXAMPLE.toString(), "--port", Integer.toString(port),
        "--secret", SECRET).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    try (TestNodes nodes = new TestNodes("berth.endpoints.allowed-hosts = [\"127.0.0.1\"]").start(1)) {
      await().atMost(Duration.ofSeconds(20)).until(() -> Files.readString(log).contains("listening"));
      String mapping = TestNodes.uniqueDevice("shout");
      HttpProbe.Response put = HttpProbe.send("PUT", nodes.node(0).managementUrl() + "/api/mappings/" + mapping,
          "{\"endpoint\":\"http://127.0.0.1:" + port + "/hook\",\"secret\":\"" + SECRET
              + "\",\"criteria\":{\"maxFrames\":1}}");
      assertThat(put.status()).as(put.body()).isEqualTo(200);
      ConcurrentLinkedQueue<String> got = new ConcurrentLinkedQueue<>();
      DeviceClient client = TestNodes.device(TestNodes.uniqueDevice("d"), nodes.node(0).edge()).mapping(mapping)
          .listener(new DeviceListener() {
            @Override
            public void onData(long seq, byte[] payload) {
              got.add(new String(payload, StandardCharsets.UTF_8));
            }
          }).build().connect();
      client.send("hello".getBytes(StandardCharsets.UTF_8));
      client.send("world".getBytes(StandardCharsets.UTF_8));
      await().atMost(Duration.ofSeconds(20)).until(() -> got.size() >= 2);
      assertThat(got).containsExactly("HELLO", "WORLD");
      client.send("bye".getBytes(StandardCharsets.UTF_8));
      await().atMost(Duration.ofSeconds(20)).until(() -> client.terminatedCause() != null);
      assertThat(client.terminatedCause()).contains(Integer.toString(CloseCode.CLOSED_BY_ENDPOINT.wire))
          .contains("goodbye");
      assertThat(Files.readString(log)).contains("open ").contains("data ");
    } finally {
      endpoint.destroy();
    }
  }
}
