package io.berth.node.edge.api;

import io.berth.persistence.CborSerializable;
import io.berth.protocol.Frame;
import java.util.List;
import org.apache.pekko.actor.DeadLetterSuppression;
import org.apache.pekko.actor.typed.ActorRef;

/** What a socket session tells the edge that holds its device's connection. */
public sealed interface ToEdge {
  
  /**
   * The session took the connection. {@code existed}: it was open or detached before (a device
   * resumes it; MQTT's Session Present); null from a node of an earlier release, which did not
   * say. {@code resendable}: for the MQTT port, packet id and payload fingerprint of frames
   * accepted on the previous connection, which a client may send again
   * (docs/mqtt-qos1-resends.md); null when there are none.
   */
  public record Welcomed(String socketId, String node, long lastAccepted, long downlinkAcked, Boolean existed,
                         long[] resendable)
      implements ToEdge, CborSerializable {

    public Welcomed(String socketId, String node, long lastAccepted, long downlinkAcked) {
      this(socketId, node, lastAccepted, downlinkAcked, null, null);
    }

    /** The fingerprint {@code resendable} carries of a frame's payload: its CRC-32C. */
    public static int fingerprint(byte[] payload) {
      java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
      crc.update(payload);
      return (int) crc.getValue();
    }

    /** Whether the session existed, or where not told, whether it had seen frames. */
    public boolean sessionPresent() {
      return existed != null ? existed : lastAccepted > 0 || downlinkAcked > 0;
    }
  }

  public record OpenRejected(int errorCode, String reason) implements ToEdge, CborSerializable {}

  /**
   * How far the socket session has the device's uplink frames. It says two things, which the edge
   * treats apart:
   *
   * <ul>
   *   <li>{@code upTo}, <em>acknowledged</em>: every frame up to it reached its destination and
   *       is durable (PROTOCOL.md#delivery-contract). The edge sends the device {@code ACK upTo}
   *       and forgets those frames.
   *   <li>{@code buffered}, <em>held</em>: frames up to it reached the entity and wait there, not
   *       yet acknowledged (for their batch to the HTTP endpoint, for the peer of a link, for the
   *       endpoint's answer to open). The edge's pipeline moves on and it may send more, but it
   *       keeps these frames until {@code upTo} covers them. Equal to {@code upTo} when the
   *       entity holds nothing beyond it.
   * </ul>
   *
   * {@code stalled}: frames after {@code upTo} were refused because the outbox is full; the edge
   * sends them again after the {@link Resume} that follows when there is room. {@code resend}:
   * the entity does not have frames after {@code buffered} (it restarted, or let held frames go
   * to where the data goes now): the edge sends again from there. Hot path: binary serializer,
   * whose layout is (upTo, buffered, flags).
   */
  public record Delivered(long upTo, long buffered, boolean stalled, boolean resend) implements ToEdge {
    public Delivered(long upTo, long buffered, boolean stalled) {
      this(upTo, buffered, stalled, false);
    }
  }

  /**
   * This connection's open would take the session from another connection that is attached now.
   * An open can outlive the connection that sent it (it waited in a shard region while the
   * session's node was down, and its device gave up on it with ERROR 500 and connected
   * elsewhere): only a connection still waiting for this answer sends its open again, {@link
   * Open#confirm confirmed}, naming the connection it replaces ({@code attached}), so that a
   * confirmation that comes late cannot replace a connection made after it. A connection the
   * device abandoned never replaces its live one.
   */
  public record ConfirmTakeover(ActorRef<ToEdge> attached) implements ToEdge, CborSerializable {}

  /**
   * Uplink frames after the watermark have nowhere to go (PROTOCOL.md#error-codes, 204): the
   * edge sends ERROR {@code errorCode} and closes; nothing after the last ACK was taken.
   */
  public record DataRefused(int errorCode, String reason) implements ToEdge, CborSerializable {}

  /** The socket's peer-link status changed: the edge sends the device a LINK frame. */
  public record LinkChanged(int status, String peer, String reason) implements ToEdge, CborSerializable {}

  /** Downlink frames for the device, in seq order. Hot path: binary serializer. */
  public record Push(List<Frame.Data> frames) implements ToEdge {}

  /** The outbox has room again: resend the frames that were refused. */
  public enum Resume implements ToEdge, CborSerializable {
    INSTANCE
  }

  /**
   * The entity is stopping to move (handoff): frames it did not confirm are lost with it, so the
   * edge sends them again at once; sharding buffers them until the shard runs on its new node.
   */
  public enum Moving implements ToEdge, CborSerializable {
    INSTANCE
  }

  /**
   * The entity stops until the next message wakes it (docs/sleep.md): the edge stops sending
   * heartbeats, which would wake it, and tells it when the connection ends.
   */
  public enum Sleeping implements ToEdge, CborSerializable {
    INSTANCE
  }

  /**
   * The entity heard the connection's end ({@code EdgeTerminated} with {@code answer}) after
   * everything the connection's actor sent before it: the actor may stop now, and the entity's
   * death watch then has nothing left to overtake. One that comes after the actor gave up
   * waiting for it is expected, not a dead letter worth a log line.
   */
  public enum Detached implements ToEdge, CborSerializable, DeadLetterSuppression {
    INSTANCE
  }

  /** The session ended or moved to another connection; the edge closes its connection. */
  public record SessionEnded(int closeCode, String reason) implements ToEdge, CborSerializable {}
}
