package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.CloseCode;
import io.berth.protocol.Decoded;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.reactivestreams.Subscriber;
import org.reactivestreams.Subscription;

/** The connection's one stage on its own: a test probe stands in for the session, streams for TCP. */
class ConnectionStageTest {

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

  private TestProbe<DeviceSession.Command> session = testKit.createTestProbe();

  private ConnectionStage stage(long maxBatchBytes, int outboundBuffer) {
    return new ConnectionStage(session.ref(), MAX_FRAME, maxBatchBytes, outboundBuffer);
  }

  private static ByteString encode(List<Frame> frames) {
    ByteString bytes = ByteString.emptyByteString();
    for (Frame f : frames) {
      bytes = bytes.concat(ByteString.fromArrayUnsafe(FrameCodec.encode(f)));
    }
    return bytes;
  }

  private static List<ByteString> chunks(ByteString bytes, int size) {
    List<ByteString> chunks = new ArrayList<>();
    for (int i = 0; i < bytes.size(); i += size) {
      chunks.add(bytes.slice(i, Math.min(bytes.size(), i + size)));
    }
    return chunks;
  }

  private static List<Frame> decode(ByteString bytes) throws IOException {
    return OutboundBatchTest.decode(bytes);
  }

  /** A connection whose input never ends; its output is collected until the stage completes it. */
  private Pair<ConnectionStage.Connection, CompletionStage<ByteString>> runWithInputOpen() {
    return Source.<ByteString>never()
        .viaMat(Flow.fromGraph(stage(1024, 64)), Keep.right())
        .toMat(Sink.fold(ByteString.emptyByteString(), ByteString::concat), Keep.both())
        .run(testKit.system());
  }

