package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.link.Link;
import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.protocol.LinkStatus;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** A socket's side of its link: answers, offers, the link coming up, going down, and timing out. */
class LinkSideTest {

  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");
  /** Waits 5 s for a peer and closes when the wait times out. */
  private static final Mapping DECIDER = new Mapping("decider", 1, "http://127.0.0.1:9/hook",
      java.util.EnumSet.of(Mapping.Event.OPEN), Mapping.Criteria.NONE, 1000, Mapping.Retry.DEFAULT, "s", 5_000, true);

  private static SocketState open() {
    return SocketEntity.apply(SocketState.EMPTY, new SocketEvent.Opened("a", DECIDER, null, "e", 0, AT, false));
  }

  private static SocketState with(SocketState s, SocketEvent e) {
    return SocketEntity.apply(s, e);
  }

  private static SocketState waitingFor(String peer) {
    return with(open(), new LinkRequested(peer.isEmpty() ? "" : "a+" + peer, peer, 1_000, true, AT));
  }

  @Test
  void aLinkAnswerIsTakenOnlyForAnotherSocketWhileOpenAndFree() {
    assertThat(LinkSide.request("a", open(), "a")).isEqualTo(LinkSide.Request.NOT_A_PEER);
    assertThat(LinkSide.request("a", open(), "not a socket id!")).isEqualTo(LinkSide.Request.NOT_A_PEER);
    assertThat(LinkSide.request("a", SocketState.EMPTY, "b")).isEqualTo(LinkSide.Request.NOT_OPEN);
    assertThat(LinkSide.request("a", waitingFor("b"), "b")).isEqualTo(LinkSide.Request.ALREADY);
    assertThat(LinkSide.request("a", waitingFor("b"), "c")).isEqualTo(LinkSide.Request.REFUSED);
    assertThat(LinkSide.request("a", waitingFor(""), "c")).as("at the pairing point").isEqualTo(LinkSide.Request.REQUEST);
    assertThat(LinkSide.request("a", open(), "b")).isEqualTo(LinkSide.Request.REQUEST);
  }

  @Test
  void aRequestWaitsForTheMappingsLinkWaitOnTheLinkNamedByBothSockets() {
    LinkRequested r = LinkSide.requested("a", open(), "b", 10_000, AT);
    assertThat(r.linkId()).isEqualTo("a+b");
    assertThat(LinkSide.requested("b", open(), "a", 0, AT).linkId()).isEqualTo("a+b");
    assertThat(r.deadlineMillis()).isEqualTo(15_000);
    assertThat(r.closeOnTimeout()).isTrue();
  }

  @Test
  void thePairingKeyIsTheSocketName() {
    assertThat(LinkSide.pairingKey("dev-1/room-42")).isEqualTo("room-42");
    assertThat(LinkSide.pairingKey("dev-1")).isEmpty();
  }

  @Test
  void onlyASocketWaitingAtItsPairingPointTakesAPartner() {
    assertThat(LinkSide.takesPartner(waitingFor(""))).isTrue();
    assertThat(LinkSide.takesPartner(waitingFor("b"))).isFalse();
    assertThat(LinkSide.takesPartner(open())).isFalse();
  }

  @Test
  void anOfferIsRecordedByAFreeSocketAndRefusedByABusyOne() {
    assertThat(LinkSide.offer(null, "a+b", "b")).isEqualTo(LinkSide.Offer.RECORD);
    assertThat(LinkSide.offer(waitingFor("b").link(), "a+b", "b")).isEqualTo(LinkSide.Offer.RECORD);
    assertThat(LinkSide.offer(waitingFor("c").link(), "a+b", "b")).isEqualTo(LinkSide.Offer.BUSY);
    Link linked = with(open(), new SocketEvent.LinkEstablished("a+b", "b", AT)).link();
    assertThat(LinkSide.offer(linked, "a+b", "b")).isEqualTo(LinkSide.Offer.ACCEPT_AGAIN);
  }

