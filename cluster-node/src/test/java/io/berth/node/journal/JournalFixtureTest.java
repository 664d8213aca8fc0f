package io.berth.node.journal;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.ConfigFactory;
import io.berth.node.link.Link;
import io.berth.node.link.PairingEntity;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.link.RelayMark;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Answered;
import io.berth.node.socket.SocketEvent.BatchStarted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.Detached;
import io.berth.node.socket.SocketEvent.DownlinkAcked;
import io.berth.node.socket.SocketEvent.Injected;
import io.berth.node.socket.SocketEvent.LinkEnded;
import io.berth.node.socket.SocketEvent.LinkEstablished;
import io.berth.node.socket.SocketEvent.LinkOffered;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.SocketEvent.Relayed;
import io.berth.node.socket.SocketEvent.Suspended;
import io.berth.node.socket.SocketState;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.Counters;
import io.berth.protocol.CloseCode;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every row of the journal fixture of 2026-12-02 (journal-fixtures/README.md) reads with the
 * serializers the node is configured with now, into the events and state they were written from,
 * field for field. Those rows name the serializers and manifests of that day: the binary layouts
 * {@code Opened.2}, {@code Accepted.1}, {@code Relayed.1}, {@code DownlinkAcked.1}, and for Jackson
 * the class names of then ({@code io.berth.node.connection.ConnectionEntity$Closed}, ...). A class
 * that moves or is renamed must keep reading them (a Jackson migration for the old name).
 */
class JournalFixtureTest {

  static final String FIXTURE = "2026-12-02";
  private static final String OLD_CLASS_NAMES = "io.berth.node.connection.ConnectionEntity$";
  private static final int JACKSON_CBOR = 33;
  private static final int EVENT_SERIALIZER = 7_311_002;

