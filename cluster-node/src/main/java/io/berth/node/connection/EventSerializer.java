package io.berth.node.connection;

import java.io.NotSerializableException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import org.apache.pekko.serialization.SerializerWithStringManifest;

/**
 * Binary form of the events a socket writes for its traffic: {@code Accepted} (a batch of uplink
 * frames reached the endpoint, with the answers), {@code Relayed} (a linked peer's frames taken)
 * and {@code DownlinkAcked}. Jackson CBOR wrote every field name into every journal row (222
 * bytes for the event of one 64-byte frame, 140 in this form) and cost a tenth of the journal
 * path's CPU. The other events are rare and stay in CBOR.
 *
 * <p>Layout: big-endian; strings as i32 length (-1: null) + UTF-8; instants as i64 epoch
 * seconds + i32 nanoseconds (-1: null); frame lists as {@link FrameLists}. The manifest names
 * the event and its layout version: a change of layout gets a new manifest, and this class keeps
 * reading the old ones. Events written before this serializer existed are still read by Jackson:
 * their rows name its serializer id, and serialization.conf still allows it these classes.
 */
public final class EventSerializer extends SerializerWithStringManifest {

  static final String ACCEPTED = "Accepted.1";
  static final String RELAYED = "Relayed.1";
  static final String DOWNLINK_ACKED = "DownlinkAcked.1";
  private static final int INSTANT = 12;

  @Override
  public int identifier() {
    return 7_311_002;
  }

  @Override
  public String manifest(Object o) {
    if (o instanceof ConnectionEntity.Accepted) {
      return ACCEPTED;
    } else if (o instanceof ConnectionEntity.Relayed) {
      return RELAYED;
    } else if (o instanceof ConnectionEntity.DownlinkAcked) {
      return DOWNLINK_ACKED;
    }
    throw new IllegalArgumentException("cannot serialize " + o.getClass());
  }

  @Override
  public byte[] toBinary(Object o) {
    if (o instanceof ConnectionEntity.Accepted a) {
      byte[] batchId = utf8(a.batchId());
      byte[] parkedId = utf8(a.parkedId());
      ByteBuffer b = ByteBuffer.allocate(8 + 8 + 4 + 8 + 4 + FrameLists.size(a.outbound()) + 8
          + stringSize(batchId) + stringSize(parkedId) + INSTANT);
      b.putLong(a.lastAccepted()).putLong(a.partialOffset()).putInt(a.frames()).putLong(a.bytes())
          .putInt(a.duplicates());
      FrameLists.put(b, a.outbound());
      b.putLong(a.downlinkAcked());
      putString(b, batchId);
      putString(b, parkedId);
      putInstant(b, a.at());
      return b.array();
    } else if (o instanceof ConnectionEntity.Relayed r) {
      byte[] from = utf8(r.from());
      ByteBuffer b = ByteBuffer.allocate(stringSize(from) + 8 + FrameLists.size(r.outbound()) + 8 + INSTANT);
      putString(b, from);
      b.putLong(r.relayIn());
      FrameLists.put(b, r.outbound());
      b.putLong(r.peerFrom());
      putInstant(b, r.at());
      return b.array();
    } else if (o instanceof ConnectionEntity.DownlinkAcked d) {
      ByteBuffer b = ByteBuffer.allocate(8 + INSTANT).putLong(d.upTo());
      putInstant(b, d.at());
      return b.array();
    }
    throw new IllegalArgumentException("cannot serialize " + o.getClass());
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    try {
      Object event = switch (manifest) {
        case ACCEPTED -> new ConnectionEntity.Accepted(b.getLong(), b.getLong(), b.getInt(), b.getLong(), b.getInt(),
            FrameLists.get(b), b.getLong(), getString(b), getString(b), getInstant(b));
        case RELAYED -> new ConnectionEntity.Relayed(getString(b), b.getLong(), FrameLists.get(b), b.getLong(),
            getInstant(b));
        case DOWNLINK_ACKED -> new ConnectionEntity.DownlinkAcked(b.getLong(), getInstant(b));
        default -> throw new NotSerializableException("unknown event manifest '" + manifest + "'");
      };
      if (b.hasRemaining()) {
        throw new NotSerializableException(b.remaining() + " bytes left over after a " + manifest + " event");
      }
      return event;
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw new NotSerializableException("corrupt " + manifest + " event: " + e.getMessage());
    }
  }

  private static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  private static int stringSize(byte[] utf8) {
    return 4 + (utf8 == null ? 0 : utf8.length);
  }

  private static void putString(ByteBuffer b, byte[] utf8) {
    if (utf8 == null) {
      b.putInt(-1);
    } else {
      b.putInt(utf8.length).put(utf8);
    }
  }

  private static String getString(ByteBuffer b) {
    int length = b.getInt();
    if (length < 0) {
      return null;
    }
    byte[] bytes = new byte[length];
    b.get(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }

  private static void putInstant(ByteBuffer b, Instant at) {
    if (at == null) {
      b.putLong(0).putInt(-1);
    } else {
      b.putLong(at.getEpochSecond()).putInt(at.getNano());
    }
  }

  private static Instant getInstant(ByteBuffer b) {
    long seconds = b.getLong();
    int nanos = b.getInt();
    return nanos < 0 ? null : Instant.ofEpochSecond(seconds, nanos);
  }
}
