package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class FrameCodecTest {

  private static final HexFormat HEX = HexFormat.of();
  private static final int MAX = FrameCodec.DEFAULT_MAX_FRAME_SIZE;

  /** Every frame type with its bytes written out by hand from PROTOCOL.md. */
  static Stream<Arguments> fixtures() {
    return Stream.of(
        Arguments.of(new Frame.Hello(1, false, 0, "d1", "t", "", "echo"),
            "0000001a" + "01" + "01" + "00" + "0000000000000000" + "00026431" + "000174" + "0000"
                + "00046563686f"),
        Arguments.of(new Frame.Hello(1, true, 7, "d1", "t", "s", ""),
            "00000017" + "01" + "01" + "01" + "0000000000000007" + "00026431" + "000174"
                + "000173" + "0000"),
        Arguments.of(new Frame.Welcome(1, "d1", "n", 5, 6, 65536, 256, 1048576, 60),
            "00000025" + "02" + "01" + "00026431" + "00016e" + "0000000000000005"
                + "0000000000000006" + "00010000" + "0100" + "00100000" + "003c"),
        Arguments.of(new Frame.Data(1, new byte[] {0x68, 0x69}),
            "0000000b" + "03" + "0000000000000001" + "6869"),
        Arguments.of(new Frame.Data(2, new byte[0]), "00000009" + "03" + "0000000000000002"),
        Arguments.of(new Frame.Ack(258), "00000009" + "04" + "0000000000000102"),
        Arguments.of(new Frame.Ping(-1), "00000009" + "05" + "ffffffffffffffff"),
        Arguments.of(new Frame.Pong(3), "00000009" + "06" + "0000000000000003"),
        Arguments.of(new Frame.Link(LinkStatus.LINKED, "d2", ""),
            "00000008" + "07" + "02" + "00026432" + "0000"),
        Arguments.of(new Frame.Redirect("h", 7001, "drain"),
            "0000000d" + "08" + "000168" + "1b59" + "0005647261696e"),
        Arguments.of(new Frame.Close(CloseCode.REPLACED, "x"),
            "00000006" + "09" + "03e9" + "000178"),
        Arguments.of(new Frame.Error(ErrorCode.AUTH_FAILED, "no"),
            "00000007" + "0a" + "00c8" + "00026e6f"));
  }

  @ParameterizedTest
  @MethodSource("fixtures")
  void encodesToTheSpecifiedBytes(Frame frame, String hex) {
    assertThat(HEX.formatHex(FrameCodec.encode(frame))).isEqualTo(hex);
  }

  @ParameterizedTest
  @MethodSource("fixtures")
  void decodesTheSpecifiedBytes(Frame frame, String hex) {
    assertThat(FrameCodec.decode(ByteBuffer.wrap(HEX.parseHex(hex)), MAX))
        .isEqualTo(new Decoded.Ok(frame));
  }

  @Test
  void theLargestValidHelloFitsTheSmallestAllowedMaxFrameSize() {
    String id = "d".repeat(SocketId.MAX_ID_LENGTH);
    String token = Long.MAX_VALUE + ":" + "f".repeat(DeviceToken.SIGNATURE_HEX_LENGTH);
    Frame.Hello largest = new Frame.Hello(1, true, Long.MAX_VALUE, id, token, id, "m".repeat(64));
    byte[] bytes = FrameCodec.encode(largest);
    assertThat(bytes.length - FrameCodec.HEADER_SIZE).isEqualTo(295).isLessThanOrEqualTo(FrameCodec.MIN_MAX_FRAME_SIZE);
    assertThat(FrameCodec.decode(ByteBuffer.wrap(bytes), FrameCodec.MIN_MAX_FRAME_SIZE)).isEqualTo(new Decoded.Ok(largest));
  }

  @Test
  void anUndefinedTypeByteIsReportedOnItsOwn() {
    assertThat(FrameCodec.checkType(0x01)).isNull();
    assertThat(FrameCodec.checkType(0x0A)).isNull();
    assertThat(FrameCodec.checkType(0x00)).isInstanceOfSatisfying(Decoded.Malformed.class,
        m -> assertThat(m.code()).isEqualTo(ErrorCode.UNKNOWN_FRAME_TYPE));
    assertThat(FrameCodec.checkType(0x0B)).isInstanceOfSatisfying(Decoded.Malformed.class,
        m -> assertThat(m.reason()).contains("0x0B"));
  }

  @Test
  void roundTripsEveryFrameType() {
    List<Frame> frames = List.of(
        new Frame.Hello(1, true, Long.MAX_VALUE, "device-1", "123:abc", "telemetry", "echo"),
        new Frame.Welcome(1, "device-1/telemetry", "pekko://berth@10.0.0.1:2551", 9, 10, MAX, 512, 4_000_000_000L, 30),
        new Frame.Data(Long.MAX_VALUE, new byte[MAX - FrameCodec.DATA_OVERHEAD]),
        new Frame.Ack(0), new Frame.Ping(42), new Frame.Pong(42),
        new Frame.Link(LinkStatus.TIMEOUT, "peer/é", "waited 30 s"),
        new Frame.Redirect("node-2.example", 65535, "drain"),
        new Frame.Close(CloseCode.NODE_SHUTDOWN, "leaving"),
        new Frame.Error(ErrorCode.INTERNAL, "ünïcödé ✓"));
    for (Frame f : frames) {
      assertThat(FrameCodec.decode(ByteBuffer.wrap(FrameCodec.encode(f)), MAX))
          .as(f.type().name()).isEqualTo(new Decoded.Ok(f));
    }
  }

  @Test
  void rejectsLengthOverTheLimitBeforeReadingTheBody() {
    // Only the header is present: the limit check must not need the body.
    Decoded d = FrameCodec.decode(ByteBuffer.wrap(HEX.parseHex("0001000103")), MAX);
    assertThat(d).isInstanceOfSatisfying(Decoded.Malformed.class,
        m -> assertThat(m.code()).isEqualTo(ErrorCode.FRAME_TOO_LARGE));
  }

  @Test
  void rejectsLengthWithTheTopBitSetAsTooLarge() {
    assertThat(FrameCodec.checkDeclaredLength(0xFFFFFFFFL, MAX))
        .isEqualTo(new Decoded.Malformed(ErrorCode.FRAME_TOO_LARGE,
            "length field 4294967295 exceeds the maximum frame size 65536"));
  }

  static Stream<Arguments> malformed() {
    return Stream.of(
        Arguments.of("empty input", "", ErrorCode.MALFORMED_FRAME),
        Arguments.of("zero length", "0000000000", ErrorCode.MALFORMED_FRAME),
        Arguments.of("length disagrees with bytes", "0000000a04" + "0000000000000001", ErrorCode.MALFORMED_FRAME),
        Arguments.of("unknown type", "000000017f", ErrorCode.UNKNOWN_FRAME_TYPE),
        Arguments.of("type zero", "0000000100", ErrorCode.UNKNOWN_FRAME_TYPE),
        Arguments.of("truncated ack", "0000000504" + "00000001", ErrorCode.MALFORMED_FRAME),
        Arguments.of("ack with trailing bytes", "0000000a04" + "000000000000000100", ErrorCode.MALFORMED_FRAME),
        Arguments.of("data seq above 2^63-1", "0000000903" + "8000000000000000", ErrorCode.MALFORMED_FRAME),
        Arguments.of("data without seq", "0000000403" + "000000", ErrorCode.MALFORMED_FRAME),
        Arguments.of("string longer than body", "0000000509" + "03e90005", ErrorCode.MALFORMED_FRAME),
        Arguments.of("invalid utf-8", "0000000709" + "03e90002c328", ErrorCode.MALFORMED_FRAME),
        Arguments.of("hello with undefined flag", "0000001001" + "0102" + "0000000000000000" + "0000000000000000", ErrorCode.MALFORMED_FRAME),
        Arguments.of("hello truncated", "0000000301" + "0100", ErrorCode.MALFORMED_FRAME),
        Arguments.of("link with undefined status", "0000000607" + "09" + "00000000", ErrorCode.MALFORMED_FRAME));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformed")
  void malformedInputIsAValueNotAnException(String name, String hex, ErrorCode expected) {
    Decoded d = FrameCodec.decode(ByteBuffer.wrap(HEX.parseHex(hex)), MAX);
    assertThat(d).isInstanceOfSatisfying(Decoded.Malformed.class, m -> {
      assertThat(m.code()).isEqualTo(expected);
      assertThat(m.reason()).isNotBlank();
    });
  }

  @Test
  void randomGarbageNeverThrows() {
    java.util.Random random = new java.util.Random(7);
    for (int i = 0; i < 100_000; i++) {
      byte[] bytes = new byte[random.nextInt(64)];
      random.nextBytes(bytes);
      if (bytes.length >= 4 && random.nextBoolean()) {
        ByteBuffer.wrap(bytes).putInt(0, bytes.length - 4);
      }
      assertThat(FrameCodec.decode(ByteBuffer.wrap(bytes), MAX)).isNotNull();
    }
  }
}
