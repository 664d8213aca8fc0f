package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.CloseCode;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.Frame;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A device's connections as the device sees them: resumed after drops, taken over, large frames
 * to a remote socket session, frames just before a CLOSE, the operator view.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConnectionActorIT {

  private TestNodes nodes;

  @BeforeAll
  void start() {
    nodes = new TestNodes().start(2);
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  @Test
  void droppedConnectionsAreResumedWithoutLossOrDuplicates() {
    String device = TestNodes.uniqueDevice("flaky");
    int frames = 5_000;
    try (EchoStreamer streamer = new EchoStreamer(
        TestNodes.device(device, nodes.node(0).edge(), nodes.node(1).edge()), frames, Duration.ofMillis(1)).start()) {
      for (int drop = 1; drop <= 3; drop++) {
        int target = drop * 1_000;
        await().atMost(Duration.ofMinutes(1)).until(() -> streamer.distinctEchoed() >= target);
        streamer.client().dropConnection();
      }
      streamer.awaitComplete(Duration.ofMinutes(2));
      assertThat(streamer.distinctEchoed()).isEqualTo(frames);
      assertThat(streamer.duplicateEchoes()).isZero();
      assertThat(streamer.client().connectionCount()).isGreaterThanOrEqualTo(4);
    }
    HttpProbe.Response status = HttpProbe.get(nodes.node(1).managementUrl() + "/api/sockets/" + device);
    assertThat(status.status()).isEqualTo(200);
    assertThat(status.body()).contains("\"framesIn\":" + frames).contains("\"framesOut\":" + frames);
  }

  @Test
  void aSecondConnectionTakesTheSocketOverAndTheFirstIsToldReplaced() throws Exception {
    String device = TestNodes.uniqueDevice("twice");
    DeviceClient first = TestNodes.device(device, nodes.node(0).edge()).socketName("telemetry").build().connect();
    first.send(new byte[] {1});
    assertThat(first.awaitAllAcked(Duration.ofSeconds(20))).isTrue();

    try (RawDevice second = new RawDevice(nodes.node(1).edge(), Duration.ofSeconds(20))) {
      second.send(new Frame.Hello(1, false, 0, device,
          RawDevice.token(device, java.time.Instant.now().plusSeconds(60)), "telemetry", "echo"));
      Frame.Welcome w = (Frame.Welcome) second.read();
      assertThat(w.socketId()).isEqualTo(device + "/telemetry");
      assertThat(w.lastAccepted()).as("the session continues").isEqualTo(1);
      await().atMost(Duration.ofSeconds(20)).until(() -> first.terminatedCause() != null);
      assertThat(first.terminatedCause()).contains(Integer.toString(CloseCode.REPLACED.wire));
      assertThat(first.connectionCount()).as("a replaced client does not fight back").isEqualTo(1);
    }
  }

  @Test
  void largeFramesCrossToARemoteEntityAndBackExactlyOnce() throws InterruptedException {
    String device = nodes.deviceNotOn(nodes.node(0), "large");
    java.util.concurrent.atomic.AtomicInteger echoed = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicLong lastSeq = new java.util.concurrent.atomic.AtomicLong();
    java.util.concurrent.atomic.AtomicBoolean inOrder = new java.util.concurrent.atomic.AtomicBoolean(true);
    DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).mapping("echo").window(64)
        .listener(new io.berth.protocol.DeviceListener() {
          @Override
          public void onData(long seq, byte[] payload) {
            if (payload.length != 60_000 || seq != lastSeq.get() + 1) {
              inOrder.set(false);
            }
            lastSeq.set(seq);
            echoed.incrementAndGet();
          }
        }).build().connect();
    try {
      for (int i = 0; i < 300; i++) {
        client.send(new byte[60_000]);
      }
      assertThat(client.awaitAllAcked(Duration.ofMinutes(2))).isTrue();
      await().atMost(Duration.ofMinutes(1)).until(() -> echoed.get() >= 300);
      assertThat(echoed.get()).isEqualTo(300);
      assertThat(inOrder.get()).isTrue();
    } finally {
      client.close();
    }
  }

  @Test
  void framesSentJustBeforeACloseAreDeliveredBeforeTheSessionEnds() throws Exception {
    String device = TestNodes.uniqueDevice("hasty");
    try (RawDevice raw = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(20))) {
      raw.send(RawDevice.hello(device, "discard"));
      Frame.Welcome w = (Frame.Welcome) raw.read();
      java.io.ByteArrayOutputStream burst = new java.io.ByteArrayOutputStream();
      for (long seq = w.lastAccepted() + 1; seq <= w.lastAccepted() + 2_000; seq++) {
        burst.write(io.berth.protocol.FrameCodec.encode(new Frame.Data(seq, new byte[100])));
      }
      burst.write(io.berth.protocol.FrameCodec.encode(new Frame.Close(CloseCode.NORMAL, "done")));
      raw.write(burst.toByteArray());
      List<Frame> frames = raw.readUntilClosed();
      assertThat(frames).last().isEqualTo(new Frame.Close(CloseCode.NORMAL.wire, "session closed"));
      assertThat(frames).contains(new Frame.Ack(2_000));
    }
    HttpProbe.Response status = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device);
    assertThat(status.body()).contains("\"framesIn\":2000").contains("\"state\":\"closed\"");
  }

  /**
   * The edge gathers a device's acknowledgements short of a quarter of the downlink window
   * (Downlink#reportDue): what gathered reaches the session with the connection's next tick, or
   * with its end, never later.
   */
  @Test
  void anAcknowledgementShortOfABatchReachesTheSessionWithinATickAndAtTheEnd() throws Exception {
    String device = TestNodes.uniqueDevice("partial-ack");
    long third;
    try (RawDevice raw = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(20))) {
      raw.send(RawDevice.hello(device, "echo"));
      Frame.Welcome w = (Frame.Welcome) raw.read();
      third = echoTen(raw, w).get(2);
      raw.send(new Frame.Ack(third));
      await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(nodes.status(device).downlinkAcked())
          .as("seven echoes are still unacknowledged").isEqualTo(third));
    }
    try (RawDevice raw = new RawDevice(nodes.node(1).edge(), Duration.ofSeconds(20))) {
      raw.send(RawDevice.hello(device, "echo"));
      Frame.Welcome w = (Frame.Welcome) raw.read();
      // The session pushes the seven echoes left unacknowledged first, then the new ones.
      long fifth = echoTen(raw, w).get(4);
      // Acknowledged and gone at once, well within a tick: the end carries it.
      raw.send(new Frame.Ack(fifth));
      raw.socket().shutdownOutput();
      raw.readUntilClosed();
      await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
          assertThat(nodes.status(device).downlinkAcked()).isEqualTo(fifth));
    }
  }

  /** Sends ten DATA frames after the welcome and returns the sequence numbers of the first ten DATA it reads. */
  private static List<Long> echoTen(RawDevice raw, Frame.Welcome w) throws java.io.IOException {
    for (long seq = w.lastAccepted() + 1; seq <= w.lastAccepted() + 10; seq++) {
      raw.send(new Frame.Data(seq, new byte[] {(byte) seq}));
    }
    List<Long> echoes = new java.util.ArrayList<>();
    while (echoes.size() < 10) {
      if (raw.read() instanceof Frame.Data data) {
        echoes.add(data.seq());
      }
    }
    return echoes;
  }

  @Test
  void theOperatorRouteAnswers404ForUnknownAnd400ForInvalidSocketIds() {
    String base = nodes.node(0).managementUrl() + "/api/sockets/";
    HttpProbe.Response unknown = HttpProbe.get(base + TestNodes.uniqueDevice("never"));
    assertThat(unknown.status()).isEqualTo(404);
    assertThat(unknown.body()).contains("\"error\"");
    assertThat(HttpProbe.get(base + "bad%20id").status()).isEqualTo(400);
    assertThat(HttpProbe.get(nodes.node(0).managementUrl() + "/alive").status()).isEqualTo(200);
    assertThat(HttpProbe.get(nodes.node(0).managementUrl() + "/cluster/members").body()).contains("\"status\":\"Up\"");
  }

  @Test
  void socketsWithANameAreAddressableWithASlashOrItsEncoding() throws Exception {
    String device = TestNodes.uniqueDevice("named");
    DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).socketName("a.b").mapping("discard")
        .build().connect();
    client.send(new byte[] {7});
    assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
    for (String path : List.of(device + "/a.b", device + "%2Fa.b")) {
      HttpProbe.Response r = HttpProbe.get(nodes.node(1).managementUrl() + "/api/sockets/" + path);
      assertThat(r.status()).as(path).isEqualTo(200);
      assertThat(r.body()).contains("\"socketId\":\"" + device + "/a.b\"").contains("\"state\":\"open\"");
    }
    client.close();
  }
}
