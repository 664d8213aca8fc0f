package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Keeps the worked example of PROTOCOL.md (its ```hex blocks) true to the codec. */
class ProtocolDocTest {

  private static final Pattern HEX_BLOCK = Pattern.compile("(?ms)^```hex[ \\t]*\\R(.*?)^```[ \\t]*$");
  private static final Pattern WHITESPACE = Pattern.compile("\\s+");
  private static final byte[] SECRET = "fleet-secret".getBytes(StandardCharsets.UTF_8);
  private static final Instant BEFORE_EXPIRY = Instant.ofEpochSecond(1767225600L - 60);

  private static List<byte[]> blocks;

  @BeforeAll
  static void readTheHexBlocks() throws IOException {
    // Surefire runs with the module directory as working directory.
    String doc = Files.readString(Path.of("PROTOCOL.md"));
    blocks = new ArrayList<>();
    Matcher m = HEX_BLOCK.matcher(doc);
    while (m.find()) {
      blocks.add(HexFormat.of().parseHex(WHITESPACE.matcher(m.group(1)).replaceAll("")));
    }
  }

  @Test
  void everyHexBlockIsOneValidFrameThatReencodesToTheSameBytes() {
    assertThat(blocks).isNotEmpty();
    for (int i = 0; i < blocks.size(); i++) {
      byte[] bytes = blocks.get(i);
      Decoded decoded = FrameCodec.decode(ByteBuffer.wrap(bytes), FrameCodec.DEFAULT_MAX_FRAME_SIZE);
      assertThat(decoded).as("hex block %d", i + 1).isInstanceOf(Decoded.Ok.class);
      Frame frame = ((Decoded.Ok) decoded).frame();
      assertThat(FrameCodec.encode(frame)).as("hex block %d (%s)", i + 1, frame.type()).isEqualTo(bytes);
    }
  }

  /** The error code table says what {@link ErrorCode} does: every code, its name, whether retryable. */
  @Test
  void theErrorCodeTableMatchesTheCodes() throws IOException {
    String doc = Files.readString(Path.of("PROTOCOL.md"));
    Matcher row = Pattern.compile("(?m)^\\| (\\d{3}) +\\| `([A-Z_]+)` *\\|.*\\| (yes|no) \\|$").matcher(doc);
    List<String> documented = new ArrayList<>();
    while (row.find()) {
      documented.add(row.group(1) + " " + row.group(2) + " " + row.group(3));
    }
    List<String> codes = new ArrayList<>();
    for (ErrorCode c : ErrorCode.values()) {
      codes.add(c.wire + " " + c.name() + " " + (c.retryable ? "yes" : "no"));
    }
    assertThat(documented).containsExactlyElementsOf(codes);
  }

  @Test
  void theExampleHelloCarriesAValidTokenForDeviceD1() {
    Frame.Hello hello = blocks.stream()
        .map(b -> FrameCodec.decode(ByteBuffer.wrap(b), FrameCodec.DEFAULT_MAX_FRAME_SIZE))
        .filter(Decoded.Ok.class::isInstance)
        .map(d -> ((Decoded.Ok) d).frame())
        .filter(Frame.Hello.class::isInstance)
        .map(Frame.Hello.class::cast)
        .findFirst()
        .orElseThrow(() -> new AssertionError("PROTOCOL.md has no HELLO hex block"));

    assertThat(hello.deviceId()).isEqualTo("d1");
    assertThat(DeviceToken.verify(SECRET, "d1", hello.token(), BEFORE_EXPIRY))
        .isEqualTo(DeviceToken.Verdict.VALID);
  }
}
