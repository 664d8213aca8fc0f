package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.CloseCode;
import io.berth.protocol.Decoded;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The edge's sockets (on Netty) and a connection on their own, over real loopback TCP: a test probe stands
 * in for the connection's actor, a blocking {@link Socket} for the device.
 */
class ConnectionTest {

  private static final int MAX_FRAME = 4096;
  private static final Duration WAIT = Duration.ofSeconds(5);

  private static ActorTestKit testKit;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create();
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private final TestProbe<ConnectionActor.Command> actor = testKit.createTestProbe();
  private final BlockingQueue<Connection> accepted = new LinkedBlockingQueue<>();
  private final List<Socket> devices = new ArrayList<>();
  private final EdgeBacklog backlog = new EdgeBacklog();
  private EdgeSockets sockets;

  @AfterEach
  void closeAll() throws IOException {
    for (Socket device : devices) {
      device.close();
    }
    if (sockets != null) {
      sockets.close();
    }
  }

  /** Listens on a free loopback port; each accepted connection's actor is the probe. */
  private void listen(long maxBatchBytes, int outboundBuffer, int maxConnections) throws IOException {
    sockets = EdgeSockets.bind(options(maxBatchBytes, outboundBuffer, maxConnections, false), new EdgeOutcome.Counts(),
        backlog, connection -> {
      connection.start(actor.ref());
      accepted.add(connection);
    });
  }

  static EdgeSockets.Options options(long maxBatchBytes, int outboundBuffer, int maxConnections, boolean proxy) {
    return new EdgeSockets.Options("127.0.0.1", 0, 16, maxConnections, MAX_FRAME, maxBatchBytes, outboundBuffer, 1,
        Duration.ofSeconds(5), proxy, null, 0, 1, null, null);
  }

  private Socket connect() throws IOException {
    Socket device = new Socket();
    devices.add(device);
    device.setSoTimeout((int) WAIT.toMillis());
    device.connect(sockets.localAddress());
    return device;
  }

  /** A device connected to a fresh edge, and its connection. */
  private Connection connected(Socket[] device, long maxBatchBytes, int outboundBuffer) throws Exception {
    listen(maxBatchBytes, outboundBuffer, 100);
    device[0] = connect();
    return nextAccepted();
  }

  private Connection nextAccepted() throws InterruptedException {
    Connection connection = accepted.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertThat(connection).as("accepted").isNotNull();
    return connection;
  }

