package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.berth.protocol.Frame;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Behind a balancer that speaks the PROXY protocol, the device's own address is the one the
 * socket's status shows (docs/edge.md#proxy-protocol), on one node with PostgreSQL and real TCP.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ProxyProtocolIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration READ = Duration.ofSeconds(20);

  private TestNodes nodes;

  @BeforeAll
  void start() {
    nodes = new TestNodes("berth.edge.proxy-protocol = on").start(1);
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  @Test
  void theProxyHeadersSourceIsTheSocketsDeviceAddressAndStaysAfterTheDeviceLeft() throws Exception {
    String device = TestNodes.uniqueDevice("behind-nlb");
    try (RawDevice d = openBehind("PROXY TCP4 203.0.113.7 192.0.2.1 50114 7001", device)) {
      JsonNode open = status(device);
      assertThat(open.get("state").asText()).isEqualTo("open");
      assertThat(open.get("deviceAddress").asText()).isEqualTo("203.0.113.7:50114");
    }
    // Detached, the socket still says where its device last came from.
    await().atMost(READ).until(() -> !"open".equals(status(device).get("state").asText()));
    assertThat(status(device).get("deviceAddress").asText()).isEqualTo("203.0.113.7:50114");
  }

  @Test
  void anIpv6SourceIsShownInBrackets() throws Exception {
    String device = TestNodes.uniqueDevice("behind-haproxy");
    try (RawDevice d = openBehind("PROXY TCP6 2001:db8::7 2001:db8::1 4711 7001", device)) {
      assertThat(status(device).get("deviceAddress").asText()).isEqualTo("[2001:db8::7]:4711");
    }
  }

  /** A device behind a balancer: its PROXY v1 header, then HELLO, answered with WELCOME. */
  private RawDevice openBehind(String proxyHeader, String device) throws IOException {
    RawDevice d = new RawDevice(nodes.node(0).edge(), READ);
    d.write((proxyHeader + "\r\n").getBytes(StandardCharsets.US_ASCII));
    d.send(RawDevice.hello(device, "echo"));
    assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
    return d;
  }

  private JsonNode status(String socketId) throws IOException {
    HttpProbe.Response r = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + socketId);
    assertThat(r.status()).as(r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }
}
