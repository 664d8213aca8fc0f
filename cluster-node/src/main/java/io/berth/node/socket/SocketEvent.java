package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/** What a socket session writes to its journal (binary or CBOR: see EventSerializer). */
public sealed interface SocketEvent extends CborSerializable {

  /**
   * A connection opened the socket. {@code asksEndpoint}: the mapping's HTTP endpoint is asked
   * about this open, and its answer decides where the connection's data goes (an explicit flag,
   * so that rows written before the answer was awaited do not replay as waiting for one).
   * {@code deviceAddress}: where the device connected from, {@code host:port} (behind a balancer
   * speaking the PROXY protocol, the device's own address), null when the edge gave none.
   */
  public record Opened(
      String deviceId,
      Mapping mapping,
      ActorRef<ToEdge> edge,
      String edgeNode,
      long downlinkAcked,
      Instant at,
      boolean asksEndpoint,
      String deviceAddress)
      implements SocketEvent {

    /** An open whose edge gave no device address. */
    public Opened(String deviceId, Mapping mapping, ActorRef<ToEdge> edge, String edgeNode, long downlinkAcked,
        Instant at, boolean asksEndpoint) {
      this(deviceId, mapping, edge, edgeNode, downlinkAcked, at, asksEndpoint, null);
    }
  }

  /**
   * Data reached the endpoint: the new watermark (and how far into the next frame delivery got),
   * what it cost, and the endpoint's answers, already numbered. {@code downlinkAcked} folds in the
   * device's acknowledgements seen so far. For an HTTP endpoint, {@code batchId} completes the
   * batch started before, and {@code parkedId} says it was parked instead of delivered. {@code
   * tags}: for frames from the MQTT port, pairs of seq and {@link ResendTags tag}; null otherwise.
   */
  public record Accepted(
      long lastAccepted,
      long partialOffset,
      int frames,
      long bytes,
      int duplicates,
      List<Frame.Data> outbound,
      long downlinkAcked,
      String batchId,
      String parkedId,
      Instant at,
      long[] tags)
      implements SocketEvent {

    /** Frames with no tags (from the device and WebSocket ports). */
    public Accepted(long lastAccepted, long partialOffset, int frames, long bytes, int duplicates,
        List<Frame.Data> outbound, long downlinkAcked, String batchId, String parkedId, Instant at) {
      this(lastAccepted, partialOffset, frames, bytes, duplicates, outbound, downlinkAcked, batchId, parkedId, at,
          null);
    }

    Accepted withTags(long[] newTags) {
      return new Accepted(lastAccepted, partialOffset, frames, bytes, duplicates, outbound, downlinkAcked, batchId,
          parkedId, at, newTags);
    }
  }

  /** A batch for the HTTP endpoint, recorded before it is sent: its boundaries and id. */
  public record BatchStarted(String batchId, long seqFrom, int offsetFrom, long seqTo, int offsetTo, boolean endsFrame,
                             Instant at) implements SocketEvent {}

  /**
   * The endpoint's answer to an open or close event: downlink frames. {@code openOf}: the
   * connection (its number in {@code counters.connections}) whose open this answers, 0 for others.
   */
  public record Answered(String batchId, List<Frame.Data> outbound, Instant at, long openOf) implements SocketEvent {}

  /** Downlink frames sent from outside. */
  public record Injected(List<Frame.Data> outbound, Instant at) implements SocketEvent {}

  public record DownlinkAcked(long upTo, Instant at) implements SocketEvent {}

  public record Detached(Instant at) implements SocketEvent {}

  /**
   * The entity stopped while a device was attached (handoff to another node, node shutdown): where
   * it ran and when it last delivered, so that its next incarnation can tell how long delivery
   * paused.
   */
  public record Suspended(String node, Instant lastDeliveryAt, Instant at) implements SocketEvent {}

  public record Closed(int code, String reason, long discarded, Instant at) implements SocketEvent {}

  /** This socket waits to be linked to {@code peer} (empty: to whoever pairs with it). */
  public record LinkRequested(String linkId, String peer, long deadlineMillis, boolean closeOnTimeout, Instant at)
      implements SocketEvent {}

  /** {@code peer} wants a link with this socket, which accepts it once open. */
  public record LinkOffered(String linkId, String peer, Instant at) implements SocketEvent {}

  public record LinkEstablished(String linkId, String peer, Instant at) implements SocketEvent {}

  public record LinkEnded(String linkId, Instant at) implements SocketEvent {}

  /**
   * Frames of the peer, taken into this socket's outbox: the peer's highest seq taken, the
   * downlink frames, and the peer's seq of the first of them (downlink and peer seqs advance
   * together, so acknowledgements map back).
   */
  public record Relayed(String from, long relayIn, List<Frame.Data> outbound, long peerFrom, Instant at)
      implements SocketEvent {}
}
