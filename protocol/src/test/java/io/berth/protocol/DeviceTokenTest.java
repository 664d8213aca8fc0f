package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class DeviceTokenTest {

  private static final byte[] SECRET = "fleet-secret".getBytes(StandardCharsets.UTF_8);
  private static final Instant NOW = Instant.parse("2026-01-01T00:00:00Z");

  @Test
  void hasTheDocumentedForm() {
    // PROTOCOL.md#authentication; the same value as
    // printf d1:1767225600 | openssl dgst -sha256 -hmac fleet-secret
    String token = DeviceToken.mint(SECRET, "d1", Instant.ofEpochSecond(1767225600L));
    assertThat(token).isEqualTo(
        "1767225600:f96bdf916e44957488fc61d8fcef94ae3dcf21de767ab850f85d10d97e9e8fa4");
  }

  @Test
  void acceptsATokenSignedWithTheSecretUntilItExpires() {
    String token = DeviceToken.mint(SECRET, "d1", NOW.plusSeconds(60));
    assertThat(DeviceToken.verify(SECRET, "d1", token, NOW)).isEqualTo(DeviceToken.Verdict.VALID);
    assertThat(DeviceToken.verify(SECRET, "d1", token, NOW.plusSeconds(60)))
        .isEqualTo(DeviceToken.Verdict.EXPIRED);
  }

  @Test
  void refusesATokenOfAnotherDeviceOrSecret() {
    String token = DeviceToken.mint(SECRET, "d1", NOW.plusSeconds(60));
    assertThat(DeviceToken.verify(SECRET, "d2", token, NOW)).isEqualTo(DeviceToken.Verdict.BAD_SIGNATURE);
    assertThat(DeviceToken.verify("other".getBytes(StandardCharsets.UTF_8), "d1", token, NOW))
        .isEqualTo(DeviceToken.Verdict.BAD_SIGNATURE);
  }

  @Test
  void aSecretChangedInPlaceOrSwappedIsUsedAtOnce() {
    // Each thread keeps its MAC initialized with the last key: it must follow the key's bytes.
    byte[] secret = "rotating".getBytes(StandardCharsets.UTF_8);
    byte[] other = "fleet-secrez".getBytes(StandardCharsets.UTF_8);
    String token = DeviceToken.mint(secret, "d1", NOW.plusSeconds(60));
    for (int round = 0; round < 3; round++) {
      assertThat(DeviceToken.verify(secret, "d1", token, NOW)).isEqualTo(DeviceToken.Verdict.VALID);
      assertThat(DeviceToken.verify(other, "d1", token, NOW)).isEqualTo(DeviceToken.Verdict.BAD_SIGNATURE);
    }
    secret[0] = 'R';
    assertThat(DeviceToken.verify(secret, "d1", token, NOW)).isEqualTo(DeviceToken.Verdict.BAD_SIGNATURE);
    assertThat(DeviceToken.mint(SECRET, "d1", Instant.ofEpochSecond(1767225600L))).isEqualTo(
        "1767225600:f96bdf916e44957488fc61d8fcef94ae3dcf21de767ab850f85d10d97e9e8fa4");
  }

  @Test
  void anExtendedExpiryBreaksTheSignature() {
    String token = DeviceToken.mint(SECRET, "d1", NOW.minusSeconds(1));
    String forged = NOW.plusSeconds(3600).getEpochSecond() + token.substring(token.indexOf(':'));
    assertThat(DeviceToken.verify(SECRET, "d1", forged, NOW)).isEqualTo(DeviceToken.Verdict.BAD_SIGNATURE);
  }

  @Test
  void refusesMalformedTokens() {
    for (String bad : new String[] {"", ":", "123", "123:", ":abcd", "x:abcd", "123:zz", "123:abc"}) {
      assertThat(DeviceToken.verify(SECRET, "d1", bad, NOW)).as(bad).isEqualTo(DeviceToken.Verdict.MALFORMED);
    }
  }
}
