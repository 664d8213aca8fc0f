package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.socket.api.SocketCommand;
import io.berth.protocol.Frame;
import java.io.NotSerializableException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.SerializerWithStringManifest;

/**
 * Binary serializer for the messages every frame crosses the network in: {@code Deliver}, {@code
 * Delivered}, {@code Push}, {@code DownlinkAck}, and between linked sockets {@code Relay} and
 * {@code RelayAck}. Payload bytes are copied once, with no field names
 * or type tags, which Jackson CBOR would add per frame. Layout: big-endian, strings as u16 length
 * + UTF-8, frame lists as u32 count then (u64 seq, u32 length, bytes) each.
 */
public final class HotPathSerializer extends SerializerWithStringManifest {

  private static final String DELIVER = "D";
  /** {@code Deliver} from the MQTT port: DELIVER's layout, then a u16 packet id per frame (0: QoS 0; MQTT's ids are 1 to 65535). */
  private static final String DELIVER_TAGGED = "T";
  private static final String DELIVERED = "d";
  private static final String PUSH = "P";
  private static final String DOWNLINK_ACK = "A";
  private static final String RELAY = "R";
  private static final String RELAY_ACK = "K";

  private final ActorRefResolver resolver;

  public HotPathSerializer(ExtendedActorSystem system) {
    this.resolver = ActorRefResolver.get(Adapter.toTyped(system));
  }

  @Override
  public int identifier() {
    return 7_311_001;
  }

  @Override
  public String manifest(Object o) {
    if (o instanceof SocketCommand.Deliver d) {
      return d.packetIds() == null ? DELIVER : DELIVER_TAGGED;
    } else if (o instanceof ToEdge.Delivered) {
      return DELIVERED;
    } else if (o instanceof ToEdge.Push) {
      return PUSH;
    } else if (o instanceof SocketCommand.DownlinkAck) {
      return DOWNLINK_ACK;
    } else if (o instanceof SocketCommand.Relay) {
      return RELAY;
    } else if (o instanceof SocketCommand.RelayAck) {
      return RELAY_ACK;
    }
    throw new IllegalArgumentException("cannot serialize " + o.getClass());
  }

  @Override
  public byte[] toBinary(Object o) {
    if (o instanceof SocketCommand.Deliver d) {
      byte[] ref = ref(d.edge());
      int[] ids = d.packetIds();
      ByteBuffer b = ByteBuffer.allocate(2 + ref.length + FrameLists.size(d.frames()) + (ids == null ? 0 : 2 * ids.length));
      b.putShort((short) ref.length).put(ref);
      FrameLists.put(b, d.frames());
      if (ids != null) {
        for (int id : ids) {
          b.putShort((short) Math.max(id, 0));
        }
      }
      return b.array();
    } else if (o instanceof ToEdge.Delivered d) {
      return ByteBuffer.allocate(17).putLong(d.upTo()).putLong(d.buffered())
          .put((byte) ((d.stalled() ? 1 : 0) | (d.resend() ? 2 : 0))).array();
    } else if (o instanceof ToEdge.Push p) {
      ByteBuffer b = ByteBuffer.allocate(FrameLists.size(p.frames()));
      FrameLists.put(b, p.frames());
      return b.array();
    } else if (o instanceof SocketCommand.DownlinkAck a) {
      byte[] ref = ref(a.edge());
      return ByteBuffer.allocate(2 + ref.length + 8).putShort((short) ref.length).put(ref).putLong(a.upTo()).array();
    } else if (o instanceof SocketCommand.Relay r) {
      byte[] from = r.from().getBytes(StandardCharsets.UTF_8);
      ByteBuffer b = ByteBuffer.allocate(2 + from.length + 8 + FrameLists.size(r.frames()));
      b.putShort((short) from.length).put(from).putLong(r.base());
      FrameLists.put(b, r.frames());
      return b.array();
    } else if (o instanceof SocketCommand.RelayAck k) {
      byte[] from = k.from().getBytes(StandardCharsets.UTF_8);
      return ByteBuffer.allocate(2 + from.length + 17).putShort((short) from.length).put(from).putLong(k.accepted())
          .putLong(k.acked()).put((byte) (k.full() ? 1 : 0)).array();
    }
    throw new IllegalArgumentException("cannot serialize " + o.getClass());
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    try {
      return switch (manifest) {
        case DELIVER -> new SocketCommand.Deliver(getRef(b), FrameLists.get(b));
        case DELIVER_TAGGED -> {
          ActorRef<ToEdge> edge = getRef(b);
          List<Frame.Data> frames = FrameLists.get(b);
          int[] ids = new int[frames.size()];
          for (int i = 0; i < ids.length; i++) {
            int id = b.getShort() & 0xFFFF;
            ids[i] = id == 0 ? -1 : id;
          }
          yield new SocketCommand.Deliver(edge, frames, ids);
        }
        case DELIVERED -> {
          long upTo = b.getLong();
          long buffered = b.getLong();
          byte flags = b.get();
          yield new ToEdge.Delivered(upTo, buffered, (flags & 1) != 0, (flags & 2) != 0);
        }
        case PUSH -> new ToEdge.Push(FrameLists.get(b));
        case DOWNLINK_ACK -> new SocketCommand.DownlinkAck(getRef(b), b.getLong());
        case RELAY -> new SocketCommand.Relay(getString(b), b.getLong(), FrameLists.get(b));
        case RELAY_ACK -> new SocketCommand.RelayAck(getString(b), b.getLong(), b.getLong(), b.get() != 0);
        default -> throw new NotSerializableException("unknown manifest '" + manifest + "'");
      };
    } catch (BufferUnderflowException e) {
      throw new NotSerializableException("truncated " + manifest + " message");
    } catch (IllegalArgumentException e) {
      throw new NotSerializableException("corrupt " + manifest + " message: " + e.getMessage());
    }
  }

  private byte[] ref(ActorRef<?> ref) {
    return resolver.toSerializationFormat(ref).getBytes(StandardCharsets.UTF_8);
  }

  private <T> ActorRef<T> getRef(ByteBuffer b) {
    byte[] bytes = new byte[b.getShort() & 0xFFFF];
    b.get(bytes);
    return resolver.resolveActorRef(new String(bytes, StandardCharsets.UTF_8));
  }

  private static String getString(ByteBuffer b) {
    byte[] bytes = new byte[b.getShort() & 0xFFFF];
    b.get(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }
}
