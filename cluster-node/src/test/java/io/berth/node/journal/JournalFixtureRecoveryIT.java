package io.berth.node.journal;

import static io.berth.node.journal.JournalFixtureWriter.expect;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.TestEndpoint;
import io.berth.node.TestNodes;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.edge.api.ToEdge.ConfirmTakeover;
import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.LinkChanged;
import io.berth.node.edge.api.ToEdge.Push;
import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.api.Counters;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketCommand.Deliver;
import io.berth.node.socket.api.SocketCommand.DownlinkAck;
import io.berth.node.socket.api.SocketCommand.Inject;
import io.berth.node.socket.api.SocketCommand.Open;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import io.berth.protocol.Frame;
import io.berth.protocol.LinkStatus;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Sessions written by the code of 2026-12-02 (journal-fixtures/README.md) recover with today's:
 * the fixture's rows are loaded into an empty journal on a scratch PostgreSQL database, one node
 * starts on it, and each socket is asked for its status and driven on as its edge would drive it
 * (test probes stand in for the device connections; endpoints are real HTTP servers). The rows'
 * edge refs name the node that wrote them, long gone: a session that was open is taken over, as
 * by a device that reconnects to another node.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class JournalFixtureRecoveryIT {

  private static final Duration WAIT = Duration.ofSeconds(20);

  private DatabaseSettings db;
  private TestNodes nodes;
  private ActorSystem<Void> system;
  private ActorTestKit kit;
  private TestEndpoint endpoint;

  @BeforeAll
  void start() throws Exception {
    db = TestDatabase.createScratchDatabase();
    SchemaInstaller.install(db);
    JournalFixture.load(db, JournalFixtureTest.FIXTURE);
    nodes = new TestNodes("""
        berth.db.url = "%s"
        berth.socket.sleep-after = off
        """.formatted(db.url())).start(1);
    system = nodes.node(0).system();
    kit = ActorTestKit.create(system);
    endpoint = new TestEndpoint(JournalFixtureWriter.SECRET);
  }

  @AfterAll
  void stop() {
    if (endpoint != null) {
      endpoint.close();
    }
    if (nodes != null) {
      nodes.close();
    }
    if (db != null) {
      TestDatabase.dropDatabase(db);
    }
  }

  private EntityRef<SocketCommand> socket(String id) {
    return ClusterSharding.get(system).entityRefFor(Sockets.ENTITY_KEY, id);
  }

  private SocketStatus status(String id) throws Exception {
    return Sockets.status(system, id, Duration.ofSeconds(10)).toCompletableFuture()
        .get(40, TimeUnit.SECONDS);
  }

  private TestProbe<ToEdge> edge() {
    return kit.createTestProbe(ToEdge.class);
  }

  private static List<Frame.Data> frames(long from, String... payloads) {
    Frame.Data[] out = new Frame.Data[payloads.length];
    for (int i = 0; i < payloads.length; i++) {
      out[i] = new Frame.Data(from + i, payloads[i].getBytes(StandardCharsets.UTF_8));
    }
    return List.of(out);
  }

  /**
   * The frames of the first Push from downlink seq {@code from} on: a Push left unacknowledged is
   * pushed again after {@code downlink-retry}, which may come in between.
   */
  private static List<Frame.Data> expectPush(TestProbe<ToEdge> edge, long from) {
    return expect(edge, Push.class, p -> p.frames().get(0).seq() == from).frames();
  }

  /**
   * Opens a session still attached to the connection recorded in the journal: the entity asks
   * this connection to confirm, as it does any takeover, and it does, naming that connection.
   */
  private Welcomed takeOver(String id, Open open, TestProbe<ToEdge> edge) {
    socket(id).tell(open);
    ActorRef<ToEdge> recorded = edge.expectMessageClass(ConfirmTakeover.class, WAIT).attached();
    assertThat(recorded).isNotNull().isNotEqualTo(edge.getRef());
    socket(id).tell(open.confirm(recorded));
    return expect(edge, Welcomed.class);
  }

  @Test
  void aSessionThatMovedResumesWithItsWatermarksAndPushesItsUnacknowledgedDownlink() throws Exception {
    SocketStatus before = status("fx-echo");
    assertThat(before.state()).isEqualTo("open");
    assertThat(before.deviceId()).isEqualTo("fx-echo");
    assertThat(before.mapping()).isEqualTo("echo");
    assertThat(before.mappingVersion()).isEqualTo(1);
    assertThat(before.node()).isEqualTo(nodes.node(0).address().toString());
    assertThat(before.edge()).startsWith("pekko://berth@127.0.0.1:").isNotEqualTo(before.node());
    assertThat(before.lastAccepted()).isEqualTo(3);
    assertThat(before.lastDownlinkSeq()).isEqualTo(4);
    assertThat(before.downlinkAcked()).isEqualTo(2);
    assertThat(before.outboxFrames()).isEqualTo(2);
    assertThat(before.pendingBatch()).isNull();
    assertThat(before.linkFramesIn()).isZero();
    assertThat(before.counters()).isEqualTo(new Counters(3, 18, 0, 4, 26, 1, 0, 0, 0, 0));

    TestProbe<ToEdge> edge = edge();
    Welcomed welcome = takeOver("fx-echo",
        new Open("fx-echo", Mapping.builtinDefault("echo"), true, 2, edge.getRef(), "edge-node"), edge);
    assertThat(welcome.lastAccepted()).isEqualTo(3);
    assertThat(welcome.downlinkAcked()).isEqualTo(2);
    assertThat(expectPush(edge, 3)).isEqualTo(frames(3, "echo-3", "injected"));

    socket("fx-echo").tell(new Deliver(edge.getRef(), frames(3, "echo-3", "echo-4")));
    assertThat(expect(edge, Delivered.class)).isEqualTo(new Delivered(4, 4, false));
    assertThat(expectPush(edge, 5)).isEqualTo(frames(5, "echo-4"));
    SocketStatus after = status("fx-echo");
    assertThat(after.lastAccepted()).isEqualTo(4);
    assertThat(after.counters().duplicates()).isEqualTo(1);
    assertThat(after.counters().connections()).isEqualTo(2);
  }

  @Test
  void aSessionDetachedResumedAndClosedReopensWhereItsNumberingStopped() throws Exception {
    SocketStatus before = status("fx-detach");
    assertThat(before.state()).isEqualTo("closed");
    assertThat(before.lastAccepted()).isEqualTo(3);
    assertThat(before.lastDownlinkSeq()).isEqualTo(3);
    assertThat(before.downlinkAcked()).as("discarded frames count as acknowledged").isEqualTo(3);
    assertThat(before.outboxFrames()).isZero();
    assertThat(before.counters()).isEqualTo(new Counters(3, 24, 0, 3, 24, 2, 2, 0, 0, 0));

    TestProbe<ToEdge> edge = edge();
    socket("fx-detach").tell(new Open("fx-detach", Mapping.builtinDefault("echo"), false, 0, edge.getRef(), "n"));
    Welcomed welcome = expect(edge, Welcomed.class);
    assertThat(welcome.lastAccepted()).isEqualTo(3);
    assertThat(welcome.downlinkAcked()).isEqualTo(3);
    socket("fx-detach").tell(new Deliver(edge.getRef(), frames(4, "detach-4")));
    assertThat(expect(edge, Delivered.class)).isEqualTo(new Delivered(4, 4, false));
    assertThat(expectPush(edge, 4)).isEqualTo(frames(4, "detach-4"));
  }

  @Test
  void aSessionClosedByAnOperatorAfterAParkedBatchStaysClosedWithItsCounts() throws Exception {
    SocketStatus status = status("fx-parked");
    assertThat(status.state()).isEqualTo("closed");
    assertThat(status.mapping()).isEqualTo("fx-webhook");
    assertThat(status.mappingVersion()).isEqualTo(3);
    assertThat(status.lastAccepted()).isEqualTo(2);
    assertThat(status.lastDownlinkSeq()).isEqualTo(1);
    assertThat(status.downlinkAcked()).isEqualTo(1);
    assertThat(status.pendingBatch()).isNull();
    assertThat(status.counters()).isEqualTo(new Counters(2, 16, 0, 1, 8, 1, 1, 1, 1, 0));

    TestProbe<InjectResult> operator = kit.createTestProbe(InjectResult.class);
    socket("fx-parked").tell(new Inject("late".getBytes(StandardCharsets.UTF_8), operator.getRef()));
    assertThat(operator.expectMessageClass(InjectResult.class, WAIT))
        .isEqualTo(new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN));
  }

  @Test
  void aPairingSocketClosedByItsLinkTimeoutTookNothingOfWhatItHeld() throws Exception {
    SocketStatus status = status("fx-pair/lonely");
    assertThat(status.state()).isEqualTo("closed");
    assertThat(status.deviceId()).isEqualTo("fx-pair");
    assertThat(status.lastAccepted()).isZero();
    assertThat(status.linkFramesIn()).isZero();
    assertThat(status.counters()).isEqualTo(new Counters(0, 0, 0, 0, 0, 1, 0, 0, 0, 0));

    // The frames held for a peer were never acknowledged: the device sends them again.
    TestProbe<ToEdge> edge = edge();
    socket("fx-pair/lonely").tell(new Open("fx-pair", Mapping.builtinDefault("echo"), false, 0, edge.getRef(), "n"));
    assertThat(expect(edge, Welcomed.class).lastAccepted()).isZero();
    socket("fx-pair/lonely").tell(new Deliver(edge.getRef(), frames(1, "lonely-1")));
    assertThat(expect(edge, Delivered.class)).isEqualTo(new Delivered(1, 1, false));
  }

  /**
   * fx-link-b recovers from its snapshot (its in-flight batch, its link and relay mark) and the
   * events after it; fx-link-a from its events. Both are still linked: the in-flight batch is
   * sent again, with the same id and bounds, once its frames come again, and the relay goes on
   * where it stood, each side's acknowledgements mapped to the other's numbers.
   */
  @Test
  void aLinkedPairRecoversLinkedWithItsBatchInFlightAndRelaysOn() throws Exception {
    SocketStatus b = status("fx-link-b");
    assertThat(b.state()).isEqualTo("open");
    assertThat(b.mapping()).isEqualTo("fx-batches");
    assertThat(b.mappingVersion()).isEqualTo(2);
    assertThat(b.lastAccepted()).isEqualTo(1);
    assertThat(b.lastDownlinkSeq()).isEqualTo(4);
    assertThat(b.downlinkAcked()).isEqualTo(3);
    assertThat(b.outboxFrames()).isEqualTo(1);
    assertThat(b.pendingBatch()).isEqualTo("fx-link-b:2.4");
    assertThat(b.linkFramesIn()).isEqualTo(3);
    assertThat(b.counters()).isEqualTo(new Counters(1, 8, 0, 4, 23, 1, 0, 1, 0, 3));
    SocketStatus a = status("fx-link-a");
    assertThat(a.state()).isEqualTo("open");
    assertThat(a.mapping()).isEqualTo("fx-decider");
    assertThat(a.lastAccepted()).isEqualTo(2);
    assertThat(a.lastDownlinkSeq()).isEqualTo(1);
    assertThat(a.downlinkAcked()).isZero();
    assertThat(a.outboxFrames()).isEqualTo(1);
    assertThat(a.pendingBatch()).isNull();
    assertThat(a.linkFramesIn()).isZero();
    assertThat(a.counters()).isEqualTo(new Counters(2, 6, 0, 1, 11, 1, 0, 0, 0, 0));

    // fx-link-b's device reconnects; its mapping now names this test's endpoint (version 3).
    Mapping batching = new Mapping("fx-batches", 3, endpoint.url(), EnumSet.of(Mapping.Event.DATA),
        new Mapping.Criteria(0, 4096, 0, "\n".getBytes(StandardCharsets.UTF_8), 0), 5_000, Mapping.Retry.DEFAULT,
        JournalFixtureWriter.SECRET, 30_000, false);
    TestProbe<ToEdge> edgeB = edge();
    Welcomed welcomeB = takeOver("fx-link-b", new Open("fx-link-b", batching, true, 3, edgeB.getRef(), "n"), edgeB);
    assertThat(welcomeB.lastAccepted()).isEqualTo(1);
    assertThat(welcomeB.downlinkAcked()).isEqualTo(3);
    assertThat(expectPush(edgeB, 4)).isEqualTo(frames(4, "a-3"));
    assertThat(expect(edgeB, LinkChanged.class)).isEqualTo(new LinkChanged(LinkStatus.LINKED.wire, "fx-link-a", ""));

    // It sends again what followed its last ACK: the batch recorded before goes out again, unchanged.
    socket("fx-link-b").tell(new Deliver(edgeB.getRef(), frames(2, "b-2\nb-2-tail", "b-3\n")));
    assertThat(expect(edgeB, Delivered.class, d -> d.upTo() == 3)).isEqualTo(new Delivered(3, 3, false));
    TestEndpoint.Call resent = endpoint.calls().stream()
        .filter(c -> c.body().get("socketId").asText().equals("fx-link-b")).findFirst().orElseThrow();
    assertThat(resent.event()).isEqualTo("data");
    assertThat(resent.batchId()).isEqualTo("fx-link-b:2.4");
    assertThat(resent.body().get("seqFrom").asLong()).isEqualTo(2);
    assertThat(resent.body().get("seqTo").asLong()).isEqualTo(3);
    assertThat(resent.text()).isEqualTo("b-2-tailb-3\n");
    SocketStatus bAfterBatch = status("fx-link-b");
    assertThat(bAfterBatch.pendingBatch()).isNull();
    assertThat(bAfterBatch.counters().batches()).isEqualTo(2);

    // fx-link-a's device reconnects (its endpoint is asked about the open again) and sends again
    // its frame 3, which the peer took before but whose device has not acknowledged it yet.
    Mapping deciding = new Mapping("fx-decider", 2, endpoint.url(), EnumSet.of(Mapping.Event.OPEN,
        Mapping.Event.DATA), Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, JournalFixtureWriter.SECRET,
        60_000, false);
    TestProbe<ToEdge> edgeA = edge();
    Welcomed welcomeA = takeOver("fx-link-a", new Open("fx-link-a", deciding, true, 0, edgeA.getRef(), "n"), edgeA);
    assertThat(welcomeA.lastAccepted()).isEqualTo(2);
    assertThat(welcomeA.downlinkAcked()).isZero();
    assertThat(expectPush(edgeA, 1)).isEqualTo(frames(1, "linked-to-b"));
    assertThat(expect(edgeA, LinkChanged.class)).isEqualTo(new LinkChanged(LinkStatus.LINKED.wire, "fx-link-b", ""));
    await().atMost(WAIT).until(() -> endpoint.calls().stream().anyMatch(c -> c.batchId().equals("fx-link-a:open:2")));
    socket("fx-link-a").tell(new Deliver(edgeA.getRef(), frames(3, "a-3")));
    assertThat(expect(edgeA, Delivered.class)).isEqualTo(new Delivered(2, 3, false, false));

    // fx-link-b's device acknowledges downlink 4, which carried fx-link-a's frame 3: delivered.
    socket("fx-link-b").tell(new DownlinkAck(edgeB.getRef(), 4));
    assertThat(expect(edgeA, Delivered.class)).isEqualTo(new Delivered(3, 3, false));

    // New data goes on in both numberings; frame 3, sent again, was not taken twice.
    socket("fx-link-a").tell(new Deliver(edgeA.getRef(), frames(4, "a-4")));
    assertThat(expectPush(edgeB, 5)).isEqualTo(frames(5, "a-4"));
    assertThat(status("fx-link-b").linkFramesIn()).isEqualTo(4);
  }
}
