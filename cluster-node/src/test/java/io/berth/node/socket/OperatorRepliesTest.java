package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.OperatorCloseResult;
import io.berth.node.socket.api.SocketCommand;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.apache.pekko.serialization.jackson.JacksonCborSerializer;
import org.apache.pekko.serialization.jackson.JacksonObjectMapperProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What a socket answers an operator's inject and close, and how those answers cross the network
 * between nodes: Jackson CBOR, also in the shape a node running the earlier code sends.
 */
class OperatorRepliesTest {

  private static final Config CONFIG = ConfigFactory.parseString("""
          pekko.actor.provider = cluster
          pekko.remote.artery.canonical.port = 0
          pekko.remote.artery.canonical.hostname = 127.0.0.1
          """)
      .withFallback(EventSourcedBehaviorTestKit.config())
      .withFallback(ConfigFactory.load());

  private static final ActorTestKit KIT = ActorTestKit.create("OperatorRepliesTest", CONFIG);

  /** An outbox of two frames. */
  private static final SocketSettings SETTINGS =
      new SocketSettings("echo", 2, 1 << 20, 4, 128 * 1024, Duration.ofSeconds(30), 1000, Duration.ofSeconds(3),
          Duration.ZERO);

  private static final Serialization SERIALIZATION = SerializationExtension.get(Adapter.toClassic(KIT.system()));

  private String socketId;
  private EventSourcedBehaviorTestKit<SocketCommand, SocketEvent, SocketState> entity;
  private TestProbe<ToEdge> edge;

  @AfterAll
  static void shutdown() {
    KIT.shutdownTestKit();
  }

  @BeforeEach
  void setUp() {
    socketId = "dev-" + UUID.randomUUID().toString().substring(0, 8);
    entity = EventSourcedBehaviorTestKit.create(KIT.system(), SocketEntity.create(socketId, SETTINGS));
    edge = KIT.createTestProbe(ToEdge.class);
  }

  private void open() {
    entity.runCommand(new SocketCommand.Open(socketId, Mapping.builtinDefault("discard"), false, 0, edge.getRef(),
        "edge-node"));
    edge.expectMessageClass(ToEdge.Welcomed.class);
  }

  private InjectResult inject(String text) {
    return entity.<InjectResult>runCommand(replyTo -> new SocketCommand.Inject(text.getBytes(StandardCharsets.UTF_8),
        replyTo)).reply();
  }

  private OperatorCloseResult closeByOperator() {
    return entity.<OperatorCloseResult>runCommand(replyTo -> new SocketCommand.CloseByOperator("closed by an operator",
        replyTo)).reply();
  }

  // ------------------------------------------------------------------ what a socket answers

  @Test
  void anInjectIsQueuedWithItsDownlinkSeqUntilTheOutboxIsFull() {
    open();
    assertThat(inject("one")).isEqualTo(new InjectResult.Injected(1));
    assertThat(inject("two")).isEqualTo(new InjectResult.Injected(2));
    assertThat(inject("three")).isEqualTo(new InjectResult.Refused(InjectResult.Refusal.OUTBOX_FULL));
  }

  @Test
  void aSocketWithoutASessionRefusesInjectsAndOperatorCloses() {
    assertThat(inject("nobody")).isEqualTo(new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN));
    assertThat(closeByOperator()).isEqualTo(new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
  }

  @Test
  void anOperatorCloseEndsTheSessionOnce() {
    open();
    assertThat(closeByOperator()).isEqualTo(new OperatorCloseResult.Closed());
    assertThat(closeByOperator()).isEqualTo(new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
    assertThat(inject("late")).isEqualTo(new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN));
  }

  // ------------------------------------------------------------------ on the network

  @Test
  void everyOutcomeCrossesTheNetworkInJacksonCborAndReadsBackEqual() {
    List<Object> outcomes = List.of(
        new InjectResult.Injected(42),
        new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN),
        new InjectResult.Refused(InjectResult.Refusal.OUTBOX_FULL),
        new OperatorCloseResult.Closed(),
        new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
    for (Object outcome : outcomes) {
      Serializer serializer = SERIALIZATION.findSerializerFor(outcome);
      assertThat(serializer).as(outcome.toString()).isInstanceOf(JacksonCborSerializer.class);
      byte[] bytes = serializer.toBinary(outcome);
      Object back = SERIALIZATION.deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer,
          outcome)).get();
      assertThat(back).isEqualTo(outcome);
    }
  }

  /** CBOR as Jackson writes a record of these fields, read under {@code className}. */
  private static Object readEarlier(String className, Map<String, Object> fields) throws Exception {
    ObjectMapper cbor = JacksonObjectMapperProvider.get(Adapter.toClassic(KIT.system()))
        .getOrCreate("jackson-cbor", Optional.empty());
    Serializer jackson = SERIALIZATION.serializerFor(InjectResult.Injected.class);
    return SERIALIZATION.deserialize(cbor.writeValueAsBytes(fields), jackson.identifier(), className).get();
  }

  private static Map<String, Object> fields(Object... namesAndValues) {
    Map<String, Object> out = new LinkedHashMap<>();
    for (int i = 0; i < namesAndValues.length; i += 2) {
      out.put((String) namesAndValues[i], namesAndValues[i + 1]);
    }
    return out;
  }

  @Test
  void repliesOfANodeRunningTheEarlierCodeReadAsTheOutcomesTheyMeant() throws Exception {
    for (String name : EarlierOperatorReplies.INJECT_RESULT) {
      assertThat(readEarlier(name, fields("accepted", true, "seq", 7L, "problem", null)))
          .as(name).isEqualTo(new InjectResult.Injected(7));
      assertThat(readEarlier(name, fields("accepted", false, "seq", 0L, "problem", "socket is not open")))
          .as(name).isEqualTo(new InjectResult.Refused(InjectResult.Refusal.NOT_OPEN));
      assertThat(readEarlier(name, fields("accepted", false, "seq", 0L, "problem", "the socket's outbox is full")))
          .as(name).isEqualTo(new InjectResult.Refused(InjectResult.Refusal.OUTBOX_FULL));
    }
    for (String name : EarlierOperatorReplies.OPERATOR_CLOSE_RESULT) {
      assertThat(readEarlier(name, fields("closed", true, "problem", null)))
          .as(name).isEqualTo(new OperatorCloseResult.Closed());
      assertThat(readEarlier(name, fields("closed", false, "problem", "socket is not open")))
          .as(name).isEqualTo(new OperatorCloseResult.Refused(OperatorCloseResult.Refusal.NOT_OPEN));
    }
  }

  @Test
  void everyFormerNameOfAReplyIsBoundToItsMigration() {
    Config migrations = KIT.system().settings().config().getConfig("pekko.serialization.jackson.migrations");
    for (String name : EarlierOperatorReplies.INJECT_RESULT) {
      assertThat(migrations.getString("\"" + name + "\"")).isEqualTo(EarlierOperatorReplies.Inject.class.getName());
    }
    for (String name : EarlierOperatorReplies.OPERATOR_CLOSE_RESULT) {
      assertThat(migrations.getString("\"" + name + "\"")).isEqualTo(EarlierOperatorReplies.Close.class.getName());
    }
  }
}
