package io.berth.node.journal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.TestEndpoint;
import io.berth.node.TestNodes;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.LinkChanged;
import io.berth.node.edge.api.ToEdge.Moving;
import io.berth.node.edge.api.ToEdge.Push;
import io.berth.node.edge.api.ToEdge.SessionEnded;
import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.OperatorCloseResult;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketCommand.Close;
import io.berth.node.socket.api.SocketCommand.CloseByOperator;
import io.berth.node.socket.api.SocketCommand.Deliver;
import io.berth.node.socket.api.SocketCommand.DownlinkAck;
import io.berth.node.socket.api.SocketCommand.GetStatus;
import io.berth.node.socket.api.SocketCommand.Inject;
import io.berth.node.socket.api.SocketCommand.Open;
import io.berth.node.socket.api.SocketCommand.Stop;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import io.berth.protocol.CloseCode;
import io.berth.protocol.Frame;
import io.berth.protocol.LinkStatus;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Base64;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/**
 * Writes the journal fixture that {@link JournalFixtureTest} and {@link JournalFixtureRecoveryIT}
 * read: one Berth node, wired as {@code Main} wires it, on a scratch PostgreSQL database, drives
 * socket sessions through every event they write (and one snapshot), then the journal tables are
 * dumped with {@link JournalFixture#dump}. Not part of the suite (its name matches no test
 * pattern, and it runs only when asked to); run it from a checkout whose rows should be kept, see
 * {@code src/test/resources/journal-fixtures/README.md}.
 *
 * <p>Every session is driven as its edge would drive it (test probes stand in for the edge's
 * connections), through sharding, with real HTTP endpoints on loopback; each step waits for what
 * follows its journal write, so that a run writes the same events, in the same order, each time.
 */
public final class JournalFixtureWriter {

  static final String SECRET = "fixture-endpoint-secret-0123";
  /** Snapshots every 7 events: only fx-link-b gets one, right after its Relayed. */
  static final int SNAPSHOT_EVERY = 7;
  /** The rows a run writes, per persistence id: checked before the dump. */
  static final Map<String, Integer> EVENTS = Map.of(
      "socket|fx-echo", 5,
      "socket|fx-detach", 6,
      "socket|fx-parked", 5,
      "socket|fx-link-a", 6,
      "socket|fx-link-b", 9,
      "socket|fx-pair/lonely", 4,
      "link|fx-link-a+fx-link-b", 2,
      "pairing|lonely", 2);

