package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.berth.protocol.CloseCode;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Function mappings with real HTTP endpoints served by the test on loopback, real devices over
 * TCP, PostgreSQL: the registry, the events and their signatures, the receive criteria, answers,
 * retries, parking and replay, and the circuit breaker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MappingIT {

  private static final String SECRET = "endpoint-secret-0123456789";
  private static final ObjectMapper JSON = new ObjectMapper();
  private TestNodes nodes;
  private String api;

  @BeforeAll
  void start() {
    nodes = new TestNodes("""
        berth.endpoints.allowed-hosts = ["127.0.0.1"]
        berth.endpoints.breaker.max-failures = 3
        berth.endpoints.breaker.reset-timeout = 30s
        """).start(2);
    api = nodes.node(0).managementUrl() + "/api";
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  private String mapping(String endpoint, String extra) {
    String name = TestNodes.uniqueDevice("m");
    HttpProbe.Response r = HttpProbe.send("PUT", api + "/mappings/" + name,
        "{\"endpoint\":\"" + endpoint + "\",\"secret\":\"" + SECRET + "\"" + (extra.isEmpty() ? "" : "," + extra) + "}");
    assertThat(r.status()).as(r.body()).isEqualTo(200);
    return name;
  }

  private static DeviceClient device(TestNodes nodes, String device, String mapping, DeviceListener listener) {
    return TestNodes.device(device, nodes.node(0).edge(), nodes.node(1).edge()).mapping(mapping).listener(listener)
        .build().connect();
  }

  /** A mapping whose endpoint takes {@code closeDelayMs} to answer a close event (its timeout is longer). */
  private String slowToClose(TestEndpoint endpoint, long closeDelayMs) {
    endpoint.answer(call -> call.event().equals("close") ? new TestEndpoint.Answer(204, null, closeDelayMs)
        : TestEndpoint.Answer.ok());
    return mapping(endpoint.url(), "\"timeoutMs\":20000");
  }

  /**
   * Opens {@code device}'s socket, sends one DATA frame and a CLOSE in one write and leaves;
   * returns once the endpoint got the close event.
   */
  private void leaveRightAfterClose(TestEndpoint endpoint, String device, String mapping, String data)
      throws java.io.IOException {
    try (RawDevice raw = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(20))) {
      raw.send(RawDevice.hello(device, mapping));
      lastWords(raw, (Frame.Welcome) raw.read(), data);
      await().atMost(Duration.ofSeconds(20)).until(() -> !endpoint.calls("close").isEmpty());
    }
  }

  /** One DATA frame and a CLOSE, in one write, as a device that leaves at once sends them. */
  private static void lastWords(RawDevice device, Frame.Welcome w, String data) throws java.io.IOException {
    java.io.ByteArrayOutputStream last = new java.io.ByteArrayOutputStream();
    last.write(io.berth.protocol.FrameCodec.encode(new Frame.Data(w.lastAccepted() + 1, b(data))));
    last.write(io.berth.protocol.FrameCodec.encode(new Frame.Close(CloseCode.NORMAL, "bye")));
    device.write(last.toByteArray());
  }

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static JsonNode json(HttpProbe.Response r) throws Exception {
    return JSON.readTree(r.body());
  }

  // ------------------------------------------------------------------ registry

  @Test
  void mappingsAreValidatedVersionedAndListed() {
    String name = TestNodes.uniqueDevice("reg");
    String url = api + "/mappings/" + name;
    assertThat(HttpProbe.send("PUT", url, "{not json").body()).contains("not valid JSON");
    HttpProbe.Response unknown = HttpProbe.send("PUT", url, "{\"endpoint\":\"builtin:echo\",\"critera\":{}}");
    assertThat(unknown.status()).isEqualTo(400);
    assertThat(unknown.body()).contains("critera: unknown field");
    assertThat(HttpProbe.send("PUT", url, "{\"endpoint\":\"builtin:echo\",\"criteria\":{\"maxBytes\":-1}}").body())
        .contains("criteria.maxBytes");
    assertThat(HttpProbe.send("PUT", url, "{\"endpoint\":\"http://127.0.0.1:1/x\"}").body()).contains("secret");
    assertThat(HttpProbe.send("PUT", url, "{\"endpoint\":\"ftp://127.0.0.1/x\",\"secret\":\"" + SECRET + "\"}").body())
        .contains("http://, https://");
    HttpProbe.Response hostile = HttpProbe.send("PUT", url,
        "{\"endpoint\":\"http://169.254.169.254/latest\",\"secret\":\"" + SECRET + "\"}");
    assertThat(hostile.status()).isEqualTo(400);
    assertThat(hostile.body()).contains("not in berth.endpoints.allowed-hosts");
    assertThat(HttpProbe.send("PUT", url, "{\"endpoint\":\"builtin:nope\"}").body()).contains("unknown built-in");

    HttpProbe.Response created = HttpProbe.send("PUT", url, "{\"endpoint\":\"http://127.0.0.1:9/hook\",\"secret\":\""
        + SECRET + "\",\"events\":[\"data\"],\"criteria\":{\"delimiter\":\"\\n\",\"maxBytes\":1024}}");
    assertThat(created.status()).as(created.body()).isEqualTo(200);
    assertThat(created.body()).contains("\"version\":1").contains("\"hasSecret\":true").doesNotContain(SECRET);
    HttpProbe.Response replaced = HttpProbe.send("PUT", url, "{\"endpoint\":\"builtin:discard\"}");
    assertThat(replaced.body()).contains("\"version\":2");
    assertThat(HttpProbe.get(url).body()).contains("builtin:discard");
    assertThat(HttpProbe.get(api + "/mappings").body()).contains("\"name\":\"" + name + "\"")
        .contains("\"name\":\"echo\"").contains("\"name\":\"discard\"").contains("\"name\":\"log\"")
        .contains("\"name\":\"pair\"");
    assertThat(HttpProbe.send("DELETE", url, null).status()).isEqualTo(204);
    assertThat(HttpProbe.get(url).status()).isEqualTo(404);
  }

  @Test
  void aSocketKeepsTheMappingVersionItOpenedWithUntilItReopens() throws Exception {
    try (TestEndpoint first = new TestEndpoint(SECRET); TestEndpoint second = new TestEndpoint(SECRET)) {
      String name = mapping(first.url(), "\"events\":[\"data\"]");
      String device = TestNodes.uniqueDevice("ver");
      DeviceClient client = device(nodes, device, name, TestNodes.ignore());
      client.send(b("v1"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      HttpProbe.Response v2 = HttpProbe.send("PUT", api + "/mappings/" + name, "{\"endpoint\":\"" + second.url()
          + "\",\"secret\":\"" + SECRET + "\",\"events\":[\"data\"]}");
      assertThat(v2.body()).contains("\"version\":2");
      client.send(b("still-v1"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(first.calls("data")).extracting(TestEndpoint.Call::text).containsExactly("v1", "still-v1");
      assertThat(second.calls()).isEmpty();
      client.close();
      DeviceClient again = device(nodes, device, name, TestNodes.ignore());
      again.send(b("now-v2"));
      assertThat(again.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(second.calls("data")).extracting(TestEndpoint.Call::text).containsExactly("now-v2");
      assertThat(second.calls("data").get(0).body().get("mappingVersion").asLong()).isEqualTo(2);
      again.close();
    }
  }

  @Test
  void aSocketNamingAnUnknownMappingIsRefused() throws Exception {
    try (RawDevice d = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(20))) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("lost"), "no-such-mapping"));
      List<Frame> frames = d.readUntilClosed();
      assertThat(((Frame.Error) frames.get(frames.size() - 1)).code()).isEqualTo(ErrorCode.UNKNOWN_MAPPING.wire);
    }
  }

  // ------------------------------------------------------------------ events

  @Test
  void openDataAndCloseReachTheEndpointSignedWithEveryField() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = mapping(endpoint.url(), "");
      String device = TestNodes.uniqueDevice("ev");
      DeviceClient client = device(nodes, device, mapping, TestNodes.ignore());
      client.send(b("one"));
      client.send(b("two"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      client.close(Duration.ofSeconds(20));
      await().atMost(Duration.ofSeconds(20)).until(() -> !endpoint.calls("close").isEmpty());

      assertThat(endpoint.calls()).allMatch(TestEndpoint.Call::signatureValid);
      TestEndpoint.Call open = endpoint.calls("open").get(0);
      assertThat(open.body().get("socketId").asText()).isEqualTo(device);
      assertThat(open.body().get("deviceId").asText()).isEqualTo(device);
      assertThat(open.body().get("mapping").asText()).isEqualTo(mapping);
      assertThat(open.body().get("mappingVersion").asLong()).isEqualTo(1);
      String data = endpoint.calls("data").stream().map(TestEndpoint.Call::text).reduce("", String::concat);
      assertThat(data).isEqualTo("onetwo");
      TestEndpoint.Call first = endpoint.calls("data").get(0);
      assertThat(first.body().get("seqFrom").asLong()).isEqualTo(1);
      assertThat(endpoint.calls("data").get(endpoint.calls("data").size() - 1).body().get("seqTo").asLong()).isEqualTo(2);
      assertThat(endpoint.calls("close")).hasSize(1);
      // Order: open first, close last.
      assertThat(endpoint.calls().get(0).event()).isEqualTo("open");
      assertThat(endpoint.calls().get(endpoint.calls().size() - 1).event()).isEqualTo("close");
    }
  }

  // ------------------------------------------------------------------ criteria

  @Test
  void aDelimiterSplitAcrossFramesCutsBatchesRightAfterIt() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = mapping(endpoint.url(), "\"events\":[\"data\"],\"criteria\":{\"delimiter\":\"\\r\\n\"}");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("delim"), mapping, TestNodes.ignore());
      for (String part : List.of("temp=2", "1\r", "\nhum=4", "0\r\n", "tail")) {
        client.send(b(part));
      }
      await().atMost(Duration.ofSeconds(20)).until(() -> endpoint.calls("data").size() >= 2);
      assertThat(endpoint.calls("data")).extracting(TestEndpoint.Call::text).containsExactly("temp=21\r\n", "hum=40\r\n");
      // "tail" has no delimiter yet: not acknowledged, not sent.
      assertThat(client.lastAcked()).isEqualTo(4);
      client.close(Duration.ofSeconds(20));
      await().atMost(Duration.ofSeconds(20)).until(() -> endpoint.calls("data").size() >= 3);
      assertThat(endpoint.calls("data").get(2).text()).as("flushed on close").isEqualTo("tail");
    }
  }

  @Test
  void maxDelayFlushesAShortBatchAndMaxBytesSplits() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = mapping(endpoint.url(),
          "\"events\":[\"data\"],\"criteria\":{\"maxBytes\":4,\"maxDelayMs\":300}");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("delay"), mapping, TestNodes.ignore());
      client.send(b("abcdefghij"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(endpoint.calls("data")).extracting(TestEndpoint.Call::text).containsExactly("abcd", "efgh", "ij");
      long gap = endpoint.calls("data").get(2).receivedAtNanos() - endpoint.calls("data").get(1).receivedAtNanos();
      assertThat(Duration.ofNanos(gap)).as("the short rest waited for maxDelayMs").isGreaterThan(Duration.ofMillis(200));
      client.close();
    }
  }

  @Test
  void minBytesWaitsForEnoughData() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = mapping(endpoint.url(), "\"events\":[\"data\"],\"criteria\":{\"minBytes\":10,\"maxDelayMs\":100}");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("min"), mapping, TestNodes.ignore());
      client.send(b("12345"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(1))).as("below minBytes nothing is sent").isFalse();
      assertThat(endpoint.calls("data")).isEmpty();
      client.send(b("67890"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(endpoint.calls("data")).extracting(TestEndpoint.Call::text).containsExactly("1234567890");
      client.close();
    }
  }

  // ------------------------------------------------------------------ answers

  @Test
  void repliesReachTheDeviceAndCloseClosesIt() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> call.text().equals("bye")
          ? TestEndpoint.Answer.json("{\"close\":\"endpoint says bye\"}")
          : TestEndpoint.Answer.json("{\"reply\":\"" + Base64.getEncoder().encodeToString(b("re:" + call.text())) + "\"}"));
      String mapping = mapping(endpoint.url(), "\"events\":[\"data\"]");
      ConcurrentLinkedQueue<String> got = new ConcurrentLinkedQueue<>();
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("reply"), mapping, new DeviceListener() {
        @Override
        public void onData(long seq, byte[] payload) {
          got.add(new String(payload, StandardCharsets.UTF_8));
        }
      });
      client.send(b("ping"));
      await().atMost(Duration.ofSeconds(20)).until(() -> got.contains("re:ping"));
      client.send(b("bye"));
      await().atMost(Duration.ofSeconds(20)).until(() -> client.terminatedCause() != null);
      assertThat(client.terminatedCause()).contains(Integer.toString(CloseCode.CLOSED_BY_ENDPOINT.wire))
          .contains("endpoint says bye");
    }
  }

  /**
   * A device that sends its CLOSE and leaves at once (as an MQTT client's DISCONNECT does) is let
   * go as soon as its session has the CLOSE, not when a slow endpoint has taken the close event:
   * the session is detached at once, its connection (and the device's max-connections slot)
   * freed, and the close still goes on to the endpoint, the data first.
   */
  @Test
  void aDeviceThatLeavesRightAfterItsCloseIsLetGoWhileTheEndpointTakesTheClose() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = slowToClose(endpoint, 10_000);
      String device = TestNodes.uniqueDevice("leaver");
      String status = nodes.node(0).managementUrl() + "/api/sockets/" + device;
      leaveRightAfterClose(endpoint, device, mapping, "last words");
      long left = System.nanoTime();
      await().atMost(Duration.ofSeconds(20)).untilAsserted(() ->
          assertThat(HttpProbe.get(status).body()).contains("\"state\":\"detached\""));
      assertThat(Duration.ofNanos(System.nanoTime() - left))
          .as("let go before the endpoint answered the close (10 s)").isLessThan(Duration.ofSeconds(8));
      await().atMost(Duration.ofSeconds(40)).untilAsserted(() ->
          assertThat(HttpProbe.get(status).body()).contains("\"state\":\"closed\""));
      List<TestEndpoint.Call> calls = endpoint.calls().stream()
          .filter(c -> c.body().get("socketId").asText().equals(device)).toList();
      assertThat(calls).extracting(TestEndpoint.Call::event).containsExactly("open", "data", "close");
      assertThat(calls.get(1).text()).isEqualTo("last words");
    }
  }

  /**
   * A device that reconnects while its endpoint still takes the close of its last session gets
   * the next session once the close is written: its HELLO is held meanwhile, and the close does
   * not end the new connection's session.
   */
  @Test
  void aConnectionOpenedWhileTheCloseIsUnderWayGetsTheNextSession() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = slowToClose(endpoint, 4_000);
      String device = TestNodes.uniqueDevice("again");
      leaveRightAfterClose(endpoint, device, mapping, "first");
      try (RawDevice second = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(30))) {
        second.send(RawDevice.hello(device, mapping));
        Frame.Welcome w = (Frame.Welcome) second.read();
        assertThat(w.lastAccepted()).as("numbering goes on after the closed session").isEqualTo(1);
        second.send(new Frame.Data(2, b("second")));
        assertThat(second.read()).isEqualTo(new Frame.Ack(2));
        assertThat(HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device).body())
            .contains("\"state\":\"open\"");
        List<String> events = endpoint.calls().stream()
            .filter(c -> c.body().get("socketId").asText().equals(device)).map(TestEndpoint.Call::event).toList();
        assertThat(events).containsExactly("open", "data", "close", "open", "data");
      }
    }
  }

  /**
   * An operator who closes a socket while its device's close is still going to the endpoint ends
   * both at once, and the socket opens again at once: nothing of the overtaken close holds the next
   * open, and its endpoint call, answered late, does not disturb the new session.
   */
  @Test
  void anOperatorCloseOvertakingAnEndpointCloseLeavesTheSocketFreeToOpen() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = slowToClose(endpoint, 6_000);
      String device = TestNodes.uniqueDevice("overtaken");
      leaveRightAfterClose(endpoint, device, mapping, "first");
      assertThat(HttpProbe.send("DELETE", api + "/sockets/" + device, null).status()).isEqualTo(200);
      try (RawDevice second = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(20))) {
        long hello = System.nanoTime();
        second.send(RawDevice.hello(device, mapping));
        assertThat(second.read()).isInstanceOf(Frame.Welcome.class);
        assertThat(Duration.ofNanos(System.nanoTime() - hello)).as("welcomed without waiting for the old close")
            .isLessThan(Duration.ofSeconds(4));
        second.send(new Frame.Data(2, b("second")));
        assertThat(second.read()).isEqualTo(new Frame.Ack(2));
        assertThat(HttpProbe.get(api + "/sockets/" + device).body()).contains("\"state\":\"open\"");
      }
    }
  }

  /**
   * What a device sends before its endpoint answered open waits for the answer (which may name a
   * peer); a CLOSE sent meanwhile still delivers it to the endpoint, then the close event.
   */
  @Test
  void framesSentBeforeTheOpenIsAnsweredReachTheEndpointEvenIfTheDeviceClosesMeanwhile() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> call.event().equals("open") ? new TestEndpoint.Answer(204, null, 3_000)
          : TestEndpoint.Answer.ok());
      String mapping = mapping(endpoint.url(), "");
      String device = TestNodes.uniqueDevice("early");
      DeviceClient client = device(nodes, device, mapping, TestNodes.ignore());
      for (String line : List.of("one\n", "two\n", "three\n")) {
        client.send(b(line));
      }
      assertThat(client.lastAcked()).as("held until the endpoint answered open").isZero();
      client.close(Duration.ofSeconds(30));
      assertThat(client.lastAcked()).isEqualTo(3);
      List<TestEndpoint.Call> calls = endpoint.calls().stream()
          .filter(c -> c.body().get("socketId").asText().equals(device)).toList();
      assertThat(calls.get(0).event()).isEqualTo("open");
      assertThat(calls.get(calls.size() - 1).event()).isEqualTo("close");
      assertThat(calls.subList(1, calls.size() - 1)).extracting(TestEndpoint.Call::event).containsOnly("data");
      assertThat(calls.subList(1, calls.size() - 1).stream().map(TestEndpoint.Call::text).reduce("", String::concat))
          .isEqualTo("one\ntwo\nthree\n");
    }
  }

  // ------------------------------------------------------------------ failures

  @Test
  void twoFailuresThenSuccessDeliverOnceAndAcknowledgeOnce() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      AtomicInteger attempts = new AtomicInteger();
      endpoint.answer(call -> attempts.incrementAndGet() <= 2 ? TestEndpoint.Answer.status(500) : TestEndpoint.Answer.ok());
      String mapping = mapping(endpoint.url(),
          "\"events\":[\"data\"],\"retry\":{\"maxAttempts\":5,\"backoffBaseMs\":50,\"backoffMaxMs\":200}");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("retry"), mapping, TestNodes.ignore());
      client.send(b("payload"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(endpoint.calls("data")).hasSize(3).extracting(TestEndpoint.Call::batchId).containsOnly(
          endpoint.calls("data").get(0).batchId());
      assertThat(HttpProbe.get(api + "/parked?socket=" + client.welcome().socketId()).body()).isEqualTo("[]");
      client.close();
    }
  }

  @Test
  void aBatchThatKeepsFailingIsParkedAndCanBeReplayed() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.status(503));
      // Two attempts: fewer failures than open the host's breaker (max-failures 3), whichever node
      // holds the socket, so that the replay below reaches the endpoint.
      String mapping = mapping(endpoint.url(),
          "\"events\":[\"data\"],\"retry\":{\"maxAttempts\":2,\"backoffBaseMs\":50,\"backoffMaxMs\":100}");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("park"), mapping, TestNodes.ignore());
      client.send(b("precious"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).as("the socket goes on").isTrue();
      assertThat(endpoint.calls("data")).hasSize(2);
      String parked = HttpProbe.get(api + "/parked?socket=" + client.welcome().socketId()).body();
      assertThat(parked).contains("gave up after 2 attempts").contains("HTTP 503")
          .contains(Base64.getEncoder().encodeToString(b("precious")));
      String id = parked.replaceAll(".*?\"id\":\"([^\"]+)\".*", "$1");

      endpoint.answer(call -> TestEndpoint.Answer.ok());
      HttpProbe.Response replay = HttpProbe.send("POST", api + "/parked/" + id + "/replay", null);
      assertThat(replay.status()).as(replay.body()).isEqualTo(200);
      assertThat(endpoint.calls("data")).hasSize(3);
      assertThat(endpoint.calls("data").get(2).text()).isEqualTo("precious");
      assertThat(endpoint.calls("data").get(2).batchId()).isEqualTo(endpoint.calls("data").get(0).batchId());
      assertThat(HttpProbe.get(api + "/parked/" + id).body()).contains("replayedAt");
      assertThat(HttpProbe.send("DELETE", api + "/parked/" + id, null).status()).isEqualTo(204);
      client.close();
    }
  }

  @Test
  void aReplaySendsTheEndpointsReplyDownTheSocketAndSaysWhyWhenItCannotBeDone() throws Exception {
    String unknown = java.util.UUID.randomUUID().toString();
    HttpProbe.Response none = HttpProbe.send("POST", api + "/parked/" + unknown + "/replay", null);
    assertThat(none.status()).isEqualTo(404);
    assertThat(json(none)).isEqualTo(JSON.readTree("{\"error\":\"no parked batch '" + unknown + "'\"}"));
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.status(422));
      String mapping = mapping(endpoint.url(), "\"events\":[\"data\"]");
      ConcurrentLinkedQueue<String> got = new ConcurrentLinkedQueue<>();
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("replayed"), mapping, new DeviceListener() {
        @Override
        public void onData(long seq, byte[] payload) {
          got.add(new String(payload, StandardCharsets.UTF_8));
        }
      });
      client.send(b("twice"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      String parked = HttpProbe.get(api + "/parked?socket=" + client.welcome().socketId()).body();
      String id = parked.replaceAll(".*?\"id\":\"([^\"]+)\".*", "$1");

      HttpProbe.Response refused = HttpProbe.send("POST", api + "/parked/" + id + "/replay", null);
      assertThat(refused.status()).isEqualTo(502);
      assertThat(json(refused)).isEqualTo(JSON.readTree(
          "{\"error\":\"the endpoint did not take the batch: HTTP 422: {\\\"error\\\":\\\"test\\\"}\"}"));
      assertThat(HttpProbe.get(api + "/parked/" + id).body()).doesNotContain("replayedAt");

      endpoint.answer(call -> TestEndpoint.Answer.json(
          "{\"reply\":\"" + Base64.getEncoder().encodeToString(b("re:" + call.text())) + "\"}"));
      HttpProbe.Response replayed = HttpProbe.send("POST", api + "/parked/" + id + "/replay", null);
      assertThat(replayed.status()).as(replayed.body()).isEqualTo(200);
      assertThat(json(replayed)).isEqualTo(JSON.readTree(
          "{\"id\":\"" + id + "\",\"replayed\":true,\"status\":200}"));
      await().atMost(Duration.ofSeconds(20)).until(() -> got.contains("re:twice"));
      assertThat(HttpProbe.get(api + "/parked/" + id).body()).contains("replayedAt");

      assertThat(HttpProbe.send("DELETE", api + "/mappings/" + mapping, null).status()).isEqualTo(204);
      HttpProbe.Response gone = HttpProbe.send("POST", api + "/parked/" + id + "/replay", null);
      assertThat(gone.status()).isEqualTo(502);
      assertThat(json(gone)).isEqualTo(JSON.readTree(
          "{\"error\":\"mapping '" + mapping + "' no longer has an HTTP endpoint\"}"));
      client.close();
    }
  }

  @Test
  void aRefusalIsParkedAtOnce() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.status(422));
      String mapping = mapping(endpoint.url(), "\"events\":[\"data\"]");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("refuse"), mapping, TestNodes.ignore());
      client.send(b("bad"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(endpoint.calls("data")).hasSize(1);
      assertThat(HttpProbe.get(api + "/parked?socket=" + client.welcome().socketId()).body())
          .contains("refused: HTTP 422").contains("\"attempts\":1");
      client.close();
    }
  }

  @Test
  void aSlowEndpointTimesOutAndIsRetried() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      AtomicInteger n = new AtomicInteger();
      endpoint.answer(call -> n.incrementAndGet() == 1 ? new TestEndpoint.Answer(204, null, 1500) : TestEndpoint.Answer.ok());
      String mapping = mapping(endpoint.url(),
          "\"events\":[\"data\"],\"timeoutMs\":300,\"retry\":{\"maxAttempts\":4,\"backoffBaseMs\":50,\"backoffMaxMs\":100}");
      DeviceClient client = device(nodes, TestNodes.uniqueDevice("slow"), mapping, TestNodes.ignore());
      client.send(b("late"));
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      assertThat(endpoint.calls("data")).hasSizeGreaterThanOrEqualTo(2);
      assertThat(HttpProbe.get(api + "/parked?socket=" + client.welcome().socketId()).body()).isEqualTo("[]");
      client.close();
    }
  }

  @Test
  void aDeadEndpointOpensItsBreakerWhileOtherMappingsKeepTheirThroughput() throws Exception {
    int deadPort = TestNodes.freePort();
    String dead = mapping("http://127.0.0.1:" + deadPort + "/hook",
        "\"events\":[\"data\"],\"timeoutMs\":1000,\"retry\":{\"maxAttempts\":4,\"backoffBaseMs\":50,\"backoffMaxMs\":100}");
    try (TestEndpoint healthy = new TestEndpoint(SECRET)) {
      String alive = mapping(healthy.url(), "\"events\":[\"data\"]");
      DeviceClient stuck = device(nodes, TestNodes.uniqueDevice("dead"), dead, TestNodes.ignore());
      for (int i = 0; i < 5; i++) {
        stuck.send(b("lost-" + i));
      }
      DeviceClient fine = device(nodes, TestNodes.uniqueDevice("fine"), alive, TestNodes.ignore());
      long started = System.nanoTime();
      for (int i = 0; i < 300; i++) {
        fine.send(b("ok-" + i));
      }
      assertThat(fine.awaitAllAcked(Duration.ofSeconds(30))).isTrue();
      System.out.printf("FIGURE healthy mapping next to a dead one: 300 frames acked in %.2f s%n",
          (System.nanoTime() - started) / 1e9);
      String socket = stuck.welcome().socketId();
      await().atMost(Duration.ofSeconds(60)).until(() ->
          HttpProbe.get(api + "/parked?socket=" + socket).body().contains("circuit breaker open"));
      assertThat(stuck.awaitAllAcked(Duration.ofSeconds(60))).as("parked batches are acknowledged").isTrue();
      stuck.close();
      fine.close();
    }
  }

  // ------------------------------------------------------------------ push and close from outside

  @Test
  void operatorsPushDataDownAnOpenSocketAndCloseIt() throws Exception {
    ConcurrentLinkedQueue<String> got = new ConcurrentLinkedQueue<>();
    String device = TestNodes.uniqueDevice("pushed");
    DeviceClient client = device(nodes, device, "discard", new DeviceListener() {
      @Override
      public void onData(long seq, byte[] payload) {
        got.add(new String(payload, StandardCharsets.UTF_8));
      }
    });
    HttpProbe.Response pushed = HttpProbe.send("POST", api + "/sockets/" + device + "/messages", "firmware-update");
    assertThat(pushed.status()).as(pushed.body()).isEqualTo(202);
    assertThat(json(pushed)).isEqualTo(JSON.readTree("{\"socketId\":\"" + device + "\",\"seq\":1}"));
    await().atMost(Duration.ofSeconds(20)).until(() -> got.contains("firmware-update"));
    HttpProbe.Response absent = HttpProbe.send("POST", api + "/sockets/" + TestNodes.uniqueDevice("absent")
        + "/messages", "x");
    assertThat(absent.status()).isEqualTo(404);
    assertThat(json(absent)).isEqualTo(JSON.readTree("{\"error\":\"socket is not open\"}"));

    HttpProbe.Response closed = HttpProbe.send("DELETE", api + "/sockets/" + device, null);
    assertThat(closed.status()).isEqualTo(200);
    assertThat(json(closed)).isEqualTo(JSON.readTree("{\"socketId\":\"" + device + "\",\"closed\":true}"));
    await().atMost(Duration.ofSeconds(20)).until(() -> client.terminatedCause() != null);
    assertThat(client.terminatedCause()).contains(Integer.toString(CloseCode.CLOSED_BY_OPERATOR.wire));
    assertThat(HttpProbe.get(api + "/sockets/" + device).body()).contains("\"state\":\"closed\"");
    assertThat(HttpProbe.send("POST", api + "/sockets/" + device + "/messages", "late").status()).isEqualTo(404);
    HttpProbe.Response again = HttpProbe.send("DELETE", api + "/sockets/" + device, null);
    assertThat(again.status()).isEqualTo(404);
    assertThat(json(again)).isEqualTo(JSON.readTree("{\"error\":\"socket '" + device + "' is not open\"}"));
  }

  @Test
  void anOperatorCloseFlushesBufferedDataAndSendsTheCloseEvent() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String mapping = mapping(endpoint.url(), "\"criteria\":{\"minBytes\":1000}");
      String device = TestNodes.uniqueDevice("opclose");
      DeviceClient client = device(nodes, device, mapping, TestNodes.ignore());
      client.send(b("short"));
      await().atMost(Duration.ofSeconds(20)).until(() -> !endpoint.calls("open").isEmpty());
      assertThat(HttpProbe.send("DELETE", api + "/sockets/" + device, null).status()).isEqualTo(200);
      assertThat(endpoint.calls("data")).extracting(TestEndpoint.Call::text).containsExactly("short");
      assertThat(endpoint.calls("close")).hasSize(1);
      await().atMost(Duration.ofSeconds(20)).until(() -> client.terminatedCause() != null);
    }
  }
}