  /** Takes batches as a session does, until the input ends; returns what they held. */
  private List<Decoded> readAll() {
    List<Decoded> read = new ArrayList<>();
    while (true) {
      DeviceSession.Command m = session.receiveMessage(WAIT);
      if (m instanceof DeviceSession.StreamCompleted) {
        return read;
      }
      DeviceSession.Inbound inbound = (DeviceSession.Inbound) m;
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
  void framesCutAcrossReadsArriveWholeAndInOrder() {
    List<Frame> sent = sampleUplink(200, 37);
    Source.from(chunks(encode(sent), 3)).via(Flow.fromGraph(stage(1024, 64))).runWith(Sink.ignore(), testKit.system());

    assertThat(framesOf(readAll())).isEqualTo(sent);
  }

  @Test
  void readingStopsWhileTheSessionHoldsABatchAndTheNextIsFull() {
    List<Frame> sent = sampleUplink(400, 100);
    AtomicInteger read = new AtomicInteger();
    List<ByteString> input = chunks(encode(sent), 50);
    Source.from(input).map(c -> {
      read.incrementAndGet();
      return c;
    }).via(Flow.fromGraph(stage(1024, 64))).runWith(Sink.ignore(), testKit.system());

    DeviceSession.Inbound first = session.expectMessageClass(DeviceSession.Inbound.class, WAIT);
    session.expectNoMessage(Duration.ofMillis(300));
    // One batch with the session, the next one full (1 KiB), plus what the source had in flight.
    assertThat(read.get()).isLessThan(input.size() / 4);

    first.connection().ready();
    List<Decoded> rest = readAll();
    List<Decoded> all = new ArrayList<>(first.frames());
    all.addAll(rest);
    assertThat(framesOf(all)).isEqualTo(sent);
    assertThat(read.get()).isEqualTo(input.size());
  }

  @Test
  void aBadLengthIsReportedBeforeItsBodyAndTheRestIsDiscarded() {
    Frame hello = sampleUplink(0, 0).get(0);
    ByteString tooLong = ByteString.fromArray(new byte[] {(byte) 0x80, 0, 0, 1, 2, 3});
    List<ByteString> input = new ArrayList<>(chunks(encode(List.of(hello)), 7));
    input.add(tooLong);
    // Whatever follows is no longer framed: a valid-looking frame must not be delivered.
    input.add(encode(List.of(new Frame.Ping(9))));
    Source.from(input).via(Flow.fromGraph(stage(1024, 64))).runWith(Sink.ignore(), testKit.system());

    List<Decoded> read = readAll();
    assertThat(read).hasSize(2);
    assertThat(((Decoded.Ok) read.get(0)).frame()).isEqualTo(hello);
    assertThat(read.get(1)).isInstanceOfSatisfying(Decoded.Malformed.class,
        bad -> assertThat(bad.code()).isEqualTo(ErrorCode.FRAME_TOO_LARGE));
  }

  @Test
  void aZeroLengthIsMalformed() {
    Source.single(ByteString.fromArray(new byte[] {0, 0, 0, 0})).via(Flow.fromGraph(stage(1024, 64)))
        .runWith(Sink.ignore(), testKit.system());

    assertThat(readAll()).singleElement().isInstanceOfSatisfying(Decoded.Malformed.class,
        bad -> assertThat(bad.code()).isEqualTo(ErrorCode.MALFORMED_FRAME));
  }

  /** The device's reading end: nothing is read until {@link #read} is called. */
  private static final class Device implements Subscriber<ByteString> {
    private final CompletableFuture<Subscription> subscription = new CompletableFuture<>();
    private final CompletableFuture<ByteString> all = new CompletableFuture<>();
    private ByteString bytes = ByteString.emptyByteString();

    void read() throws Exception {
      subscription.get(5, TimeUnit.SECONDS).request(Long.MAX_VALUE);
    }

    synchronized int received() {
      return bytes.size();
    }

    /** Everything written, once the outbound side completed. */
    ByteString untilFin() throws Exception {
      return all.get(5, TimeUnit.SECONDS);
    }

    @Override
    public void onSubscribe(Subscription s) {
      subscription.complete(s);
    }

    @Override
    public synchronized void onNext(ByteString b) {
      bytes = bytes.concat(b);
    }

    @Override
    public void onError(Throwable t) {
      all.completeExceptionally(t);
    }

    @Override
    public synchronized void onComplete() {
      all.complete(bytes);
    }
  }

  /** A connection whose input never ends, written to {@code device}. */
  private ConnectionStage.Connection connectTo(Device device, int outboundBuffer) {
    return connectTo(device, outboundBuffer, 1024);
  }

  private ConnectionStage.Connection connectTo(Device device, int outboundBuffer, long maxBatchBytes) {
    return Source.<ByteString>never()
        .viaMat(Flow.fromGraph(stage(maxBatchBytes, outboundBuffer)), Keep.right())
        .to(Sink.fromSubscriber(device))
        .run(testKit.system());
  }

  @Test
  void outboundFramesAreWrittenInOrderWithOneCoalescedAckThenFinWhileStillReading() throws Exception {
    Device device = new Device();
    ConnectionStage.Connection connection = connectTo(device, 64);
    Frame.Pong first = new Frame.Pong(1);
    Frame.Data data = new Frame.Data(1, new byte[] {7});
    Frame.Close close = new Frame.Close(CloseCode.NORMAL, "bye");

    assertThat(connection.offer(first)).isTrue();
    assertThat(connection.offer(new Frame.Ack(1))).isTrue();
    assertThat(connection.offer(data)).isTrue();
    assertThat(connection.offer(new Frame.Ack(3))).isTrue();
    assertThat(connection.offer(new Frame.Ack(2))).isTrue();
    assertThat(connection.offer(close)).isTrue();
    // The input stays open: completing the outbound side is a half-close.
    connection.complete();
    assertThat(connection.offer(new Frame.Ping(5))).as("ignored after complete").isTrue();
    device.read();

    // The newest ACK only, where the first was queued: never before the frame ahead of it.
    assertThat(decode(device.untilFin())).containsExactly(first, new Frame.Ack(3), data, close);
    session.expectNoMessage(Duration.ofMillis(200));
  }

  @Test
  void aFrameOfferedWhileTheStageWaitsIsWritten() throws Exception {
    Device device = new Device();
    ConnectionStage.Connection connection = connectTo(device, 64);
    Frame.Pong first = new Frame.Pong(1);
    Frame.Pong second = new Frame.Pong(2);
    device.read();

    connection.offer(first);
    await().atMost(WAIT).until(() -> device.received() == FrameCodec.encode(first).length);
    // The stage wrote everything and waits: this offer has to wake it.
    connection.offer(second);
    await().atMost(WAIT).until(() -> device.received() == 2 * FrameCodec.encode(first).length);
    connection.complete();

    assertThat(decode(device.untilFin())).containsExactly(first, second);
  }

  @Test
  void anAckKeepsItsPlaceWhenTheQueueIsWrittenInSeveralWrites() throws Exception {
    Device device = new Device();
    // Each write takes frames until it holds 100 bytes: three of these per write.
    ConnectionStage.Connection connection = connectTo(device, 64, 100);
    List<Frame> frames = new ArrayList<>();
    for (int i = 1; i <= 10; i++) {
      frames.add(new Frame.Data(i, new byte[24]));
    }
    for (int i = 0; i < 10; i++) {
      connection.offer(frames.get(i));
      if (i == 6) {
        connection.offer(new Frame.Ack(41));
      }
    }
    connection.offer(new Frame.Ack(42));
    connection.complete();
    device.read();

    List<Frame> expected = new ArrayList<>(frames);
    expected.add(7, new Frame.Ack(42));
    assertThat(decode(device.untilFin())).isEqualTo(expected);
  }

  @Test
  void aDeviceThatDoesNotReadFillsTheBufferButAcksStillCoalesce() throws Exception {
    Device device = new Device();
    ConnectionStage.Connection connection = connectTo(device, 4);

    for (int i = 1; i <= 4; i++) {
      assertThat(connection.offer(new Frame.Data(i, new byte[8]))).isTrue();
    }
    assertThat(connection.offer(new Frame.Data(5, new byte[8]))).isFalse();
    assertThat(connection.offer(new Frame.Ack(100))).isTrue();
    assertThat(connection.offer(new Frame.Ack(101))).isTrue();
    connection.complete();
    device.read();

    assertThat(decode(device.untilFin())).hasSize(5).contains(new Frame.Ack(101)).doesNotContain(new Frame.Ack(100));
  }

  @Test
  void abortFailsTheConnectionAndTellsTheSession() {
    Pair<ConnectionStage.Connection, CompletionStage<ByteString>> run = runWithInputOpen();
    CompletionStage<ByteString> written = run.second();

    run.first().abort(new IllegalStateException("outbound buffer full"));

    assertThatThrownBy(() -> written.toCompletableFuture().get(5, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class).hasMessageContaining("outbound buffer full");
    assertThat(session.expectMessageClass(DeviceSession.StreamFailed.class, WAIT).cause())
        .hasMessage("outbound buffer full");
    // Later calls are ignored: no second abort, no second end.
    assertThat(run.first().offer(new Frame.Ping(1))).isTrue();
    run.first().abort(new IllegalStateException("again"));
    session.expectNoMessage(Duration.ofMillis(300));
  }

  @Test
  void aSessionThatStopsAfterCompletingLetsTheLastFramesOut() throws Exception {
    Pair<ConnectionStage.Connection, CompletionStage<ByteString>> run = runWithInputOpen();
    Frame.Error error = new Frame.Error(ErrorCode.IDLE_TIMEOUT, "no frame for 60 s");

    run.first().offer(error);
    run.first().complete();
    run.first().ownerStopped();

    assertThat(decode(run.second().toCompletableFuture().get(5, TimeUnit.SECONDS))).containsExactly(error);
  }

  @Test
  void aSessionThatStopsWithoutCompletingAbortsTheConnection() {
    Pair<ConnectionStage.Connection, CompletionStage<ByteString>> run = runWithInputOpen();

    run.first().ownerStopped();

    assertThatThrownBy(() -> run.second().toCompletableFuture().get(5, TimeUnit.SECONDS))
        .hasMessageContaining("session stopped");
  }
}
