package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.Push;
import io.berth.node.edge.api.ToEdge.SessionEnded;
import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.SocketState;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketStatus;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResult;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class SocketEntityTest {

  private static final Config CONFIG = ConfigFactory.parseString("""
          pekko.actor.provider = cluster
          pekko.remote.artery.canonical.port = 0
          pekko.remote.artery.canonical.hostname = 127.0.0.1
          """)
      .withFallback(EventSourcedBehaviorTestKit.config())
      .withFallback(ConfigFactory.load());

  private static final ActorTestKit KIT = ActorTestKit.create("SocketEntityTest", CONFIG);

  private static final SocketSettings SETTINGS =
      new SocketSettings("echo", 8, 1 << 20, 4, 128 * 1024, Duration.ofSeconds(30), 1000, Duration.ofSeconds(3),
          Duration.ZERO);

  private String socketId;
  private EventSourcedBehaviorTestKit<SocketCommand, SocketEvent, SocketState> entity;
  private TestProbe<ToEdge> edge;
  /** Stands for the shard of the entities that may sleep ({@link #openSleepy}). */
  private TestProbe<ClusterSharding.ShardCommand> shard;

  @AfterAll
  static void shutdown() {
    KIT.shutdownTestKit();
  }

  @BeforeEach
  void setUp() {
    socketId = "dev-" + UUID.randomUUID().toString().substring(0, 8);
    entity = EventSourcedBehaviorTestKit.create(KIT.system(), SocketEntity.create(socketId, SETTINGS));
    edge = KIT.createTestProbe(ToEdge.class);
    shard = KIT.createTestProbe(ClusterSharding.ShardCommand.class);
  }

  private void open(TestProbe<ToEdge> by, String mapping) {
    entity.runCommand(new SocketCommand.Open(socketId, Mapping.builtinDefault(mapping), false, 0, by.getRef(), "edge-node"));
    by.expectMessageClass(Welcomed.class);
  }

  /** A resuming open of the echo socket from another connection, {@code by}. */
  private SocketCommand.Open resumeBy(TestProbe<ToEdge> by, long lastReceived) {
    return new SocketCommand.Open(socketId, Mapping.builtinDefault("echo"), true, lastReceived, by.getRef(), "n");
  }

  private static List<Frame.Data> frames(long from, long to) {
    List<Frame.Data> out = new ArrayList<>();
    for (long s = from; s <= to; s++) {
      out.add(new Frame.Data(s, ("f" + s).getBytes(StandardCharsets.UTF_8)));
    }
    return out;
  }

  @Test
  void openPersistsTheEdgeAndWelcomesWithTheWatermarks() {
    CommandResult<SocketCommand, SocketEvent, SocketState> result = entity.runCommand(
        new SocketCommand.Open(socketId, Mapping.builtinDefault("echo"), false, 0, edge.getRef(), "edge-node"));
    assertThat(result.event()).isInstanceOf(Opened.class);
    assertThat(result.state().status()).isEqualTo(Status.OPEN);
    assertThat(result.state().edge()).isEqualTo(edge.getRef());
    Welcomed w = edge.expectMessageClass(Welcomed.class);
    assertThat(w.socketId()).isEqualTo(socketId);
    assertThat(w.lastAccepted()).isZero();
    assertThat(w.downlinkAcked()).isZero();
  }

  @Test
  void aBatchIsOneEventThenConfirmedAndEchoed() {
    open(edge, "echo");
    CommandResult<SocketCommand, SocketEvent, SocketState> result = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    assertThat(result.events()).hasSize(1);
    Accepted accepted = (Accepted) result.event();
    assertThat(accepted.lastAccepted()).isEqualTo(3);
    assertThat(accepted.outbound()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L);
    assertThat(edge.expectMessageClass(Delivered.class)).isEqualTo(new Delivered(3, 3, false));
    assertThat(edge.expectMessageClass(Push.class).frames()).isEqualTo(frames(1, 3));
  }

  @Test
  void replaysAtOrBelowTheWatermarkAreDroppedNotDeliveredAgain() {
    open(edge, "discard");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    edge.expectMessage(new Delivered(3, 3, false));
    CommandResult<SocketCommand, SocketEvent, SocketState> replay = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(2, 5)));
    Accepted accepted = (Accepted) replay.event();
    assertThat(accepted.frames()).isEqualTo(2);
    assertThat(accepted.duplicates()).isEqualTo(2);
    assertThat(replay.state().counters().framesIn()).isEqualTo(5);
    edge.expectMessage(new Delivered(5, 5, false));

    CommandResult<SocketCommand, SocketEvent, SocketState> allOld = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 5)));
    assertThat(allOld.hasNoEvents()).isTrue();
    edge.expectMessage(new Delivered(5, 5, false));
  }

  @Test
  void aGapStopsAcceptanceAtTheWatermarkAndAsksTheEdgeToResend() {
    open(edge, "discard");
    CommandResult<SocketCommand, SocketEvent, SocketState> gap = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(2, 4)));
    assertThat(gap.hasNoEvents()).isTrue();
    edge.expectMessage(new Delivered(0, 0, false, true));
  }

  @Test
  void aFullOutboxRefusesMoreUplinkUntilTheDeviceAcknowledges() {
    open(edge, "echo");
    // max-outbox-frames is 8: the 9th echo does not fit.
    CommandResult<SocketCommand, SocketEvent, SocketState> result = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 12)));
    assertThat(((Accepted) result.event()).lastAccepted()).isEqualTo(8);
    edge.expectMessage(new Delivered(8, 8, true));
    // downlink-window is 4: only 4 frames are pushed before the device acknowledges.
    assertThat(edge.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L, 4L);
    entity.runCommand(new SocketCommand.DownlinkAck(edge.getRef(), 4));
    assertThat(edge.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq).containsExactly(5L, 6L, 7L, 8L);
    edge.expectMessage(ToEdge.Resume.INSTANCE);
    CommandResult<SocketCommand, SocketEvent, SocketState> resumed = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(9, 12)));
    assertThat(((Accepted) resumed.event()).lastAccepted()).isEqualTo(12);
    assertThat(((Accepted) resumed.event()).downlinkAcked()).isEqualTo(4);
  }

  @Test
  void aSecondOpenTakesTheSessionOverOnceItsConnectionConfirmsAndTheOldEdgeIsClosed() {
    open(edge, "echo");
    TestProbe<ToEdge> newer = KIT.createTestProbe(ToEdge.class);
    SocketCommand.Open second = resumeBy(newer, 0);
    assertThat(entity.runCommand(second).hasNoEvents()).isTrue();
    newer.expectMessage(new ToEdge.ConfirmTakeover(edge.getRef()));
    edge.expectNoMessage(Duration.ofMillis(100));
    entity.runCommand(second.confirm(edge.getRef()));
    newer.expectMessageClass(Welcomed.class);
    assertThat(edge.expectMessageClass(SessionEnded.class).closeCode()).isEqualTo(CloseCode.REPLACED.wire);

    CommandResult<SocketCommand, SocketEvent, SocketState> stale = entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 1)));
    assertThat(stale.hasNoEvents()).isTrue();
    assertThat(edge.expectMessageClass(SessionEnded.class).closeCode()).isEqualTo(CloseCode.REPLACED.wire);
    assertThat(stale.state().edge()).isEqualTo(newer.getRef());
  }

  /**
   * An open that waited in a shard region while its device gave up on it (ERROR 500) and
   * connected elsewhere: its connection is gone and never confirms, so the live one keeps the
   * session (PROTOCOL.md#takeover).
   */
  @Test
  void anOpenWhoseConnectionWasAbandonedNeverReplacesTheLiveOne() {
    open(edge, "echo");
    TestProbe<ToEdge> abandoned = KIT.createTestProbe(ToEdge.class);
    SocketCommand.Open stale = resumeBy(abandoned, 0);
    abandoned.stop();
    CommandResult<SocketCommand, SocketEvent, SocketState> result = entity.runCommand(stale);
    assertThat(result.hasNoEvents()).isTrue();
    assertThat(result.state().edge()).isEqualTo(edge.getRef());
    CommandResult<SocketCommand, SocketEvent, SocketState> still =
        entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
    assertThat(((Accepted) still.event()).lastAccepted()).isEqualTo(2);
    assertThat(edge.expectMessageClass(Delivered.class)).isEqualTo(new Delivered(2, 2, false));
    assertThat(edge.expectMessageClass(Push.class).frames()).hasSize(2);
    edge.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void dataOfAPairSocketThatIsNotLinkedIsRefusedNotAcknowledged() {
    // No socket name: nothing to pair on, so the socket is told LINK timeout and is not linked.
    open(edge, "pair");
    edge.expectMessageClass(ToEdge.LinkChanged.class);
    CommandResult<SocketCommand, SocketEvent, SocketState> result =
        entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    assertThat(result.hasNoEvents()).isTrue();
    assertThat(result.state().lastAccepted()).isZero();
    ToEdge.DataRefused refused = edge.expectMessageClass(ToEdge.DataRefused.class);
    assertThat(refused.errorCode()).isEqualTo(io.berth.protocol.ErrorCode.NO_DESTINATION.wire);
    assertThat(refused.reason()).contains("pair").contains("not linked");
  }

  /**
   * A connection confirmed just before its edge gave up, whose confirmation arrives after the
   * device's next connection took the session: it was confirmed against another connection, so
   * it is asked again, and being gone, does not answer.
   */
  @Test
  void aLateConfirmationCannotReplaceAConnectionMadeAfterIt() {
    open(edge, "echo");
    TestProbe<ToEdge> late = KIT.createTestProbe(ToEdge.class);
    SocketCommand.Open lateOpen = resumeBy(late, 0);
    entity.runCommand(lateOpen);
    late.expectMessage(new ToEdge.ConfirmTakeover(edge.getRef()));
    // Meanwhile the device's next connection takes the session over.
    TestProbe<ToEdge> next = KIT.createTestProbe(ToEdge.class);
    SocketCommand.Open nextOpen = resumeBy(next, 0);
    entity.runCommand(nextOpen);
    next.expectMessage(new ToEdge.ConfirmTakeover(edge.getRef()));
    entity.runCommand(nextOpen.confirm(edge.getRef()));
    next.expectMessageClass(Welcomed.class);
    // The late confirmation names the connection it meant to replace, which is gone.
    CommandResult<SocketCommand, SocketEvent, SocketState> result = entity.runCommand(lateOpen.confirm(edge.getRef()));
    assertThat(result.hasNoEvents()).isTrue();
    assertThat(result.state().edge()).isEqualTo(next.getRef());
    late.expectMessage(new ToEdge.ConfirmTakeover(next.getRef()));
    next.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void resumingDropsTheDownlinkFramesTheDeviceAlreadyHas() {
    open(edge, "echo");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    edge.expectMessageClass(Delivered.class);
    edge.expectMessageClass(Push.class);
    TestProbe<ToEdge> again = KIT.createTestProbe(ToEdge.class);
    // The first connection is still attached: the new one confirms it wants the session.
    SocketCommand.Open resume = resumeBy(again, 2);
    entity.runCommand(resume);
    again.expectMessage(new ToEdge.ConfirmTakeover(edge.getRef()));
    CommandResult<SocketCommand, SocketEvent, SocketState> reopened = entity.runCommand(resume.confirm(edge.getRef()));
    assertThat(reopened.state().outbox()).extracting(Frame.Data::seq).containsExactly(3L);
    Welcomed w = again.expectMessageClass(Welcomed.class);
    assertThat(w.lastAccepted()).isEqualTo(3);
    assertThat(w.downlinkAcked()).isEqualTo(2);
    assertThat(again.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq).containsExactly(3L);
  }

  @Test
  void aResumeClaimingDownlinkFramesNeverSentIsRefusedAndTheOutboxKept() {
    open(edge, "echo");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    edge.expectMessageClass(Delivered.class);
    edge.expectMessageClass(Push.class);
    TestProbe<ToEdge> stale = KIT.createTestProbe(ToEdge.class);
    CommandResult<SocketCommand, SocketEvent, SocketState> refused = entity.runCommand(resumeBy(stale, 4));
    assertThat(refused.hasNoEvents()).isTrue();
    assertThat(refused.state().outbox()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L);
    ToEdge.OpenRejected r = stale.expectMessageClass(ToEdge.OpenRejected.class);
    assertThat(r.errorCode()).isEqualTo(ErrorCode.BAD_SEQUENCE.wire);
    assertThat(r.reason()).contains("lastReceived 4", "last downlink seq 3");
  }

  @Test
  void closeEndsTheSessionAndDiscardsPendingDownlink() {
    open(edge, "echo");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
    CommandResult<SocketCommand, SocketEvent, SocketState> closed =
        entity.runCommand(new SocketCommand.Close(edge.getRef(), CloseCode.NORMAL.wire, "bye"));
    assertThat(closed.event()).isEqualTo(new Closed(CloseCode.NORMAL.wire, "bye", 2, ((Closed) closed.event()).at()));
    assertThat(closed.state().status()).isEqualTo(Status.CLOSED);
    assertThat(closed.state().outbox()).isEmpty();
    assertThat(closed.state().downlinkAcked()).isEqualTo(2);
    edge.fishForMessage(Duration.ofSeconds(3), m -> m instanceof SessionEnded
        ? org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.complete()
        : org.apache.pekko.actor.testkit.typed.javadsl.FishingOutcomes.continueAndIgnore());

    TestProbe<ToEdge> reopened = KIT.createTestProbe(ToEdge.class);
    entity.runCommand(new SocketCommand.Open(socketId, Mapping.builtinDefault("echo"), false, 0, reopened.getRef(), "edge-node"));
    Welcomed w = reopened.expectMessageClass(Welcomed.class);
    assertThat(w.lastAccepted()).as("numbering continues after a close").isEqualTo(2);
    assertThat(w.downlinkAcked()).isEqualTo(2);
  }

  @Test
  void stateIsRecoveredAfterARestart() {
    open(edge, "echo");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 5)));
    entity.runCommand(new SocketCommand.DownlinkAck(edge.getRef(), 3));
    SocketState before = entity.getState();
    EventSourcedBehaviorTestKit.RestartResult<SocketState> restarted = entity.restart();
    assertThat(restarted.state().lastAccepted()).isEqualTo(5);
    assertThat(restarted.state().lastDownlinkSeq()).isEqualTo(5);
    assertThat(restarted.state().outbox()).isEqualTo(before.outbox());
    assertThat(restarted.state().edge()).isEqualTo(edge.getRef());
    assertThat(restarted.state().counters()).isEqualTo(before.counters());
  }

  @Test
  void afterARestartPersistedAnswersArePushedEvenIfTheResendIsAllReplays() {
    open(edge, "echo");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    edge.expectMessageClass(Delivered.class);
    edge.expectMessageClass(Push.class);
    // The Push may have been lost with the node: the recovered entity pushes again...
    entity.restart();
    assertThat(edge.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L);
    // ...and so does an all-replay resend from the edge.
    entity.runCommand(new SocketCommand.Resync(edge.getRef(), 0));
    assertThat(edge.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L);
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
    edge.expectMessage(new Delivered(3, 3, false));
  }

  @Test
  void stoppingWritesTheDownlinkAcknowledgementsNotYetDurable() {
    // A command that stops the entity cannot go through runCommand: run it as a plain actor.
    ActorRef<SocketCommand> live = KIT.spawn(SocketEntity.create(socketId, SETTINGS));
    live.tell(new SocketCommand.Open(socketId, Mapping.builtinDefault("echo"), false, 0, edge.getRef(), "edge-node"));
    edge.expectMessageClass(Welcomed.class);
    live.tell(new SocketCommand.Deliver(edge.getRef(), frames(1, 4)));
    edge.expectMessage(new Delivered(4, 4, false));
    live.tell(new SocketCommand.DownlinkAck(edge.getRef(), 4));
    live.tell(SocketCommand.Stop.INSTANCE);
    edge.expectTerminated(live);

    ActorRef<SocketCommand> recovered = KIT.spawn(SocketEntity.create(socketId, SETTINGS));
    TestProbe<SocketStatus> probe = KIT.createTestProbe(SocketStatus.class);
    recovered.tell(new SocketCommand.GetStatus(probe.getRef()));
    SocketStatus status = probe.expectMessageClass(SocketStatus.class);
    assertThat(status.downlinkAcked()).isEqualTo(4);
    assertThat(status.outboxFrames()).isZero();
  }

  private static final SocketSettings SLEEPY = new SocketSettings("echo", 8, 1 << 20, 4, 128 * 1024,
      Duration.ofSeconds(30), 1000, Duration.ofSeconds(3), Duration.ofSeconds(1));

  /** A socket entity outside sharding, with {@link #shard} for its shard; opened by {@link #edge}. */
  private ActorRef<SocketCommand> openSleepy(String mapping) {
    ActorRef<SocketCommand> live = KIT.spawn(SocketEntity.create(socketId, SLEEPY, shard.getRef()));
    live.tell(new SocketCommand.Open(socketId, Mapping.builtinDefault(mapping), false, 0, edge.getRef(), "edge-node"));
    edge.expectMessageClass(Welcomed.class);
    return live;
  }

  /** The entity tells its edge it sleeps and asks its shard to passivate it; sharding then stops it. */
  private void expectSleepThenStop(ActorRef<SocketCommand> live) {
    edge.expectMessage(Duration.ofSeconds(5), ToEdge.Sleeping.INSTANCE);
    assertThat(shard.expectMessageClass(ClusterSharding.Passivate.class).entity()).isEqualTo(live);
    live.tell(SocketCommand.Stop.INSTANCE);
    edge.expectTerminated(live);
  }

  private List<Object> journal() {
    return PersistenceTestKit.create(KIT.system()).persistedInStorage("socket|" + socketId);
  }

  @Test
  void aQuietAttachedSocketSleepsWithoutWritingAndWakesAttached() {
    ActorRef<SocketCommand> live = openSleepy("discard");
    live.tell(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
    edge.expectMessage(new Delivered(2, 2, false));
    int written = journal().size();
    expectSleepThenStop(live);
    // Nothing to write, and no Moving: the edge has nothing to send again.
    assertThat(journal()).hasSize(written);
    edge.expectNoMessage(Duration.ofMillis(200));

    ActorRef<SocketCommand> woken = KIT.spawn(SocketEntity.create(socketId, SLEEPY, shard.getRef()));
    woken.tell(new SocketCommand.Deliver(edge.getRef(), frames(3, 3)));
    edge.expectMessage(new Delivered(3, 3, false));
  }

  @Test
  void aStopTheSocketDidNotAskForIsAHandoff() {
    ActorRef<SocketCommand> live = openSleepy("discard");
    live.tell(SocketCommand.Stop.INSTANCE);
    edge.expectMessage(ToEdge.Moving.INSTANCE);
    edge.expectTerminated(live);
    shard.expectNoMessage(Duration.ZERO);
    assertThat(journal()).last().isInstanceOf(SocketEvent.Suspended.class);
  }

  @Test
  void aSocketWithDownlinkUnacknowledgedStaysAwakeUntilTheDeviceAcknowledges() {
    ActorRef<SocketCommand> live = openSleepy("echo");
    live.tell(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
    edge.expectMessage(new Delivered(2, 2, false));
    edge.expectMessageClass(Push.class);
    edge.expectNoMessage(Duration.ofSeconds(2));
    shard.expectNoMessage(Duration.ZERO);
    live.tell(new SocketCommand.DownlinkAck(edge.getRef(), 2));
    expectSleepThenStop(live);
    // The device's acknowledgement was written on the way to sleep.
    assertThat(journal()).last().isInstanceOf(SocketEvent.DownlinkAcked.class);
  }

  @Test
  void framesThatArriveAfterTheSocketAskedToSleepAreSentAgainAtOnce() {
    ActorRef<SocketCommand> live = openSleepy("discard");
    edge.expectMessage(Duration.ofSeconds(5), ToEdge.Sleeping.INSTANCE);
    shard.expectMessageClass(ClusterSharding.Passivate.class);
    // Between the entity's request and sharding's stop: taken, then the edge is told to resend
    // whatever may sit behind the stop (the next incarnation drops what it already has).
    live.tell(new SocketCommand.Deliver(edge.getRef(), frames(1, 1)));
    live.tell(SocketCommand.Stop.INSTANCE);
    edge.expectMessage(new Delivered(1, 1, false));
    edge.expectMessage(ToEdge.Moving.INSTANCE);
    edge.expectTerminated(live);
    assertThat(journal()).noneMatch(e -> e instanceof SocketEvent.Suspended);
  }

  @Test
  void aSleepingSocketIsDetachedWhenToldItsEdgeStopped() {
    expectSleepThenStop(openSleepy("discard"));

    ActorRef<SocketCommand> woken = KIT.spawn(SocketEntity.create(socketId, SLEEPY, shard.getRef()));
    woken.tell(new SocketCommand.EdgeTerminated(edge.getRef()));
    TestProbe<SocketStatus> probe = KIT.createTestProbe(SocketStatus.class);
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> {
      woken.tell(new SocketCommand.GetStatus(probe.getRef()));
      return probe.expectMessageClass(SocketStatus.class).state().equals("detached");
    });
  }

  @Test
  void aDeviceCannotOpenAnotherDevicesSocket() {
    entity.runCommand(new SocketCommand.Open("intruder", Mapping.builtinDefault("echo"), false, 0, edge.getRef(), "edge-node"));
    assertThat(edge.expectMessageClass(ToEdge.OpenRejected.class).reason()).contains("does not belong");
    assertThat(entity.getState().status()).isEqualTo(Status.NEW);
  }

  @Test
  void theSocketIsDetachedWhenItsEdgeStopsAndAnyOpenThenAttachesAtOnce() {
    TestProbe<ToEdge> shortLived = KIT.createTestProbe(ToEdge.class);
    open(shortLived, "echo");
    shortLived.stop();
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(5))
        .until(() -> entity.getState().status() == Status.DETACHED);
    assertThat(entity.getState().edge()).isNull();
    // No live connection to protect: no confirmation asked.
    open(edge, "echo");
  }

  private static final Mapping HTTP_OPEN_ONLY = new Mapping("decider", 1, "http://127.0.0.1:9/hook",
      java.util.EnumSet.of(Mapping.Event.OPEN), Mapping.Criteria.NONE, 1000, Mapping.Retry.DEFAULT, "s", 30_000, false);

  /**
   * Where an HTTP mapping's data goes is known only once its endpoint answered open: the
   * question is part of the session, so that a new incarnation asks again.
   */
  @Test
  void anOpenWaitingForItsEndpointsAnswerIsPartOfTheSessionUntilAnswered() {
    SocketState opened = SocketEntity.apply(SocketState.EMPTY, new Opened("d", HTTP_OPEN_ONLY, edge.getRef(), "n", 0,
        java.time.Instant.now(), true));
    assertThat(opened.openPending()).isEqualTo(1);
    SocketState reopened = SocketEntity.apply(opened, new Opened("d", HTTP_OPEN_ONLY, edge.getRef(), "n", 0,
        java.time.Instant.now(), true));
    assertThat(reopened.openPending()).as("a new connection asks again").isEqualTo(2);
    SocketState staleAnswer = SocketEntity.apply(reopened, new SocketEvent.Answered("x:open:1", List.of(),
        java.time.Instant.now(), 1));
    assertThat(staleAnswer.openPending()).as("the answer to an earlier connection's open").isEqualTo(2);
    SocketState answered = SocketEntity.apply(reopened, new SocketEvent.Answered("x:open:2",
        frames(1, 1), java.time.Instant.now(), 2));
    assertThat(answered.openPending()).isZero();
    assertThat(answered.outbox()).hasSize(1);
    assertThat(SocketEntity.apply(opened, new Closed(1000, "bye", 0, java.time.Instant.now())).openPending())
        .isZero();
    assertThat(SocketEntity.apply(SocketState.EMPTY, new Opened("d", Mapping.builtinDefault("echo"), edge.getRef(), "n",
        0, java.time.Instant.now(), false)).openPending()).as("an open no endpoint is asked about").isZero();
  }

  @Test
  void statusReportsWhatOperatorsSee() {
    open(edge, "echo");
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
    TestProbe<SocketStatus> probe = KIT.createTestProbe(SocketStatus.class);
    entity.runCommand(new SocketCommand.GetStatus(probe.getRef()));
    SocketStatus s = probe.expectMessageClass(SocketStatus.class);
    assertThat(s.state()).isEqualTo("open");
    assertThat(s.deviceId()).isEqualTo(socketId);
    assertThat(s.edge()).isEqualTo("edge-node");
    assertThat(s.node()).startsWith("pekko://");
    assertThat(s.counters().framesIn()).isEqualTo(2);
    assertThat(s.outboxFrames()).isEqualTo(2);
  }

}
