package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.api.SocketCommand;
import io.berth.persistence.CborSerializable;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What Jackson wrote under the socket session's former class names (journal rows, snapshots,
 * messages from a node running the earlier code) reads as the classes that hold them now.
 */
class MovedClassesTest {

  private static final String OLD = "io.berth.node.connection.ConnectionEntity$";
  private static final Instant AT = Instant.parse("2026-12-02T10:15:30.123456789Z");

  private static ActorTestKit testKit;
  private static Serialization serialization;
  private static Serializer jackson;

  @BeforeAll
  static void start() throws Exception {
    testKit = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local")
        .withFallback(ConfigFactory.load()));
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
    jackson = serialization.serializerFor(SocketEvent.Detached.class);
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  /** Reads {@code value}'s CBOR as a row written under {@code oldName} would be read. */
  private static Object readUnderOldName(Object value, String oldName) {
    // As the journal writes it: with the system at hand, whose key seals a mapping's secret.
    byte[] cbor = org.apache.pekko.serialization.Serialization$.MODULE$.<byte[]>withTransportInformation(
        (org.apache.pekko.actor.ExtendedActorSystem) Adapter.toClassic(testKit.system()), () -> jackson.toBinary(value));
    return serialization.deserialize(cbor, jackson.identifier(), OLD + oldName).get();
  }

  @Test
  void everyFormerNameIsBoundToTheMigrationAndNamesALoadableClass() throws Exception {
    Config migrations = testKit.system().settings().config().getConfig("pekko.serialization.jackson.migrations");
    for (Map.Entry<String, String> moved : MovedClasses.MOVED.entrySet()) {
      assertThat(migrations.getString("\"" + moved.getKey() + "\"")).isEqualTo(MovedClasses.class.getName());
      assertThat(CborSerializable.class.isAssignableFrom(Class.forName(moved.getValue())) || Class.forName(
          moved.getValue()).isEnum()).as(moved.getValue()).isTrue();
    }
    Set<String> bound = new HashSet<>();
    migrations.root().forEach((name, migration) -> {
      if (MovedClasses.class.getName().equals(migration.unwrapped())) {
        bound.add(name);
      }
    });
    assertThat(bound).isEqualTo(MovedClasses.MOVED.keySet());
  }

  @Test
  void eventsWrittenUnderTheFormerNamesRead() {
    List<SocketEvent> events = List.of(
        new SocketEvent.Closed(1000, "bye", 3, AT),
        new SocketEvent.BatchStarted("s:b:1", 4, 0, 9, 12, false, AT),
        new SocketEvent.Answered("s:open:1", SampleFrames.two(), AT, 1),
        new SocketEvent.Injected(SampleFrames.two(), AT),
        new SocketEvent.Detached(AT),
        new SocketEvent.Suspended("pekko://berth@127.0.0.1:2551", AT, AT),
        new SocketEvent.LinkRequested("a|b", "b", 123, true, AT),
        new SocketEvent.LinkOffered("a|b", "b", AT),
        new SocketEvent.LinkEstablished("a|b", "b", AT),
        new SocketEvent.LinkEnded("a|b", AT),
        new SocketEvent.DownlinkAcked(77, AT));
    for (SocketEvent event : events) {
      assertThat(readUnderOldName(event, event.getClass().getSimpleName())).isEqualTo(event);
    }
  }

  @Test
  void aSnapshotWrittenUnderTheFormerNameReadsWithItsLink() {
    Mapping webhook = new Mapping("webhook", 3, "https://example.com/hook", java.util.EnumSet.of(Mapping.Event.OPEN),
        Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, "0123456789abcdef", 30_000, false);
    SocketState state = SocketEntity.apply(SocketState.EMPTY, new SocketEvent.Opened("d", webhook, null, "n", 0, AT,
        true));
    state = SocketEntity.apply(state, new SocketEvent.LinkEstablished("a|b", "b", AT));
    state = SocketEntity.apply(state, new SocketEvent.Relayed("b", 12, SampleFrames.two(), 11, AT));
    SocketState back = (SocketState) readUnderOldName(state, "State");
    assertThat(back).usingRecursiveComparison().ignoringFields("outbox").isEqualTo(state);
    assertThat(back.link()).isEqualTo(state.link());
    assertThat(back.link().marks()).hasSize(1);
  }

  @Test
  void messagesOfANodeRunningTheEarlierCodeRead() {
    ToEdge.SessionEnded ended = new ToEdge.SessionEnded(1000, "session closed");
    assertThat(readUnderOldName(ended, "SessionEnded")).isEqualTo(ended);
    SocketCommand.LinkDown down = new SocketCommand.LinkDown("a|b", "b", 2, "unlinked", 5);
    assertThat(readUnderOldName(down, "LinkDown")).isEqualTo(down);
    assertThat(readUnderOldName(SocketCommand.Stop.INSTANCE, "Stop")).isEqualTo(SocketCommand.Stop.INSTANCE);
  }
}
