package io.berth.node.connection;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.berth.protocol.Frame;
import java.io.NotSerializableException;
import java.util.Arrays;
import java.util.List;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The hot-path messages survive the trip through their binary form, field for field. */
class HotPathSerializerTest {

  private static ActorTestKit testKit;
  private static HotPathSerializer serializer;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create();
    serializer = new HotPathSerializer((ExtendedActorSystem) Adapter.toClassic(testKit.system()));
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private static Object roundTrip(Object message) throws NotSerializableException {
    return serializer.fromBinary(serializer.toBinary(message), serializer.manifest(message));
  }

  @Test
  void relayKeepsSenderBaseAndFrames() throws Exception {
    ConnectionEntity.Relay back = (ConnectionEntity.Relay) roundTrip(
        new ConnectionEntity.Relay("dévice/room-1", 40, SampleFrames.two()));
    assertThat(back.from()).isEqualTo("dévice/room-1");
    assertThat(back.base()).isEqualTo(40);
    SampleFrames.assertSameFrames(back.frames(), SampleFrames.two());
  }

  @Test
  void relayAckKeepsEveryField() throws Exception {
    assertThat(roundTrip(new ConnectionEntity.RelayAck("a/b", 7, 5, true)))
        .isEqualTo(new ConnectionEntity.RelayAck("a/b", 7, 5, true));
  }

  @Test
  void pushAndDeliveredKeepEveryField() throws Exception {
    ConnectionEntity.Push back = (ConnectionEntity.Push) roundTrip(new ConnectionEntity.Push(SampleFrames.two()));
    SampleFrames.assertSameFrames(back.frames(), SampleFrames.two());
    assertThat(roundTrip(new ConnectionEntity.Delivered(9, 12, false, true)))
        .isEqualTo(new ConnectionEntity.Delivered(9, 12, false, true));
  }

  @Test
  void aTruncatedMessageIsRefusedNotMisread() throws Exception {
    byte[] bytes = serializer.toBinary(new ConnectionEntity.Relay("a", 0, SampleFrames.two()));
    assertThatThrownBy(() -> serializer.fromBinary(Arrays.copyOf(bytes, bytes.length - 2), "R"))
        .isInstanceOf(NotSerializableException.class);
  }
}