  private static ActorTestKit testKit;
  private static Serialization serialization;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local")
        .withFallback(ConfigFactory.load()));
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  /** The events of {@code persistenceId} in the fixture, in sequence order, read as the journal reads them. */
  private static List<Object> events(String persistenceId) {
    List<Object> out = new ArrayList<>();
    long expectedSeq = 1;
    for (JournalFixture.Row row : JournalFixture.table(FIXTURE, "event_journal")) {
      if (row.string("persistence_id").equals(persistenceId)) {
        assertThat(row.number("sequence_number")).as("%s's rows in order", persistenceId).isEqualTo(expectedSeq++);
        out.add(read(row, "event"));
      }
    }
    return out;
  }

  private static Object read(JournalFixture.Row row, String prefix) {
    int serializer = (int) row.number(prefix + "_ser_id");
    String manifest = row.string(prefix + "_ser_manifest");
    try {
      return serialization.deserialize(row.bytes(prefix + "_payload"), serializer, manifest).get();
    } catch (Exception e) {
      throw new AssertionError(row.string("persistence_id") + " #" + row.string("sequence_number")
          + " (serializer " + serializer + ", manifest " + manifest + ") does not read any more", e);
    }
  }

  private static List<Class<?>> classes(List<Object> events) {
    return events.stream().<Class<?>>map(Object::getClass).toList();
  }

  private static Frame.Data data(long seq, String text) {
    return new Frame.Data(seq, text.getBytes(StandardCharsets.UTF_8));
  }

  private static void assertHttpHook(Mapping mapping) {
    assertThat(mapping.endpoint()).matches("http://127\\.0\\.0\\.1:\\d+/hook");
  }

  @Test
  void theFixtureHoldsEveryEventASocketWritesUnderThatDaysNames() {
    Set<Class<?>> written = new LinkedHashSet<>();
    Set<String> manifests = new LinkedHashSet<>();
    for (JournalFixture.Row row : JournalFixture.table(FIXTURE, "event_journal")) {
      if (row.string("persistence_id").startsWith("socket|")) {
        written.add(read(row, "event").getClass());
        manifests.add(row.number("event_ser_id") + " " + row.string("event_ser_manifest"));
      }
    }
    assertThat(written).containsExactlyInAnyOrder(Opened.class, Accepted.class, BatchStarted.class,
        Answered.class, Injected.class, DownlinkAcked.class, Detached.class, Suspended.class, Closed.class,
        LinkRequested.class, LinkOffered.class, LinkEstablished.class, LinkEnded.class, Relayed.class);
    assertThat(written).allMatch(SocketEvent.class::isAssignableFrom);
    assertThat(manifests).containsExactlyInAnyOrder(
        EVENT_SERIALIZER + " Opened.2", EVENT_SERIALIZER + " Accepted.1", EVENT_SERIALIZER + " Relayed.1",
        EVENT_SERIALIZER + " DownlinkAcked.1",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "Injected", JACKSON_CBOR + " " + OLD_CLASS_NAMES + "Suspended",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "Detached", JACKSON_CBOR + " " + OLD_CLASS_NAMES + "Closed",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "BatchStarted", JACKSON_CBOR + " " + OLD_CLASS_NAMES + "Answered",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "LinkRequested",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "LinkOffered",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "LinkEstablished",
        JACKSON_CBOR + " " + OLD_CLASS_NAMES + "LinkEnded");
    List<JournalFixture.Row> snapshots = JournalFixture.table(FIXTURE, "snapshot");
    assertThat(snapshots).singleElement().satisfies(s -> {
      assertThat(s.number("snapshot_ser_id")).isEqualTo(JACKSON_CBOR);
      assertThat(s.string("snapshot_ser_manifest")).isEqualTo(OLD_CLASS_NAMES + "State");
    });
  }

  @Test
  void anEchoSessionThatMovedReadsWithItsFramesAndWatermarks() {
    List<Object> events = events("socket|fx-echo");
    assertThat(classes(events)).containsExactly(Opened.class, Accepted.class, Injected.class, DownlinkAcked.class,
        Suspended.class);
    Opened opened = (Opened) events.get(0);
    assertThat(opened.deviceId()).isEqualTo("fx-echo");
    assertThat(opened.mapping()).isEqualTo(Mapping.builtinDefault("echo"));
    assertThat(opened.edge()).isNotNull();
    assertThat(opened.edgeNode()).startsWith("pekko://berth@127.0.0.1:");
    assertThat(opened.downlinkAcked()).isZero();
    assertThat(opened.asksEndpoint()).isFalse();
    Accepted accepted = (Accepted) events.get(1);
    assertThat(accepted.lastAccepted()).isEqualTo(3);
    assertThat(accepted.partialOffset()).isZero();
    assertThat(accepted.frames()).isEqualTo(3);
    assertThat(accepted.bytes()).isEqualTo(18);
    assertThat(accepted.duplicates()).isZero();
    assertThat(accepted.outbound()).containsExactly(data(1, "echo-1"), data(2, "echo-2"), data(3, "echo-3"));
    assertThat(accepted.downlinkAcked()).isZero();
    assertThat(accepted.batchId()).isNull();
    assertThat(accepted.parkedId()).isNull();
    assertThat(accepted.at()).isAfter(opened.at());
    assertThat(((Injected) events.get(2)).outbound()).containsExactly(data(4, "injected"));
    assertThat(((DownlinkAcked) events.get(3)).upTo()).isEqualTo(2);
    Suspended suspended = (Suspended) events.get(4);
    assertThat(suspended.node()).isEqualTo(opened.edgeNode());
    assertThat(suspended.lastDeliveryAt()).isEqualTo(accepted.at());
    assertThat(suspended.at()).isAfterOrEqualTo(accepted.at());
  }

  @Test
  void aSessionDetachedResumedAndClosedReads() {
    List<Object> events = events("socket|fx-detach");
    assertThat(classes(events)).containsExactly(Opened.class, Accepted.class, Detached.class, Opened.class,
        Accepted.class, Closed.class);
    assertThat(((Detached) events.get(2)).at()).isNotNull();
    Opened resumed = (Opened) events.get(3);
    assertThat(resumed.downlinkAcked()).isEqualTo(1);
    assertThat(resumed.edge()).isNotNull();
    Accepted third = (Accepted) events.get(4);
    assertThat(third.lastAccepted()).isEqualTo(3);
    assertThat(third.downlinkAcked()).isEqualTo(1);
    assertThat(third.outbound()).containsExactly(data(3, "detach-3"));
    Closed closed = (Closed) events.get(5);
    assertThat(closed.code()).isEqualTo(CloseCode.NORMAL.wire);
    assertThat(closed.reason()).isEqualTo("device done");
    assertThat(closed.discarded()).isEqualTo(2);
  }

  @Test
  void aParkedBatchAndAnOperatorsCloseOfAnHttpSessionRead() {
    List<Object> events = events("socket|fx-parked");
    assertThat(classes(events)).containsExactly(Opened.class, BatchStarted.class, Accepted.class, Answered.class,
        Closed.class);
    Mapping mapping = ((Opened) events.get(0)).mapping();
    assertHttpHook(mapping);
    assertThat(mapping).isEqualTo(new Mapping("fx-webhook", 3, mapping.endpoint(),
        EnumSet.of(Mapping.Event.DATA, Mapping.Event.CLOSE), Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT,
        JournalFixtureWriter.SECRET, 30_000, false));
    BatchStarted batch = (BatchStarted) events.get(1);
    assertThat(batch).isEqualTo(new BatchStarted("fx-parked:1.0", 1, 0, 2, 8, true, batch.at()));
    Accepted parked = (Accepted) events.get(2);
    assertThat(parked.lastAccepted()).isEqualTo(2);
    assertThat(parked.frames()).isEqualTo(2);
    assertThat(parked.outbound()).isEmpty();
    assertThat(parked.batchId()).isEqualTo("fx-parked:1.0");
    assertThat(parked.parkedId()).matches("[0-9a-f-]{36}");
    Answered answered = (Answered) events.get(3);
    assertThat(answered.batchId()).isEqualTo("fx-parked:close:2");
    assertThat(answered.outbound()).containsExactly(data(1, "farewell"));
    assertThat(answered.openOf()).isZero();
    assertThat((Closed) events.get(4)).extracting(Closed::code, Closed::reason, Closed::discarded)
        .containsExactly(CloseCode.CLOSED_BY_OPERATOR.wire, "maintenance", 1L);
  }

  @Test
  void theLinkedSocketsBatchesLinkAndRelayRead() {
    List<Object> events = events("socket|fx-link-b");
    assertThat(classes(events)).containsExactly(Opened.class, BatchStarted.class, Accepted.class,
        BatchStarted.class, LinkOffered.class, LinkEstablished.class, Relayed.class, DownlinkAcked.class,
        Suspended.class);
    Mapping mapping = ((Opened) events.get(0)).mapping();
    assertHttpHook(mapping);
    assertThat(mapping).isEqualTo(new Mapping("fx-batches", 2, mapping.endpoint(), EnumSet.of(Mapping.Event.DATA),
        new Mapping.Criteria(0, 4096, 0, "\n".getBytes(StandardCharsets.UTF_8), 0), 5_000,
        new Mapping.Retry(3, 600_000, 600_000), JournalFixtureWriter.SECRET, 30_000, false));
    BatchStarted first = (BatchStarted) events.get(1);
    assertThat(first).isEqualTo(new BatchStarted("fx-link-b:1.0", 1, 0, 2, 4, false, first.at()));
    Accepted answered = (Accepted) events.get(2);
    assertThat(answered.lastAccepted()).isEqualTo(1);
    assertThat(answered.partialOffset()).isEqualTo(4);
    assertThat(answered.frames()).isEqualTo(1);
    assertThat(answered.bytes()).isEqualTo(8);
    assertThat(answered.outbound()).containsExactly(data(1, "batch-1-answer"));
    assertThat(answered.batchId()).isEqualTo("fx-link-b:1.0");
    assertThat(answered.parkedId()).isNull();
    BatchStarted inFlight = (BatchStarted) events.get(3);
    assertThat(inFlight).isEqualTo(new BatchStarted("fx-link-b:2.4", 2, 4, 3, 4, true, inFlight.at()));
    LinkOffered offered = (LinkOffered) events.get(4);
    assertThat(offered.linkId()).isEqualTo("fx-link-a+fx-link-b");
    assertThat(offered.peer()).isEqualTo("fx-link-a");
    LinkEstablished established = (LinkEstablished) events.get(5);
    assertThat(established.linkId()).isEqualTo("fx-link-a+fx-link-b");
    assertThat(established.peer()).isEqualTo("fx-link-a");
    Relayed relayed = (Relayed) events.get(6);
    assertThat(relayed.from()).isEqualTo("fx-link-a");
    assertThat(relayed.relayIn()).isEqualTo(3);
    assertThat(relayed.outbound()).containsExactly(data(2, "a-1"), data(3, "a-2"), data(4, "a-3"));
    assertThat(relayed.peerFrom()).isEqualTo(1);
    assertThat(((DownlinkAcked) events.get(7)).upTo()).isEqualTo(3);
    assertThat(((Suspended) events.get(8)).lastDeliveryAt()).isEqualTo(answered.at());
  }

  @Test
  void theSnapshotReadsWithItsInFlightBatchLinkOutboxAndCounters() {
    JournalFixture.Row row = JournalFixture.table(FIXTURE, "snapshot").get(0);
    assertThat(row.string("persistence_id")).isEqualTo("socket|fx-link-b");
    assertThat(row.number("sequence_number")).isEqualTo(7);
    SocketState state = (SocketState) read(row, "snapshot");
    List<Object> events = events("socket|fx-link-b");
    Opened opened = (Opened) events.get(0);
    Relayed relayed = (Relayed) events.get(6);

    assertThat(state.status()).isEqualTo(Status.OPEN);
    assertThat(state.deviceId()).isEqualTo("fx-link-b");
    assertThat(state.mapping()).isEqualTo(opened.mapping());
    assertThat(state.edge()).isNotNull();
    assertThat(state.edgeNode()).isEqualTo(opened.edgeNode());
    assertThat(state.lastAccepted()).isEqualTo(1);
    assertThat(state.partialOffset()).isEqualTo(4);
    assertThat(state.inFlight()).isEqualTo(events.get(3));
    assertThat(state.lastDownlinkSeq()).isEqualTo(4);
    assertThat(state.downlinkAcked()).isZero();
    assertThat(state.outbox()).containsExactly(data(1, "batch-1-answer"), data(2, "a-1"), data(3, "a-2"),
        data(4, "a-3"));
    assertThat(state.counters()).isEqualTo(new Counters(1, 8, 0, 4, 23, 1, 0, 1, 0, 3));
    assertThat(state.openedAt()).isEqualTo(opened.at());
    assertThat(state.updatedAt()).isEqualTo(relayed.at());
    assertThat(state.suspendedOn()).isNull();
    assertThat(state.lastDeliveryAt()).isEqualTo(((Accepted) events.get(2)).at());
    assertThat(state.openPending()).isZero();
    Link link = state.link();
    assertThat(link).isEqualTo(new Link("fx-link-a+fx-link-b", "fx-link-a", Link.Status.LINKED, link.since(), 0,
        false, 3, 0, List.of(new RelayMark(2, 4, 1)), 3));
    assertThat(link.since()).isEqualTo(((LinkEstablished) events.get(5)).at());
  }

  @Test
  void theSocketThatAskedItsEndpointAndWasLinkedReads() {
    List<Object> events = events("socket|fx-link-a");
    assertThat(classes(events)).containsExactly(Opened.class, Answered.class, LinkRequested.class,
        LinkEstablished.class, Accepted.class, Suspended.class);
    Opened opened = (Opened) events.get(0);
    assertThat(opened.asksEndpoint()).isTrue();
    assertThat(opened.mapping().events()).containsExactlyInAnyOrder(Mapping.Event.OPEN, Mapping.Event.DATA);
    Answered answer = (Answered) events.get(1);
    assertThat(answer.batchId()).isEqualTo("fx-link-a:open:1");
    assertThat(answer.outbound()).containsExactly(data(1, "linked-to-b"));
    assertThat(answer.openOf()).isEqualTo(1);
    LinkRequested requested = (LinkRequested) events.get(2);
    assertThat(requested.linkId()).isEqualTo("fx-link-a+fx-link-b");
    assertThat(requested.peer()).isEqualTo("fx-link-b");
    // The mapping's link wait (60 s) from the moment of the answer.
    assertThat(requested.deadlineMillis()).isBetween(answer.at().toEpochMilli() + 60_000,
        answer.at().toEpochMilli() + 61_000);
    assertThat(requested.closeOnTimeout()).isFalse();
    assertThat(requested.at()).isEqualTo(answer.at());
    assertThat(((LinkEstablished) events.get(3)).peer()).isEqualTo("fx-link-b");
    Accepted relayedOut = (Accepted) events.get(4);
    assertThat(relayedOut.lastAccepted()).isEqualTo(2);
    assertThat(relayedOut.frames()).isEqualTo(2);
    assertThat(relayedOut.bytes()).isEqualTo(6);
    assertThat(relayedOut.outbound()).isEmpty();
    assertThat(relayedOut.batchId()).isNull();
  }

  @Test
  void aPairingThatTimedOutAndClosedReads() {
    List<Object> events = events("socket|fx-pair/lonely");
    assertThat(classes(events)).containsExactly(Opened.class, LinkRequested.class, LinkEnded.class, Closed.class);
    Opened opened = (Opened) events.get(0);
    assertThat(opened.deviceId()).isEqualTo("fx-pair");
    assertThat(opened.mapping()).isEqualTo(new Mapping("pair-quick", 1, "builtin:pair",
        EnumSet.allOf(Mapping.Event.class), Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, null, 1_500, true));
    LinkRequested atPairingPoint = (LinkRequested) events.get(1);
    assertThat(atPairingPoint.linkId()).isEmpty();
    assertThat(atPairingPoint.peer()).isEmpty();
    assertThat(atPairingPoint.closeOnTimeout()).isTrue();
    assertThat(atPairingPoint.at()).isEqualTo(opened.at());
    assertThat(((LinkEnded) events.get(2)).linkId()).isEmpty();
    assertThat((Closed) events.get(3)).extracting(Closed::code, Closed::reason, Closed::discarded)
        .containsExactly(CloseCode.CLOSED_BY_ENDPOINT.wire, "no peer within 1500 ms", 0L);
  }

  @Test
  void theLinkAndPairingRowsRead() {
    assertThat(classes(events("link|fx-link-a+fx-link-b")))
        .containsExactly(PeerLinkEntity.Requested.class, PeerLinkEntity.Linked.class);
    assertThat(((PeerLinkEntity.Requested) events("link|fx-link-a+fx-link-b").get(0)))
        .extracting(PeerLinkEntity.Requested::from, PeerLinkEntity.Requested::to)
        .containsExactly("fx-link-a", "fx-link-b");
    List<Object> pairing = events("pairing|lonely");
    assertThat(classes(pairing)).containsExactly(PairingEntity.Waiting.class, PairingEntity.Cleared.class);
    assertThat(((PairingEntity.Waiting) pairing.get(0)).socketId()).isEqualTo("fx-pair/lonely");
  }
}
