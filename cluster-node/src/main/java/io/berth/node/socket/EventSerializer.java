package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.node.secrets.SecretSealer;
import io.berth.node.socket.SocketEvent;
import java.io.NotSerializableException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.SerializerWithStringManifest;

/**
 * Binary form of the events a socket writes for its traffic: {@code Accepted} (a batch of uplink
 * frames reached the endpoint, with the answers), {@code Relayed} (a linked peer's frames taken)
 * and {@code DownlinkAcked}; and {@code Opened}, which every connect writes. Jackson CBOR wrote
 * every field name into every journal row (222 bytes for the event of one 64-byte frame, 140 in
 * this form) and cost a tenth of the journal path's CPU; writing {@code Opened} was the largest
 * single item in a profile of connects (BENCHMARKS.md). The other events are rare and stay in CBOR.
 *
 * <p>Layout: big-endian; strings as i32 length (-1: null) + UTF-8; instants as i64 epoch
 * seconds + i32 nanoseconds (-1: null); frame lists as {@link FrameLists}. The manifest names
 * the event and its layout version: a change of layout gets a new manifest, and this class keeps
 * reading the old ones. Events written before this serializer existed are still read by Jackson:
 * their rows name its serializer id, and serialization.conf still allows it these classes.
 *
 * <p>The mapping's secret is written sealed ({@link SecretSealer}, docs/secrets.md) in the same
 * string slot: a sealed value starts with {@code enc:}, which a secret cannot, so the layouts stay
 * and rows written before, with the secret in plaintext, read as they did. The sealer caches the
 * sealed form of each secret: a connect does not run AES-GCM.
 */
public final class EventSerializer extends SerializerWithStringManifest {

  static final String ACCEPTED = "Accepted.1";
  /**
   * {@code Accepted} of frames from the MQTT port: Accepted.1, then an i32 count of longs and the
   * tags' seq and tag pairs (docs/mqtt-qos1-resends.md). Written only when there are tags.
   */
  static final String ACCEPTED_TAGS = "Accepted.2";
  static final String RELAYED = "Relayed.1";
  static final String DOWNLINK_ACKED = "DownlinkAcked.1";
  static final String OPENED = "Opened.2";
  /**
   * {@code Opened} whose mapping has limits (docs/limits.md): Opened.2 and then the four limits.
   * Written only for such a mapping, so that nodes that never set limits keep writing rows a
   * node running the earlier code reads.
   */
  static final String OPENED_LIMITS = "Opened.3";
  /**
   * {@code Opened} with the address the device connected from (the PROXY header's source behind a
   * balancer): Opened.2, a byte saying whether the four limits follow, the limits, the address.
   * Written whenever the edge gave one, which an edge of this release always does: nodes of
   * earlier releases cannot read it (deploy/README.md#rolling-restart).
   */
  static final String OPENED_ADDRESS = "Opened.4";
  /** {@code Opened} before {@code asksEndpoint}: read as false (nothing was awaited then). */
  static final String OPENED_1 = "Opened.1";
  private static final int LIMITS = 4 * 8;
  private static final int INSTANT = 12;

  private final ExtendedActorSystem system;
  /** The edge's ref in {@code Opened} as its path, resolved on reading; made on first use. */
  private volatile ActorRefResolver resolver;
  /** Made on first use: a system whose events carry no secret needs no keys. */
  private volatile SecretSealer sealer;

  public EventSerializer(ExtendedActorSystem system) {
    this.system = system;
  }

  @Override
  public int identifier() {
    return 7_311_002;
  }

  @Override
  public String manifest(Object o) {
    if (o instanceof SocketEvent.Accepted a) {
      return a.tags() == null ? ACCEPTED : ACCEPTED_TAGS;
    } else if (o instanceof SocketEvent.Relayed) {
      return RELAYED;
    } else if (o instanceof SocketEvent.DownlinkAcked) {
      return DOWNLINK_ACKED;
    } else if (o instanceof SocketEvent.Opened e) {
      if (e.deviceAddress() != null) {
        return OPENED_ADDRESS;
      }
      return e.mapping() != null && e.mapping().limits() != null ? OPENED_LIMITS : OPENED;
    }
    throw new IllegalArgumentException("cannot serialize " + o.getClass());
  }