  private static byte[] encode(List<Frame> frames) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (Frame f : frames) {
      bytes.writeBytes(FrameCodec.encode(f));
    }
    return bytes.toByteArray();
  }

  /** Everything the device reads until our FIN. */
  private static List<Frame> readUntilFin(Socket device) throws IOException {
    return OutboundBatchTest.decode(device.getInputStream().readAllBytes());
  }

  /** Takes batches as the actor does, until the input ends; returns what they held. */
  private List<Decoded> readAll() {
    List<Decoded> read = new ArrayList<>();
    while (true) {
      ConnectionActor.Command m = actor.receiveMessage(WAIT);
      if (m instanceof ConnectionActor.StreamCompleted) {
        return read;
      }
      ConnectionActor.Inbound inbound = (ConnectionActor.Inbound) m;
      read.addAll(inbound.frames());
      inbound.connection().ready();
    }
  }

  private static List<Frame> framesOf(List<Decoded> decoded) {
    return decoded.stream().map(d -> ((Decoded.Ok) d).frame()).toList();
  }

  private static List<Frame> sampleUplink(int count, int payload) {
    List<Frame> frames = new ArrayList<>();
    frames.add(new Frame.Hello(FrameCodec.VERSION, false, 0, "device-1", "token", "socket", "discard"));
    for (int i = 1; i <= count; i++) {
      frames.add(new Frame.Data(i, new byte[payload]));
      if (i % 10 == 0) {
        frames.add(new Frame.Ack(i / 10));
        frames.add(new Frame.Ping(i));
      }
    }
    return frames;
  }

  @Test
  void framesCutAcrossReadsArriveWholeAndInOrderThenTheEnd() throws Exception {
    Socket[] device = new Socket[1];
    connected(device, 1024, 64);
    device[0].setTcpNoDelay(true);
    List<Frame> sent = sampleUplink(200, 37);
    byte[] bytes = encode(sent);
    OutputStream out = device[0].getOutputStream();
    for (int i = 0; i < bytes.length; i += 3) {
      out.write(bytes, i, Math.min(3, bytes.length - i));
      out.flush();
    }
    device[0].shutdownOutput();

    assertThat(framesOf(readAll())).isEqualTo(sent);
  }

  @Test
  void readingStopsWhileTheActorHoldsABatchAndTheNextIsFull() throws Exception {
    Socket[] device = new Socket[1];
    connected(device, 4096, 64);
    // Far more than loopback's socket buffers hold, so that the writer blocks once we stop reading.
    int count = 32_000;
    List<Frame> sent = sampleUplink(count, 1000);
    byte[] bytes = encode(sent);
    AtomicLong written = new AtomicLong();
    Thread writer = new Thread(() -> {
      try {
        OutputStream out = device[0].getOutputStream();
        for (int i = 0; i < bytes.length; i += 8192) {
          int n = Math.min(8192, bytes.length - i);
          out.write(bytes, i, n);
          written.addAndGet(n);
        }
        device[0].shutdownOutput();
      } catch (IOException e) {
        // The test fails on what it read.
      }
    });
    writer.start();

    ConnectionActor.Inbound first = actor.expectMessageClass(ConnectionActor.Inbound.class, WAIT);
    actor.expectNoMessage(Duration.ofMillis(300));
    // The writer fills loopback's buffers, then blocks: wait until it stops making progress.
    await().atMost(Duration.ofSeconds(20)).until(() -> {
      long before = written.get();
      Thread.sleep(300);
      return written.get() == before;
    });
    assertThat(written.get()).as("written while one batch is with the actor").isLessThan(bytes.length);

    first.connection().ready();
    List<Decoded> all = new ArrayList<>(first.frames());
    all.addAll(readAll());
    assertThat(framesOf(all)).isEqualTo(sent);
    writer.join(WAIT.toMillis());
    assertThat(written.get()).isEqualTo(bytes.length);
  }

  @Test
  void aBadLengthIsReportedBeforeItsBodyAndTheRestIsDiscardedAndTheDeviceGetsAFin() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);
    Frame hello = sampleUplink(0, 0).get(0);
    OutputStream out = device[0].getOutputStream();
    out.write(encode(List.of(hello)));
    out.write(new byte[] {(byte) 0x80, 0, 0, 1, 2, 3});
    // Whatever follows is no longer framed: a valid-looking frame must not be delivered.
    out.write(encode(List.of(new Frame.Ping(9))));
    out.flush();
    device[0].shutdownOutput();

    List<Decoded> read = readAll();
    assertThat(read).hasSize(2);
    assertThat(((Decoded.Ok) read.get(0)).frame()).isEqualTo(hello);
    assertThat(read.get(1)).isInstanceOfSatisfying(Decoded.Malformed.class,
        bad -> assertThat(bad.code()).isEqualTo(ErrorCode.FRAME_TOO_LARGE));

    Frame.Error error = new Frame.Error(ErrorCode.FRAME_TOO_LARGE, "too large");
    connection.offer(error);
    connection.complete();
    assertThat(readUntilFin(device[0])).containsExactly(error);
  }

  @Test
  void anUndefinedTypeIsReportedAsSoonAsItsByteIsInNotAfterTheBody() throws Exception {
    Socket[] device = new Socket[1];
    connected(device, 1024, 64);
    // Declares 1000 bytes and sends only the type byte: the body is never waited for.
    device[0].getOutputStream().write(new byte[] {0, 0, 0x03, (byte) 0xE8, 0x7F});
    device[0].getOutputStream().flush();

    ConnectionActor.Inbound inbound = actor.expectMessageClass(ConnectionActor.Inbound.class, WAIT);
    assertThat(inbound.frames()).singleElement().isInstanceOfSatisfying(Decoded.Malformed.class,
        bad -> assertThat(bad.code()).isEqualTo(ErrorCode.UNKNOWN_FRAME_TYPE));
  }

  @Test
  void aFrameCutShortByTheEndOfInputIsDroppedAfterTheWholeFramesBeforeIt() throws Exception {
    Socket[] device = new Socket[1];
    connected(device, 1024, 64);
    Frame.Ping whole = new Frame.Ping(1);
    byte[] cut = FrameCodec.encode(new Frame.Data(1, new byte[] {1, 2, 3}));
    OutputStream out = device[0].getOutputStream();
    out.write(encode(List.of(whole)));
    out.write(cut, 0, cut.length - 1);
    out.flush();
    device[0].shutdownOutput();

    assertThat(readAll()).singleElement().isEqualTo(new Decoded.Ok(whole));
  }

  @Test
  void aZeroLengthIsMalformed() throws Exception {
    Socket[] device = new Socket[1];
    connected(device, 1024, 64);
    device[0].getOutputStream().write(new byte[] {0, 0, 0, 0});
    device[0].shutdownOutput();

    assertThat(readAll()).singleElement().isInstanceOfSatisfying(Decoded.Malformed.class,
        bad -> assertThat(bad.code()).isEqualTo(ErrorCode.MALFORMED_FRAME));
  }

  @Test
  void outboundFramesAreWrittenInOrderWithOneCoalescedAckThenFinWhileStillReading() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);
    Frame.Pong first = new Frame.Pong(1);
    Frame.Data data = new Frame.Data(1, new byte[] {7});
    Frame.Close close = new Frame.Close(CloseCode.NORMAL, "bye");

    // Offered at once, before the sockets' thread can write the first: one write takes them all.
    synchronized (connection) {
      assertThat(connection.offer(first)).isTrue();
      assertThat(connection.offer(new Frame.Ack(1))).isTrue();
      assertThat(connection.offer(data)).isTrue();
      assertThat(connection.offer(new Frame.Ack(3))).isTrue();
      assertThat(connection.offer(new Frame.Ack(2))).isTrue();
      assertThat(connection.offer(close)).isTrue();
      // The input stays open: completing the outbound side is a half-close.
      connection.complete();
      assertThat(connection.offer(new Frame.Ping(5))).as("ignored after complete").isTrue();
    }

    // The newest ACK only, where the first was queued: never before the frame ahead of it.
    assertThat(readUntilFin(device[0])).containsExactly(first, new Frame.Ack(3), data, close);
    actor.expectNoMessage(Duration.ofMillis(200));

    Frame.Ping late = new Frame.Ping(6);
    device[0].getOutputStream().write(FrameCodec.encode(late));
    ConnectionActor.Inbound inbound = actor.expectMessageClass(ConnectionActor.Inbound.class, WAIT);
    assertThat(framesOf(inbound.frames())).containsExactly(late);
    inbound.connection().ready();
    device[0].shutdownOutput();
    actor.expectMessage(WAIT, ConnectionActor.StreamCompleted.INSTANCE);
  }

  @Test
  void aFrameOfferedWhileTheConnectionWaitsIsWritten() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);
    Frame.Pong first = new Frame.Pong(1);
    Frame.Pong second = new Frame.Pong(2);
    InputStream in = device[0].getInputStream();

    connection.offer(first);
    assertThat(in.readNBytes(FrameCodec.encode(first).length)).isEqualTo(FrameCodec.encode(first));
    // Everything is written and the connection waits: this offer has to wake the sockets' thread.
    connection.offer(second);
    assertThat(in.readNBytes(FrameCodec.encode(second).length)).isEqualTo(FrameCodec.encode(second));
    connection.complete();

    assertThat(in.read()).as("FIN").isEqualTo(-1);
  }

  @Test
  void anAckKeepsItsPlaceWhenTheQueueIsWrittenInSeveralWrites() throws Exception {
    Socket[] device = new Socket[1];
    // Each write takes frames until it holds 100 bytes: three of these per write.
    Connection connection = connected(device, 100, 64);
    List<Frame> frames = new ArrayList<>();
    for (int i = 1; i <= 10; i++) {
      frames.add(new Frame.Data(i, new byte[24]));
    }
    synchronized (connection) {
      for (int i = 0; i < 10; i++) {
        connection.offer(frames.get(i));
        if (i == 6) {
          connection.offer(new Frame.Ack(41));
        }
      }
      connection.offer(new Frame.Ack(42));
      connection.complete();
    }

    List<Frame> expected = new ArrayList<>(frames);
    expected.add(7, new Frame.Ack(42));
    assertThat(readUntilFin(device[0])).isEqualTo(expected);
  }

  @Test
  void aDeviceThatDoesNotReadFillsTheBufferButAcksStillCoalesce() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 4);

    // The socket's buffers fill first, then the connection's four frames: bounded by 32 MiB. A
    // refusal counts once it lasts: the sockets' thread may only be behind, not the socket full.
    int offered = 0;
    while (offered < 8_000) {
      Frame.Data next = new Frame.Data(offered + 1, new byte[4000]);
      boolean taken = connection.offer(next);
      for (int tries = 0; !taken && tries < 40; tries++) {
        Thread.sleep(5);
        taken = connection.offer(next);
      }
      if (!taken) {
        break; // refused for 200 ms
      }
      offered++;
    }
    assertThat(offered).as("frames taken before the buffer was full").isBetween(5, 7_999);
    // What the metrics show of it: the four frames wait, the socket's send buffer is full.
    assertThat(backlog.queuedFrames()).isEqualTo(4);
    await().atMost(WAIT).until(() -> backlog.blockedConnections() == 1);
    assertThat(connection.offer(new Frame.Ack(100))).isTrue();
    assertThat(connection.offer(new Frame.Ack(101))).isTrue();
    connection.complete();

    List<Frame> read = readUntilFin(device[0]);
    assertThat(read).hasSize(offered + 1).contains(new Frame.Ack(101)).doesNotContain(new Frame.Ack(100));
    assertThat(read.stream().filter(f -> f instanceof Frame.Data).map(f -> ((Frame.Data) f).seq()).toList())
        .isEqualTo(java.util.stream.LongStream.rangeClosed(1, offered).boxed().toList());
    assertThat(backlog.queuedFrames()).isZero();
    await().atMost(WAIT).until(() -> backlog.blockedConnections() == 0);
  }

  @Test
  void framesDroppedByAnAbortLeaveTheBacklog() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);
    // Whatever the event loop has not written when the abort comes is dropped, and uncounted.
    for (int i = 1; i <= 3; i++) {
      assertThat(connection.offer(new Frame.Data(i, new byte[10]))).isTrue();
    }
    connection.abort(new IllegalStateException("gone"));
    actor.expectMessageClass(ConnectionActor.StreamFailed.class, WAIT);
    assertThat(backlog.queuedFrames()).isZero();
    assertThat(backlog.blockedConnections()).isZero();
  }

  @Test
  void abortResetsTheConnectionAndTellsTheActorOnce() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);

    connection.abort(new IllegalStateException("outbound buffer full"));

    assertThat(actor.expectMessageClass(ConnectionActor.StreamFailed.class, WAIT).cause())
        .hasMessage("outbound buffer full");
    assertThatThrownBy(() -> device[0].getInputStream().read()).isInstanceOf(SocketException.class)
        .hasMessageContaining("reset");
    // Later calls are ignored: no second abort, no second end.
    assertThat(connection.offer(new Frame.Ping(1))).isTrue();
    connection.abort(new IllegalStateException("again"));
    actor.expectNoMessage(Duration.ofMillis(300));
  }

  @Test
  void anActorThatStopsAfterCompletingLetsTheLastFramesOut() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);
    Frame.Error error = new Frame.Error(ErrorCode.IDLE_TIMEOUT, "no frame for 60 s");

    connection.offer(error);
    connection.complete();
    connection.ownerStopped();

    assertThat(readUntilFin(device[0])).containsExactly(error);
  }

  @Test
  void anActorThatStopsWithoutCompletingAbortsTheConnection() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);

    connection.ownerStopped();

    assertThatThrownBy(() -> device[0].getInputStream().read()).isInstanceOf(SocketException.class);
    assertThat(actor.expectMessageClass(ConnectionActor.StreamFailed.class, WAIT).cause())
        .hasMessageContaining("actor stopped");
  }

  @Test
  void pastMaxConnectionsAcceptingWaitsUntilOneCloses() throws Exception {
    listen(1024, 64, 2);
    connect();
    connect();
    Connection first = nextAccepted();
    nextAccepted();
    connect(); // completes in the kernel's backlog, not accepted by the edge
    assertThat(accepted.poll(300, TimeUnit.MILLISECONDS)).isNull();

    first.abort(new IllegalStateException("make room"));

    nextAccepted();
  }

  @Test
  void closingAtTheLimitStillEndsEveryConnection() throws Exception {
    listen(1024, 64, 2);
    Socket first = connect();
    Socket second = connect();
    nextAccepted();
    nextAccepted();

    sockets.close();

    assertThat(actor.expectMessageClass(ConnectionActor.StreamFailed.class, WAIT).cause()).hasMessageContaining("edge stopped");
    assertThat(actor.expectMessageClass(ConnectionActor.StreamFailed.class, WAIT).cause()).hasMessageContaining("edge stopped");
    assertThat(first.getInputStream().read()).isEqualTo(-1);
    assertThat(second.getInputStream().read()).isEqualTo(-1);
  }

  @Test
  void unbindRefusesNewDevicesAndServesTheConnectedOnes() throws Exception {
    Socket[] device = new Socket[1];
    Connection connection = connected(device, 1024, 64);
    InetSocketAddress address = sockets.localAddress();

    sockets.unbind().toCompletableFuture().get(5, TimeUnit.SECONDS);

    assertThatThrownBy(() -> new Socket(address.getAddress(), address.getPort()).close())
        .isInstanceOf(ConnectException.class);
    Frame.Pong pong = new Frame.Pong(3);
    connection.offer(pong);
    connection.complete();
    assertThat(readUntilFin(device[0])).containsExactly(pong);
  }

  @Test
  void closingTheSocketsEndsEveryConnection() throws Exception {
    Socket[] device = new Socket[1];
    connected(device, 1024, 64);

    sockets.close();

    assertThat(actor.expectMessageClass(ConnectionActor.StreamFailed.class, WAIT).cause())
        .hasMessageContaining("edge stopped");
    assertThat(device[0].getInputStream().read()).as("closed").isEqualTo(-1);
  }
}
