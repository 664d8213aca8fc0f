package io.berth.bench;

import io.berth.protocol.DeviceToken;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
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
import java.util.function.BooleanSupplier;

/**
 * A fleet of idle devices that behave like the reference client when their node goes away, driven
 * by one thread with non-blocking I/O (one file descriptor each, as {@link IdleDevices}). Each
 * device connects to its node's edge, is welcomed, sends one DATA frame and waits for its ACK, then
 * stays silent. When its connection ends (the node crashed: the kernel resets it) it reconnects at
 * once, with no backoff, to the next edge of the list and resumes its session (HELLO with resume);
 * a connection refused moves it on to the next edge at once; a REDIRECT (a drain) sends it to the
 * edge named; an ERROR (Berth answers these devices only retryable ones), or a connection ended
 * before the WELCOME, makes it wait {@link #RETRY_PAUSE} before the next edge. A WELCOME that says the session accepted less than the frame
 * the device had acknowledged is a lost frame.
 *
 * <p>What each device went through since {@link #mark()}: whether it had to reconnect, when it was
 * welcomed again, and how many handshakes failed on the way.
 */
final class FleetDevices implements AutoCloseable {

  /** After a refusal that says "not yet" (a retryable ERROR, a close before the WELCOME). */
  static final Duration RETRY_PAUSE = Duration.ofMillis(250);
  private static final Duration TOKEN_TTL = Duration.ofHours(2);
  private static final Duration PROGRESS_EVERY = Duration.ofSeconds(3);
  private static final byte[] PAYLOAD = "acknowledged before".getBytes(StandardCharsets.UTF_8);

  private enum Phase { CONNECTING, HELLO_SENT, DATA_SENT, HELD, WAITING }

  private final class Device {
    final String id;
    final int home;
    int edge;
    Phase phase;
    SocketChannel channel;
    SelectionKey key;
    final ByteBuffer in = ByteBuffer.allocate(1024);
    ByteBuffer out;
    boolean welcomedOnce;
    /** Its one DATA frame acknowledged: from then on the session must say it accepted it. */
    boolean acked;
    int refusedInARow;
    /** Its session was found without its acknowledged frame (counted once). */
    boolean lostCounted;
    /** Where a REDIRECT sent it: its next connection goes there instead of to the next edge. */
    InetSocketAddress redirectedTo;
    long retryAt;
    /** Since the mark: when its connection ended (0: it did not), when it was welcomed again. */
    long droppedAt;
    long resumedAt;
    /** The edge it was held on when it first lost its connection since the mark. */
    int droppedFrom = -1;
    int failures;

    Device(String id, int home) {
      this.id = id;
      this.home = home;
      this.edge = home;
    }
  }

