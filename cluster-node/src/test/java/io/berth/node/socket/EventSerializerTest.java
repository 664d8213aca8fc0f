package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.secrets.SecretSealer;
import io.berth.node.secrets.SecretSettings;
import io.berth.node.socket.SocketEvent;
import io.berth.node.socket.SocketState;
import io.berth.protocol.Frame;
import java.io.NotSerializableException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The traffic events and {@code Opened} survive the journal's trip through their binary form, field for field, with
 * the node's own serialization bindings; and events written in CBOR before still read.
 */
class EventSerializerTest {

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

  private static final Instant AT = Instant.parse("2026-11-24T10:15:30.123456789Z");

  /** Writes and reads the event as the journal does: the serializer its class is bound to. */
  private static Object journalTrip(Object event) {
    Serializer serializer = serialization.findSerializerFor(event);
    assertThat(serializer).isInstanceOf(EventSerializer.class);
    byte[] bytes = serialization.serialize(event).get();
    return serialization.deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer, event)).get();
  }

  @Test
  void acceptedKeepsEveryField() {
    SocketEvent.Accepted event = new SocketEvent.Accepted(42, 7, 3, 1_000, 1, SampleFrames.two(), 40,
        "batch-é", "parked-1", AT);
    SocketEvent.Accepted back = (SocketEvent.Accepted) journalTrip(event);
    assertThat(back).usingRecursiveComparison().ignoringFields("outbound").isEqualTo(event);
    SampleFrames.assertSameFrames(back.outbound(), event.outbound());
  }

  @Test
  void acceptedKeepsTheTagsOfMqttFrames() {
    long[] tags = {41, ResendTags.tag(65_535, 3, new byte[] {1}), 42, ResendTags.tag(1, 3, new byte[0])};
    SocketEvent.Accepted event = new SocketEvent.Accepted(42, 0, 2, 1, 0, List.of(), 40, null, null, AT, tags);
    assertThat(Serializers.manifestFor(serialization.findSerializerFor(event), event)).isEqualTo("Accepted.2");
    SocketEvent.Accepted back = (SocketEvent.Accepted) journalTrip(event);
    assertThat(back).usingRecursiveComparison().isEqualTo(event);
    assertThat(back.tags()).containsExactly(tags);
  }

  @Test
  void acceptedWithoutIdsOrAnswersKeepsTheNulls() {
    SocketEvent.Accepted event = new SocketEvent.Accepted(9, 0, 9, 576, 0, List.of(), 0, null, null, null);
    assertThat(journalTrip(event)).isEqualTo(event);
  }

  @Test
  void relayedKeepsEveryField() {
    SocketEvent.Relayed event = new SocketEvent.Relayed("peer/dévice", 42, SampleFrames.two(), 41, AT);
    SocketEvent.Relayed back = (SocketEvent.Relayed) journalTrip(event);
    assertThat(back).usingRecursiveComparison().ignoringFields("outbound").isEqualTo(event);
    SampleFrames.assertSameFrames(back.outbound(), event.outbound());
  }

  @Test
  void downlinkAckedKeepsEveryField() {
    SocketEvent.DownlinkAcked event = new SocketEvent.DownlinkAcked(77, AT);
    assertThat(journalTrip(event)).isEqualTo(event);
  }

  private static SocketEvent.Opened opened(Mapping mapping) {
    ActorRef<ToEdge> edge = testKit.<ToEdge>createTestProbe().ref();
    return new SocketEvent.Opened("dévice-1", mapping, edge, "pekko://berth@10.0.0.1:25520", 12, AT,
        !mapping.isBuiltin() && mapping.receives(Mapping.Event.OPEN));
  }

  @Test
  void openedKeepsEveryFieldOfItsMappingAndTheEdgesRef() {
    Mapping mapping = new Mapping("webhook", 3, "https://example.com/hook", EnumSet.of(Mapping.Event.OPEN,
        Mapping.Event.CLOSE), new Mapping.Criteria(10, 4096, 64, new byte[] {'\n'}, 250), 2_000,
        new Mapping.Retry(4, 100, 3_000), "s3cret", 15_000, true);
    SocketEvent.Opened event = opened(mapping);
    assertThat(journalTrip(event)).isEqualTo(event);
    SocketEvent.Opened builtin = opened(Mapping.builtinDefault("pair"));
    assertThat(journalTrip(builtin)).isEqualTo(builtin);
    Mapping bare = new Mapping("bare", 1, "builtin:echo", EnumSet.noneOf(Mapping.Event.class), null, 0, null, null, 0,
        false);
    SocketEvent.Opened sparse = new SocketEvent.Opened("d", bare, null, null, 0, null, false);
    assertThat(journalTrip(sparse)).isEqualTo(sparse);
  }

  /**
   * The limits an edge resolved into the mapping travel with it (Opened.3); without limits the
   * row stays Opened.2, which nodes that predate limits read.
   */
  @Test
  void openedKeepsTheMappingsLimitsAndWritesTheEarlierLayoutWithoutThem() {
    Mapping echo = Mapping.builtinDefault("echo");
    SocketEvent.Opened limited = opened(echo.withLimits(new Mapping.Limits(200, 100, 65_536, 1 << 20)));
    Serializer serializer = serialization.findSerializerFor(limited);
    assertThat(Serializers.manifestFor(serializer, limited)).isEqualTo(EventSerializer.OPENED_LIMITS);
    assertThat(journalTrip(limited)).isEqualTo(limited);
    SocketEvent.Opened plain = opened(echo);
    assertThat(Serializers.manifestFor(serializer, plain)).isEqualTo(EventSerializer.OPENED);
    assertThat(journalTrip(plain)).isEqualTo(plain);
  }

  /**
   * The device's address (behind a balancer, the PROXY header's source) is recorded as Opened.4,
   * with or without limits; an open without one keeps the earlier layouts.
   */
  @Test
  void openedKeepsTheDevicesAddressWithAndWithoutLimits() {
    Mapping echo = Mapping.builtinDefault("echo");
    ActorRef<ToEdge> edge = testKit.<ToEdge>createTestProbe().ref();
    for (Mapping mapping : List.of(echo, echo.withLimits(new Mapping.Limits(200, 100, 65_536, 1 << 20)))) {
      for (String address : List.of("203.0.113.7:50114", "[2001:db8::7]:4711")) {
        SocketEvent.Opened event = new SocketEvent.Opened("d", mapping, edge, "n", 3, AT, false, address);
        Serializer serializer = serialization.findSerializerFor(event);
        assertThat(Serializers.manifestFor(serializer, event)).isEqualTo(EventSerializer.OPENED_ADDRESS);
        assertThat(journalTrip(event)).isEqualTo(event);
      }
    }
  }

  /**
   * An {@code Opened} written before the session awaited its endpoint's answer to open (layout
   * Opened.1, which ends before the flag) replays as awaiting nothing: that open was settled
   * long ago, and asking the endpoint again after an upgrade would hold the socket's data.
   */
  @Test
  void anOpenedOfTheFirstLayoutReadsAsAwaitingNoAnswer() throws Exception {
    Mapping webhook = new Mapping("webhook", 3, "https://example.com/hook", EnumSet.of(Mapping.Event.OPEN),
        Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, "0123456789abcdef", 30_000, false);
    SocketEvent.Opened event = opened(webhook);
    assertThat(event.asksEndpoint()).isTrue();
    EventSerializer serializer = (EventSerializer) serialization.findSerializerFor(event);
    byte[] current = serializer.toBinary(event);
    byte[] firstLayout = Arrays.copyOf(current, current.length - 1);
    SocketEvent.Opened old =
        (SocketEvent.Opened) serializer.fromBinary(firstLayout, EventSerializer.OPENED_1);
    assertThat(old).usingRecursiveComparison().ignoringFields("asksEndpoint").isEqualTo(event);
    assertThat(old.asksEndpoint()).isFalse();
    assertThat(SocketEntity.apply(SocketState.EMPTY, old).openPending()).isZero();
  }

  @Test
  void openedWrittenInCborBeforeStillReads() throws Exception {
    Serializer jackson = jackson();
    SocketEvent.Opened event = opened(Mapping.builtinDefault("echo"));
    // Jackson writes an actor ref only with the system at hand, as the journal gives it.
    byte[] cbor = org.apache.pekko.serialization.Serialization$.MODULE$.<byte[]>withTransportInformation(
        (org.apache.pekko.actor.ExtendedActorSystem) Adapter.toClassic(testKit.system()), () -> jackson.toBinary(event));
    assertThat(serialization.deserialize(cbor, jackson.identifier(),
        Serializers.manifestFor(jackson, event)).get()).isEqualTo(event);
  }

  @Test
  void theEventOfOneSmallFrameIs140BytesWhereCborTookOver200() throws Exception {
    SocketEvent.Accepted event = new SocketEvent.Accepted(1, 0, 1, 64, 0,
        List.of(new Frame.Data(1, new byte[64])), 0, null, null, AT);
    byte[] binary = serialization.serialize(event).get();
    byte[] cbor = jackson().toBinary(event);
    assertThat(binary.length).isEqualTo(140);
    assertThat(cbor.length).isGreaterThan(200);
  }

  @Test
  void eventsWrittenInCborBeforeStillRead() throws Exception {
    Serializer jackson = jackson();
    SocketEvent.Accepted accepted = new SocketEvent.Accepted(42, 7, 3, 1_000, 1, SampleFrames.two(), 40, null,
        null, AT);
    Object back = serialization.deserialize(jackson.toBinary(accepted), jackson.identifier(),
        Serializers.manifestFor(jackson, accepted)).get();
    assertThat(back).usingRecursiveComparison().ignoringFields("outbound").isEqualTo(accepted);
    SocketEvent.DownlinkAcked acked = new SocketEvent.DownlinkAcked(77, AT);
    assertThat(serialization.deserialize(jackson.toBinary(acked), jackson.identifier(),
        Serializers.manifestFor(jackson, acked)).get()).isEqualTo(acked);
  }

  /**
   * Rows written before the session tracked its unanswered open: a snapshot without {@code
   * openPending} and an answer without {@code openOf} read as "nothing pending".
   */
  @Test
  void aSnapshotAndAnAnswerWrittenBeforeOpensWereTrackedStillRead() throws Exception {
    Serializer jackson = jackson();
    SocketEvent.Answered answered = new SocketEvent.Answered("d:open:3", SampleFrames.two(), AT, 3);
    Object oldAnswer = withoutField(jackson, answered, "openOf");
    assertThat(oldAnswer).usingRecursiveComparison()
        .isEqualTo(new SocketEvent.Answered("d:open:3", SampleFrames.two(), AT, 0));

    Mapping webhook = new Mapping("webhook", 3, "https://example.com/hook", EnumSet.of(Mapping.Event.OPEN),
        Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, "0123456789abcdef", 30_000, false);
    SocketState state = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", webhook, null, "n", 0, AT, true));
    assertThat(state.openPending()).isEqualTo(1);
    SocketState oldState = (SocketState) withoutField(jackson, state, "openPending");
    assertThat(oldState.openPending()).isZero();
    assertThat(oldState.counters()).isEqualTo(state.counters());
    assertThat(oldState.mapping()).isEqualTo(webhook);
  }

  /**
   * A snapshot written while the counter of downlink frames dropped at close was called {@code
   * discarded}, next to a {@code relayedOut} that was never counted, reads with its count intact.
   */
  @Test
  void aSnapshotWithTheOldCounterNamesKeepsTheDiscardedCount() throws Exception {
    Serializer jackson = jackson();
    SocketState state = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", null, null, "n", 0, AT, false));
    state = SocketEntity.apply(state, new SocketEvent.Closed(1000, "bye", 3, AT));
    assertThat(state.counters().downlinkDiscarded()).isEqualTo(3);

    com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper cbor =
        new com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper();
    com.fasterxml.jackson.databind.node.ObjectNode tree =
        (com.fasterxml.jackson.databind.node.ObjectNode) cbor.readTree(jackson.toBinary(state));
    com.fasterxml.jackson.databind.node.ObjectNode counters =
        (com.fasterxml.jackson.databind.node.ObjectNode) tree.get("counters");
    counters.set("discarded", counters.remove("downlinkDiscarded"));
    counters.put("relayedOut", 0);
    SocketState old = (SocketState) serialization.deserialize(cbor.writeValueAsBytes(tree),
        jackson.identifier(), Serializers.manifestFor(jackson, state)).get();
    assertThat(old.counters()).isEqualTo(state.counters());
  }

  /** What Jackson reads from {@code value}'s CBOR with {@code field} taken out, as an older class wrote it. */
  private static Object withoutField(Serializer jackson, Object value, String field) throws Exception {
    com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper cbor =
        new com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper();
    // A mapping's secret is sealed with the system's key: Jackson writes it only with the system at hand.
    byte[] current = org.apache.pekko.serialization.Serialization$.MODULE$.<byte[]>withTransportInformation(
        (org.apache.pekko.actor.ExtendedActorSystem) Adapter.toClassic(testKit.system()), () -> jackson.toBinary(value));
    com.fasterxml.jackson.databind.node.ObjectNode tree =
        (com.fasterxml.jackson.databind.node.ObjectNode) cbor.readTree(current);
    assertThat(tree.has(field)).as("the current form has %s", field).isTrue();
    tree.remove(field);
    return serialization.deserialize(cbor.writeValueAsBytes(tree), jackson.identifier(),
        Serializers.manifestFor(jackson, value)).get();
  }

  @Test
  void aCorruptOrUnknownEventIsRefusedClearly() throws Exception {
    EventSerializer serializer = (EventSerializer) serialization.serializerFor(SocketEvent.Relayed.class);
    byte[] bytes = serializer.toBinary(new SocketEvent.Relayed("p", 42, SampleFrames.two(), 41, AT));
    assertThatThrownBy(() -> serializer.fromBinary(Arrays.copyOf(bytes, bytes.length - 3), EventSerializer.RELAYED))
        .isInstanceOf(NotSerializableException.class).hasMessageContaining("corrupt Relayed.1");
    byte[] hugeCount = Arrays.copyOf(bytes, bytes.length);
    hugeCount[4 + 1 + 8] = 0x7f; // the frame count's top byte
    assertThatThrownBy(() -> serializer.fromBinary(hugeCount, EventSerializer.RELAYED))
        .isInstanceOf(NotSerializableException.class).hasMessageContaining("frame count");
    assertThatThrownBy(() -> serializer.fromBinary(bytes, "Accepted.99"))
        .isInstanceOf(NotSerializableException.class).hasMessageContaining("unknown event manifest");
  }

  // ------------------------------------------------------------------ sealed secrets (docs/secrets.md)

  private static final String SECRET = "endpoint-secret-0123456789";

  private static Mapping webhookWith(String secret) {
    return new Mapping("webhook", 3, "https://example.com/hook", EnumSet.of(Mapping.Event.OPEN),
        Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, secret, 30_000, false);
  }

  private static boolean contains(byte[] bytes, String text) {
    return new String(bytes, StandardCharsets.ISO_8859_1).contains(
        new String(text.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1));
  }

  /** {@code bytes} with the length-prefixed string {@code from} replaced by {@code to}. */
  private static byte[] replaceString(byte[] bytes, String from, String to) {
    String latin = new String(bytes, StandardCharsets.ISO_8859_1);
    int at = latin.indexOf(from) - 4;
    assertThat(at).as("the event holds %s", from).isGreaterThanOrEqualTo(0);
    byte[] t = to.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(bytes.length - from.length() + t.length);
    b.put(bytes, 0, at).putInt(t.length).put(t);
    b.put(bytes, at + 4 + from.length(), bytes.length - at - 4 - from.length());
    return b.array();
  }

  @Test
  void openedHoldsTheMappingSecretSealedOnceAndReadsItOpened() {
    SocketEvent.Opened event = opened(webhookWith(SECRET));
    byte[] bytes = serialization.serialize(event).get();
    assertThat(contains(bytes, SECRET)).as("the secret in plaintext").isFalse();
    assertThat(contains(bytes, "enc:v1:test:")).isTrue();
    assertThat(serialization.serialize(event).get()).as("sealed once, then cached").isEqualTo(bytes);
    assertThat(journalTrip(event)).isEqualTo(event);
  }

  @Test
  void anOpenedWrittenWithThePlaintextSecretBeforeStillReads() throws Exception {
    SocketEvent.Opened event = opened(webhookWith(SECRET));
    EventSerializer serializer = (EventSerializer) serialization.findSerializerFor(event);
    byte[] bytes = serializer.toBinary(event);
    String sealed = SecretSealer.get(testKit.system()).sealCached(SECRET);
    byte[] before = replaceString(bytes, sealed, SECRET);
    assertThat(serializer.fromBinary(before, serializer.manifest(event))).isEqualTo(event);
  }

  @Test
  void anOpenedSealedWithAKeyTheNodeDoesNotHoldIsRefusedNamingTheKey() throws Exception {
    SocketEvent.Opened event = opened(webhookWith(SECRET));
    EventSerializer serializer = (EventSerializer) serialization.findSerializerFor(event);
    String sealed = SecretSealer.get(testKit.system()).sealCached(SECRET);
    String elsewhere = new SecretSealer(SecretSettings.of("other=" + "A".repeat(43) + "=", false)).seal(SECRET);
    byte[] bytes = replaceString(serializer.toBinary(event), sealed, elsewhere);
    assertThatThrownBy(() -> serializer.fromBinary(bytes, serializer.manifest(event)))
        .isInstanceOf(NotSerializableException.class).hasMessageContaining("key id 'other'")
        .hasMessageNotContaining(SECRET);
  }

  /** Snapshots and messages hold the mapping as Jackson writes it: the secret sealed there too. */
  @Test
  void aSnapshotHoldsTheMappingSecretSealed() {
    SocketState state = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", webhookWith(SECRET), null, "n", 0, AT, true));
    byte[] bytes = serialization.serialize(state).get();
    assertThat(contains(bytes, SECRET)).isFalse();
    assertThat(contains(bytes, "enc:v1:test:")).isTrue();
    SocketState back = (SocketState) serialization.deserialize(bytes, SocketState.class).get();
    assertThat(back.mapping()).isEqualTo(state.mapping());
    assertThat(back.mapping().secret()).isEqualTo(SECRET);
  }

  private static Serializer jackson() throws NotSerializableException {
    return serialization.serializerFor(SocketEvent.Detached.class);
  }
}
