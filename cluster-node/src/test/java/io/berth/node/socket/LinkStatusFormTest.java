package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper;
import com.typesafe.config.ConfigFactory;
import io.berth.node.link.Link;
import io.berth.node.mapping.Mapping;
import java.time.Instant;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A link's status was a string in snapshots ("waiting", "offered", "linked") before it was an
 * enum: the snapshot's form is still that word, and snapshots holding it read.
 */
class LinkStatusFormTest {

  private static final Instant AT = Instant.parse("2026-12-02T10:15:30Z");
  private static ActorTestKit testKit;
  private static Serialization serialization;
  private static Serializer jackson;

  @BeforeAll
  static void start() throws Exception {
    testKit = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local")
        .withFallback(ConfigFactory.load()));
    serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
    jackson = serialization.serializerFor(SocketState.class);
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private static SocketState linkedState() {
    SocketState state = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("pair"), null, "n", 0, AT, false));
    return SocketEntity.apply(state, new SocketEvent.LinkEstablished("a+b", "b", AT));
  }

  @Test
  void aSnapshotHoldsTheLinkStatusAsTheLowercaseWord() throws Exception {
    ObjectNode tree = (ObjectNode) new CBORMapper().readTree(jackson.toBinary(linkedState()));
    assertThat(tree.get("link").get("status").isTextual()).isTrue();
    assertThat(tree.get("link").get("status").textValue()).isEqualTo("linked");
  }

  @Test
  void snapshotsWithEachFormerStatusWordRead() throws Exception {
    SocketState state = linkedState();
    CBORMapper cbor = new CBORMapper();
    for (String word : new String[] {"waiting", "offered", "linked"}) {
      ObjectNode tree = (ObjectNode) cbor.readTree(jackson.toBinary(state));
      ((ObjectNode) tree.get("link")).put("status", word);
      SocketState back = (SocketState) serialization.deserialize(cbor.writeValueAsBytes(tree), jackson.identifier(),
          Serializers.manifestFor(jackson, state)).get();
      assertThat(back.link().status().json()).isEqualTo(word);
      assertThat(back.link()).usingRecursiveComparison().ignoringFields("status").isEqualTo(state.link());
    }
    assertThat(Link.Status.fromJson("waiting")).isEqualTo(Link.Status.WAITING);
    assertThat(Link.Status.fromJson("offered")).isEqualTo(Link.Status.OFFERED);
    assertThat(Link.Status.fromJson("linked")).isEqualTo(Link.Status.LINKED);
  }

  /** Messages and logs that name the status say the word, as they did when it was a string. */
  @Test
  void theStatusReadsAsTheWordInText() {
    assertThat("b is " + Link.Status.LINKED + " with another socket").isEqualTo("b is linked with another socket");
    assertThat(Link.Status.WAITING).hasToString("waiting");
  }

  @Test
  void anUnknownStatusWordIsRefusedNamingWhatIsExpected() {
    assertThatThrownBy(() -> Link.Status.fromJson("ended"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("ended").hasMessageContaining("linked");
  }
}
