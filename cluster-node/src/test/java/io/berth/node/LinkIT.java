package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.link.PeerLinkEntity;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.LinkStatus;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Peer links: an HTTP endpoint (served by the test) answers an open with the peer to link to;
 * devices over TCP; two nodes; PostgreSQL.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LinkIT {

  private static final String SECRET = "endpoint-secret-0123456789";
  private TestNodes nodes;
  private TestEndpoint endpoint;
  private String api;

  @BeforeAll
  void start() throws Exception {
    nodes = new TestNodes("berth.endpoints.allowed-hosts = [\"127.0.0.1\"]").start(2);
    api = nodes.node(0).managementUrl() + "/api";
    endpoint = new TestEndpoint(SECRET);
    endpoint.answer(LinkIT::linkAToB);
  }

  /** The endpoint links sockets by name: device "x-a-<n>" to "x-b-<n>". */
  private static TestEndpoint.Answer linkAToB(TestEndpoint.Call call) {
    String socket = call.body().get("socketId").asText();
    if (call.event().equals("open") && socket.contains("-a-")) {
      return TestEndpoint.Answer.json("{\"link\":\"" + socket.replace("-a-", "-b-") + "\"}");
    }
    return TestEndpoint.Answer.ok();
  }

  @AfterAll
  void stop() {
    endpoint.close();
    nodes.close();
  }

  private String mapping(String extra) {
    String name = TestNodes.uniqueDevice("linkmap");
    HttpProbe.Response r = HttpProbe.send("PUT", api + "/mappings/" + name, "{\"endpoint\":\"" + endpoint.url()
        + "\",\"secret\":\"" + SECRET + "\",\"events\":[\"open\"]" + extra + "}");
    assertThat(r.status()).as(r.body()).isEqualTo(200);
    return name;
  }

  private LinkPeer peer(String device, String mapping, int node) {
    return new LinkPeer(TestNodes.device(device, nodes.node(node).edge(), nodes.node(1 - node).edge()).mapping(mapping))
        .connect();
  }

  @Test
  void aWaitingSocketIsLinkedWhenItsPeerOpensAndFramesFlowExactlyOnceBothWays() throws Exception {
    String mapping = mapping("");
    String n = TestNodes.uniqueDevice("p");
    String a = "x-a-" + n;
    String b = "x-b-" + n;
    try (LinkPeer pa = peer(a, mapping, 0)) {
      pa.awaitLink(LinkStatus.PENDING, Duration.ofSeconds(20));
      assertThat(pa.links().get(0).peer()).isEqualTo(b);
      try (LinkPeer pb = peer(b, mapping, 1)) {
        pa.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
        pb.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
        assertThat(pb.links()).anyMatch(l -> l.status() == LinkStatus.LINKED && l.peer().equals(a));
        int frames = 50_000;
        long started = System.nanoTime();
        pa.send(frames, Duration.ZERO);
        pb.send(frames, Duration.ZERO);
        await().atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(200))
            .until(() -> pa.received() == frames && pb.received() == frames);
        double seconds = (System.nanoTime() - started) / 1e9;
        assertThat(pa.client().awaitAllAcked(Duration.ofSeconds(30))).isTrue();
        assertThat(pb.client().awaitAllAcked(Duration.ofSeconds(30))).isTrue();
        for (LinkPeer p : List.of(pa, pb)) {
          assertThat(p.outOfOrder()).isZero();
          assertThat(p.duplicates()).isZero();
          assertThat(p.failure()).isNull();
        }
        System.out.printf("FIGURE relay: %d frames each way in %.1f s (%.0f frames/s each way, 2 nodes)%n",
            frames, seconds, frames / seconds);
        String id = URLEncoder.encode(PeerLinkEntity.idOf(a, b), StandardCharsets.UTF_8);
        HttpProbe.Response link = HttpProbe.get(api + "/links/" + id);
        assertThat(link.body()).contains("\"state\":\"linked\"").contains("\"framesAtoB\":" + frames)
            .contains("\"framesBtoA\":" + frames);
        assertThat(HttpProbe.get(api + "/links?state=linked").body()).contains(a).contains(b);

        assertThat(HttpProbe.send("DELETE", api + "/links/" + id, null).status()).isEqualTo(202);
        pa.awaitLink(LinkStatus.UNLINKED, Duration.ofSeconds(20));
        pb.awaitLink(LinkStatus.UNLINKED, Duration.ofSeconds(20));
      }
    }
  }

  /**
   * The endpoint links {@code x-a-n} and {@code x-b-n} both ways, and answers A's open late: the
   * frames A sends before that answer have no known destination yet, are held, and reach B.
   */
  @Test
  void framesSentBeforeTheEndpointAnsweredOpenReachThePeerItNames() throws Exception {
    for (String order : List.of("peer first", "peer later")) {
      String events = order.equals("peer first") ? "[\"open\"]" : "[\"open\",\"data\"]";
      String name = TestNodes.uniqueDevice("linkmap");
      HttpProbe.Response put = HttpProbe.send("PUT", api + "/mappings/" + name, "{\"endpoint\":\"" + endpoint.url()
          + "\",\"secret\":\"" + SECRET + "\",\"events\":" + events + ",\"linkWaitMs\":60000}");
      assertThat(put.status()).as(put.body()).isEqualTo(200);
      String n = TestNodes.uniqueDevice("early");
      String a = "x-a-" + n;
      String b = "x-b-" + n;
      endpoint.answer(call -> {
        String socket = call.body().get("socketId").asText();
        if (!call.event().equals("open")) {
          return TestEndpoint.Answer.ok();
        }
        String peer = socket.equals(a) ? b : a;
        return new TestEndpoint.Answer(200, "{\"link\":\"" + peer + "\"}", socket.equals(a) ? 1_500 : 0);
      });
      try {
        int frames = 5_000;
        LinkPeer pb = order.equals("peer first") ? peer(b, name, 1) : null;
        if (pb != null) {
          pb.awaitLink(LinkStatus.PENDING, Duration.ofSeconds(20));
        }
        try (LinkPeer pa = peer(a, name, 0)) {
          pa.send(frames, Duration.ZERO);
          if (pb == null) {
            await().atMost(Duration.ofSeconds(20)).until(() -> pa.links().stream()
                .anyMatch(l -> l.status() == LinkStatus.PENDING));
            pb = peer(b, name, 1);
          }
          LinkPeer receiver = pb;
          await().atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(200))
              .until(() -> pa.client().lastAcked() >= frames || pa.client().terminatedCause() != null);
          assertThat(pa.client().terminatedCause()).as(order).isNull();
          // ACK n means the peer's device has frame n: nothing is left to arrive.
          assertThat(receiver.received()).as("%s: every frame A sent reached B", order).isEqualTo(frames);
          assertThat(receiver.outOfOrder()).as(order).isZero();
          assertThat(receiver.duplicates()).as(order).isZero();
          assertThat(endpoint.calls("data")).as("%s: A's data went to the peer, not the endpoint", order)
              .noneMatch(c -> c.body().get("socketId").asText().equals(a));
        } finally {
          pb.close();
        }
      } finally {
        endpoint.answer(LinkIT::linkAToB);
      }
    }
  }

  /**
   * The endpoint's answer to open is lost when the socket moves before it comes: the socket
   * asks again from its new node (same batch id), and holds its device's data meanwhile.
   */
  @Test
  void anOpenWhoseAnswerWasLostWithAMoveIsAskedAgainAndItsDataWaitsForTheAnswer() throws Exception {
    String name = TestNodes.uniqueDevice("linkmap");
    HttpProbe.Response put = HttpProbe.send("PUT", api + "/mappings/" + name, "{\"endpoint\":\"" + endpoint.url()
        + "\",\"secret\":\"" + SECRET + "\",\"events\":[\"open\"],\"timeoutMs\":60000,\"linkWaitMs\":60000}");
    assertThat(put.status()).as(put.body()).isEqualTo(200);
    String n = TestNodes.uniqueDevice("moved");
    String a = "x-a-" + n;
    String b = "x-b-" + n;
    java.util.concurrent.CountDownLatch moved = new java.util.concurrent.CountDownLatch(1);
    endpoint.answer(call -> {
      if (call.event().equals("open") && call.body().get("socketId").asText().equals(a)) {
        try {
          moved.await(60, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return linkAToB(call);
    });
    try (LinkPeer pa = peer(a, name, 0)) {
      int frames = 1_000;
      pa.send(frames, Duration.ZERO);
      await().atMost(Duration.ofSeconds(20)).until(() -> endpoint.calls("open").stream()
          .anyMatch(c -> c.body().get("socketId").asText().equals(a)));
      String from = nodes.entityNode(a);
      TestNodes.Node target = nodes.nodes().stream().filter(node -> !node.address().toString().equals(from))
          .findFirst().orElseThrow();
      String to = target.address().getHost().orElseThrow() + ":" + target.address().getPort().orElseThrow();
      assertThat(HttpProbe.send("POST", api + "/sockets/" + a + "/migrate?to=" + to, null).status()).isEqualTo(202);
      await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
          .until(() -> nodes.entityNode(a).equals(target.address().toString()));
      assertThat(pa.client().lastAcked()).as("nothing is acknowledged before the answer").isZero();
      moved.countDown();
      await().atMost(Duration.ofSeconds(30)).until(() -> pa.links().stream()
          .anyMatch(l -> l.status() == LinkStatus.PENDING));
      List<String> opens = endpoint.calls("open").stream()
          .filter(c -> c.body().get("socketId").asText().equals(a)).map(TestEndpoint.Call::batchId).toList();
      assertThat(opens).as("asked again after the move, as the same open").hasSizeGreaterThanOrEqualTo(2)
          .containsOnly(opens.get(0));
      try (LinkPeer pb = peer(b, name, 1)) {
        await().atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(200))
            .until(() -> pa.client().lastAcked() >= frames || pa.client().terminatedCause() != null);
        assertThat(pa.client().terminatedCause()).isNull();
        assertThat(pb.received()).as("every frame A sent reached B").isEqualTo(frames);
        assertThat(pb.duplicates()).isZero();
        assertThat(pb.outOfOrder()).isZero();
      }
    } finally {
      moved.countDown();
      endpoint.answer(LinkIT::linkAToB);
    }
  }

  /**
   * Data that nothing takes is refused with ERROR 204 and never acknowledged: an open-only
   * mapping whose endpoint links nobody, and frames held for a peer that never came.
   */
  @Test
  void dataThatNothingTakesIsRefusedAndNeverAcknowledged() throws Exception {
    String mapping = mapping(",\"linkWaitMs\":1500");
    String lonely = "x-c-" + TestNodes.uniqueDevice("nowhere");
    try (LinkPeer p = peer(lonely, mapping, 0)) {
      p.client().send(new byte[] {1});
      await().atMost(Duration.ofSeconds(20)).until(() -> p.client().terminatedCause() != null);
      assertThat(p.client().terminatedCause()).contains("ERROR " + ErrorCode.NO_DESTINATION.wire);
      assertThat(p.client().lastAcked()).isZero();
      assertThat(p.client().unackedPayloads()).as("the device still has what it sent")
          .containsExactly(new byte[] {1});
    }
    String socket = HttpProbe.get(api + "/sockets/" + lonely).body();
    assertThat(socket).contains("\"lastAccepted\":0").contains("\"framesIn\":0");

    String a = "x-a-" + TestNodes.uniqueDevice("waits");
    try (LinkPeer pa = peer(a, mapping, 0)) {
      pa.awaitLink(LinkStatus.PENDING, Duration.ofSeconds(20));
      for (int i = 0; i < 5; i++) {
        pa.client().send(new byte[] {(byte) i});
      }
      pa.awaitLink(LinkStatus.TIMEOUT, Duration.ofSeconds(20));
      await().atMost(Duration.ofSeconds(20)).until(() -> pa.client().terminatedCause() != null);
      assertThat(pa.client().terminatedCause()).contains("ERROR " + ErrorCode.NO_DESTINATION.wire);
      assertThat(pa.client().lastAcked()).as("held for the peer, then refused: never acknowledged").isZero();
      assertThat(pa.client().unackedPayloads()).hasSize(5);
    }
  }

  @Test
  void aPeerThatNeverOpensMakesTheWaitTimeOut() {
    String mapping = mapping(",\"linkWaitMs\":1500,\"onLinkTimeout\":\"close\"");
    String a = "x-a-" + TestNodes.uniqueDevice("lonely");
    try (LinkPeer pa = peer(a, mapping, 0)) {
      pa.awaitLink(LinkStatus.TIMEOUT, Duration.ofSeconds(20));
      await().atMost(Duration.ofSeconds(20)).until(() -> pa.client().terminatedCause() != null);
      assertThat(pa.client().terminatedCause()).contains(Integer.toString(CloseCode.CLOSED_BY_ENDPOINT.wire));
    }
  }

  @Test
  void aClosingSideUnlinksTheOther() {
    String mapping = mapping("");
    String n = TestNodes.uniqueDevice("bye");
    try (LinkPeer pa = peer("x-a-" + n, mapping, 0); LinkPeer pb = peer("x-b-" + n, mapping, 1)) {
      pa.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
      pb.client().close();
      pa.awaitLink(LinkStatus.UNLINKED, Duration.ofSeconds(20));
      assertThat(pa.links()).anyMatch(l -> l.status() == LinkStatus.UNLINKED && l.reason().contains("closed"));
    }
  }

  @Test
  void aSlowReceiverSlowsTheSenderWithoutGrowingMemory() {
    String mapping = mapping("");
    String n = TestNodes.uniqueDevice("slow");
    String b = "x-b-" + n;
    try (LinkPeer pa = peer("x-a-" + n, mapping, 0); LinkPeer pb = peer(b, mapping, 1)) {
      pa.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
      pb.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
      pb.readSlowly(Duration.ofMillis(2));
      pa.send(5_000, Duration.ZERO);
      await().atMost(Duration.ofSeconds(30)).until(() -> pb.received() >= 1_000);
      int outbox = Integer.parseInt(HttpProbe.get(api + "/sockets/" + b).body()
          .replaceAll(".*\"outboxFrames\":(\\d+).*", "$1"));
      long unacked = pa.client().unackedCount();
      assertThat(outbox).as("frames waiting for the slow device").isLessThanOrEqualTo(1024);
      assertThat(unacked).as("the sender is held by its window").isLessThanOrEqualTo(256);
      assertThat(pa.client().lastAcked()).as("the sender is acknowledged only as the receiver reads")
          .isLessThanOrEqualTo(pb.received() + 1024 + 256);
      pb.readSlowly(Duration.ZERO);
      await().atMost(Duration.ofMinutes(1)).until(() -> pb.received() == 5_000);
      assertThat(pb.outOfOrder()).isZero();
    }
  }

  @Test
  void pairingLinksTwoDevicesWithTheSameSocketName() {
    String room = TestNodes.uniqueDevice("room");
    try (LinkPeer one = new LinkPeer(TestNodes.device(TestNodes.uniqueDevice("d"), nodes.node(0).edge())
        .socketName(room).mapping("pair")).connect()) {
      one.awaitLink(LinkStatus.PENDING, Duration.ofSeconds(20));
      try (LinkPeer two = new LinkPeer(TestNodes.device(TestNodes.uniqueDevice("d"), nodes.node(1).edge())
          .socketName(room).mapping("pair")).connect()) {
        one.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
        two.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
        one.send(100, Duration.ZERO);
        two.send(100, Duration.ZERO);
        await().atMost(Duration.ofSeconds(30)).until(() -> one.received() == 100 && two.received() == 100);
      }
    }
  }

  @Test
  void socketsWithEarlierSessionsLinkAgainAndRelayFromWhereTheirNumberingStands() throws Exception {
    String room = TestNodes.uniqueDevice("again");
    String one = TestNodes.uniqueDevice("d");
    String two = TestNodes.uniqueDevice("d");
    for (int session = 1; session <= 2; session++) {
      // A new client each time: a fresh session, whose frame numbers go on from the last one.
      try (LinkPeer a = new LinkPeer(TestNodes.device(one, nodes.node(0).edge()).socketName(room).mapping("pair"))
               .connect();
           LinkPeer b = new LinkPeer(TestNodes.device(two, nodes.node(1).edge()).socketName(room).mapping("pair"))
               .connect()) {
        a.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
        b.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
        a.send(50, Duration.ZERO);
        b.send(50, Duration.ZERO);
        await().atMost(Duration.ofSeconds(30)).until(() -> a.received() == 50 && b.received() == 50);
        assertThat(a.client().awaitAllAcked(Duration.ofSeconds(20))).as("session %d", session).isTrue();
        assertThat(b.client().awaitAllAcked(Duration.ofSeconds(20))).as("session %d", session).isTrue();
        String id = URLEncoder.encode(PeerLinkEntity.idOf(one + "/" + room, two + "/" + room), StandardCharsets.UTF_8);
        assertThat(HttpProbe.get(api + "/links/" + id).body()).as("counted per link, session %d", session)
            .contains("\"framesAtoB\":50").contains("\"framesBtoA\":50");
      }
    }
  }

  @Test
  void aSecondLinkAnswerForALinkedSocketIsRefusedAndTheFirstLinkStays() {
    String mapping = mapping("");
    String n = TestNodes.uniqueDevice("twice");
    String a = "x-a-" + n;
    String c = "x-c-" + n;
    try (LinkPeer pa = peer(a, mapping, 0); LinkPeer pb = peer("x-b-" + n, mapping, 1)) {
      pa.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(20));
      // A's connection drops and it reconnects: a new open, which its endpoint now answers
      // with another peer.
      endpoint.answer(call -> call.event().equals("open") && call.body().get("socketId").asText().equals(a)
          ? TestEndpoint.Answer.json("{\"link\":\"" + c + "\"}") : TestEndpoint.Answer.ok());
      pa.client().dropConnection();
      await().atMost(Duration.ofSeconds(20)).until(() -> endpoint.calls("open").stream()
          .filter(call -> call.body().get("socketId").asText().equals(a)).count() == 2);
      pa.send(10, Duration.ZERO);
      await().atMost(Duration.ofSeconds(20)).until(() -> pb.received() == 10);
      assertThat(pa.links()).as("the refused answer is not announced").noneMatch(l -> l.peer().equals(c));
      String refused = URLEncoder.encode(PeerLinkEntity.idOf(a, c), StandardCharsets.UTF_8);
      assertThat(HttpProbe.get(api + "/links/" + refused).status()).isEqualTo(404);
    } finally {
      endpoint.answer(LinkIT::linkAToB);
    }
  }

  @Test
  void aDeviceCannotLinkItselfByForgingFrames() throws Exception {
    String device = TestNodes.uniqueDevice("forger");
    try (RawDevice raw = new RawDevice(nodes.node(0).edge(), Duration.ofSeconds(20))) {
      raw.send(RawDevice.hello(device, "discard"));
      assertThat(raw.read()).isInstanceOf(Frame.Welcome.class);
      raw.send(new Frame.Link(LinkStatus.LINKED, "someone-else", ""));
      List<Frame> frames = raw.readUntilClosed();
      assertThat(((Frame.Error) frames.get(frames.size() - 1)).code()).isEqualTo(ErrorCode.UNEXPECTED_FRAME.wire);
    }
  }
}
