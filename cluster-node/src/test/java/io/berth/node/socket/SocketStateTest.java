package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Mapping;
import io.berth.node.socket.SocketState.Status;
import io.berth.protocol.Frame;
import java.lang.reflect.RecordComponent;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What each event changes in a socket's state, and the snapshot's field names. */
class SocketStateTest {

  private static final Instant T0 = Instant.parse("2026-12-02T10:00:00Z");
  private static final Instant T1 = Instant.parse("2026-12-02T10:00:01Z");

  private static SocketState open() {
    return SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("echo"), null, "edge-node", 0, T0, false));
  }

  private static List<Frame.Data> frames(long from, long to) {
    return java.util.stream.LongStream.rangeClosed(from, to).mapToObj(s -> new Frame.Data(s, new byte[] {(byte) s}))
        .toList();
  }

  /**
   * Snapshots are the record's JSON: its component names are their field names. A component
   * added later (deviceAddress, acceptedTags) reads as null from an earlier snapshot
   * (JournalFixtureRecoveryIT).
   */
  @Test
  void theSnapshotsFieldNamesAreTheRecordsComponents() {
    assertThat(Arrays.stream(SocketState.class.getRecordComponents()).map(RecordComponent::getName)).containsExactly(
        "status", "deviceId", "mapping", "edge", "edgeNode", "deviceAddress", "lastAccepted", "partialOffset", "inFlight",
        "lastDownlinkSeq", "downlinkAcked", "outbox", "counters", "openedAt", "updatedAt", "suspendedOn",
        "lastDeliveryAt", "link", "openPending", "acceptedTags");
  }

  @Test
  void acceptedMovesTheWatermarkAppendsAnswersAndEndsAMove() {
    SocketState s = SocketEntity.apply(open(), new SocketEvent.Suspended("old-node", T0, T0));
    SocketState after = SocketEntity.apply(s, new SocketEvent.Accepted(3, 0, 3, 3, 0, frames(1, 3), 1, null, null, T1));
    assertThat(after.lastAccepted()).isEqualTo(3);
    assertThat(after.lastDownlinkSeq()).isEqualTo(3);
    assertThat(after.downlinkAcked()).isEqualTo(1);
    assertThat(after.outbox()).extracting(Frame.Data::seq).containsExactly(2L, 3L);
    assertThat(after.suspendedOn()).isNull();
    assertThat(after.lastDeliveryAt()).isEqualTo(T1);
    assertThat(after.updatedAt()).isEqualTo(T1);
    assertThat(after.openedAt()).isEqualTo(T0);
    assertThat(after.edgeNode()).isEqualTo("edge-node");
  }

  @Test
  void closedDiscardsTheOutboxAndLeavesTheLinkButKeepsTheNumbering() {
    SocketState s = SocketEntity.apply(open(), new SocketEvent.Accepted(2, 0, 2, 2, 0, frames(1, 2), 0, null, null, T0));
    s = SocketEntity.apply(s, new SocketEvent.LinkEstablished("a+b", "b", T0));
    SocketState closed = SocketEntity.apply(s, new SocketEvent.Closed(1000, "bye", 2, T1));
    assertThat(closed.status()).isEqualTo(Status.CLOSED);
    assertThat(closed.edgeNode()).isEmpty();
    assertThat(closed.outbox()).isEmpty();
    assertThat(closed.downlinkAcked()).isEqualTo(2);
    assertThat(closed.lastAccepted()).isEqualTo(2);
    assertThat(closed.link()).isNull();
    assertThat(closed.counters().downlinkDiscarded()).isEqualTo(2);
    assertThat(closed.updatedAt()).isEqualTo(T1);
  }

  @Test
  void aSuspensionRecordsWhereAndWhenWithoutTouchingTheRest() {
    SocketState s = open();
    SocketState suspended = SocketEntity.apply(s, new SocketEvent.Suspended("n1", T0, T1));
    assertThat(suspended.suspendedOn()).isEqualTo("n1");
    assertThat(suspended.lastDeliveryAt()).isEqualTo(T0);
    assertThat(suspended).usingRecursiveComparison().ignoringFields("suspendedOn", "lastDeliveryAt").isEqualTo(s);
  }
}