  @Override
  public byte[] toBinary(Object o) {
    if (o instanceof SocketEvent.Accepted a) {
      byte[] batchId = utf8(a.batchId());
      byte[] parkedId = utf8(a.parkedId());
      long[] tags = a.tags();
      ByteBuffer b = ByteBuffer.allocate(8 + 8 + 4 + 8 + 4 + FrameLists.size(a.outbound()) + 8
          + stringSize(batchId) + stringSize(parkedId) + INSTANT + (tags == null ? 0 : 4 + 8 * tags.length));
      b.putLong(a.lastAccepted()).putLong(a.partialOffset()).putInt(a.frames()).putLong(a.bytes())
          .putInt(a.duplicates());
      FrameLists.put(b, a.outbound());
      b.putLong(a.downlinkAcked());
      putString(b, batchId);
      putString(b, parkedId);
      putInstant(b, a.at());
      if (tags != null) {
        b.putInt(tags.length);
        for (long t : tags) {
          b.putLong(t);
        }
      }
      return b.array();
    } else if (o instanceof SocketEvent.Relayed r) {
      byte[] from = utf8(r.from());
      ByteBuffer b = ByteBuffer.allocate(stringSize(from) + 8 + FrameLists.size(r.outbound()) + 8 + INSTANT);
      putString(b, from);
      b.putLong(r.relayIn());
      FrameLists.put(b, r.outbound());
      b.putLong(r.peerFrom());
      putInstant(b, r.at());
      return b.array();
    } else if (o instanceof SocketEvent.DownlinkAcked d) {
      ByteBuffer b = ByteBuffer.allocate(8 + INSTANT).putLong(d.upTo());
      putInstant(b, d.at());
      return b.array();
    } else if (o instanceof SocketEvent.Opened opened) {
      return opened(opened);
    }
    throw new IllegalArgumentException("cannot serialize " + o.getClass());
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    try {
      Object event = switch (manifest) {
        case ACCEPTED -> new SocketEvent.Accepted(b.getLong(), b.getLong(), b.getInt(), b.getLong(), b.getInt(),
            FrameLists.get(b), b.getLong(), getString(b), getString(b), getInstant(b));
        case ACCEPTED_TAGS -> new SocketEvent.Accepted(b.getLong(), b.getLong(), b.getInt(), b.getLong(), b.getInt(),
            FrameLists.get(b), b.getLong(), getString(b), getString(b), getInstant(b), getLongs(b));
        case RELAYED -> new SocketEvent.Relayed(getString(b), b.getLong(), FrameLists.get(b), b.getLong(),
            getInstant(b));
        case DOWNLINK_ACKED -> new SocketEvent.DownlinkAcked(b.getLong(), getInstant(b));
        case OPENED -> opened(b, true, false, false);
        case OPENED_LIMITS -> opened(b, true, true, false);
        case OPENED_ADDRESS -> opened(b, true, false, true);
        case OPENED_1 -> opened(b, false, false, false);
        default -> throw new NotSerializableException("unknown event manifest '" + manifest + "'");
      };
      if (b.hasRemaining()) {
        throw new NotSerializableException(b.remaining() + " bytes left over after a " + manifest + " event");
      }
      return event;
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw new NotSerializableException("corrupt " + manifest + " event: " + e.getMessage());
    } catch (IllegalStateException e) {
      // A sealed secret that does not open: the message names the key id, never the value.
      throw new NotSerializableException(manifest + " event: " + e.getMessage());
    }
  }

  /**
   * Layout: device id, mapping (presence byte, then name, version, endpoint, events as a bit set,
   * criteria, timeout, retry, secret, link wait, close-on-link-timeout), the edge's ref as a
   * path, edge node, downlink acknowledged, at, (from Opened.2 on) asks-endpoint, and (Opened.3)
   * the mapping's limits: frames per second, frames burst, bytes per second, bytes burst; or
   * (Opened.4) a byte saying whether those limits follow, the limits, and the device's address.
   */
  private byte[] opened(SocketEvent.Opened o) {
    Mapping m = o.mapping();
    byte[][] strings = {
        utf8(o.deviceId()), m == null ? null : utf8(m.name()), m == null ? null : utf8(m.endpoint()),
        m == null || m.criteria() == null ? null : m.criteria().delimiter(),
        m == null || m.secret() == null ? null : utf8(sealer().sealCached(m.secret())),
        o.edge() == null ? null : utf8(resolver().toSerializationFormat(o.edge())), utf8(o.edgeNode()),
        utf8(o.deviceAddress())};
    Mapping.Limits limits = m == null ? null : m.limits();
    boolean withAddress = o.deviceAddress() != null;
    int size = 1 + 8 + 1 + 1 + 5 * 4 + 4 + 1 + 3 * 4 + 8 + 1 + 8 + INSTANT + 1 + 1 + (limits == null ? 0 : LIMITS);
    for (byte[] s : strings) {
      size += stringSize(s);
    }
    ByteBuffer b = ByteBuffer.allocate(size);
    putString(b, strings[0]);
    b.put((byte) (m == null ? 0 : 1));
    if (m != null) {
      putString(b, strings[1]);
      b.putLong(m.version());
      putString(b, strings[2]);
      int events = 0;
      for (Mapping.Event e : m.events()) {
        events |= 1 << e.ordinal();
      }
      b.put((byte) events);
      Mapping.Criteria c = m.criteria();
      b.put((byte) (c == null ? 0 : 1));
      if (c != null) {
        b.putInt(c.minBytes()).putInt(c.maxBytes()).putInt(c.maxFrames());
        putString(b, strings[3]);
        b.putInt(c.maxDelayMs());
      }
      b.putInt(m.timeoutMs());
      Mapping.Retry r = m.retry();
      b.put((byte) (r == null ? 0 : 1));
      if (r != null) {
        b.putInt(r.maxAttempts()).putInt(r.backoffBaseMs()).putInt(r.backoffMaxMs());
      }
      putString(b, strings[4]);
      b.putLong(m.linkWaitMs()).put((byte) (m.closeOnLinkTimeout() ? 1 : 0));
    }
    putString(b, strings[5]);
    putString(b, strings[6]);
    b.putLong(o.downlinkAcked());
    putInstant(b, o.at());
    b.put((byte) (o.asksEndpoint() ? 1 : 0));
    if (withAddress) {
      b.put((byte) (limits == null ? 0 : 1));
    }
    if (limits != null) {
      b.putLong(limits.framesPerSecond()).putLong(limits.framesBurst()).putLong(limits.bytesPerSecond())
          .putLong(limits.bytesBurst());
    }
    if (withAddress) {
      putString(b, strings[7]);
    }
    return Arrays.copyOf(b.array(), b.position());
  }

