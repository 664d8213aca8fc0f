package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /api/sockets} on two nodes in this JVM: every socket a device opened is listed with
 * its state wherever its entity lives, filters narrow it, pages follow each other in socket id
 * order, and a wrong filter is refused. Also the socket view's {@code downlinkDiscarded}.
 */
class SocketsIT {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static RawDevice open(TestNodes.Node node, String device, String name) throws Exception {
    RawDevice d = new RawDevice(node.edge(), Duration.ofSeconds(10));
    d.send(new Frame.Hello(FrameCodec.VERSION, false, 0, device, RawDevice.token(device, Instant.now().plusSeconds(3600)),
        name, "discard"));
    assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
    return d;
  }

  private static JsonNode get(TestNodes.Node node, String pathAndQuery) throws Exception {
    HttpProbe.Response r = HttpProbe.get(node.managementUrl() + pathAndQuery);
    assertThat(r.status()).as("GET %s: %s", pathAndQuery, r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  /** The listed sockets by id with their state. */
  private static Map<String, JsonNode> byId(JsonNode page) {
    Map<String, JsonNode> out = new HashMap<>();
    for (JsonNode s : page.get("sockets")) {
      out.put(s.get("socketId").asText(), s);
    }
    return out;
  }

  private static String hostPort(String address) {
    return address.substring(address.indexOf('@') + 1);
  }

  @Test
  void socketsAreListedWithTheirStateAndFilteredAndPagedInIdOrder() throws Exception {
    try (TestNodes nodes = new TestNodes("berth.sockets.flush-interval = 100ms\n").start(2)) {
      String device = TestNodes.uniqueDevice("listed");
      String open = device + "/a";
      String detached = device + "/b";
      String closed = device + "/c";
      try (RawDevice a = open(nodes.node(0), device, "a")) {
        open(nodes.node(1), device, "b").close(); // the connection drops without a CLOSE
        RawDevice c = open(nodes.node(1), device, "c");
        // A message the device never acknowledges: the close discards it.
        HttpProbe.Response sent = HttpProbe.send("POST", nodes.node(0).managementUrl() + "/api/sockets/"
            + URLEncoder.encode(closed, StandardCharsets.UTF_8) + "/messages", "unread");
        assertThat(sent.status()).as(sent.body()).isEqualTo(202);
        assertThat(c.read()).isInstanceOf(Frame.Data.class);
        HttpProbe.Response deleted = HttpProbe.send("DELETE", nodes.node(1).managementUrl() + "/api/sockets/"
            + URLEncoder.encode(closed, StandardCharsets.UTF_8), null);
        assertThat(deleted.status()).as(deleted.body()).isEqualTo(200);
        c.close();

        Map<String, JsonNode>[] listed = new Map[1];
        await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
          listed[0] = byId(get(nodes.node(1), "/api/sockets?device=" + device));
          assertThat(listed[0]).containsOnlyKeys(open, detached, closed);
          assertThat(listed[0].get(open).get("state").asText()).isEqualTo("open");
          assertThat(listed[0].get(detached).get("state").asText()).isEqualTo("detached");
          assertThat(listed[0].get(closed).get("state").asText()).isEqualTo("closed");
        });
        JsonNode row = listed[0].get(open);
        assertThat(row.get("deviceId").asText()).isEqualTo(device);
        assertThat(row.get("mapping").asText()).isEqualTo("discard");
        assertThat(row.get("edge").asText()).isEqualTo(nodes.node(0).address().toString());
        String home = nodes.entityNode(open);
        assertThat(row.get("node").asText()).as("the node its shard runs on").isEqualTo(home);

        // Filters: state, mapping, node (as host:port), edge; one that matches nothing is an empty page.
        assertThat(byId(get(nodes.node(0), "/api/sockets?device=" + device + "&state=detached")))
            .containsOnlyKeys(detached);
        assertThat(byId(get(nodes.node(0), "/api/sockets?device=" + device + "&mapping=discard")))
            .containsOnlyKeys(open, detached, closed);
        assertThat(byId(get(nodes.node(0), "/api/sockets?device=" + device + "&node=" + hostPort(home))))
            .containsKey(open);
        String other = nodes.nodes().stream().map(n -> n.address().toString()).filter(n -> !n.equals(home))
            .findFirst().orElseThrow();
        assertThat(byId(get(nodes.node(0), "/api/sockets?device=" + device + "&node=" + hostPort(other))))
            .doesNotContainKey(open);
        assertThat(byId(get(nodes.node(0), "/api/sockets?device=" + device + "&edge="
            + hostPort(nodes.node(0).address().toString()) + "&state=open"))).containsOnlyKeys(open);
        JsonNode none = get(nodes.node(0), "/api/sockets?device=" + device + "&mapping=no-such-mapping");
        assertThat(none.get("sockets")).isEmpty();
        assertThat(none.has("next")).isFalse();

        // Pages of one: each follows the last, in id order, and the last says there is no next.
        List<String> paged = new ArrayList<>();
        String after = null;
        for (int i = 0; i < 5; i++) {
          JsonNode page = get(nodes.node(0), "/api/sockets?device=" + device + "&limit=1"
              + (after == null ? "" : "&after=" + URLEncoder.encode(after, StandardCharsets.UTF_8)));
          for (JsonNode s : page.get("sockets")) {
            paged.add(s.get("socketId").asText());
          }
          if (!page.has("next")) {
            break;
          }
          after = page.get("next").asText();
        }
        assertThat(paged).containsExactly(open, detached, closed);

        // The closed socket counted the frame its device never acknowledged.
        JsonNode status = get(nodes.node(0), "/api/sockets/" + URLEncoder.encode(closed, StandardCharsets.UTF_8));
        assertThat(status.get("state").asText()).isEqualTo("closed");
        assertThat(status.get("counters").get("downlinkDiscarded").asLong()).isEqualTo(1);
        assertThat(status.get("counters").has("discarded")).isFalse();
      }
    }
  }

  @Test
  void aWrongFilterIsRefusedWithWhatWasExpected() throws Exception {
    try (TestNodes nodes = new TestNodes().start(1)) {
      String base = nodes.node(0).managementUrl() + "/api/sockets";
      Map<String, String> refused = Map.of(
          "?state=asleep", "state must be open, detached or closed",
          "?limit=0", "limit must be a number between 1 and 1000",
          "?limit=5000", "limit must be a number between 1 and 1000",
          "?limit=many", "limit must be a number",
          "?node=somewhere", "node: host:port",
          "?device=a%20b", "device: a device id",
          "?stat=open", "unknown parameter 'stat'");
      refused.forEach((query, message) -> {
        HttpProbe.Response r = HttpProbe.get(base + query);
        assertThat(r.status()).as("%s: %s", query, r.body()).isEqualTo(400);
        assertThat(r.body()).as(query).contains(message);
      });
      HttpProbe.Response ok = HttpProbe.get(base + "?limit=1000&state=closed");
      assertThat(ok.status()).as(ok.body()).isEqualTo(200);
    }
  }
}
