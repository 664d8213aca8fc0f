package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge.Welcomed;
import io.berth.node.socket.api.SocketCommand.Deliver;
import io.berth.protocol.Frame;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * What lets the MQTT port recognise a QoS 1 PUBLISH that a client sends again after a reconnect
 * although the session had accepted it (docs/mqtt-qos1-resends.md). Each uplink frame from the
 * MQTT port is tagged with its packet id, a fingerprint of its payload (CRC-32C) and the number
 * of the connection it came on; {@code Accepted} journals the tags of the frames it accepts, the
 * session state keeps the last {@link #TAIL} of them, and at the next open the edge is handed the
 * tags of the frames accepted on the connection just before, when the tail shows a client that
 * rotates its ids ({@link #resendableAt}).
 *
 * <p>A tag is one long: packet id (16 bits), the connection number's low 16 bits, fingerprint (32
 * bits). Tag lists are pairs {@code seq, tag}, in seq order. Frames from the other ports carry
 * none, and cost nothing here.
 *
 * <p>An instance is the entity's: the tags of frames it received and has not yet accepted, by seq.
 * Lost with the entity, which is right: the edge sends those frames again, tags included.
 */
final class ResendTags {

  /** Accepted frames whose tags a session keeps: the most a client may have unacknowledged. */
  static final int TAIL = 512;

  /**
   * Frames the tail must hold, all with ids of their own, before a resend is matched: the
   * evidence that the client rotates its packet ids. A client that reuses the lowest free id
   * repeats one within a few frames, and for it a resend and a new message with the same id and
   * payload cannot be told apart: its resends go through as new (at least once, never a drop).
   */
  static final int ROTATION_EVIDENCE = 8;

  /** Received, not yet accepted: seq → tag. Made on the first tagged frame (MQTT sessions only). */
  private TreeMap<Long, Long> pending;

  static long tag(int packetId, long connection, byte[] payload) {
    return ((long) (packetId & 0xFFFF) << 48) | ((connection & 0xFFFF) << 32)
        | (Welcomed.fingerprint(payload) & 0xFFFFFFFFL);
  }

  static int packetId(long tag) {
    return (int) (tag >>> 48);
  }

  static int connection(long tag) {
    return (int) ((tag >>> 32) & 0xFFFF);
  }

  static int fingerprint(long tag) {
    return (int) tag;
  }

  /** The edge's form of a resendable frame: packet id and fingerprint. */
  static long resendable(int packetId, int fingerprint) {
    return ((long) packetId << 32) | (fingerprint & 0xFFFFFFFFL);
  }

  /** Notes the tags of a delivery's frames above {@code lastAccepted}, received on {@code connection}. */
  void received(Deliver d, long lastAccepted, long connection) {
    int[] ids = d.packetIds();
    if (ids == null) {
      return;
    }
    if (pending == null) {
      pending = new TreeMap<>();
    }
    for (int i = 0; i < ids.length && i < d.frames().size(); i++) {
      Frame.Data frame = d.frames().get(i);
      if (frame.seq() <= lastAccepted) {
        continue;
      }
      if (ids[i] > 0) {
        pending.put(frame.seq(), tag(ids[i], connection, frame.payload()));
      } else {
        pending.remove(frame.seq()); // QoS 0 now, whatever this seq was on an earlier connection
      }
    }
  }

  /**
   * The tags of the frames in {@code (from, upTo]}, as pairs, and forgets everything up to {@code
   * upTo}; null when there are none.
   */
  long[] accepted(long from, long upTo) {
    if (pending == null || pending.isEmpty() || upTo <= from) {
      return null;
    }
    SortedMap<Long, Long> taken = pending.subMap(from + 1, upTo + 1);
    long[] pairs = new long[2 * taken.size()];
    int n = 0;
    for (Map.Entry<Long, Long> e : taken.entrySet()) {
      pairs[n++] = e.getKey();
      pairs[n++] = e.getValue();
    }
    pending.headMap(upTo + 1).clear();
    return n == 0 ? null : pairs;
  }

  /** The state's tail after {@code tags} were accepted: the last {@link #TAIL} pairs (a new array). */
  static long[] append(long[] tail, long[] tags) {
    if (tags == null || tags.length == 0) {
      return tail;
    }
    int old = tail == null ? 0 : tail.length;
    int keep = Math.min(old + tags.length, 2 * TAIL);
    long[] next = new long[keep];
    int fromTags = Math.min(tags.length, keep);
    int fromOld = keep - fromTags;
    if (fromOld > 0) {
      System.arraycopy(tail, old - fromOld, next, 0, fromOld);
    }
    System.arraycopy(tags, tags.length - fromTags, next, fromOld, fromTags);
    return next;
  }

  /**
   * What the edge may take for resends when connection {@code connection} opens: the frames the
   * tail has from the connection before it, as {@link #resendable} values. Null (every resend goes
   * through as new) unless the tail shows a client that rotates its ids: at least {@link
   * #ROTATION_EVIDENCE} frames and no id twice. Otherwise a resend and a new message that reuses
   * an acknowledged id with the same payload cannot be told apart (docs/mqtt-qos1-resends.md).
   */
  static long[] resendableAt(long[] tail, long connection) {
    if (tail == null || tail.length < 2 * ROTATION_EVIDENCE) {
      return null;
    }
    Set<Integer> ids = new HashSet<>();
    for (int i = 1; i < tail.length; i += 2) {
      if (!ids.add(packetId(tail[i]))) {
        return null;
      }
    }
    int previous = (int) ((connection - 1) & 0xFFFF);
    long[] out = new long[tail.length / 2];
    int n = 0;
    for (int i = 1; i < tail.length; i += 2) {
      if (connection(tail[i]) == previous) {
        out[n++] = resendable(packetId(tail[i]), fingerprint(tail[i]));
      }
    }
    return n == 0 ? null : Arrays.copyOf(out, n);
  }
}
