package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent.DownlinkAcked;
import io.berth.node.socket.SocketEvent.Suspended;
import io.berth.protocol.Frame;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** When a quiet socket sleeps and what it writes as it stops (docs/sleep.md), with the clock passed in. */
class SleepTest {

  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");
  private static final long S = 1_000_000_000L;
  private static final SocketSettings SETTINGS = new SocketSettings("echo", 8, 1 << 20, 4, 128 * 1024,
      Duration.ofSeconds(30), 1000, Duration.ofSeconds(3), Duration.ofSeconds(30));

  /** A connection's ref: restfulness only asks whether one is attached, nothing is sent to it. */
  private static ActorTestKit refs;
  private static ActorRef<ToEdge> edge;

  @BeforeAll
  static void start() {
    refs = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local"));
    edge = refs.<ToEdge>createTestProbe().ref();
  }

  @AfterAll
  static void stop() {
    refs.shutdownTestKit();
  }

  /** Open on {@link #edge}, downlink frame 1 not yet acknowledged. */
  private static SocketState attachedWithOneUnacked() {
    SocketState s = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("echo"), edge, "e", 0, AT, false));
    return SocketEntity.apply(s, new SocketEvent.Injected(List.of(new Frame.Data(1, new byte[1])), AT));
  }

  @Test
  void aSocketQuietForLessThanSleepAfterLooksAgainWhenItWillHaveBeen() {
    Sleep.Check c = Sleep.check(10 * S, 8 * S, 30 * S, true);
    assertThat(c.sleeps()).isFalse();
    assertThat(c.nextInNanos()).isEqualTo(28 * S);
  }

  @Test
  void aQuietRestfulSocketSleepsAndABusyOneLooksAgainAfterAFullInterval() {
    assertThat(Sleep.check(40 * S, 8 * S, 30 * S, true)).isEqualTo(new Sleep.Check(true, 30 * S));
    assertThat(Sleep.check(40 * S, 8 * S, 30 * S, false)).isEqualTo(new Sleep.Check(false, 30 * S));
  }

  @Test
  void aSocketWithDownlinkUnacknowledgedIsNotRestfulUntilTheDeviceAcknowledges() {
    SocketState s = attachedWithOneUnacked();
    DownlinkWindow window = new DownlinkWindow(SETTINGS);
    assertThat(Sleep.restful(s, window, null, null, null, false)).isFalse();
    window.deviceAcked(s, 1);
    assertThat(Sleep.restful(s, window, null, null, null, false)).isTrue();
    assertThat(Sleep.restful(s, window, null, null, null, true)).as("a relay write on its way").isFalse();
    RelayOut holding = new RelayOut();
    holding.hold(new Frame.Data(1, new byte[1]));
    assertThat(Sleep.restful(s, window, null, holding, null, false)).isFalse();
    window.stall();
    assertThat(Sleep.restful(s, window, null, null, null, false)).isFalse();
  }

  @Test
  void aDetachedOrLinkedSocketIsNotRestful() {
    DownlinkWindow window = new DownlinkWindow(SETTINGS);
    SocketState s = attachedWithOneUnacked();
    window.deviceAcked(s, 1);
    assertThat(Sleep.restful(SocketEntity.apply(s, new SocketEvent.Detached(AT)), window, null, null, null, false))
        .isFalse();
    assertThat(Sleep.restful(SocketEntity.apply(s, new SocketEvent.LinkEstablished("a+b", "b", AT)), window, null,
        null, null, false)).isFalse();
  }

  @Test
  void aHandoffWritesTheAcknowledgementAndWhereTheSocketRan() {
    SocketState s = attachedWithOneUnacked();
    List<SocketEvent> events = Sleep.whenStopping(s, 1, false, "node-1", AT);
    assertThat(events).containsExactly(new DownlinkAcked(1, AT), new Suspended("node-1", AT, AT));
    assertThat(Sleep.tellsMoving(s, 5, 0)).isTrue();
  }

  @Test
  void goingToSleepWritesOnlyWhatIsNotDurableAndTellsNoMoveUnlessSomethingCameAfter() {
    SocketState s = attachedWithOneUnacked();
    assertThat(Sleep.whenStopping(s, 0, true, "node-1", AT)).isEmpty();
    assertThat(Sleep.whenStopping(s, 1, true, "node-1", AT)).containsExactly(new DownlinkAcked(1, AT));
    assertThat(Sleep.tellsMoving(s, 5, 7)).isFalse();
    assertThat(Sleep.tellsMoving(s, 9, 7)).as("a frame after the request").isTrue();
  }

  @Test
  void aSocketThatIsNotOpenTellsNoEdgeAndSuspendsNothing() {
    SocketState closed = SocketEntity.apply(attachedWithOneUnacked(), new SocketEvent.Closed(1000, "bye", 1, AT));
    assertThat(Sleep.whenStopping(closed, 0, false, "n", AT)).isEmpty();
    assertThat(Sleep.tellsMoving(closed, 5, 0)).isFalse();
  }
}
