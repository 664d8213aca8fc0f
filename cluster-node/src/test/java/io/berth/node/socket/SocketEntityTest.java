package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.TestEndpoint;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.edge.api.ToEdge.LinkChanged;
import io.berth.node.edge.api.ToEdge.Push;
import io.berth.node.edge.api.ToEdge.SessionEnded;
import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.link.Link;
import io.berth.node.link.PairingEntity;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.link.RelayMark;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.BatchStarted;
import io.berth.node.socket.SocketEvent.Closed;
import io.berth.node.socket.SocketEvent.LinkEnded;
import io.berth.node.socket.SocketEvent.LinkEstablished;
import io.berth.node.socket.SocketEvent.LinkOffered;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketEvent.Opened;
import io.berth.node.socket.SocketEvent.Relayed;
import io.berth.node.socket.SocketState;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.OperatorCloseResult;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketCommand.LinkDown;
import io.berth.node.socket.api.SocketCommand.LinkOffer;
import io.berth.node.socket.api.SocketCommand.LinkUp;
import io.berth.node.socket.api.SocketCommand.Relay;
import io.berth.node.socket.api.SocketCommand.RelayAck;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.TestDatabase;
import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.LinkStatus;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResult;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class SocketEntityTest {

  /** An HTTP endpoint's socket would park batches there (none of these tests parks one). */
  private static final DatabaseSettings DB = TestDatabase.settings();

  private static final Config CONFIG = ConfigFactory.parseString("""
          pekko.actor.provider = cluster
          pekko.remote.artery.canonical.port = 0
          pekko.remote.artery.canonical.hostname = 127.0.0.1
          berth.endpoints.allowed-hosts = ["127.0.0.1"]
          """)
      .withFallback(ConfigFactory.parseMap(Map.of("berth.db.url", DB.url(), "berth.db.user", DB.user(),
          "berth.db.password", DB.password())))
      .withFallback(EventSourcedBehaviorTestKit.config())
      .withFallback(ConfigFactory.load());

  private static final ActorTestKit KIT = ActorTestKit.create("SocketEntityTest", CONFIG);

  private static final SocketSettings SETTINGS =
      new SocketSettings("echo", 8, 1 << 20, 4, 128 * 1024, Duration.ofSeconds(30), 1000, Duration.ofSeconds(3),
          Duration.ZERO);

  private static final String SECRET = "endpoint-secret-0123456789";

  /**
   * What sharding delivers to other sockets, link entities and pairing points, by entity id: the
   * entity under test reaches its peer and its link through sharding, where these test probes
   * stand in for them ({@link #startStandIns}).
   */
  private static final Map<String, ActorRef<SocketCommand>> PEERS = new ConcurrentHashMap<>();
  private static final Map<String, ActorRef<PeerLinkEntity.Command>> LINKS = new ConcurrentHashMap<>();
  private static final Map<String, ActorRef<PairingEntity.Command>> PAIRING_POINTS = new ConcurrentHashMap<>();

  private String socketId;
  private EventSourcedBehaviorTestKit<SocketCommand, SocketEvent, SocketState> entity;
  private TestProbe<ToEdge> edge;
  /** Stands for the shard of the entities that may sleep ({@link #openSleepy}). */
  private TestProbe<ClusterSharding.ShardCommand> shard;
  /** The socket {@link #link} links this one to, and the link entity between them. */
  private String peerId;
  private TestProbe<SocketCommand> peer;
  private TestProbe<PeerLinkEntity.Command> links;

  @BeforeAll
  static void startStandIns() {
    Cluster cluster = Cluster.get(KIT.system());
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20))
        .until(() -> cluster.selfMember().status() == MemberStatus.up());
    ClusterSharding sharding = ClusterSharding.get(KIT.system());
    sharding.init(Entity.of(Sockets.ENTITY_KEY, ctx -> standIn(PEERS, ctx.getEntityId())));
    sharding.init(Entity.of(PeerLinkEntity.ENTITY_KEY, ctx -> standIn(LINKS, ctx.getEntityId())));
    sharding.init(Entity.of(PairingEntity.ENTITY_KEY, ctx -> standIn(PAIRING_POINTS, ctx.getEntityId())));
  }

  private static <M> Behavior<M> standIn(Map<String, ActorRef<M>> probes, String entityId) {
    return Behaviors.receiveMessage(m -> {
      ActorRef<M> probe = probes.get(entityId);
      if (probe != null) {
        probe.tell(m);
      }
      return Behaviors.same();
    });
  }

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
    peerId = "peer-" + UUID.randomUUID().toString().substring(0, 8);
    peer = KIT.createTestProbe(SocketCommand.class);
    PEERS.put(peerId, peer.getRef());
    links = KIT.createTestProbe(PeerLinkEntity.Command.class);
    LINKS.put(PeerLinkEntity.idOf(socketId, peerId), links.getRef());
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

  /**
   * MQTT QoS 1 resends (docs/mqtt-qos1-resends.md): the packet ids of the frames accepted on a
   * connection are journaled, and the next connection, and that one only, is handed them.
   */
  @Test
  void theNextConnectionLearnsThePacketIdsOfTheFramesAcceptedOnThePreviousOne() {
    // discard: no answers, so the outbox never stalls the frames.
    entity.runCommand(new SocketCommand.Open(socketId, Mapping.builtinDefault("discard"), true, 0, edge.getRef(), "n"));
    Welcomed first = edge.expectMessageClass(Welcomed.class);
    assertThat(first.existed()).isFalse();
    assertThat(first.resendable()).isNull();
    // Packet 9 (QoS 1) and a QoS 0 frame, then packet 65535.
    CommandResult<SocketCommand, SocketEvent, SocketState> taken = entity.runCommand(
        new SocketCommand.Deliver(edge.getRef(), frames(1, 2), new int[] {9, -1}));
    assertThat(((Accepted) taken.event()).tags()).hasSize(2);
    // Then packet 65535 and ids 1 to 7: the client rotates its ids (ResendTags.ROTATION_EVIDENCE).
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(3, 10), new int[] {65_535, 1, 2, 3, 4, 5, 6, 7}));
    assertThat(entity.getState().acceptedTags()).hasSize(18);
    // The tags come back from the journal (the node holding the session died).
    entity.restart();
    TestProbe<ToEdge> second = KIT.createTestProbe(ToEdge.class);
    SocketCommand.Open resume = resumeBy(second, 0);
    entity.runCommand(resume);
    second.expectMessageClass(ToEdge.ConfirmTakeover.class);
    entity.runCommand(resume.confirm(edge.getRef()));
    Welcomed w = second.expectMessageClass(Welcomed.class);
    assertThat(w.existed()).isTrue();
    assertThat(w.resendable()).hasSize(9).startsWith(
        ResendTags.resendable(9, ResendTags.fingerprint(ResendTags.tag(9, 0, "f1".getBytes(StandardCharsets.UTF_8)))),
        ResendTags.resendable(65_535, ResendTags.fingerprint(ResendTags.tag(1, 0, "f3".getBytes(StandardCharsets.UTF_8)))));
    TestProbe<ToEdge> third = KIT.createTestProbe(ToEdge.class);
    SocketCommand.Open again = resumeBy(third, 0);
    entity.runCommand(again);
    third.expectMessageClass(ToEdge.ConfirmTakeover.class);
    entity.runCommand(again.confirm(second.getRef()));
    assertThat(third.expectMessageClass(Welcomed.class).resendable())
        .as("nothing was accepted on the connection before").isNull();
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
    woken.tell(new SocketCommand.EdgeTerminated(edge.getRef(), true));
    // Answered once detached: the connection's actor may stop now.
    edge.expectMessage(Duration.ofSeconds(5), ToEdge.Detached.INSTANCE);
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

  /**
   * A connection's actor that ends waits for this answer before it stops: what it sent before
   * (a downlink ACK, a CLOSE) then reached the entity, and the death watch cannot overtake it.
   */
  @Test
  void anEdgeThatTellsItsEndIsAnsweredOnceDetached() {
    open(edge, "echo");
    TestProbe<ToEdge> earlier = KIT.createTestProbe(ToEdge.class);
    entity.runCommand(new SocketCommand.EdgeTerminated(earlier.getRef(), true));
    earlier.expectMessage(ToEdge.Detached.INSTANCE);
    assertThat(entity.getState().status()).as("another connection's end").isEqualTo(Status.OPEN);

    entity.runCommand(new SocketCommand.EdgeTerminated(edge.getRef(), true));
    assertThat(entity.getState().status()).isEqualTo(Status.DETACHED);
    edge.expectMessage(ToEdge.Detached.INSTANCE);
    // The death watch's word asks for no answer: nobody is left to hear it.
    entity.runCommand(SocketCommand.EdgeTerminated.watched(edge.getRef()));
    edge.expectNoMessage(Duration.ofMillis(200));
  }

  /**
   * A session not attached to the connection answers its end at once, whatever its status: never
   * opened, or closed by the connection's own CLOSE (whose answer comes first). The death watch's
   * word still detaches an attached session, silently.
   */
  @Test
  void anEndIsAnsweredInEveryStatusAndTheWatchStillDetaches() {
    TestProbe<ToEdge> stranger = KIT.createTestProbe(ToEdge.class);
    entity.runCommand(new SocketCommand.EdgeTerminated(stranger.getRef(), true));
    stranger.expectMessage(ToEdge.Detached.INSTANCE);
    assertThat(entity.getState().status()).isEqualTo(Status.NEW);

    open(edge, "echo");
    entity.runCommand(SocketCommand.EdgeTerminated.watched(edge.getRef()));
    assertThat(entity.getState().status()).isEqualTo(Status.DETACHED);
    edge.expectNoMessage(Duration.ofMillis(200));

    open(edge, "echo");
    entity.runCommand(new SocketCommand.Close(edge.getRef(), CloseCode.NORMAL.wire, "bye"));
    entity.runCommand(new SocketCommand.EdgeTerminated(edge.getRef(), true));
    edge.expectMessage(new SessionEnded(CloseCode.NORMAL.wire, "session closed"));
    edge.expectMessage(ToEdge.Detached.INSTANCE);
    assertThat(entity.getState().status()).isEqualTo(Status.CLOSED);
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

  // ------------------------------------------------------------------ peer links: relay

  private String linkId() {
    return PeerLinkEntity.idOf(socketId, peerId);
  }

  /** Links the open socket to {@link #peerId} as its link entity does: offered, accepted, up. */
  private void link() {
    assertThat(entity.runCommand(new LinkOffer(linkId(), peerId)).event()).isInstanceOf(LinkOffered.class);
    assertThat(links.expectMessageClass(PeerLinkEntity.Accept.class)).isEqualTo(new PeerLinkEntity.Accept(socketId));
    CommandResult<SocketCommand, SocketEvent, SocketState> up = entity.runCommand(new LinkUp(linkId(), peerId));
    assertThat(up.event()).isEqualTo(new LinkEstablished(linkId(), peerId, ((LinkEstablished) up.event()).at()));
    edge.expectMessage(new LinkChanged(LinkStatus.LINKED.wire, peerId, ""));
  }

  /** The events written since the journal held {@code before}: by commands and by what the entity tells itself. */
  private List<Object> writtenSince(int before) {
    List<Object> all = journal();
    return all.subList(before, all.size());
  }

  private static Frame.Data data(long seq, String text) {
    return new Frame.Data(seq, text.getBytes(StandardCharsets.UTF_8));
  }

  /** A mapping whose endpoint is {@code endpoint}, a real HTTP server on loopback. */
  private static Mapping http(TestEndpoint endpoint, EnumSet<Mapping.Event> events, Mapping.Retry retry) {
    return new Mapping("hook", 1, endpoint.url(), events, Mapping.Criteria.NONE, 5_000, retry, SECRET, 30_000, false);
  }

  private void openWith(Mapping mapping) {
    entity.runCommand(new SocketCommand.Open(socketId, mapping, false, 0, edge.getRef(), "edge-node"));
    edge.expectMessageClass(Welcomed.class);
  }

  /**
   * The peer's frames (its numbers 11 to 13, going on from its earlier sessions) become this
   * socket's downlink 1 to 3 in one write, its device gets them, and the peer is told how far
   * this socket took its frames and, as the device acknowledges, which of its numbers that covers.
   */
  @Test
  void aRelayFromThePeerIsWrittenToTheOutboxPushedAndAnsweredWithWhatWasTakenAndAcknowledged() {
    open(edge, "echo");
    link();
    int before = journal().size();
    entity.runCommand(new Relay(peerId, 10, frames(11, 13)));
    peer.expectMessage(new RelayAck(socketId, 13, 0, false));
    assertThat(edge.expectMessageClass(Push.class).frames()).containsExactly(data(1, "f11"), data(2, "f12"),
        data(3, "f13"));
    List<Object> written = writtenSince(before);
    assertThat(written).hasSize(1);
    Relayed relayed = (Relayed) written.get(0);
    assertThat(relayed).isEqualTo(new Relayed(peerId, 13, List.of(data(1, "f11"), data(2, "f12"), data(3, "f13")),
        11, relayed.at()));
    SocketState state = entity.getState();
    assertThat(state.lastDownlinkSeq()).isEqualTo(3);
    assertThat(state.outbox()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L);
    assertThat(state.counters().relayedIn()).isEqualTo(3);
    assertThat(state.link()).extracting(Link::relayIn, Link::marks, Link::framesIn)
        .containsExactly(13L, List.of(new RelayMark(1, 3, 11)), 3L);

    // Downlink 2 carried the peer's 12.
    entity.runCommand(new SocketCommand.DownlinkAck(edge.getRef(), 2));
    peer.expectMessage(new RelayAck(socketId, 13, 12, false));
  }

  @Test
  void aRelayIsTakenOnceAndInOrderSkippingWhatWasTakenAndNothingPastAGap() {
    open(edge, "discard");
    link();
    entity.runCommand(new Relay(peerId, 0, frames(1, 2)));
    peer.expectMessage(new RelayAck(socketId, 2, 0, false));
    int before = journal().size();
    entity.runCommand(new Relay(peerId, 0, frames(2, 4)));
    peer.expectMessage(new RelayAck(socketId, 4, 0, false));
    List<Object> written = writtenSince(before);
    assertThat(written).hasSize(1);
    Relayed relayed = (Relayed) written.get(0);
    assertThat(relayed).isEqualTo(new Relayed(peerId, 4, List.of(data(3, "f3"), data(4, "f4")), 3, relayed.at()));

    // 5 never came: 6 and 7 are not taken, and the peer hears at once where this socket stands.
    CommandResult<SocketCommand, SocketEvent, SocketState> gap = entity.runCommand(new Relay(peerId, 0, frames(6, 7)));
    assertThat(gap.hasNoEvents()).isTrue();
    peer.expectMessage(new RelayAck(socketId, 4, 0, false));
    assertThat(journal()).hasSize(before + 1);
    SocketState state = entity.getState();
    assertThat(state.lastDownlinkSeq()).isEqualTo(4);
    assertThat(state.link().relayIn()).isEqualTo(4);
    assertThat(state.link().marks()).containsExactly(new RelayMark(1, 2, 1), new RelayMark(3, 4, 3));
  }

  @Test
  void aRelayThatWouldOverfillTheOutboxIsTakenUpToItsLimitAndThePeerToldItIsFullUntilTheDeviceMakesRoom() {
    open(edge, "discard");
    link();
    // max-outbox-frames is 8.
    entity.runCommand(new Relay(peerId, 0, frames(1, 10)));
    peer.expectMessage(new RelayAck(socketId, 8, 0, true));
    assertThat(entity.getState().lastDownlinkSeq()).isEqualTo(8);
    assertThat(edge.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq)
        .containsExactly(1L, 2L, 3L, 4L);
    // Half the outbox free again: the peer may send the rest (and the edge hears Resume, as after
    // refused uplink: the flag is shared).
    entity.runCommand(new SocketCommand.DownlinkAck(edge.getRef(), 4));
    assertThat(edge.expectMessageClass(Push.class).frames()).extracting(Frame.Data::seq)
        .containsExactly(5L, 6L, 7L, 8L);
    peer.expectMessage(new RelayAck(socketId, 8, 4, false));
    edge.expectMessage(ToEdge.Resume.INSTANCE);
  }

  /**
   * While linked the device's data goes to the peer, not to the mapping, within the downlink
   * window; it is acknowledged (the watermark moves, the edge ACKs) only as far as the peer's
   * device acknowledged it.
   */
  @Test
  void dataWhileLinkedIsRelayedWithinTheWindowAndAcceptedAsFarAsThePeersDeviceAcknowledgedIt() {
    open(edge, "echo");
    link();
    CommandResult<SocketCommand, SocketEvent, SocketState> held = entity.runCommand(new SocketCommand.Deliver(edge.getRef(),
        frames(1, 6)));
    assertThat(held.hasNoEvents()).isTrue();
    edge.expectMessage(new Delivered(0, 6, false, false));
    peer.expectMessage(new Relay(socketId, 0, frames(1, 4)));
    entity.runCommand(new RelayAck(peerId, 4, 0, false));
    peer.expectMessage(new Relay(socketId, 4, frames(5, 6)));

    int before = journal().size();
    entity.runCommand(new RelayAck(peerId, 6, 3, false));
    edge.expectMessage(new Delivered(3, 6, false));
    List<Object> written = writtenSince(before);
    assertThat(written).hasSize(1);
    Accepted accepted = (Accepted) written.get(0);
    assertThat(accepted).isEqualTo(new Accepted(3, 0, 3, 6, 0, List.of(), 0, null, null, accepted.at()));
    assertThat(entity.getState().lastAccepted()).isEqualTo(3);
    assertThat(entity.getState().lastDownlinkSeq()).as("nothing went to the echo endpoint").isZero();
    peer.expectNoMessage(Duration.ofMillis(100));
  }

  @Test
  void aPeerThatSaysItsOutboxIsFullGetsNothingMoreUntilItHasRoom() {
    open(edge, "echo");
    link();
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 6)));
    peer.expectMessage(new Relay(socketId, 0, frames(1, 4)));
    entity.runCommand(new RelayAck(peerId, 2, 0, true));
    peer.expectNoMessage(Duration.ofMillis(200));
    entity.runCommand(new RelayAck(peerId, 2, 0, false));
    peer.expectMessage(new Relay(socketId, 2, frames(3, 6)));
  }

  // ------------------------------------------------------------------ peer links: unlinked

  /**
   * The link ended and the peer had taken frames up to 3: those are delivered (one write with
   * the link's end); 4 and 5 were not, and the edge sends them again, to go where the socket's
   * data goes now (here its echo endpoint).
   */
  @Test
  void anUnlinkAcceptsWhatThePeerTookAndTheEdgeSendsTheRestAgainToWhereDataGoesNow() {
    open(edge, "echo");
    link();
    entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 5)));
    edge.expectMessage(new Delivered(0, 5, false, false));
    peer.expectMessage(new Relay(socketId, 0, frames(1, 4)));

    CommandResult<SocketCommand, SocketEvent, SocketState> down = entity.runCommand(new LinkDown(linkId(), peerId,
        LinkStatus.UNLINKED.wire, "peer left", 3));
    assertThat(down.events()).hasSize(2);
    Accepted accepted = (Accepted) down.events().get(0);
    assertThat(accepted).isEqualTo(new Accepted(3, 0, 3, 6, 0, List.of(), 0, null, null, accepted.at()));
    assertThat(down.events().get(1)).isEqualTo(new LinkEnded(linkId(), accepted.at()));
    assertThat(down.state().link()).isNull();
    assertThat(down.state().lastAccepted()).isEqualTo(3);
    edge.expectMessage(new LinkChanged(LinkStatus.UNLINKED.wire, peerId, "peer left"));
    edge.expectMessage(new Delivered(3, 3, false, true));

    CommandResult<SocketCommand, SocketEvent, SocketState> again = entity.runCommand(new SocketCommand.Deliver(edge.getRef(),
        frames(4, 5)));
    assertThat(((Accepted) again.event()).lastAccepted()).isEqualTo(5);
    edge.expectMessage(new Delivered(5, 5, false));
    assertThat(edge.expectMessageClass(Push.class).frames()).containsExactly(data(1, "f4"), data(2, "f5"));
  }

  /** With an HTTP endpoint that takes data, the frames held after the peer's mark go to it at once. */
  @Test
  void anUnlinkHandsTheFramesHeldAfterThePeersMarkToTheHttpEndpoint() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      openWith(http(endpoint, EnumSet.of(Mapping.Event.DATA), Mapping.Retry.DEFAULT));
      link();
      entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 4)));
      edge.expectMessage(new Delivered(0, 4, false, false));
      peer.expectMessage(new Relay(socketId, 0, frames(1, 4)));

      int before = journal().size();
      entity.runCommand(new LinkDown(linkId(), peerId, LinkStatus.UNLINKED.wire, "peer left", 2));
      edge.expectMessage(new LinkChanged(LinkStatus.UNLINKED.wire, peerId, "peer left"));
      edge.expectMessage(new Delivered(4, 4, false));
      List<Object> written = writtenSince(before);
      assertThat(written).extracting(Object::getClass).containsExactly(Accepted.class, LinkEnded.class,
          BatchStarted.class, Accepted.class);
      assertThat(((Accepted) written.get(0)).lastAccepted()).isEqualTo(2);
      String batchId = socketId + ":3.0";
      BatchStarted batch = (BatchStarted) written.get(2);
      assertThat(batch).isEqualTo(new BatchStarted(batchId, 3, 0, 4, 2, true, batch.at()));
      Accepted delivered = (Accepted) written.get(3);
      assertThat(delivered).isEqualTo(new Accepted(4, 0, 2, 4, 0, List.of(), 0, batchId, null, delivered.at()));
      assertThat(endpoint.calls("data")).singleElement().satisfies(call -> {
        assertThat(call.batchId()).isEqualTo(batchId);
        assertThat(call.body().get("seqFrom").asLong()).isEqualTo(3);
        assertThat(call.body().get("seqTo").asLong()).isEqualTo(4);
        assertThat(call.text()).isEqualTo("f3f4");
      });
    }
  }

  // ------------------------------------------------------------------ HTTP endpoint batches

  private static String base64(String text) {
    return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void anHttpBatchIsRecordedBeforeItIsSentAndTheEndpointsAnswerAcceptsItUnderTheSameId() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.json("{\"reply\":\"" + base64("got it") + "\"}"));
      openWith(http(endpoint, EnumSet.of(Mapping.Event.DATA), Mapping.Retry.DEFAULT));
      int before = journal().size();
      entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
      // Held for the batch (the edge may send more), acknowledged once the endpoint answered.
      edge.expectMessage(new Delivered(0, 3, false, false));
      edge.expectMessage(new Delivered(3, 3, false));
      assertThat(edge.expectMessageClass(Push.class).frames()).containsExactly(data(1, "got it"));

      String batchId = socketId + ":1.0";
      List<Object> written = writtenSince(before);
      assertThat(written).hasSize(2);
      BatchStarted started = (BatchStarted) written.get(0);
      assertThat(started).isEqualTo(new BatchStarted(batchId, 1, 0, 3, 2, true, started.at()));
      Accepted accepted = (Accepted) written.get(1);
      assertThat(accepted).isEqualTo(new Accepted(3, 0, 3, 6, 0, List.of(data(1, "got it")), 0, batchId, null,
          accepted.at()));
      assertThat(endpoint.calls("data")).singleElement().satisfies(call -> {
        assertThat(call.batchId()).isEqualTo(batchId);
        assertThat(call.body().get("seqFrom").asLong()).isEqualTo(1);
        assertThat(call.body().get("seqTo").asLong()).isEqualTo(3);
        assertThat(call.text()).isEqualTo("f1f2f3");
        assertThat(call.signatureValid()).isTrue();
      });
      assertThat(entity.getState().inFlight()).isNull();
      assertThat(entity.getState().counters().batches()).isEqualTo(1);
    }
  }

  /**
   * A batch recorded before a crash (or a move) is sent again as it was, same id and same bytes,
   * once the device has sent its frames again; no new batch is recorded for them.
   */
  @Test
  void aBatchInFlightWhenTheEntityRestartsIsSentAgainWithTheSameIdAndBoundsOnceItsFramesComeAgain()
      throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      // The first attempt fails; the next one would come long after the restart.
      endpoint.answer(call -> TestEndpoint.Answer.status(503));
      openWith(http(endpoint, EnumSet.of(Mapping.Event.DATA), new Mapping.Retry(5, 600_000, 600_000)));
      entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
      edge.expectMessage(new Delivered(0, 3, false, false));
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> endpoint.calls("data").size() == 1);
      String batchId = socketId + ":1.0";
      BatchStarted inFlight = entity.getState().inFlight();
      assertThat(inFlight).isEqualTo(new BatchStarted(batchId, 1, 0, 3, 2, true, inFlight.at()));

      endpoint.answer(call -> TestEndpoint.Answer.ok());
      EventSourcedBehaviorTestKit.RestartResult<SocketState> restarted = entity.restart();
      assertThat(restarted.state().inFlight()).isEqualTo(inFlight);
      int before = journal().size();
      entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 3)));
      edge.expectMessage(new Delivered(0, 3, false, false));
      edge.expectMessage(new Delivered(3, 3, false));

      assertThat(endpoint.calls("data")).hasSize(2).allSatisfy(call -> {
        assertThat(call.batchId()).isEqualTo(batchId);
        assertThat(call.body().get("seqFrom").asLong()).isEqualTo(1);
        assertThat(call.body().get("seqTo").asLong()).isEqualTo(3);
        assertThat(call.text()).isEqualTo("f1f2f3");
      });
      List<Object> written = writtenSince(before);
      assertThat(written).hasSize(1);
      Accepted accepted = (Accepted) written.get(0);
      assertThat(accepted).isEqualTo(new Accepted(3, 0, 3, 6, 0, List.of(), 0, batchId, null, accepted.at()));
      assertThat(entity.getState().inFlight()).isNull();
    }
  }

  // ------------------------------------------------------------------ the ways a session closes

  @Test
  void aDeviceCloseEndsTheSessionTellsTheEdgeAndLeavesTheLinkWithWhatItTook() {
    open(edge, "echo");
    link();
    entity.runCommand(new Relay(peerId, 0, frames(1, 2)));
    peer.expectMessage(new RelayAck(socketId, 2, 0, false));
    edge.expectMessageClass(Push.class);

    CommandResult<SocketCommand, SocketEvent, SocketState> closed =
        entity.runCommand(new SocketCommand.Close(edge.getRef(), CloseCode.NORMAL.wire, "bye"));
    assertThat(closed.event()).isEqualTo(new Closed(CloseCode.NORMAL.wire, "bye", 2, ((Closed) closed.event()).at()));
    assertThat(closed.state().status()).isEqualTo(Status.CLOSED);
    assertThat(closed.state().link()).isNull();
    edge.expectMessage(new SessionEnded(CloseCode.NORMAL.wire, "session closed"));
    links.expectMessage(new PeerLinkEntity.Unlink(socketId, "peer closed its session", 2));
  }

  @Test
  void anOperatorCloseEndsTheSessionTellsTheEdgeAndLeavesTheLink() {
    open(edge, "echo");
    link();
    EventSourcedBehaviorTestKit.CommandResultWithReply<SocketCommand, SocketEvent, SocketState, OperatorCloseResult> closed =
        entity.runCommand(replyTo -> new SocketCommand.CloseByOperator("maintenance", replyTo));
    assertThat(closed.reply()).isEqualTo(new OperatorCloseResult.Closed());
    assertThat(closed.event()).isEqualTo(new Closed(CloseCode.CLOSED_BY_OPERATOR.wire, "maintenance", 0,
        ((Closed) closed.event()).at()));
    assertThat(closed.state().status()).isEqualTo(Status.CLOSED);
    edge.expectMessage(new SessionEnded(CloseCode.CLOSED_BY_OPERATOR.wire, "maintenance"));
    links.expectMessage(new PeerLinkEntity.Unlink(socketId, "peer was closed by an operator", 0));
  }

  @Test
  void anEndpointAnsweringABatchWithCloseEndsTheSessionOnceTheBatchIsAccepted() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.json("{\"close\":\"done here\"}"));
      openWith(http(endpoint, EnumSet.of(Mapping.Event.DATA), Mapping.Retry.DEFAULT));
      int before = journal().size();
      entity.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
      edge.expectMessage(new Delivered(0, 2, false, false));
      edge.expectMessage(new Delivered(2, 2, false));
      edge.expectMessage(new SessionEnded(CloseCode.CLOSED_BY_ENDPOINT.wire, "done here"));
      List<Object> written = writtenSince(before);
      assertThat(written).extracting(Object::getClass).containsExactly(BatchStarted.class, Accepted.class,
          Closed.class);
      Closed closed = (Closed) written.get(2);
      assertThat(closed).isEqualTo(new Closed(CloseCode.CLOSED_BY_ENDPOINT.wire, "done here", 0, closed.at()));
      assertThat(entity.getState().status()).isEqualTo(Status.CLOSED);
    }
  }

  /** An answer to open that names a peer and closes: the link just requested is left again. */
  @Test
  void anEndpointThatLinksAndClosesInItsAnswerToOpenLeavesTheLinkItRequested() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.json("{\"link\":\"" + peerId + "\",\"close\":\"not today\"}"));
      openWith(http(endpoint, EnumSet.of(Mapping.Event.OPEN, Mapping.Event.DATA), Mapping.Retry.DEFAULT));
      PeerLinkEntity.Request request = links.expectMessageClass(PeerLinkEntity.Request.class);
      assertThat(request.from()).isEqualTo(socketId);
      assertThat(request.to()).isEqualTo(peerId);
      edge.expectMessage(new LinkChanged(LinkStatus.PENDING.wire, peerId, "waiting for " + peerId));
      edge.expectMessage(new SessionEnded(CloseCode.CLOSED_BY_ENDPOINT.wire, "not today"));
      links.expectMessage(new PeerLinkEntity.Unlink(socketId, "peer was closed: not today", 0));
      assertThat(journal()).extracting(Object::getClass).containsExactly(Opened.class,
          SocketEvent.Answered.class, LinkRequested.class, Closed.class);
      Closed closed = (Closed) journal().get(3);
      assertThat(closed).isEqualTo(new Closed(CloseCode.CLOSED_BY_ENDPOINT.wire, "not today", 0, closed.at()));
      assertThat(entity.getState().link()).isNull();
    }
  }

  /**
   * A pairing socket whose mapping closes on a link timeout: nobody with the same socket name
   * came within the link wait, so it leaves the pairing point, the link ends and the session
   * closes; the frames it held for a peer were never acknowledged.
   */
  @Test
  void aLinkWaitThatTimesOutClosesTheSessionWhenItsMappingSaysSo() {
    String name = "lonely-" + UUID.randomUUID().toString().substring(0, 8);
    String pairing = socketId + "/" + name;
    TestProbe<PairingEntity.Command> point = KIT.createTestProbe(PairingEntity.Command.class);
    PAIRING_POINTS.put(name, point.getRef());
    EventSourcedBehaviorTestKit<SocketCommand, SocketEvent, SocketState> lonely =
        EventSourcedBehaviorTestKit.create(KIT.system(), SocketEntity.create(pairing, SETTINGS));
    Mapping closesOnTimeout = new Mapping("pair-quick", 1, "builtin:pair", EnumSet.allOf(Mapping.Event.class),
        Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, null, 1_000, true);

    CommandResult<SocketCommand, SocketEvent, SocketState> opened = lonely.runCommand(new SocketCommand.Open(socketId,
        closesOnTimeout, false, 0, edge.getRef(), "edge-node"));
    assertThat(opened.events()).extracting(Object::getClass).containsExactly(Opened.class, LinkRequested.class);
    LinkRequested waiting = (LinkRequested) opened.events().get(1);
    assertThat(waiting.linkId()).isEmpty();
    assertThat(waiting.peer()).isEmpty();
    assertThat(waiting.closeOnTimeout()).isTrue();
    edge.expectMessageClass(Welcomed.class);
    edge.expectMessage(new LinkChanged(LinkStatus.PENDING.wire, "", "waiting for a device with the same pairing key"));
    point.expectMessage(new PairingEntity.Join(pairing));
    lonely.runCommand(new SocketCommand.Deliver(edge.getRef(), frames(1, 2)));
    edge.expectMessage(new Delivered(0, 2, false, false));

    point.expectMessage(Duration.ofSeconds(5), new PairingEntity.Leave(pairing));
    edge.expectMessage(Duration.ofSeconds(5),
        new LinkChanged(LinkStatus.TIMEOUT.wire, "", "no device with the same pairing key came"));
    edge.expectMessage(new SessionEnded(CloseCode.CLOSED_BY_ENDPOINT.wire, "no peer within 1000 ms"));
    List<Object> written = PersistenceTestKit.create(KIT.system()).persistedInStorage("socket|" + pairing);
    assertThat(written).extracting(Object::getClass).containsExactly(Opened.class, LinkRequested.class,
        LinkEnded.class, Closed.class);
    LinkEnded ended = (LinkEnded) written.get(2);
    assertThat(ended).isEqualTo(new LinkEnded("", ended.at()));
    Closed closed = (Closed) written.get(3);
    assertThat(closed).isEqualTo(new Closed(CloseCode.CLOSED_BY_ENDPOINT.wire, "no peer within 1000 ms", 0,
        closed.at()));
    assertThat(lonely.getState().status()).isEqualTo(Status.CLOSED);
    assertThat(lonely.getState().lastAccepted()).isZero();
  }
}