  private SocketEvent.Opened opened(ByteBuffer b, boolean withAsksEndpoint, boolean withLimits, boolean withAddress) {
    String deviceId = getString(b);
    Mapping mapping = null;
    if (b.get() != 0) {
      String name = getString(b);
      long version = b.getLong();
      String endpoint = getString(b);
      int bits = b.get();
      Set<Mapping.Event> events = EnumSet.noneOf(Mapping.Event.class);
      for (Mapping.Event e : Mapping.Event.values()) {
        if ((bits & (1 << e.ordinal())) != 0) {
          events.add(e);
        }
      }
      Mapping.Criteria criteria = null;
      if (b.get() != 0) {
        criteria = new Mapping.Criteria(b.getInt(), b.getInt(), b.getInt(), getBytes(b), b.getInt());
      }
      int timeoutMs = b.getInt();
      Mapping.Retry retry = b.get() == 0 ? null : new Mapping.Retry(b.getInt(), b.getInt(), b.getInt());
      String secret = getString(b);
      if (SecretSealer.isSealed(secret)) {
        secret = sealer().open(secret);
      }
      mapping = new Mapping(name, version, endpoint, events, criteria, timeoutMs, retry, secret, b.getLong(),
          b.get() != 0);
    }
    String edgePath = getString(b);
    ActorRef<ToEdge> edge = edgePath == null ? null : resolver().resolveActorRef(edgePath);
    String edgeNode = getString(b);
    long downlinkAcked = b.getLong();
    Instant at = getInstant(b);
    boolean asksEndpoint = withAsksEndpoint && b.get() != 0;
    if (withAddress) {
      withLimits = b.get() != 0;
    }
    if (withLimits && mapping != null) {
      mapping = mapping.withLimits(new Mapping.Limits(b.getLong(), b.getLong(), b.getLong(), b.getLong()));
    }
    String deviceAddress = withAddress ? getString(b) : null;
    return new SocketEvent.Opened(deviceId, mapping, edge, edgeNode, downlinkAcked, at, asksEndpoint, deviceAddress);
  }

  private SecretSealer sealer() {
    SecretSealer s = sealer;
    if (s == null) {
      s = sealer = SecretSealer.get(Adapter.toTyped(system));
    }
    return s;
  }

  private ActorRefResolver resolver() {
    ActorRefResolver r = resolver;
    if (r == null) {
      r = resolver = ActorRefResolver.get(Adapter.toTyped(system));
    }
    return r;
  }

  private static byte[] getBytes(ByteBuffer b) {
    int length = b.getInt();
    if (length < 0) {
      return null;
    }
    byte[] bytes = new byte[length];
    b.get(bytes);
    return bytes;
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
    byte[] bytes = getBytes(b);
    return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
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

  private static long[] getLongs(ByteBuffer b) {
    int n = b.getInt();
    if (n < 0 || n > b.remaining() / 8) {
      throw new IllegalArgumentException("a list of " + n + " longs in " + b.remaining() + " bytes");
    }
    long[] longs = new long[n];
    for (int i = 0; i < n; i++) {
      longs[i] = b.getLong();
    }
    return longs;
  }
}
