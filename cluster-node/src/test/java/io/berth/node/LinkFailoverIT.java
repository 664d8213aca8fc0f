package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.LinkStatus;
import java.time.Duration;
import java.util.List;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

/**
 * A link whose sides live on different nodes keeps its totals exact while one side's entity
 * moves or its node dies mid-stream: three nodes, devices over TCP, the link decided by an HTTP
 * endpoint, PostgreSQL.
 */
class LinkFailoverIT {

  private static final String SECRET = "endpoint-secret-0123456789";
  private static final int FRAMES = 8_000;

  private void run(String name, BiConsumer<TestNodes, String> disruption, String extra) throws Exception {
    try (TestNodes nodes = new TestNodes("berth.endpoints.allowed-hosts = [\"127.0.0.1\"]\n" + extra).start(3);
         TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> call.event().equals("open") && call.body().get("socketId").asText().contains("-a-")
          ? TestEndpoint.Answer.json("{\"link\":\"" + call.body().get("socketId").asText().replace("-a-", "-b-") + "\"}")
          : TestEndpoint.Answer.ok());
      String mapping = TestNodes.uniqueDevice("lfo");
      HttpProbe.Response put = HttpProbe.send("PUT", nodes.node(0).managementUrl() + "/api/mappings/" + mapping,
          "{\"endpoint\":\"" + endpoint.url() + "\",\"secret\":\"" + SECRET + "\",\"events\":[\"open\"]}");
      assertThat(put.status()).as(put.body()).isEqualTo(200);

      // The two sides' entities on different nodes, so the disruption hits one side only.
      String a = null;
      String b = null;
      for (int i = 0; i < 50 && a == null; i++) {
        String n = TestNodes.uniqueDevice(name);
        if (!nodes.entityNode("x-a-" + n).equals(nodes.entityNode("x-b-" + n))) {
          a = "x-a-" + n;
          b = "x-b-" + n;
        }
      }
      assertThat(a).as("a pair of sockets whose entities live apart").isNotNull();
      TestNodes.Node aHome = nodes.nodeAt(nodes.entityNode(a));
      TestNodes.Node bHome = nodes.nodeAt(nodes.entityNode(b));
      TestNodes.Node third = nodes.nodes().stream().filter(n -> n != aHome && n != bHome).findFirst().orElseThrow();

      // A's device starts on the edge of A's own node (it loses its socket too when that node
      // dies); B's device is on the node that is left alone.
      try (LinkPeer pa = new LinkPeer(TestNodes.device(a, aHome.edge(), third.edge()).mapping(mapping)).connect();
           LinkPeer pb = new LinkPeer(TestNodes.device(b, third.edge(), bHome.edge()).mapping(mapping)).connect()) {
        pa.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(30));
        pb.awaitLink(LinkStatus.LINKED, Duration.ofSeconds(30));
        pa.send(FRAMES, Duration.ofMillis(1));
        pb.send(FRAMES, Duration.ofMillis(1));
        await().atMost(Duration.ofSeconds(60)).until(() -> pa.received() >= 1_000 && pb.received() >= 1_000);
        long disrupted = System.nanoTime();
        disruption.accept(nodes, a);
        await().atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(250))
            .until(() -> pa.received() == FRAMES && pb.received() == FRAMES);
        double seconds = (System.nanoTime() - disrupted) / 1e9;
        assertThat(pa.client().awaitAllAcked(Duration.ofMinutes(1))).isTrue();
        assertThat(pb.client().awaitAllAcked(Duration.ofMinutes(1))).isTrue();
        for (LinkPeer p : List.of(pa, pb)) {
          assertThat(p.duplicates()).as("frames delivered twice").isZero();
          assertThat(p.outOfOrder()).as("frames out of order").isZero();
          assertThat(p.failure()).isNull();
        }
        System.out.printf("FIGURE link %s mid-stream: %d frames each way exact, all in %.1f s after the disruption%n",
            name, FRAMES, seconds);
      }
    }
  }

  @Test
  void aLinkSideMovedMidStreamKeepsTheTotalsExact() throws Exception {
    run("moved", (nodes, socket) -> {
      String from = nodes.entityNode(socket);
      TestNodes.Node target = nodes.nodes().stream().filter(n -> !n.address().toString().equals(from))
          .findFirst().orElseThrow();
      HttpProbe.Response r = HttpProbe.send("POST", target.managementUrl() + "/api/sockets/" + socket
          + "/migrate?to=" + target.address().getHost().orElseThrow() + ":" + target.address().getPort().orElseThrow(),
          null);
      assertThat(r.status()).as(r.body()).isEqualTo(202);
      await().atMost(Duration.ofSeconds(30)).until(() -> nodes.entityNode(socket).equals(target.address().toString()));
    }, "berth.migration.enabled = off\n");
  }

  @Test
  void aLinkSideWhoseNodeDiesMidStreamKeepsTheTotalsExact() throws Exception {
    run("crashed", (nodes, socket) -> nodes.crash(nodes.nodeAt(nodes.entityNode(socket))),
        "pekko.coordinated-shutdown.run-by-actor-system-terminate = off\n");
  }
}