  private static final Duration WAIT = Duration.ofSeconds(20);

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: JournalFixtureWriter <directory to write the fixture files into>");
      System.exit(2);
    }
    write(Path.of(args[0]));
    System.exit(0);
  }

  /** The same as {@link #main}, for {@code mvn test -Dtest=JournalFixtureWriter} (README). */
  @Test
  @EnabledIfEnvironmentVariable(named = "BERTH_JOURNAL_FIXTURE_OUT", matches = ".+")
  void writeTheFixture() throws Exception {
    write(Path.of(System.getenv("BERTH_JOURNAL_FIXTURE_OUT")));
  }

  static void write(Path dir) throws Exception {
    DatabaseSettings db = TestDatabase.createScratchDatabase();
    try {
      SchemaInstaller.install(db);
      try (TestNodes nodes = new TestNodes("""
              berth.db.url = "%s"
              berth.socket.snapshot-every = %d
              berth.socket.sleep-after = off
              """.formatted(db.url(), SNAPSHOT_EVERY));
           TestEndpoint parking = new TestEndpoint(SECRET);
           TestEndpoint batches = new TestEndpoint(SECRET);
           TestEndpoint decider = new TestEndpoint(SECRET)) {
        nodes.start(1);
        Scenarios scenarios = new Scenarios(nodes.node(0).system(), nodes.node(0).address().toString());
        scenarios.echo();
        scenarios.detachReopenAndClose();
        scenarios.parkedBatchThenOperatorClose(parking);
        scenarios.linkedPairWithABatchInFlight(batches, decider);
        scenarios.pairingTimesOutAndCloses();
        awaitRows(db);
        JournalFixture.dump(db, dir);
      }
    } finally {
      TestDatabase.dropDatabase(db);
    }
  }

  /** Waits until every session's rows (and fx-link-b's snapshot) are written, and no more. */
  private static void awaitRows(DatabaseSettings db) {
    await().atMost(WAIT).untilAsserted(() -> {
      Map<String, Integer> rows = new TreeMap<>();
      int snapshots = 0;
      try (Connection c = SchemaInstaller.connect(db); Statement s = c.createStatement()) {
        try (ResultSet r = s.executeQuery("SELECT persistence_id, count(*) FROM event_journal GROUP BY 1")) {
          while (r.next()) {
            rows.put(r.getString(1), r.getInt(2));
          }
        }
        try (ResultSet r = s.executeQuery("SELECT count(*) FROM snapshot WHERE persistence_id = 'socket|fx-link-b'")) {
          r.next();
          snapshots = r.getInt(1);
        }
      }
      assertThat(rows).isEqualTo(new TreeMap<>(EVENTS));
      assertThat(snapshots).isEqualTo(1);
    });
  }

  private static List<Frame.Data> frames(long from, String... payloads) {
    Frame.Data[] out = new Frame.Data[payloads.length];
    for (int i = 0; i < payloads.length; i++) {
      out[i] = new Frame.Data(from + i, payloads[i].getBytes(StandardCharsets.UTF_8));
    }
    return List.of(out);
  }

  private static String base64(String text) {
    return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
  }

  /** Fishes for the first message of {@code type} that passes {@code test}, skipping others. */
  static <T extends ToEdge> T expect(TestProbe<ToEdge> edge, Class<T> type, Predicate<T> test) {
    List<ToEdge> seen = edge.fishForMessage(WAIT, m -> type.isInstance(m) && test.test(type.cast(m))
        ? FishingOutcomes.complete() : FishingOutcomes.continueAndIgnore());
    return type.cast(seen.get(seen.size() - 1));
  }

  static <T extends ToEdge> T expect(TestProbe<ToEdge> edge, Class<T> type) {
    return expect(edge, type, m -> true);
  }

  /** The sessions, each written under its own socket id. */
  private static final class Scenarios {
    private final ActorSystem<Void> system;
    private final ActorTestKit kit;
    private final String node;

    Scenarios(ActorSystem<Void> system, String node) {
      this.system = system;
      this.kit = ActorTestKit.create(system);
      this.node = node;
    }

    private EntityRef<SocketCommand> socket(String id) {
      return ClusterSharding.get(system).entityRefFor(Sockets.ENTITY_KEY, id);
    }

    private TestProbe<ToEdge> edge() {
      return kit.createTestProbe(ToEdge.class);
    }

    private Welcomed open(String socketId, String deviceId, Mapping mapping, boolean resume, long lastReceived,
        TestProbe<ToEdge> edge) {
      socket(socketId).tell(new Open(deviceId, mapping, resume, lastReceived, edge.getRef(), node));
      return expect(edge, Welcomed.class);
    }

    /**
     * fx-echo (builtin:echo): Opened, Accepted (3 frames, echoed), Injected; the device
     * acknowledges 2 downlink frames; a handoff stop writes DownlinkAcked and Suspended. Left
     * open, as a session that moved, with downlink 3 and 4 unacknowledged.
     */
    void echo() {
      String id = "fx-echo";
      TestProbe<ToEdge> edge = edge();
      open(id, id, Mapping.builtinDefault("echo"), false, 0, edge);
      socket(id).tell(new Deliver(edge.getRef(), frames(1, "echo-1", "echo-2", "echo-3")));
      expect(edge, Delivered.class, d -> d.upTo() == 3);
      expect(edge, Push.class);
      TestProbe<InjectResult> operator = kit.createTestProbe(InjectResult.class);
      socket(id).tell(new Inject("injected".getBytes(StandardCharsets.UTF_8), operator.getRef()));
      assertThat(operator.expectMessageClass(InjectResult.class, WAIT)).isEqualTo(new InjectResult.Injected(4));
      expect(edge, Push.class, p -> p.frames().get(0).seq() == 4);
      socket(id).tell(new DownlinkAck(edge.getRef(), 2));
      socket(id).tell(Stop.INSTANCE);
      expect(edge, Moving.class);
    }

    /**
     * fx-detach (builtin:echo): Opened, Accepted (2 frames); the device acknowledges 1 and its
     * connection ends (Detached); it resumes from another connection (Opened), sends one more
     * frame (Accepted) and closes (Closed, 2 downlink frames discarded).
     */
    void detachReopenAndClose() {
      String id = "fx-detach";
      TestProbe<ToEdge> first = edge();
      open(id, id, Mapping.builtinDefault("echo"), false, 0, first);
      socket(id).tell(new Deliver(first.getRef(), frames(1, "detach-1", "detach-2")));
      expect(first, Delivered.class, d -> d.upTo() == 2);
      expect(first, Push.class);
      socket(id).tell(new DownlinkAck(first.getRef(), 1));
      first.stop();
      TestProbe<SocketStatus> status = kit.createTestProbe(SocketStatus.class);
      await().atMost(WAIT).until(() -> {
        socket(id).tell(new GetStatus(status.getRef()));
        return status.expectMessageClass(SocketStatus.class, WAIT).state().equals("detached");
      });
      TestProbe<ToEdge> second = edge();
      assertThat(open(id, id, Mapping.builtinDefault("echo"), true, 1, second).downlinkAcked()).isEqualTo(1);
      socket(id).tell(new Deliver(second.getRef(), frames(3, "detach-3")));
      expect(second, Delivered.class, d -> d.upTo() == 3);
      socket(id).tell(new Close(second.getRef(), CloseCode.NORMAL.wire, "device done"));
      expect(second, SessionEnded.class);
    }

    /**
     * fx-parked (HTTP, data and close events): Opened; a batch (BatchStarted) the endpoint refuses
     * with 400, parked (Accepted with batchId and parkedId); an operator closes the socket: the
     * endpoint's answer to the close event goes down (Answered), then Closed.
     */
    void parkedBatchThenOperatorClose(TestEndpoint endpoint) {
      endpoint.answer(call -> call.event().equals("close")
          ? TestEndpoint.Answer.json("{\"reply\":\"" + base64("farewell") + "\"}")
          : TestEndpoint.Answer.status(400));
      Mapping mapping = new Mapping("fx-webhook", 3, endpoint.url(), EnumSet.of(Mapping.Event.DATA,
          Mapping.Event.CLOSE), Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, SECRET, 30_000, false);
      String id = "fx-parked";
      TestProbe<ToEdge> edge = edge();
      open(id, id, mapping, false, 0, edge);
      socket(id).tell(new Deliver(edge.getRef(), frames(1, "parked-1", "parked-2")));
      expect(edge, Delivered.class, d -> d.upTo() == 2);
      TestProbe<OperatorCloseResult> operator = kit.createTestProbe(OperatorCloseResult.class);
      socket(id).tell(new CloseByOperator("maintenance", operator.getRef()));
      assertThat(operator.expectMessageClass(OperatorCloseResult.class, WAIT)).isInstanceOf(OperatorCloseResult.Closed.class);
      expect(edge, SessionEnded.class);
    }

    /**
     * fx-link-b (HTTP, data, cut at '\n'): a batch that ends inside frame 2 is answered (Accepted
     * with a partial offset and a reply), the next one is recorded (BatchStarted) and its endpoint
     * keeps failing, so it stays in flight. fx-link-a (HTTP, open and data): its endpoint answers
     * the open with a reply and a link to fx-link-b (Answered, LinkRequested); fx-link-b is offered
     * the link (LinkOffered) and both are linked (LinkEstablished). fx-link-a's 3 frames reach
     * fx-link-b (Relayed, its 7th event: the snapshot); its device acknowledges 2 of them, so
     * fx-link-a's watermark moves to 2 (Accepted). Both stop as for a handoff (fx-link-b:
     * DownlinkAcked and Suspended; fx-link-a: Suspended), still linked.
     */
    void linkedPairWithABatchInFlight(TestEndpoint batches, TestEndpoint decider) {
      batches.answer(call -> call.body().get("seqFrom").asLong() == 1
          ? TestEndpoint.Answer.json("{\"reply\":\"" + base64("batch-1-answer") + "\"}")
          : TestEndpoint.Answer.status(503));
      decider.answer(call -> TestEndpoint.Answer.json("{\"reply\":\"" + base64("linked-to-b")
          + "\",\"link\":\"fx-link-b\"}"));
      // The failing batch is tried again only after the fixture is written.
      Mapping batching = new Mapping("fx-batches", 2, batches.url(), EnumSet.of(Mapping.Event.DATA),
          new Mapping.Criteria(0, 4096, 0, "\n".getBytes(StandardCharsets.UTF_8), 0), 5_000,
          new Mapping.Retry(3, 600_000, 600_000), SECRET, 30_000, false);
      Mapping deciding = new Mapping("fx-decider", 1, decider.url(), EnumSet.of(Mapping.Event.OPEN,
          Mapping.Event.DATA), Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, SECRET, 60_000, false);

      String b = "fx-link-b";
      TestProbe<ToEdge> edgeB = edge();
      open(b, b, batching, false, 0, edgeB);
      socket(b).tell(new Deliver(edgeB.getRef(), frames(1, "b-1 ", "b-2\nb-2-tail")));
      expect(edgeB, Delivered.class, d -> d.upTo() == 1);
      expect(edgeB, Push.class);
      socket(b).tell(new Deliver(edgeB.getRef(), frames(3, "b-3\n")));
      await().atMost(WAIT).until(() -> batches.calls().stream().anyMatch(c -> c.body().get("seqFrom").asLong() == 2));

      String a = "fx-link-a";
      TestProbe<ToEdge> edgeA = edge();
      open(a, a, deciding, false, 0, edgeA);
      expect(edgeA, LinkChanged.class, l -> l.status() == LinkStatus.LINKED.wire);
      expect(edgeB, LinkChanged.class, l -> l.status() == LinkStatus.LINKED.wire);

      socket(a).tell(new Deliver(edgeA.getRef(), frames(1, "a-1", "a-2", "a-3")));
      expect(edgeB, Push.class, p -> p.frames().get(p.frames().size() - 1).seq() == 4);
      socket(b).tell(new DownlinkAck(edgeB.getRef(), 3));
      expect(edgeA, Delivered.class, d -> d.upTo() == 2);

      socket(b).tell(Stop.INSTANCE);
      expect(edgeB, Moving.class);
      socket(a).tell(Stop.INSTANCE);
      expect(edgeA, Moving.class);
    }

    /**
     * fx-pair/lonely (builtin:pair that closes on a link timeout): Opened and LinkRequested (at
     * the pairing point) in one write; its device's 2 frames are held; nobody comes within the
     * link wait (LinkEnded), so the socket closes (Closed by the endpoint).
     */
    void pairingTimesOutAndCloses() {
      Mapping lonely = new Mapping("pair-quick", 1, "builtin:pair", EnumSet.allOf(Mapping.Event.class),
          Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, null, 1_500, true);
      String id = "fx-pair/lonely";
      TestProbe<ToEdge> edge = edge();
      open(id, "fx-pair", lonely, false, 0, edge);
      socket(id).tell(new Deliver(edge.getRef(), frames(1, "lonely-1", "lonely-2")));
      expect(edge, Delivered.class, d -> d.buffered() == 2);
      expect(edge, LinkChanged.class, l -> l.status() == LinkStatus.TIMEOUT.wire);
      assertThat(expect(edge, SessionEnded.class).closeCode()).isEqualTo(CloseCode.CLOSED_BY_ENDPOINT.wire);
    }
  }
}