  @Test
  void anOfferedOpenSocketAcceptsTheOffer() {
    SocketState offered = with(open(), new SocketEvent.LinkOffered("a+b", "b", AT));
    assertThat(LinkSide.acceptsOffer(offered)).isTrue();
    SocketState detached = with(offered, new SocketEvent.Detached(AT));
    assertThat(LinkSide.acceptsOffer(detached)).as("accepted once open").isFalse();
  }

  @Test
  void theLinkComingUpIsRecordedOnlyForTheLinkTheSocketIsOn() {
    assertThat(LinkSide.up(waitingFor("b"), "a+b")).isEqualTo(LinkSide.Up.ESTABLISH);
    assertThat(LinkSide.up(waitingFor(""), "a+c")).as("the pairing point's partner").isEqualTo(LinkSide.Up.ESTABLISH);
    assertThat(LinkSide.up(waitingFor("b"), "a+c")).isEqualTo(LinkSide.Up.UNLINK);
    assertThat(LinkSide.up(open(), "a+b")).isEqualTo(LinkSide.Up.UNLINK);
    SocketState linked = with(waitingFor("b"), new SocketEvent.LinkEstablished("a+b", "b", AT));
    assertThat(LinkSide.up(linked, "a+b")).isEqualTo(LinkSide.Up.TELL);
    SocketState closed = with(waitingFor("b"), new SocketEvent.Closed(1000, "bye", 0, AT));
    assertThat(LinkSide.up(closed, "a+b")).isEqualTo(LinkSide.Up.UNLINK);
  }

  @Test
  void aTimedOutWaitClosesTheSocketOnlyIfItsMappingSaysSo() {
    Link closing = waitingFor("b").link();
    assertThat(LinkSide.closes(closing, LinkStatus.TIMEOUT)).isTrue();
    assertThat(LinkSide.closes(closing, LinkStatus.UNLINKED)).isFalse();
    Link staying = with(open(), new LinkRequested("a+b", "b", 0, false, AT)).link();
    assertThat(LinkSide.closes(staying, LinkStatus.TIMEOUT)).isFalse();
    assertThat(LinkSide.ended(null)).isEqualTo(LinkStatus.UNLINKED);
  }

  @Test
  void theEndOfALinkConcernsTheCurrentOneOnly() {
    assertThat(LinkSide.isCurrent(waitingFor("b").link(), "a+b")).isTrue();
    assertThat(LinkSide.isCurrent(waitingFor("b").link(), "a+c")).isFalse();
    assertThat(LinkSide.isCurrent(waitingFor("").link(), "a+c")).isTrue();
    assertThat(LinkSide.isCurrent(null, "a+b")).isFalse();
  }

  @Test
  void theWaitRunningOutLeavesThePairingPointOrAsksTheLinkEntity() {
    assertThat(LinkSide.deadline(waitingFor("").link())).isEqualTo(LinkSide.Deadline.LEAVE_PAIRING);
    assertThat(LinkSide.deadline(waitingFor("b").link())).isEqualTo(LinkSide.Deadline.EXPIRE);
    assertThat(LinkSide.deadline(with(open(), new SocketEvent.LinkEstablished("a+b", "b", AT)).link()))
        .isEqualTo(LinkSide.Deadline.NONE);
    assertThat(LinkSide.deadline(null)).isEqualTo(LinkSide.Deadline.NONE);
    assertThat(LinkSide.millisLeft(waitingFor("b").link(), 400)).isEqualTo(600);
    assertThat(LinkSide.millisLeft(waitingFor("b").link(), 4_000)).isZero();
  }

  @Test
  void aWaitingDeviceIsToldWhatItWaitsFor() {
    assertThat(LinkSide.waitingFor(waitingFor("b").link())).isEqualTo("waiting for b");
    assertThat(LinkSide.waitingFor(waitingFor("").link())).isEqualTo("waiting for a device with the same pairing key");
  }

  @Test
  void relayTrafficIsTakenOnlyFromTheLinkedPeer() {
    SocketState linked = with(waitingFor("b"), new SocketEvent.LinkEstablished("a+b", "b", AT));
    assertThat(LinkSide.isLinkedTo(linked, "b")).isTrue();
    assertThat(LinkSide.isLinkedTo(linked, "c")).isFalse();
    assertThat(LinkSide.isLinked(waitingFor("b"))).isFalse();
  }
}
