package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.socket.api.SocketCommand;
import io.berth.protocol.Frame;
import java.io.NotSerializableException;
import java.util.Arrays;
import java.util.List;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
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
    SocketCommand.Relay back = (SocketCommand.Relay) roundTrip(
        new SocketCommand.Relay("dévice/room-1", 40, SampleFrames.two()));
    assertThat(back.from()).isEqualTo("dévice/room-1");
    assertThat(back.base()).isEqualTo(40);
    SampleFrames.assertSameFrames(back.frames(), SampleFrames.two());
  }

  @Test
  void relayAckKeepsEveryField() throws Exception {
    assertThat(roundTrip(new SocketCommand.RelayAck("a/b", 7, 5, true)))
        .isEqualTo(new SocketCommand.RelayAck("a/b", 7, 5, true));
  }

  @Test
  void pushAndDeliveredKeepEveryField() throws Exception {
    ToEdge.Push back = (ToEdge.Push) roundTrip(new ToEdge.Push(SampleFrames.two()));
    SampleFrames.assertSameFrames(back.frames(), SampleFrames.two());
    assertThat(roundTrip(new ToEdge.Delivered(9, 12, false, true)))
        .isEqualTo(new ToEdge.Delivered(9, 12, false, true));
  }

  @Test
  void deliverKeepsItsFramesAndTheirMqttPacketIds() throws Exception {
    ActorRef<ToEdge> edge = testKit.<ToEdge>createTestProbe().ref();
    SocketCommand.Deliver back = (SocketCommand.Deliver) roundTrip(
        new SocketCommand.Deliver(edge, SampleFrames.two(), new int[] {65_535, -1}));
    assertThat(back.edge()).isEqualTo(edge);
    SampleFrames.assertSameFrames(back.frames(), SampleFrames.two());
    assertThat(back.packetIds()).containsExactly(65_535, -1);
    assertThat(((SocketCommand.Deliver) roundTrip(new SocketCommand.Deliver(edge, SampleFrames.two()))).packetIds())
        .isNull();
  }

  @Test
  void aTruncatedMessageIsRefusedNotMisread() throws Exception {
    byte[] bytes = serializer.toBinary(new SocketCommand.Relay("a", 0, SampleFrames.two()));
    assertThatThrownBy(() -> serializer.fromBinary(Arrays.copyOf(bytes, bytes.length - 2), "R"))
        .isInstanceOf(NotSerializableException.class);
  }
}
