package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.CloseCode;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Bad input on a real TCP connection: each case is answered with an ERROR frame carrying its
 * documented code (PROTOCOL.md#error-codes) and a closed connection, while a well-behaved device
 * on the same node keeps streaming.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeBadInputIT {

  private static final Duration READ = Duration.ofSeconds(20);
  private static final HexFormat HEX = HexFormat.of();

  private TestNodes nodes;
  private EchoStreamer bystander;
  private int echoedBefore;

  @BeforeAll
  void startNode() {
    nodes = new TestNodes("""
        berth.edge.handshake-timeout = 2s
        berth.edge.idle-timeout = 6s
        berth.edge.ack-timeout = 3s
        berth.edge.close-linger = 2s
        berth.socket.max-outbox-frames = 256
        """).start(1);
    bystander = new EchoStreamer(TestNodes.device(TestNodes.uniqueDevice("bystander"), nodes.node(0).edge()),
        1_000_000, Duration.ofMillis(2)).start();
  }

  @AfterAll
  void stopNode() {
    bystander.close();
    nodes.close();
  }

  @BeforeEach
  void noteBystander() {
    echoedBefore = bystander.distinctEchoed();
  }

  @AfterEach
  void bystanderKeptStreaming() {
    await().atMost(Duration.ofSeconds(10)).until(() -> bystander.distinctEchoed() > echoedBefore + 50);
    assertThat(bystander.duplicateEchoes()).isZero();
    assertThat(bystander.failure()).isNull();
  }

  private RawDevice connect() throws IOException {
    return new RawDevice(nodes.node(0).edge(), READ);
  }

  private static void assertErrorThenClosed(List<Frame> frames, ErrorCode expected) {
    assertThat(frames).isNotEmpty();
    Frame last = frames.get(frames.size() - 1);
    assertThat(last).isInstanceOf(Frame.Error.class);
    assertThat(((Frame.Error) last).code()).as("error code, message: %s", ((Frame.Error) last).message())
        .isEqualTo(expected.wire);
  }

  @Test
  void randomGarbageIsRefused() throws IOException {
    byte[] garbage = new byte[4096];
    new Random(42).nextBytes(garbage);
    try (RawDevice d = connect()) {
      List<Frame> frames = d.writeQuietly(garbage).readUntilClosed();
      assertThat(frames).hasSize(1);
      assertThat(((Frame.Error) frames.get(0)).code())
          .isIn(ErrorCode.FRAME_TOO_LARGE.wire, ErrorCode.MALFORMED_FRAME.wire, ErrorCode.UNKNOWN_FRAME_TYPE.wire);
    }
  }

  @Test
  void aLengthOverTheMaximumIsRefusedBeforeTheBodyArrives() throws IOException {
    try (RawDevice d = connect()) {
      // Declares 16 MiB and sends only the header: the node must not wait for the body.
      d.write(HEX.parseHex("01000000"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.FRAME_TOO_LARGE);
    }
  }

  @Test
  void aDataFrameLargerThanTheLimitIsRefusedAfterTheHandshake() throws IOException {
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("big"), "discard"));
      assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
      d.writeQuietly(FrameCodec.encode(new Frame.Data(1, new byte[FrameCodec.DEFAULT_MAX_FRAME_SIZE])));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.FRAME_TOO_LARGE);
    }
  }

  @Test
  void anUnknownFrameTypeIsRefused() throws IOException {
    try (RawDevice d = connect()) {
      d.write(HEX.parseHex("000000017f"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.UNKNOWN_FRAME_TYPE);
    }
  }

  @Test
  void dataBeforeHelloIsRefused() throws IOException {
    try (RawDevice d = connect()) {
      d.send(new Frame.Data(1, new byte[] {1, 2, 3}));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.UNEXPECTED_FRAME);
    }
  }

  @Test
  void aWrongTokenIsRefused() throws IOException {
    String device = TestNodes.uniqueDevice("forger");
    String othersToken = RawDevice.token("someone-else", Instant.now().plusSeconds(60));
    try (RawDevice d = connect()) {
      d.send(new Frame.Hello(1, false, 0, device, othersToken, "", "echo"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.AUTH_FAILED);
    }
  }

  @Test
  void anExpiredTokenIsRefused() throws IOException {
    String device = TestNodes.uniqueDevice("late");
    try (RawDevice d = connect()) {
      d.send(new Frame.Hello(1, false, 0, device, RawDevice.token(device, Instant.now().minusSeconds(1)), "", "echo"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.TOKEN_EXPIRED);
    }
  }

  @Test
  void invalidIdsUnknownMappingsAndVersionsAreRefused() throws IOException {
    String device = TestNodes.uniqueDevice("odd");
    try (RawDevice d = connect()) {
      d.send(new Frame.Hello(1, false, 0, device, RawDevice.token(device, Instant.now().plusSeconds(60)), "bad/name", "echo"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.INVALID_ID);
    }
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(device, "no-such-mapping"));
      List<Frame> frames = d.readUntilClosed();
      assertErrorThenClosed(frames, ErrorCode.UNKNOWN_MAPPING);
      // Says where to look and which mapping an empty name opens, without listing the registry.
      assertThat(((Frame.Error) frames.get(frames.size() - 1)).message())
          .contains("'no-such-mapping'", "'echo'", "GET /api/mappings").doesNotContain("discard");
    }
    try (RawDevice d = connect()) {
      d.send(new Frame.Hello(9, false, 0, device, RawDevice.token(device, Instant.now().plusSeconds(60)), "", "echo"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.UNSUPPORTED_VERSION);
    }
  }

  @Test
  void malformedUtf8InHelloIsRefused() throws IOException {
    try (RawDevice d = connect()) {
      // HELLO whose device id is the invalid UTF-8 sequence C3 28.
      d.write(HEX.parseHex("00000014" + "01" + "0100" + "0000000000000000" + "0002c328" + "0000" + "0000" + "0000"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.MALFORMED_FRAME);
    }
  }

  @Test
  void aSequenceGapIsRefused() throws IOException {
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("gap"), "discard"));
      Frame.Welcome w = (Frame.Welcome) d.read();
      d.send(new Frame.Data(w.lastAccepted() + 2, new byte[] {1}));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.BAD_SEQUENCE);
    }
  }

  @Test
  void anAckAboveWhatWasSentIsIgnoredAloneNotTheAckReadWithIt() throws Exception {
    String device = TestNodes.uniqueDevice("overack");
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(device, "echo"));
      Frame.Welcome w = (Frame.Welcome) d.read();
      for (long seq = w.lastAccepted() + 1; seq <= w.lastAccepted() + 5; seq++) {
        d.send(new Frame.Data(seq, new byte[] {(byte) seq}));
      }
      long echoed = w.lastAcked();
      while (echoed < w.lastAcked() + 5) {
        if (d.read() instanceof Frame.Data data) {
          echoed = data.seq();
        }
      }
      // One write, so that the node reads both ACKs in one batch (PROTOCOL.md#ack).
      byte[] valid = FrameCodec.encode(new Frame.Ack(echoed));
      byte[] beyond = FrameCodec.encode(new Frame.Ack(echoed + 1000));
      byte[] both = new byte[valid.length + beyond.length];
      System.arraycopy(valid, 0, both, 0, valid.length);
      System.arraycopy(beyond, 0, both, valid.length, beyond.length);
      d.write(both);
      long expected = echoed;
      await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
        String body = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device).body();
        assertThat(Long.parseLong(body.replaceAll(".*\"downlinkAcked\":(\\d+).*", "$1"))).isEqualTo(expected);
      });
    }
  }

  @Test
  void aFirstFrameThatIsNeitherHelloNorWellFormedGetsTheDecodingError() throws IOException {
    try (RawDevice d = connect()) {
      // A DATA whose body ends inside its seq: malformed (100) wins over not-a-HELLO (103).
      d.write(HEX.parseHex("00000004" + "03" + "000000"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.MALFORMED_FRAME);
    }
  }

  @Test
  void theErrorIsFollowedAtOnceByAFinNotAReset() throws IOException {
    try (RawDevice d = connect()) {
      d.write(HEX.parseHex("000000017f"));
      Frame error = d.read();
      assertThat(error).isInstanceOf(Frame.Error.class);
      // An orderly end of stream (FIN) well before close-linger (2 s here), where a reset would throw.
      d.socket().setSoTimeout(1000);
      assertThatThrownBy(d::read).isInstanceOf(java.io.EOFException.class);
    }
  }

  @Test
  void dataSeqZeroIsABadSequenceNotAReplay() throws IOException {
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("zero"), "discard"));
      assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
      d.send(new Frame.Data(0, new byte[] {1}));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.BAD_SEQUENCE);
    }
  }

  @Test
  void aResumeClaimingDownlinkFramesNeverSentIsRefused() throws IOException {
    String device = TestNodes.uniqueDevice("stale");
    try (RawDevice d = connect()) {
      d.send(new Frame.Hello(1, true, 1000, device, RawDevice.token(device, Instant.now().plusSeconds(60)), "", "echo"));
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.BAD_SEQUENCE);
    }
  }

  @Test
  void aFrameCutShortByTheEndOfInputIsDroppedSilentlyAndTheFramesBeforeItCount() throws Exception {
    String device = TestNodes.uniqueDevice("cut");
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(device, "discard"));
      Frame.Welcome w = (Frame.Welcome) d.read();
      byte[] cut = FrameCodec.encode(new Frame.Data(w.lastAccepted() + 2, new byte[] {2, 2}));
      d.send(new Frame.Data(w.lastAccepted() + 1, new byte[] {1}));
      d.write(java.util.Arrays.copyOf(cut, cut.length - 1));
      d.socket().shutdownOutput();
      long expected = w.lastAccepted() + 1;
      // The frame before the end is taken and acknowledged on the half of the connection still open.
      List<Frame> answers = d.readUntilClosed();
      assertThat(answers).noneMatch(f -> f instanceof Frame.Error);
      assertThat(answers).as("answers %s", answers).anyMatch(f -> f instanceof Frame.Ack a && a.seq() == expected);
      await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
        String body = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device).body();
        assertThat(Long.parseLong(body.replaceAll(".*\"lastAccepted\":(\\d+).*", "$1"))).isEqualTo(expected);
      });
    }
  }

  @Test
  void bytesOfAnUnfinishedFrameDoNotResetTheIdleTimer() throws IOException {
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("drip"), "discard"));
      Frame.Welcome w = (Frame.Welcome) d.read();
      long welcomed = System.nanoTime();
      byte[] frame = FrameCodec.encode(new Frame.Data(w.lastAccepted() + 1, new byte[200]));
      AtomicBoolean closed = new AtomicBoolean();
      Thread drip = new Thread(() -> {
        for (int i = 0; i < frame.length - 1 && !closed.get(); i++) {
          try {
            d.write(new byte[] {frame[i]});
            Thread.sleep(200);
          } catch (IOException | InterruptedException e) {
            return;
          }
        }
      });
      drip.start();
      List<Frame> frames = d.readUntilClosed();
      closed.set(true);
      assertErrorThenClosed(frames, ErrorCode.IDLE_TIMEOUT);
      // idle-timeout is 6 s here; the whole frame would have taken 40 s to arrive.
      assertThat(Duration.ofNanos(System.nanoTime() - welcomed)).isBetween(Duration.ofMillis(5500), Duration.ofSeconds(10));
    }
  }

  @Test
  void aHandshakeThatNeverCompletesIsClosed() throws IOException {
    try (RawDevice d = connect()) {
      long started = System.nanoTime();
      // Slowloris: a few bytes of a HELLO, then one byte at a time, never finishing.
      byte[] hello = FrameCodec.encode(RawDevice.hello(TestNodes.uniqueDevice("slow"), "echo"));
      AtomicBoolean closed = new AtomicBoolean();
      Thread trickle = new Thread(() -> {
        for (int i = 0; i < hello.length - 1 && !closed.get(); i++) {
          try {
            d.write(new byte[] {hello[i]});
            Thread.sleep(300);
          } catch (IOException | InterruptedException e) {
            return;
          }
        }
      });
      trickle.start();
      List<Frame> frames = d.readUntilClosed();
      closed.set(true);
      assertErrorThenClosed(frames, ErrorCode.HANDSHAKE_TIMEOUT);
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isBetween(Duration.ofMillis(1500), Duration.ofSeconds(15));
    }
  }

  @Test
  void aSilentDeviceIsClosedAfterTheIdleTimeout() throws IOException {
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("quiet"), "echo"));
      assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
      long welcomed = System.nanoTime();
      assertErrorThenClosed(d.readUntilClosed(), ErrorCode.IDLE_TIMEOUT);
      // A quiet session sleeps until its idle deadline instead of ticking: it must still wake on time.
      assertThat(Duration.ofNanos(System.nanoTime() - welcomed)).isBetween(Duration.ofMillis(5500), Duration.ofSeconds(10));
    }
  }

  @Test
  void aDeviceThatStopsReadingIsSlowedDownNotBufferedThenClosed() throws Exception {
    String device = TestNodes.uniqueDevice("deaf");
    try (RawDevice d = connect()) {
      d.socket().setReceiveBufferSize(4096);
      d.send(RawDevice.hello(device, "echo"));
      Frame.Welcome w = (Frame.Welcome) d.read();
      AtomicInteger written = new AtomicInteger();
      AtomicBoolean writerDone = new AtomicBoolean();
      Thread writer = new Thread(() -> {
        byte[] payload = new byte[1024];
        try {
          for (long seq = w.lastAccepted() + 1; seq <= 1_000_000; seq++) {
            d.output().write(FrameCodec.encode(new Frame.Data(seq, payload)));
            written.incrementAndGet();
          }
        } catch (IOException e) {
          // Expected: the node closes the connection of a device that does not read.
        } finally {
          writerDone.set(true);
        }
      });
      writer.setDaemon(true);
      writer.start();
      // Writes stall: TCP buffers fill because the node stopped reading from this device.
      await().atMost(Duration.ofSeconds(20)).until(() -> {
        int before = written.get();
        Thread.sleep(500);
        return written.get() == before && before > 0;
      });
      assertThat(written.get()).as("frames written before the node stopped reading").isLessThan(20_000);
      HttpProbe.Response status = HttpProbe.get(nodes.node(0).managementUrl() + "/api/sockets/" + device);
      assertThat(status.body()).contains("\"outboxFrames\":");
      int outbox = Integer.parseInt(status.body().replaceAll(".*\"outboxFrames\":(\\d+).*", "$1"));
      assertThat(outbox).as("downlink frames held for the deaf device").isLessThanOrEqualTo(256);
      // It is then closed (SLOW_CONSUMER after ack-timeout); its writes fail.
      await().atMost(Duration.ofSeconds(30)).untilTrue(writerDone);
    }
  }

  @Test
  void aDeviceCloseIsConfirmed() throws IOException {
    try (RawDevice d = connect()) {
      d.send(RawDevice.hello(TestNodes.uniqueDevice("polite"), "echo"));
      assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
      d.send(new Frame.Close(CloseCode.NORMAL, "bye"));
      List<Frame> frames = d.readUntilClosed();
      assertThat(frames).last().isEqualTo(new Frame.Close(CloseCode.NORMAL.wire, "session closed"));
    }
  }
}
