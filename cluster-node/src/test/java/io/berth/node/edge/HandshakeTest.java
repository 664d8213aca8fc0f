package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.protocol.DeviceToken;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class HandshakeTest {

  private static final byte[] SECRET = "sixteen-bytes-or-more".getBytes(StandardCharsets.UTF_8);
  private static final Instant NOW = Instant.parse("2026-12-02T12:00:00Z");

  private static Frame.Hello hello(int version, String deviceId, String token, String mapping) {
    return new Frame.Hello(version, false, 0, deviceId, token, "", mapping);
  }

  private static String token(String deviceId, Instant expiry) {
    return DeviceToken.mint(SECRET, deviceId, expiry);
  }

  @Test
  void aHelloWithOurVersionValidIdsAndAValidTokenPasses() {
    Frame.Hello hello = hello(FrameCodec.VERSION, "meter-1", token("meter-1", NOW.plusSeconds(60)), "");
    assertThat(Handshake.check(hello, SECRET, NOW)).isNull();
  }

  @Test
  void eachRefusalHasItsErrorCode() {
    String valid = token("meter-1", NOW.plusSeconds(60));
    assertThat(Handshake.check(hello(FrameCodec.VERSION + 1, "meter-1", valid, ""), SECRET, NOW).code())
        .isEqualTo(ErrorCode.UNSUPPORTED_VERSION);
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter 1", valid, ""), SECRET, NOW).code())
        .isEqualTo(ErrorCode.INVALID_ID);
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-1", token("meter-1", NOW.minusSeconds(1)), ""),
        SECRET, NOW).code()).isEqualTo(ErrorCode.TOKEN_EXPIRED);
    Handshake.Refusal otherDevice =
        Handshake.check(hello(FrameCodec.VERSION, "meter-1", token("meter-2", NOW.plusSeconds(60)), ""), SECRET, NOW);
    assertThat(otherDevice.code()).isEqualTo(ErrorCode.AUTH_FAILED);
    assertThat(otherDevice.message()).startsWith("invalid token for device meter-1");
    Handshake.Refusal garbage = Handshake.check(hello(FrameCodec.VERSION, "meter-1", "garbage", ""), SECRET, NOW);
    assertThat(garbage.code()).isEqualTo(ErrorCode.AUTH_FAILED);
    assertThat(garbage.message()).startsWith("malformed token for device meter-1");
  }

  @Test
  void aHelloWithoutAMappingOpensTheNodesDefault() {
    assertThat(Handshake.mapping(hello(FrameCodec.VERSION, "d", "t", ""), "echo")).isEqualTo("echo");
    assertThat(Handshake.mapping(hello(FrameCodec.VERSION, "d", "t", "telemetry"), "echo")).isEqualTo("telemetry");
  }

  @Test
  void anUnknownMappingIsNamedWithWhereToLookNotWithTheKnownNames() {
    Handshake.Refusal named = Handshake.unknownMapping(hello(FrameCodec.VERSION, "d", "t", "nope"), "nope", "echo");
    assertThat(named.code()).isEqualTo(ErrorCode.UNKNOWN_MAPPING);
    assertThat(named.message()).contains("no mapping named 'nope'")
        .contains("an empty mapping name opens the node's default, 'echo'").contains("GET /api/mappings");
    Handshake.Refusal byDefault = Handshake.unknownMapping(hello(FrameCodec.VERSION, "d", "t", ""), "gone", "gone");
    assertThat(byDefault.message()).contains("no mapping named 'gone' (this node's default mapping)");
  }

  @Test
  void theWelcomeCarriesTheSessionsWatermarksAndTheEdgesLimits() {
    EdgeSettings settings = EdgeSettings.fromConfig(ConfigFactory.parseString("""
        berth.auth.secret = "sixteen-bytes-or-more"
        berth.edge.window = 100000
        berth.edge.idle-timeout = 30s
        """).withFallback(ConfigFactory.defaultReference()).resolve());
    Frame.Welcome w = Handshake.welcome(new ToEdge.Welcomed("d/s", "ignored", 7, 3), "node-a", settings);
    assertThat(w.socketId()).isEqualTo("d/s");
    assertThat(w.node()).isEqualTo("node-a");
    assertThat(w.lastAccepted()).isEqualTo(7);
    assertThat(w.lastAcked()).isEqualTo(3);
    assertThat(w.window()).as("the field holds 16 bits").isEqualTo(0xFFFF);
    assertThat(w.idleTimeoutSeconds()).isEqualTo(30);
  }

  @Test
  void aClientCertificateMakesTheTokenOptionalButNamesTheOnlyDeviceTheHelloMayOpen() {
    String valid = token("meter-1", NOW.plusSeconds(60));
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-1", "", ""), SECRET, "meter-1", NOW)).isNull();
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-1", valid, ""), SECRET, "meter-1", NOW)).isNull();

    Handshake.Refusal other = Handshake.check(hello(FrameCodec.VERSION, "meter-2", "", ""), SECRET, "meter-1", NOW);
    assertThat(other.code()).isEqualTo(ErrorCode.AUTH_FAILED);
    assertThat(other.message()).contains("certificate is for device meter-1, not meter-2");
    // A token for another device does not get around the certificate.
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-2", token("meter-2", NOW.plusSeconds(60)), ""),
        SECRET, "meter-1", NOW).code()).isEqualTo(ErrorCode.AUTH_FAILED);
    // A token that comes with the certificate must be valid.
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-1", "garbage", ""), SECRET, "meter-1", NOW).code())
        .isEqualTo(ErrorCode.AUTH_FAILED);
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-1", "", ""), SECRET, "", NOW).message())
        .contains("names no valid device id");
    // Without a certificate the token is required, as ever.
    assertThat(Handshake.check(hello(FrameCodec.VERSION, "meter-1", "", ""), SECRET, null, NOW).code())
        .isEqualTo(ErrorCode.AUTH_FAILED);
  }

  /**
   * A limited socket's window holds at most its burst and one second of its rate, so that what
   * the device sends behind a full window (its downlink ACKs) waits about a second, not minutes.
   */
  @Test
  void aLimitedSocketsWindowIsItsBurstAndOneSecondOfItsRate() {
    EdgeSettings settings = EdgeSettings.fromConfig(ConfigFactory.parseString(
        "berth.auth.secret = \"sixteen-bytes-or-more\"\nberth.edge.tls.enabled = off")
        .withFallback(ConfigFactory.defaultReference()).resolve());
    ToEdge.Welcomed w = new ToEdge.Welcomed("d", "n", 0, 0);
    Frame.Welcome unlimited = Handshake.welcome(w, "n", settings, null);
    assertThat(unlimited.window()).isEqualTo(settings.window());
    assertThat(unlimited.windowBytes()).isEqualTo(settings.windowBytes());

    Frame.Welcome frames = Handshake.welcome(w, "n", settings, new Mapping.Limits(100, 50, 0, 0));
    assertThat(frames.window()).isEqualTo(150);
    assertThat(frames.windowBytes()).isEqualTo(settings.windowBytes());
    Frame.Welcome bytes = Handshake.welcome(w, "n", settings, new Mapping.Limits(0, 0, 8_192, 4_096));
    assertThat(bytes.window()).isEqualTo(settings.window());
    assertThat(bytes.windowBytes()).isEqualTo(12_288);
    Frame.Welcome generous = Handshake.welcome(w, "n", settings, new Mapping.Limits(100_000, 100_000, 0, 0));
    assertThat(generous.window()).isEqualTo(settings.window());
  }
}
