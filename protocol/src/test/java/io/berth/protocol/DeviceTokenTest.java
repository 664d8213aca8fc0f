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
  void aKeysTokenNamesItsKeyAndSignsItWithTheDeviceAndExpiry() {
    // PROTOCOL.md#authentication; the same value as
    // printf k2026:d1:1767225600 | openssl dgst -sha256 -hmac fleet-key-2026
    byte[] key = "fleet-key-2026".getBytes(StandardCharsets.UTF_8);
    String token = DeviceToken.mint("k2026", key, "d1", Instant.ofEpochSecond(1767225600L));
    assertThat(token).isEqualTo(
        "k2026:1767225600:bbe231e29247584f18b273a0dcd8b1563e3db3783149d45d96bebaa31d427029");
    assertThat(DeviceToken.keyId(token)).isEqualTo("k2026");
    assertThat(DeviceToken.keyId("1767225600:" + "0".repeat(64))).isEmpty();
    assertThat(DeviceToken.formProblem(token)).isNull();
    TokenKeys both = TokenKeys.of(java.util.Map.of("", SECRET, "k2026", key));
    assertThat(DeviceToken.check(both, "d1", token, Instant.ofEpochSecond(1767225599L)).verdict())
        .isEqualTo(DeviceToken.Verdict.VALID);
    String legacy = DeviceToken.mint(SECRET, "d1", NOW.plusSeconds(60));
    assertThat(DeviceToken.check(both, "d1", legacy, NOW).verdict()).isEqualTo(DeviceToken.Verdict.VALID);
  }

  /** A rotation: the old key's tokens are refused once it is retired, and say so. */
  @Test
  void aTokenOfAKeyTheNodeDoesNotHoldIsRefusedAsUnknownKey() {
    byte[] oldKey = "fleet-key-old-16".getBytes(StandardCharsets.UTF_8);
    byte[] newKey = "fleet-key-new-16".getBytes(StandardCharsets.UTF_8);
    String old = DeviceToken.mint("old", oldKey, "d1", NOW.plusSeconds(60));
    TokenKeys retired = TokenKeys.of(java.util.Map.of("new", newKey));
    DeviceToken.Check check = DeviceToken.check(retired, "d1", old, NOW);
    assertThat(check.verdict()).isEqualTo(DeviceToken.Verdict.UNKNOWN_KEY);
    assertThat(check.reason()).contains("'old' is not accepted here");
    DeviceToken.Check legacy = DeviceToken.check(retired, "d1", DeviceToken.mint(SECRET, "d1", NOW.plusSeconds(60)),
        NOW);
    assertThat(legacy.verdict()).isEqualTo(DeviceToken.Verdict.UNKNOWN_KEY);
    assertThat(legacy.reason()).contains("name no key");
    // A key's token presented as another key's: its signature covers the key id.
    String relabelled = "new" + old.substring("old".length());
    assertThat(DeviceToken.check(TokenKeys.of(java.util.Map.of("new", oldKey)), "d1", relabelled, NOW).verdict())
        .isEqualTo(DeviceToken.Verdict.BAD_SIGNATURE);
  }

  @Test
  void aKeyIdIsALowercaseWordBeforeTheExpiry() {
    assertRefusedAsMalformed("K1:1767225600:" + "0".repeat(64), "key id");
    assertRefusedAsMalformed("1k:1767225600:" + "0".repeat(64), "the expiry must be decimal digits");
    assertRefusedAsMalformed(":1767225600:" + "0".repeat(64), "key id");
    assertRefusedAsMalformed("k1:01767225600:" + "0".repeat(64), "leading zero");
    assertRefusedAsMalformed("k1::" + "0".repeat(64), "expiry before ':' is empty");
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

  private static final String SIGNATURE = "f96bdf916e44957488fc61d8fcef94ae3dcf21de767ab850f85d10d97e9e8fa4";

  private static void assertRefusedAsMalformed(String token, String reasonContains) {
    DeviceToken.Check check = DeviceToken.check(SECRET, "d1", token, NOW.minusSeconds(3600));
    assertThat(check.verdict()).as(token).isEqualTo(DeviceToken.Verdict.MALFORMED);
    assertThat(check.reason()).as(token).contains(reasonContains);
  }

  @Test
  void theDocumentedTokenHasTheCanonicalForm() {
    assertThat(DeviceToken.formProblem("1767225600:" + SIGNATURE)).isNull();
    assertThat(DeviceToken.check(SECRET, "d1", "1767225600:" + SIGNATURE, NOW.minusSeconds(1)).verdict())
        .isEqualTo(DeviceToken.Verdict.VALID);
  }

  @Test
  void uppercaseHexIsRefusedSoThatATokenHasOneSpelling() {
    assertRefusedAsMalformed("1767225600:" + SIGNATURE.toUpperCase(java.util.Locale.ROOT), "lowercase hex");
    assertRefusedAsMalformed("1767225600:F" + SIGNATURE.substring(1), "found 'F' at position 11");
  }

  @Test
  void aSignatureOfAnotherLengthIsRefused() {
    assertRefusedAsMalformed("1767225600:" + SIGNATURE.substring(2), "64 hex digits, found 62");
    assertRefusedAsMalformed("1767225600:" + SIGNATURE + "00", "found 66");
    assertRefusedAsMalformed("1767225600:" + SIGNATURE + ":", "found 65");
  }

  @Test
  void anExpiryWithALeadingZeroSignOrSpaceIsRefused() {
    assertRefusedAsMalformed("01767225600:" + SIGNATURE, "leading zero");
    assertRefusedAsMalformed("+1767225600:" + SIGNATURE, "decimal digits, found '+'");
    assertRefusedAsMalformed("-1:" + SIGNATURE, "decimal digits, found '-'");
    assertRefusedAsMalformed(" 1767225600:" + SIGNATURE, "decimal digits, found ' '");
    assertRefusedAsMalformed("1767225600 :" + SIGNATURE, "decimal digits, found ' '");
    assertRefusedAsMalformed(":" + SIGNATURE, "expiry before ':' is empty");
    assertRefusedAsMalformed("1767225600" + SIGNATURE, "no ':'");
  }

  @Test
  void aLeadingZeroSignedOverItsLiteralTextIsStillRefused() {
    // The message is signed over the text of the expiry; a padded expiry is not canonical however signed.
    String padded = "0" + 1767225600L;
    assertRefusedAsMalformed(padded + ":" + hmacHex("d1:" + padded), "leading zero");
  }

  @Test
  void theExpiryRangeEndsAt2To63Minus1() {
    String max = String.valueOf(Long.MAX_VALUE);
    String token = max + ":" + hmacHex("d1:" + max);
    assertThat(DeviceToken.check(SECRET, "d1", token, NOW).verdict()).isEqualTo(DeviceToken.Verdict.VALID);
    assertRefusedAsMalformed("9223372036854775808:" + SIGNATURE, "above 2^63 - 1");
    assertRefusedAsMalformed("10000000000000000000:" + SIGNATURE, "above 2^63 - 1");
  }

  @Test
  void expiryZeroIsWellFormedAndExpired() {
    String token = "0:" + hmacHex("d1:0");
    assertThat(DeviceToken.formProblem(token)).isNull();
    assertThat(DeviceToken.check(SECRET, "d1", token, NOW).verdict()).isEqualTo(DeviceToken.Verdict.EXPIRED);
  }

  @Test
  void eachRefusalSaysWhy() {
    String token = DeviceToken.mint(SECRET, "d1", NOW.plusSeconds(60));
    assertThat(DeviceToken.check(SECRET, "d2", token, NOW).reason()).contains("does not match");
    assertThat(DeviceToken.check(SECRET, "d1", token, NOW.plusSeconds(61)).reason()).contains("expired at");
    assertThat(DeviceToken.check(SECRET, "d1", token, NOW).reason()).isEmpty();
  }

  private static String hmacHex(String message) {
    try {
      javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
      mac.init(new javax.crypto.spec.SecretKeySpec(SECRET, "HmacSHA256"));
      return java.util.HexFormat.of().formatHex(mac.doFinal(message.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }
}
