package io.berth.bench;

import io.berth.protocol.CloseCode;
import io.berth.protocol.Decoded;
import io.berth.protocol.DeviceToken;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The anchor of the uplink and idle scenarios: the least a device edge can do on this machine with
 * the same devices. One thread and one selector serve every connection; the protocol is the real
 * one, through {@link FrameCodec}: a HELLO is checked (its token verified with the fleet secret,
 * as a node does) and answered with a WELCOME carrying the node's default window, DATA is taken in
 * sequence and acknowledged cumulatively once per read (a node acknowledges once per journal
 * write), PING gets PONG and CLOSE gets CLOSE. What it leaves out is everything Berth adds: the
 * cluster, the session entity and the journal. So the difference between the two is their cost.
 *
 * <p>Runs inside the harness (uplink) or, through {@link #main}, in a JVM of its own (idle), so
 * that its connections and memory are its own to measure.
 */
final class RawEdge implements AutoCloseable {

  /** What {@link #main} prints once it listens. */
  static final String READY = "raw edge listening on port ";

  private static final int MAX_FRAME = FrameCodec.DEFAULT_MAX_FRAME_SIZE;
  /** The node's defaults (reference.conf: berth.edge.window, window-bytes, idle-timeout). */
  private static final int WINDOW = 512;
  private static final long WINDOW_BYTES = 1 << 20;
  private static final int IDLE_TIMEOUT_SECONDS = 60;

  private final byte[] secret;
  private final ServerSocketChannel server;
  private final Selector selector;
  /** One read buffer for all connections: only a partial frame stays with its connection. */
  private final ByteBuffer readBuffer = ByteBuffer.allocateDirect(4 * MAX_FRAME);
  /** What each socket delivered, kept from its first DATA on: idle connections pay nothing. */
  private final Map<String, SequenceCheck> received = new ConcurrentHashMap<>();
  private final Thread thread;
  private volatile boolean stop;

  /** One device connection. Idle ones hold only this and their channel. */
  private static final class Conn {
    final SocketChannel channel;
    String socketId;
    long highest;
    long acked;
    ByteBuffer partial;
    ByteBuffer unwritten;
    boolean closeWhenWritten;
    SequenceCheck sequence;

    Conn(SocketChannel channel) {
      this.channel = channel;
    }
  }

  private RawEdge(byte[] secret, int port) throws IOException {
    this.secret = secret.clone();
    this.selector = Selector.open();
    this.server = ServerSocketChannel.open();
    server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1024);
    server.configureBlocking(false);
    server.register(selector, SelectionKey.OP_ACCEPT);
    this.thread = new Thread(this::run, "raw-edge");
    this.thread.setDaemon(true);
  }

  /** Listens on a loopback port ({@code 0}: any free one) and serves until closed. */
  static RawEdge start(byte[] secret, int port) throws IOException {
    RawEdge edge = new RawEdge(secret, port);
    edge.thread.start();
    return edge;
  }

  int port() {
    return server.socket().getLocalPort();
  }

  /**
   * What a socket's DATA frames delivered here, counted like a relay receiver counts (each seq
   * once, duplicates apart); null before its first DATA.
   */
  SequenceCheck received(String socketId) {
    return received.get(socketId);
  }

  private void run() {
    while (!stop) {
      try {
        selector.select(200);
      } catch (IOException e) {
        throw new IllegalStateException("raw edge selector failed", e);
      }
      var keys = selector.selectedKeys().iterator();
      while (keys.hasNext()) {
        SelectionKey key = keys.next();
        keys.remove();
        if (!key.isValid()) {
          continue;
        }
        if (key.isAcceptable()) {
          acceptAll();
          continue;
        }
        Conn c = (Conn) key.attachment();
        try {
          if (key.isWritable()) {
            flush(c, key);
          }
          if (key.isValid() && key.isReadable()) {
            read(c, key);
          }
        } catch (IOException e) {
          closeQuietly(c);
        }
      }
    }
    for (SelectionKey key : selector.keys()) {
      if (key.attachment() instanceof Conn c) {
        closeQuietly(c);
      }
    }
  }

  private void acceptAll() {
    while (true) {
      SocketChannel ch;
      try {
        ch = server.accept();
        if (ch == null) {
          return;
        }
      } catch (IOException e) {
        // Out of file descriptors, typically: the backlog keeps the rest until one is free.
        return;
      }
      try {
        ch.configureBlocking(false);
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
        ch.register(selector, SelectionKey.OP_READ, new Conn(ch));
      } catch (IOException e) {
        try {
          ch.close();
        } catch (IOException ignored) {
          // Nothing more to release.
        }
      }
    }
  }

  private void read(Conn c, SelectionKey key) throws IOException {
    readBuffer.clear();
    if (c.partial != null) {
      readBuffer.put(c.partial);
      c.partial = null;
    }
    int n = c.channel.read(readBuffer);
    if (n < 0) {
      closeQuietly(c);
      return;
    }
    readBuffer.flip();
    while (readBuffer.remaining() >= FrameCodec.HEADER_SIZE && c.channel.isOpen()) {
      int start = readBuffer.position();
      long declared = Integer.toUnsignedLong(readBuffer.getInt(start));
      if (FrameCodec.checkDeclaredLength(declared, MAX_FRAME) instanceof Decoded.Malformed bad) {
        fail(c, key, bad.code(), bad.reason());
        return;
      }
      int size = FrameCodec.HEADER_SIZE + (int) declared;
      if (readBuffer.remaining() < size) {
        break;
      }
      Decoded decoded = FrameCodec.decode(readBuffer.slice(start, size), MAX_FRAME);
      readBuffer.position(start + size);
      if (decoded instanceof Decoded.Malformed bad) {
        fail(c, key, bad.code(), bad.reason());
        return;
      }
      handle(c, key, ((Decoded.Ok) decoded).frame());
    }
    if (!c.channel.isOpen()) {
      return;
    }
    if (readBuffer.hasRemaining()) {
      c.partial = ByteBuffer.allocate(readBuffer.remaining()).put(readBuffer).flip();
    }
    // Cumulative: one ACK for everything this read brought (PROTOCOL.md#ack).
    if (c.highest > c.acked) {
      c.acked = c.highest;
      send(c, key, new Frame.Ack(c.highest));
    }
  }

  private void handle(Conn c, SelectionKey key, Frame frame) throws IOException {
    if (c.socketId == null) {
      if (frame instanceof Frame.Hello hello) {
        welcome(c, key, hello);
      } else {
        fail(c, key, ErrorCode.UNEXPECTED_FRAME, "the first frame must be HELLO");
      }
      return;
    }
    if (frame instanceof Frame.Data data) {
      if (data.seq() > c.highest + 1) {
        fail(c, key, ErrorCode.BAD_SEQUENCE, "expected seq " + (c.highest + 1) + ", got " + data.seq());
      } else if (data.seq() == c.highest + 1) {
        c.highest = data.seq();
        if (c.sequence == null) {
          c.sequence = received.computeIfAbsent(c.socketId, id -> new SequenceCheck());
        }
        c.sequence.accept(data.seq() - 1);
      }
      // A replay (seq <= highest) is acknowledged by the ACK after this read, not taken again.
    } else if (frame instanceof Frame.Ping ping) {
      send(c, key, new Frame.Pong(ping.nonce()));
    } else if (frame instanceof Frame.Close) {
      c.closeWhenWritten = true;
      send(c, key, new Frame.Close(CloseCode.NORMAL, "session closed"));
    } else if (!(frame instanceof Frame.Ack || frame instanceof Frame.Pong)) {
      fail(c, key, ErrorCode.UNEXPECTED_FRAME, frame.type() + " may not be sent by a device");
    }
  }

  private void welcome(Conn c, SelectionKey key, Frame.Hello hello) throws IOException {
    if (hello.version() != FrameCodec.VERSION) {
      fail(c, key, ErrorCode.UNSUPPORTED_VERSION, "version " + hello.version());
      return;
    }
    DeviceToken.Verdict verdict = DeviceToken.verify(secret, hello.deviceId(), hello.token(), Instant.now());
    if (verdict != DeviceToken.Verdict.VALID) {
      fail(c, key, verdict == DeviceToken.Verdict.EXPIRED ? ErrorCode.TOKEN_EXPIRED : ErrorCode.AUTH_FAILED,
          "token " + verdict);
      return;
    }
    c.socketId = hello.socketName().isEmpty() ? hello.deviceId() : hello.deviceId() + "/" + hello.socketName();
    send(c, key, new Frame.Welcome(FrameCodec.VERSION, c.socketId, "raw-edge", 0, 0, MAX_FRAME, WINDOW, WINDOW_BYTES,
        IDLE_TIMEOUT_SECONDS));
  }

  private void fail(Conn c, SelectionKey key, ErrorCode code, String message) throws IOException {
    c.closeWhenWritten = true;
    send(c, key, new Frame.Error(code, message));
  }

  private void send(Conn c, SelectionKey key, Frame frame) throws IOException {
    ByteBuffer bytes = ByteBuffer.wrap(FrameCodec.encode(frame));
    if (c.unwritten == null) {
      c.channel.write(bytes);
      if (bytes.hasRemaining()) {
        c.unwritten = ByteBuffer.allocate(bytes.remaining()).put(bytes).flip();
        key.interestOps(key.interestOps() | SelectionKey.OP_WRITE);
      }
    } else {
      ByteBuffer joined = ByteBuffer.allocate(c.unwritten.remaining() + bytes.remaining());
      c.unwritten = joined.put(c.unwritten).put(bytes).flip();
    }
    if (c.unwritten == null && c.closeWhenWritten) {
      closeQuietly(c);
    }
  }

  private void flush(Conn c, SelectionKey key) throws IOException {
    c.channel.write(c.unwritten);
    if (!c.unwritten.hasRemaining()) {
      c.unwritten = null;
      key.interestOps(key.interestOps() & ~SelectionKey.OP_WRITE);
      if (c.closeWhenWritten) {
        closeQuietly(c);
      }
    }
  }

  private static void closeQuietly(Conn c) {
    try {
      c.channel.close();
    } catch (IOException e) {
      // Closing is all that is left to do with it.
    }
  }

  @Override
  public void close() {
    stop = true;
    selector.wakeup();
    try {
      thread.join(TimeUnit.SECONDS.toMillis(10));
      server.close();
      selector.close();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException e) {
      // The process or scenario ends anyway.
    }
  }

  /**
   * The idle scenario's anchor in a JVM of its own: {@code RawEdge PORT}, fleet secret in {@code
   * BERTH_SECRET}. Runs until stdin ends (the harness exits) or the process is terminated.
   */
  public static void main(String[] args) throws IOException {
    String secret = System.getenv("BERTH_SECRET");
    if (args.length != 1 || secret == null || secret.isBlank()) {
      System.err.println("usage: BERTH_SECRET=... RawEdge PORT");
      System.exit(2);
    }
    try (RawEdge edge = start(secret.getBytes(StandardCharsets.UTF_8), Integer.parseInt(args[0]))) {
      System.out.println(READY + edge.port());
      System.out.flush();
      while (System.in.read() >= 0) {
        // Only the end of stdin matters.
      }
    }
  }
}