  private final List<InetSocketAddress> edges;
  private final byte[] secret = LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8);
  private final Instant expiry = Instant.now().plus(TOKEN_TTL);
  private final Selector selector;
  private final List<Device> devices = new ArrayList<>();
  private final List<Device> waiting = new ArrayList<>();
  private int inFlight;
  private int held;
  private long lost;
  private String firstFailure;
  private int failures;
  private long markedAt;

  FleetDevices(List<InetSocketAddress> edges) throws IOException {
    this.edges = List.copyOf(edges);
    this.selector = Selector.open();
  }

  /**
   * Opens {@code perEdge} devices on each edge ({@code prefix-EDGE-N}), at most {@code maxInFlight}
   * handshakes at once, and returns once all are held (welcomed, their frame acknowledged) or the
   * limit is past: how many are held.
   */
  int open(String prefix, int perEdge, int maxInFlight, Duration limit, PrintStream progress) throws IOException {
    int start = devices.size();
    for (int n = 0; n < perEdge; n++) {
      for (int e = 0; e < edges.size(); e++) {
        devices.add(new Device(prefix + "-" + e + "-" + n, e));
      }
    }
    int next = start;
    long began = System.nanoTime();
    long deadline = began + limit.toNanos();
    long report = began + PROGRESS_EVERY.toNanos();
    while (held < devices.size() && System.nanoTime() < deadline) {
      while (next < devices.size() && inFlight < maxInFlight) {
        connect(devices.get(next++));
      }
      step(100);
      if (System.nanoTime() > report) {
        report += PROGRESS_EVERY.toNanos();
        progress.printf(Locale.ROOT, "failover: %,d of %,d devices connected (%,.0f/s), %d failed handshakes%n", held,
            devices.size(), held / ((System.nanoTime() - began) / 1e9), failures);
      }
    }
    return held;
  }

  /** From now on, drops and resumptions are counted for the event that follows. */
  void mark() {
    markedAt = System.nanoTime();
    for (Device d : devices) {
      d.droppedAt = 0;
      d.resumedAt = 0;
      d.droppedFrom = -1;
      d.failures = 0;
    }
    failures = 0;
    firstFailure = null;
    lost = 0;
  }

  /** Runs the devices until {@code done} or {@code limit}, {@code tick} at every turn. */
  void runUntil(BooleanSupplier done, Duration limit, Runnable tick) throws IOException {
    long deadline = System.nanoTime() + limit.toNanos();
    while (!done.getAsBoolean() && System.nanoTime() < deadline) {
      step(20);
      tick.run();
    }
  }

  /** Whether every device that lost its connection since the mark is welcomed again. */
  boolean allResumed() {
    return devices.stream().allMatch(d -> d.droppedAt == 0 || d.resumedAt != 0);
  }

  /** Devices that lost their connection since the mark. */
  int dropped() {
    return (int) devices.stream().filter(d -> d.droppedAt != 0).count();
  }

  /** Of those, devices welcomed again. */
  int resumed() {
    return (int) devices.stream().filter(d -> d.droppedAt != 0 && d.resumedAt != 0).count();
  }

  /** Devices that lost their connection since the mark while held on {@code edge}. */
  int droppedFrom(int edge) {
    return (int) devices.stream().filter(d -> d.droppedAt != 0 && d.droppedFrom == edge).count();
  }

  /** Devices whose connection is on {@code edge} now (welcomed there). */
  int heldOn(int edge) {
    return (int) devices.stream().filter(d -> d.phase == Phase.HELD && d.edge == edge && d.redirectedTo == null)
        .count();
  }

  /** For each device that lost its connection and was welcomed again: seconds from {@code from} to its WELCOME. */
  Stats resumeSeconds(long from) {
    Stats s = new Stats();
    devices.stream().filter(d -> d.droppedAt != 0 && d.resumedAt != 0).forEach(d -> s.add((d.resumedAt - from) / 1e9));
    return s;
  }

  /**
   * For each device that lost its connection and was welcomed again: seconds from its first drop
   * (reset, close or REDIRECT) to its last WELCOME. For a device that dropped once, the time it
   * was not served; one that dropped again after a WELCOME counts the time between too.
   */
  Stats darkSeconds() {
    Stats s = new Stats();
    devices.stream().filter(d -> d.droppedAt != 0 && d.resumedAt != 0)
        .forEach(d -> s.add((d.resumedAt - d.droppedAt) / 1e9));
    return s;
  }

  /** The first drop and the last resumption since the mark (nanoTime), 0 when none. */
  long firstDrop() {
    return devices.stream().mapToLong(d -> d.droppedAt).filter(t -> t != 0).min().orElse(0);
  }

  long firstResume() {
    return devices.stream().mapToLong(d -> d.resumedAt).filter(t -> t != 0).min().orElse(0);
  }

  long lastResume() {
    return devices.stream().mapToLong(d -> d.resumedAt).max().orElse(0);
  }

  /** Handshakes that failed since the mark: refused connects, ERRORs, connections ended before a WELCOME. */
  int failedHandshakes() {
    return failures;
  }

  String firstFailure() {
    return firstFailure;
  }

  /** Devices whose session, when resumed since the mark, had accepted less than the frame they had acknowledged. */
  long lostFrames() {
    return lost;
  }

  long markedAt() {
    return markedAt;
  }

  private void step(long selectMillis) throws IOException {
    long now = System.nanoTime();
    if (!waiting.isEmpty()) {
      List<Device> due = new ArrayList<>();
      waiting.removeIf(d -> {
        if (d.retryAt <= now) {
          due.add(d);
          return true;
        }
        return false;
      });
      due.forEach(this::connect);
    }
    selector.select(selectMillis);
    var keys = selector.selectedKeys().iterator();
    while (keys.hasNext()) {
      SelectionKey key = keys.next();
      keys.remove();
      Device d = (Device) key.attachment();
      try {
        advance(d, key);
      } catch (IOException e) {
        lostConnection(d, e.getMessage() == null ? e.toString() : e.getMessage());
      }
    }
  }

  private void connect(Device d) {
    InetSocketAddress target = d.redirectedTo != null ? d.redirectedTo : edges.get(d.edge);
    try {
      d.channel = SocketChannel.open();
      d.channel.configureBlocking(false);
      d.channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
      d.channel.bind(new InetSocketAddress(IdleDevices.LOOPBACK_SOURCES.get(
          Math.floorMod(d.id.hashCode(), IdleDevices.LOOPBACK_SOURCES.size())), 0));
      d.channel.connect(target);
      d.key = d.channel.register(selector, SelectionKey.OP_CONNECT, d);
      d.phase = Phase.CONNECTING;
      d.in.clear();
      inFlight++;
    } catch (IOException e) {
      if (d.channel != null) {
        try {
          d.channel.close();
        } catch (IOException closing) {
          e.addSuppressed(closing);
        }
      }
      throw new IllegalStateException("device " + d.id + " cannot open a connection (the harness's open-file limit, "
          + "or no free local port): " + e, e);
    }
  }

  private void advance(Device d, SelectionKey key) throws IOException {
    if (key.isConnectable()) {
      d.channel.finishConnect();
      d.out = ByteBuffer.wrap(FrameCodec.encode(new Frame.Hello(FrameCodec.VERSION, d.welcomedOnce, 0, d.id,
          DeviceToken.mint(secret, d.id, expiry), "", "discard")));
      write(d);
      d.phase = Phase.HELLO_SENT;
      key.interestOps(SelectionKey.OP_READ);
      return;
    }
    if (!key.isReadable()) {
      return;
    }
    if (d.channel.read(d.in) < 0) {
      throw new IOException("connection ended" + (d.phase == Phase.HELD ? "" : " before the WELCOME"));
    }
    Frame frame;
    while ((frame = IdleDevices.answer(d.in)) != null) {
      int size = FrameCodec.HEADER_SIZE + d.in.getInt(0);
      d.in.flip().position(size);
      d.in.compact();
      handle(d, frame);
      if (d.channel == null) {
        return;
      }
    }
  }

  private void handle(Device d, Frame frame) throws IOException {
    if (frame instanceof Frame.Welcome w) {
      if (d.phase != Phase.HELLO_SENT) {
        throw new IOException("WELCOME out of turn");
      }
      inFlight--;
      d.refusedInARow = 0;
      d.welcomedOnce = true;
      if (d.acked) {
        if (w.lastAccepted() < 1 && !d.lostCounted) {
          d.lostCounted = true;
          lost++;
        }
        if (d.droppedAt != 0 && d.resumedAt == 0) {
          d.resumedAt = System.nanoTime();
        }
        d.redirectedTo = null;
        d.phase = Phase.HELD;
        return;
      }
      d.out = ByteBuffer.wrap(FrameCodec.encode(new Frame.Data(1, PAYLOAD)));
      write(d);
      d.phase = Phase.DATA_SENT;
    } else if (frame instanceof Frame.Ack a && d.phase == Phase.DATA_SENT && a.seq() == 1) {
      d.phase = Phase.HELD;
      d.acked = true;
      held++;
    } else if (frame instanceof Frame.Ping p) {
      d.out = ByteBuffer.wrap(FrameCodec.encode(new Frame.Pong(p.nonce())));
      write(d);
    } else if (frame instanceof Frame.Redirect r) {
      closeChannel(d);
      noteDrop(d);
      d.redirectedTo = new InetSocketAddress(r.host(), r.port());
      int named = edges.indexOf(d.redirectedTo);
      d.edge = named >= 0 ? named : d.edge;
      connect(d);
    } else if (frame instanceof Frame.Error e) {
      fail(d, "ERROR " + e.code() + ": " + e.message());
    } else if (frame instanceof Frame.Close c) {
      lostConnection(d, "CLOSE " + c.code() + ": " + c.reason());
    } else {
      throw new IOException("unexpected " + frame.type() + " in phase " + d.phase);
    }
  }

  /** The connection ended: once held, a drop to resume from at once; before the WELCOME, a failure. */
  private void lostConnection(Device d, String why) {
    if (d.phase == Phase.HELD) {
      closeChannel(d);
      noteDrop(d);
      d.edge = (d.edge + 1) % edges.size();
      connect(d);
    } else if (d.phase == Phase.CONNECTING && d.welcomedOnce && ++d.refusedInARow < edges.size()) {
      // Refused: that edge is gone; the next one, at once (after a round of refusals, a pause).
      countFailure(d, "connect to " + edges.get(d.edge) + ": " + why);
      closeChannel(d);
      d.redirectedTo = null;
      d.edge = (d.edge + 1) % edges.size();
      connect(d);
    } else {
      fail(d, why);
    }
  }

  /** A handshake failed: the next edge after a pause. */
  private void fail(Device d, String why) {
    countFailure(d, why);
    if (d.phase == Phase.HELD) {
      noteDrop(d);
    }
    closeChannel(d);
    d.refusedInARow = 0;
    d.redirectedTo = null;
    d.edge = (d.edge + 1) % edges.size();
    d.phase = Phase.WAITING;
    d.retryAt = System.nanoTime() + RETRY_PAUSE.toNanos();
    waiting.add(d);
  }

  private void countFailure(Device d, String why) {
    d.failures++;
    failures++;
    if (firstFailure == null) {
      firstFailure = d.id + ": " + why;
    }
  }

  /**
   * A held device lost its connection: the first time since the mark, when and where; again after
   * it was resumed, it counts as resumed only once welcomed again.
   */
  private void noteDrop(Device d) {
    if (d.droppedAt == 0) {
      d.droppedAt = System.nanoTime();
      d.droppedFrom = d.edge;
    }
    d.resumedAt = 0;
  }

  private void write(Device d) throws IOException {
    d.channel.write(d.out);
    if (d.out.hasRemaining()) {
      throw new IOException("a frame not written at once");
    }
  }

  /** Closes the device's connection (with a reset); a handshake under way no longer counts as in flight. */
  private void closeChannel(Device d) {
    if (d.channel != null && (d.phase == Phase.CONNECTING || d.phase == Phase.HELLO_SENT)) {
      inFlight--;
    }
    if (d.key != null) {
      d.key.cancel();
    }
    if (d.channel != null) {
      try {
        d.channel.setOption(StandardSocketOptions.SO_LINGER, 0);
      } catch (IOException e) {
        // Closed anyway, just not with a reset.
      }
      try {
        d.channel.close();
      } catch (IOException e) {
        // Closing is all there is to do.
      }
    }
    d.channel = null;
    d.key = null;
  }

  /** Closes every connection with a reset, so that the harness's ports are free at once. */
  @Override
  public void close() throws IOException {
    for (Device d : devices) {
      closeChannel(d);
    }
    selector.close();
  }
}
