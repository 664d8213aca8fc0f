package io.berth.bench;

import io.berth.protocol.Decoded;
import io.berth.protocol.DeviceToken;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.mqtt.MqttConnectMessage;
import io.netty.handler.codec.mqtt.MqttEncoder;
import io.netty.handler.codec.mqtt.MqttMessageBuilders;
import io.netty.handler.codec.mqtt.MqttVersion;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * Many idle devices driven by one thread: each opens a TCP connection, sends a real HELLO (a token
 * minted with {@link DeviceToken} from the fleet secret, mapping {@code discard}) and waits for the
 * WELCOME; then it stays connected and silent. Or, as MQTT clients ({@link Kind#MQTT}): an MQTT
 * 3.1.1 CONNECT (client id the device, password its token, clean session, keep alive 0) answered
 * by a CONNACK that accepts it. The reference client runs two threads per device,
 * which would not fit 19,000 devices in the harness; non-blocking I/O holds each with one file
 * descriptor. At most {@code inFlight} handshakes are under way at once, below the edge's accept
 * backlog, so that the rate measured is the handshake rate and not the kernel dropping SYNs.
 */
final class IdleDevices implements AutoCloseable {

  /**
   * How an opening went: devices welcomed, failed (and why the first one did), and the rate, over
   * the whole opening and over its second half alone (once the server has warmed up).
   */
  record Opening(int opened, int failed, String firstFailure, double connectsPerSecond,
      double secondHalfPerSecond) {}

  /** What the devices speak: Berth's own protocol, or MQTT to a node's MQTT port. */
  enum Kind {
    NATIVE,
    MQTT
  }

  private static final Duration TOKEN_TTL = Duration.ofHours(2);
  /**
   * Local addresses the devices connect from, in turn. From one address, the kernel finds each new
   * connection's port by scanning the ephemeral range (28,000 ports here, even ones first), and
   * with 15,000 and more connections to the same server that scan becomes the cost of a connect;
   * spread over eight loopback addresses, each holds a few thousand.
   */
  static final List<InetAddress> LOOPBACK_SOURCES = IntStream.rangeClosed(2, 9)
      .mapToObj(IdleDevices::loopback).toList();
  private static final Duration PROGRESS_EVERY = Duration.ofSeconds(3);

  private final List<SocketChannel> held = new ArrayList<>();
  private final Kind kind;

  IdleDevices() {
    this(Kind.NATIVE);
  }

  IdleDevices(Kind kind) {
    this.kind = kind;
  }

  /** One handshake under way: the HELLO to write, then the answer as it arrives. */
  private static final class Handshake {
    final ByteBuffer hello;
    final ByteBuffer in = ByteBuffer.allocate(1024);

    Handshake(ByteBuffer hello) {
      this.hello = hello;
    }
  }

  /**
   * Opens {@code count} devices named {@code prefix-0 ...} on {@code target}, at most {@code
   * inFlight} handshakes at a time and within {@code limit}; stops starting new ones after the
   * first local failure (typically the open-file limit).
   */
  Opening open(InetSocketAddress target, String prefix, int count, int inFlight, Duration limit, String label,
      PrintStream progress) throws IOException {
    Run run = new Run(target, prefix, count, label, progress);
    long deadline = run.start + limit.toNanos();
    try (Selector selector = Selector.open()) {
      while (run.unfinished() && System.nanoTime() < deadline) {
        while (run.mayStart(inFlight)) {
          run.startOne(selector);
        }
        selector.select(100);
        var keys = selector.selectedKeys().iterator();
        while (keys.hasNext()) {
          SelectionKey key = keys.next();
          keys.remove();
          run.advance(key);
        }
        run.report();
      }
      // Handshakes still under way at the deadline are failures. (Welcomed devices' keys are
      // cancelled, so no longer valid; their connections stay open.)
      for (SelectionKey key : selector.keys()) {
        if (key.isValid()) {
          run.fail(key, "no WELCOME within " + limit.toSeconds() + " s");
        }
      }
    }
    return run.result();
  }

  /** The state of one opening: what was started, welcomed and failed, and when. */
  private final class Run {
    final InetSocketAddress target;
    final String prefix;
    final int count;
    final String label;
    final PrintStream progress;
    final byte[] secret = LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8);
    final Instant expiry = Instant.now().plus(TOKEN_TTL);
    final long start = System.nanoTime();
    long lastWelcome = start;
    long halfAt;
    long nextReport = start + PROGRESS_EVERY.toNanos();
    int started;
    int pending;
    int opened;
    int failed;
    String firstFailure;
    boolean exhausted;

    Run(InetSocketAddress target, String prefix, int count, String label, PrintStream progress) {
      this.target = target;
      this.prefix = prefix;
      this.count = count;
      this.label = label;
      this.progress = progress;
    }

    boolean unfinished() {
      return pending > 0 || (!exhausted && started < count);
    }

    boolean mayStart(int inFlight) {
      return !exhausted && started < count && pending < inFlight;
    }

    /** Starts the next device's connection; a local failure stops the opening from growing. */
    void startOne(Selector selector) {
      String deviceId = prefix + "-" + started;
      InetAddress source = LOOPBACK_SOURCES.get(started % LOOPBACK_SOURCES.size());
      started++;
      SocketChannel ch = null;
      try {
        ch = SocketChannel.open();
        ch.configureBlocking(false);
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
        if (target.getAddress().isLoopbackAddress()) {
          ch.bind(new InetSocketAddress(source, 0));
        }
        ch.connect(target);
        byte[] first = kind == Kind.MQTT ? mqttConnect(secret, deviceId, expiry) : hello(secret, deviceId, expiry);
        ch.register(selector, SelectionKey.OP_CONNECT, new Handshake(ByteBuffer.wrap(first)));
        pending++;
      } catch (IOException e) {
        failed++;
        firstFailure = firstFailure == null ? "connect: " + e.getMessage() : firstFailure;
        exhausted = true;
        closeQuietly(ch);
      }
    }

    /** Connected: write the HELLO; readable: look for the WELCOME. */
    void advance(SelectionKey key) {
      SocketChannel ch = (SocketChannel) key.channel();
      Handshake h = (Handshake) key.attachment();
      try {
        if (key.isConnectable()) {
          ch.finishConnect();
          ch.write(h.hello);
          if (h.hello.hasRemaining()) {
            throw new IOException("HELLO not written at once");
          }
          key.interestOps(SelectionKey.OP_READ);
        } else if (key.isReadable()) {
          if (ch.read(h.in) < 0) {
            throw new IOException("connection closed before " + (kind == Kind.MQTT ? "CONNACK" : "WELCOME"));
          }
          Object frame = kind == Kind.MQTT ? connAck(h.in) : answer(h.in);
          if (frame instanceof Frame.Welcome || frame == CONNACK_ACCEPTED) {
            key.cancel();
            held.add(ch);
            pending--;
            opened++;
            lastWelcome = System.nanoTime();
            if (opened == count / 2) {
              halfAt = lastWelcome;
            }
          } else if (frame != null) {
            throw new IOException("answered HELLO with " + frame);
          }
        }
      } catch (IOException e) {
        fail(key, e.getMessage());
      }
    }

    void fail(SelectionKey key, String why) {
      failed++;
      pending--;
      firstFailure = firstFailure == null ? why : firstFailure;
      key.cancel();
      closeQuietly((SocketChannel) key.channel());
    }

    void report() {
      long now = System.nanoTime();
      if (now > nextReport) {
        nextReport += PROGRESS_EVERY.toNanos();
        progress.printf(Locale.ROOT, "idle: %s: %,d of %,d open (%,.0f/s), %d failed%n", label, opened, count,
            opened / ((now - start) / 1e9), failed);
      }
    }

    Opening result() {
      double seconds = Math.max(1, lastWelcome - start) / 1e9;
      double secondHalf = halfAt == 0 ? Double.NaN
          : (opened - count / 2) / (Math.max(1, lastWelcome - halfAt) / 1e9);
      return new Opening(opened, failed, firstFailure, opened / seconds, secondHalf);
    }
  }

  private static InetAddress loopback(int last) {
    try {
      return InetAddress.getByAddress(new byte[] {127, 0, 0, (byte) last});
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  private static final Object CONNACK_ACCEPTED = new Object();

  /**
   * The CONNACK in {@code in} once its 4 bytes are in ({@link #CONNACK_ACCEPTED}), null while
   * they are not; an error for anything else, or a refusal, with its return code.
   */
  static Object connAck(ByteBuffer in) throws IOException {
    if (in.position() < 4) {
      return null;
    }
    if ((in.get(0) & 0xFF) != 0x20 || in.get(1) != 2) {
      throw new IOException(String.format(Locale.ROOT, "answer to CONNECT starts %02x %02x, not a CONNACK",
          in.get(0), in.get(1)));
    }
    if (in.get(3) != 0) {
      throw new IOException("CONNACK refused the client, return code " + in.get(3));
    }
    return CONNACK_ACCEPTED;
  }

  /**
   * An MQTT 3.1.1 CONNECT for {@code deviceId} (its client id and user name), its token as the
   * password, clean session, keep alive 0 (the node's idle timeout applies), encoded by Netty's
   * MQTT codec. The node's configured MQTT mapping decides where its data would go.
   */
  static byte[] mqttConnect(byte[] secret, String deviceId, Instant expiry) {
    MqttConnectMessage connect = MqttMessageBuilders.connect().protocolVersion(MqttVersion.MQTT_3_1_1)
        .clientId(deviceId).username(deviceId)
        .password(DeviceToken.mint(secret, deviceId, expiry).getBytes(StandardCharsets.UTF_8))
        .cleanSession(true).keepAlive(0).build();
    EmbeddedChannel encoder = new EmbeddedChannel(MqttEncoder.INSTANCE);
    try {
      encoder.writeOutbound(connect);
      ByteBuf bytes = encoder.readOutbound();
      try {
        return ByteBufUtil.getBytes(bytes);
      } finally {
        bytes.release();
      }
    } finally {
      encoder.finishAndReleaseAll();
    }
  }

  /**
   * The first frame in {@code in} (bytes from 0 to its position, as read so far), null while it
   * is not all in; an error when it cannot be the answer to a HELLO (too large for {@code in}, or
   * malformed).
   */
  static Frame answer(ByteBuffer in) throws IOException {
    if (in.position() < FrameCodec.HEADER_SIZE) {
      return null;
    }
    int size = FrameCodec.HEADER_SIZE + in.getInt(0);
    if (size > in.capacity() || size <= FrameCodec.HEADER_SIZE) {
      throw new IOException("answer to HELLO of " + size + " bytes");
    }
    if (in.position() < size) {
      return null;
    }
    Decoded decoded = FrameCodec.decode(in.slice(0, size), FrameCodec.DEFAULT_MAX_FRAME_SIZE);
    if (decoded instanceof Decoded.Ok ok) {
      return ok.frame();
    }
    throw new IOException("malformed answer to HELLO: " + decoded);
  }

  /** A HELLO for {@code deviceId} with a token minted from the fleet secret, mapping {@code discard}. */
  static byte[] hello(byte[] secret, String deviceId, Instant expiry) {
    return FrameCodec.encode(new Frame.Hello(FrameCodec.VERSION, false, 0, deviceId,
        DeviceToken.mint(secret, deviceId, expiry), "", "discard"));
  }

  /**
   * Devices whose connection the server ended while they were held: a read that finds the end of
   * the stream, or any frame (a node sends an idle device nothing unless it is closing it).
   */
  int dropped() {
    ByteBuffer probe = ByteBuffer.allocate(64);
    int dropped = 0;
    for (SocketChannel ch : held) {
      try {
        probe.clear();
        if (ch.read(probe) != 0) {
          dropped++;
        }
      } catch (IOException e) {
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Closes every connection with a reset (SO_LINGER 0): the devices just go away, the server sees
   * them end, and the harness's ports are free at once instead of waiting out TIME_WAIT, so that
   * the next round finds as many free ports as this one did.
   */
  @Override
  public void close() {
    for (SocketChannel ch : held) {
      try {
        ch.setOption(StandardSocketOptions.SO_LINGER, 0);
      } catch (IOException e) {
        // Closed anyway, just not with a reset.
      }
      closeQuietly(ch);
    }
    held.clear();
  }

  private static void closeQuietly(SocketChannel ch) {
    if (ch == null) {
      return;
    }
    try {
      ch.close();
    } catch (IOException e) {
      // Closing is all there is to do.
    }
  }
}
