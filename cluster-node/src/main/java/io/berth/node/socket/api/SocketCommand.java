package io.berth.node.socket.api;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.Frame;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * What a socket session (entity type {@code socket}, {@link Sockets#ENTITY_KEY}) receives:
 * from the edge holding its device's connection, from operators, from its link and its peer.
 * Its own timers and self-messages implement this interface inside the entity.
 */
public interface SocketCommand {

  /**
   * The edge opens (or resumes) the socket for an authenticated device, with a resolved mapping.
   * {@code replacing}: null at first; the connection attached when {@link ConfirmTakeover} asked,
   * when the edge sends the open again because its connection still waits for the answer: it
   * may take the session from that connection, and only from that one. {@code deviceAddress}: where
   * the device connected from, {@code host:port} (the PROXY header's source behind a balancer).
   */
  public record Open(
      String deviceId,
      Mapping mapping,
      boolean resume,
      long lastReceived,
      ActorRef<ToEdge> edge,
      String edgeNode,
      ActorRef<ToEdge> replacing,
      String deviceAddress)
      implements SocketCommand, CborSerializable {

    /** An open from an edge that gives no device address. */
    public Open(String deviceId, Mapping mapping, boolean resume, long lastReceived, ActorRef<ToEdge> edge,
        String edgeNode) {
      this(deviceId, mapping, resume, lastReceived, edge, edgeNode, null, null);
    }

    /** The same open, confirmed by its connection, which may replace {@code attached}. */
    public Open confirm(ActorRef<ToEdge> attached) {
      return new Open(deviceId, mapping, resume, lastReceived, edge, edgeNode, attached, deviceAddress);
    }
  }

  /**
   * Uplink DATA frames read from the device, in seq order. Hot path: binary serializer. {@code
   * packetIds}: from the MQTT port, the QoS 1 packet id of each frame (-1 for QoS 0), which the
   * session journals so that a resend after a reconnect is recognised
   * (docs/mqtt-qos1-resends.md); null from the other ports.
   */
  public record Deliver(ActorRef<ToEdge> edge, List<Frame.Data> frames, int[] packetIds) implements SocketCommand {

    /** Frames with no packet ids (the device and WebSocket ports). */
    public Deliver(ActorRef<ToEdge> edge, List<Frame.Data> frames) {
      this(edge, frames, null);
    }
  }

  /** The device acknowledged downlink frames up to {@code upTo}. Hot path: binary serializer. */
  public record DownlinkAck(ActorRef<ToEdge> edge, long upTo) implements SocketCommand {}

  /** The device (through its edge) ends the session. */
  public record Close(ActorRef<ToEdge> edge, int code, String reason) implements SocketCommand, CborSerializable {}

  /** The edge saw a gap in the downlink: push again everything after {@code from}. */
  public record Resync(ActorRef<ToEdge> edge, long from) implements SocketCommand, CborSerializable {}

  /** The edge's connection is alive: keeps an attached session from being passivated. */
  public record Heartbeat(ActorRef<ToEdge> edge) implements SocketCommand, CborSerializable {}

  public record GetStatus(ActorRef<SocketStatus> replyTo) implements SocketCommand, CborSerializable {}

  /** Sends data down the socket from outside ({@code POST /api/sockets/{id}/messages}). */
  public record Inject(byte[] payload, ActorRef<InjectResult> replyTo) implements SocketCommand, CborSerializable {}

  /** An operator closes the socket ({@code DELETE /api/sockets/{id}}). */
  public record CloseByOperator(String reason, ActorRef<OperatorCloseResult> replyTo)
      implements SocketCommand, CborSerializable {}

  /** A link entity offers this socket a link with {@code from} (PeerLinkEntity). */
  public record LinkOffer(String linkId, String from) implements SocketCommand, CborSerializable {}

  /** The link with {@code peer} is established. */
  public record LinkUp(String linkId, String peer) implements SocketCommand, CborSerializable {}

  /**
   * The link ended ({@code status}: a LINK status wire value, unlinked or timeout); {@code
   * peerAccepted}: the highest of this socket's frames the peer took, acknowledged as delivered.
   */
  public record LinkDown(String linkId, String peer, int status, String reason, long peerAccepted)
      implements SocketCommand, CborSerializable {}

  /** The pairing point found a partner for this socket: link to it. */
  public record Paired(String partner) implements SocketCommand, CborSerializable {}

  /**
   * Frames of a linked peer, in its seq order; {@code base}: the peer's seq the sender believes
   * was taken already (where a link that took nothing yet starts, since the peer's numbering
   * goes on from its earlier sessions). Hot path: binary serializer.
   */
  public record Relay(String from, long base, List<Frame.Data> frames) implements SocketCommand {}

  /**
   * The peer took this socket's frames up to {@code accepted} into its outbox, and its device
   * acknowledged them up to {@code acked}; {@code full}: its outbox is full, wait for the next
   * RelayAck. Hot path: binary serializer.
   */
  public record RelayAck(String from, long accepted, long acked, boolean full) implements SocketCommand {}

  /**
   * The edge holding the device's connection ended (connection lost, node down). From the
   * entity's death watch ({@code answer} false), and from the connection's actor when its
   * connection ends ({@code answer} true): the actor stays until the entity answers {@link
   * ToEdge.Detached}, so that the death watch cannot overtake what it sent before (a downlink
   * ACK, a CLOSE) on the longer way through the shard region. An entity that sleeps watches
   * nothing and learns of the end only this way.
   */
  public record EdgeTerminated(ActorRef<ToEdge> edge, boolean answer) implements SocketCommand, CborSerializable {
    /** From the death watch: nobody is left to answer. */
    public static EdgeTerminated watched(ActorRef<ToEdge> edge) {
      return new EdgeTerminated(edge, false);
    }
  }

  /** Sent by sharding on passivation and handoff. */
  public enum Stop implements SocketCommand, CborSerializable {
    INSTANCE
  }
}
