package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.api.SocketCommand.Open;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What an Open comes to: refused, a takeover confirmed first, or the events that open the socket. */
class OpeningTest {

  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");
  private static final Mapping ECHO = Mapping.builtinDefault("echo");
  private static final Mapping PAIR = Mapping.builtinDefault("pair");
  private static final Mapping ASKS = new Mapping("decider", 1, "http://127.0.0.1:9/hook",
      EnumSet.of(Mapping.Event.OPEN), Mapping.Criteria.NONE, 1000, Mapping.Retry.DEFAULT, "s", 5_000, false);

  /** Refs only: connections are compared, never sent to. */
  private static ActorTestKit refs;
  private static ActorRef<ToEdge> first;
  private static ActorRef<ToEdge> second;

  @BeforeAll
  static void start() {
    refs = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local"));
    first = refs.<ToEdge>createTestProbe().ref();
    second = refs.<ToEdge>createTestProbe().ref();
  }

  @AfterAll
  static void stop() {
    refs.shutdownTestKit();
  }

  private static Open open(Mapping mapping, boolean resume, long lastReceived, ActorRef<ToEdge> by) {
    return new Open("dev", mapping, resume, lastReceived, by, "edge-node");
  }

  private static Opening.Decision decide(SocketState s, Open cmd) {
    return Opening.decide("dev/room", s, cmd, 0, 1_000, AT);
  }

  /** Open on {@code first}, with downlink frames 1..3 of which the device acknowledged 1. */
  private static SocketState attached() {
    SocketState s = SocketEntity.apply(SocketState.EMPTY, new Opened("dev", ECHO, first, "n", 0, AT, false));
    s = SocketEntity.apply(s, new SocketEvent.Injected(List.of(new Frame.Data(1, new byte[1]),
        new Frame.Data(2, new byte[1]), new Frame.Data(3, new byte[1])), AT));
    return SocketEntity.apply(s, new SocketEvent.DownlinkAcked(1, AT));
  }

  @Test
  void anotherDevicesOpenIsRefused() {
    Opening.Decision d = decide(SocketState.EMPTY, new Open("intruder", ECHO, false, 0, first, "n"));
    assertThat(d).isInstanceOf(Opening.Rejected.class);
    assertThat(((Opening.Rejected) d).errorCode()).isEqualTo(ErrorCode.AUTH_FAILED.wire);
  }

  @Test
  void aResumeClaimingFramesNeverSentIsRefused() {
    Opening.Rejected r = (Opening.Rejected) decide(attached(), open(ECHO, true, 4, second));
    assertThat(r.errorCode()).isEqualTo(ErrorCode.BAD_SEQUENCE.wire);
    assertThat(r.reason()).contains("lastReceived 4", "last downlink seq 3");
  }

  @Test
  void anOpenOnAnotherConnectionThanTheAttachedOneIsConfirmedFirst() {
    assertThat(decide(attached(), open(ECHO, true, 0, second))).isEqualTo(new Opening.Confirm(first));
    Opening.Opens confirmed = (Opening.Opens) decide(attached(), open(ECHO, true, 0, second).confirm(first));
    assertThat(confirmed.replaced()).isEqualTo(first);
  }

  @Test
  void aConfirmationAgainstAConnectionNoLongerAttachedIsAskedAgain() {
    ActorRef<ToEdge> gone = refs.<ToEdge>createTestProbe().ref();
    assertThat(decide(attached(), open(ECHO, true, 0, second).confirm(gone))).isEqualTo(new Opening.Confirm(first));
  }

  @Test
  void theAttachedConnectionOpeningAgainIsAnsweredAgainWithNothingWritten() {
    // Its edge sends the open again while no answer came (docs/failover.md): the answer was late.
    assertThat(decide(attached(), open(ECHO, false, 0, first))).isEqualTo(new Opening.AlreadyOpen());
    assertThat(decide(attached(), open(ECHO, true, 0, first))).isEqualTo(new Opening.AlreadyOpen());
  }

  @Test
  void aResumeTakesTheDevicesAcknowledgementAndTheLiveOne() {
    // A new connection taking the session over (confirmed) from the attached one.
    Opening.Opens resumed = (Opening.Opens) Opening.decide("dev/room", attached(),
        open(ECHO, true, 2, second).confirm(first), 0, 0, AT);
    assertThat(((Opened) resumed.events().get(0)).downlinkAcked()).isEqualTo(2);
    Opening.Opens live = (Opening.Opens) Opening.decide("dev/room", attached(),
        open(ECHO, false, 0, second).confirm(first), 3, 0, AT);
    assertThat(((Opened) live.events().get(0)).downlinkAcked()).isEqualTo(3);
  }

  @Test
  void anHttpMappingThatReceivesOpenIsAskedWhereTheDataGoes() {
    Opened opened = (Opened) ((Opening.Opens) decide(SocketState.EMPTY, open(ASKS, false, 0, first))).events().get(0);
    assertThat(opened.asksEndpoint()).isTrue();
    Opened echo = (Opened) ((Opening.Opens) decide(SocketState.EMPTY, open(ECHO, false, 0, first))).events().get(0);
    assertThat(echo.asksEndpoint()).isFalse();
  }

  @Test
  void aPairSocketWaitsAtItsPairingPointFromTheFirstMoment() {
    Opening.Opens opens = (Opening.Opens) decide(SocketState.EMPTY, open(PAIR, false, 0, first));
    assertThat(opens.pairs()).isTrue();
    LinkRequested waiting = (LinkRequested) opens.events().get(1);
    assertThat(waiting.peer()).isEmpty();
    assertThat(waiting.linkId()).isEmpty();
    assertThat(waiting.deadlineMillis()).isEqualTo(1_000 + PAIR.linkWaitMs());
  }

  @Test
  void aPairSocketWithoutANameHasNoPairingPointToWaitAt() {
    Opening.Opens opens = (Opening.Opens) Opening.decide("dev", SocketState.EMPTY,
        new Open("dev", PAIR, false, 0, first, "n"), 0, 0, AT);
    assertThat(opens.pairs()).as("it still goes to say it cannot pair").isTrue();
    assertThat(opens.events()).hasSize(1);
  }
}
