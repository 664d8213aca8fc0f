package io.berth.node.secrets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Base64;
import org.junit.jupiter.api.Test;

/** Sealing and opening mapping secrets, and the key settings' checks (docs/secrets.md). */
class SecretSealerTest {

  private static final String SECRET = "endpoint-secret-0123456789";
  private static final String KEY_A = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  private static final String KEY_B = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

  private static SecretSealer sealer(String keys) {
    return new SecretSealer(SecretSettings.of(keys, false));
  }

  @Test
  void aSealedSecretOpensToItselfAndHidesIt() {
    SecretSealer s = sealer("a=" + KEY_A);
    String sealed = s.seal(SECRET);
    assertThat(sealed).startsWith("enc:v1:a:").doesNotContain(SECRET);
    assertThat(s.open(sealed)).isEqualTo(SECRET);
    assertThat(s.seal(SECRET)).as("a fresh nonce each time").isNotEqualTo(sealed);
    assertThat(s.sealCached(SECRET)).isEqualTo(s.sealCached(SECRET));
    assertThat(s.open(s.sealCached(SECRET))).isEqualTo(SECRET);
    assertThat(s.seal(null)).isNull();
  }

  @Test
  void aValueStoredBeforeSealingOpensAsItIs() {
    assertThat(sealer("a=" + KEY_A).open(SECRET)).isEqualTo(SECRET);
    assertThat(sealer("a=" + KEY_A).open(null)).isNull();
  }

  @Test
  void theFirstKeySealsAndEveryKeyOpens() {
    String sealedWithA = sealer("a=" + KEY_A).seal(SECRET);
    SecretSealer rotated = sealer("b=" + KEY_B + ",a=" + KEY_A);
    assertThat(rotated.open(sealedWithA)).isEqualTo(SECRET);
    assertThat(rotated.isCurrent(sealedWithA)).isFalse();
    assertThat(rotated.isCurrent(SECRET)).as("plaintext is resealed").isFalse();
    String resealed = rotated.seal(SECRET);
    assertThat(resealed).startsWith("enc:v1:b:");
    assertThat(rotated.isCurrent(resealed)).isTrue();
  }

  @Test
  void aKeyIdTheNodeDoesNotHoldIsNamedAndTheValueNot() {
    String sealed = sealer("a=" + KEY_A).seal(SECRET);
    assertThatThrownBy(() -> sealer("b=" + KEY_B).open(sealed))
        .isInstanceOf(SecretSealer.UnknownKey.class)
        .hasMessageContaining("key id 'a'")
        .hasMessageNotContaining(sealed.substring("enc:v1:a:".length()));
  }

  @Test
  void anAlteredCiphertextDoesNotOpen() {
    SecretSealer s = sealer("a=" + KEY_A);
    String sealed = s.seal(SECRET);
    int last = sealed.length() - 3;
    String altered = sealed.substring(0, last) + (sealed.charAt(last) == 'A' ? 'B' : 'A') + sealed.substring(last + 1);
    assertThatThrownBy(() -> s.open(altered)).isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("does not open");
    assertThatThrownBy(() -> s.open("enc:v1:a:AAAA")).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> s.open("enc:v2:whatever")).hasMessageContaining("enc:v1:");
  }

  @Test
  void theKeyIdIsBoundToTheCiphertext() {
    // The same key under two ids: relabelling a value to the other id must still fail.
    SecretSealer s = sealer("a=" + KEY_A + ",b=" + KEY_A);
    String sealed = s.seal(SECRET);
    String relabelled = "enc:v1:b:" + sealed.substring("enc:v1:a:".length());
    assertThatThrownBy(() -> s.open(relabelled)).hasMessageContaining("does not open");
  }

  @Test
  void keysInUrlSafeBase64WithoutPaddingAreAccepted() {
    String urlSafe = Base64.getUrlEncoder().withoutPadding().encodeToString(Base64.getDecoder().decode(KEY_B));
    String sealed = sealer("b=" + KEY_B).seal(SECRET);
    assertThat(sealer(" b = " + urlSafe + " ,").open(sealed)).isEqualTo(SECRET);
  }

  @Test
  void wrongKeySettingsStopTheNodeNamingTheEntryNeverItsText() {
    assertThatThrownBy(() -> SecretSettings.of(KEY_A, false))
        .hasMessageContaining("entry 1").hasMessageContaining("id= missing").hasMessageNotContaining(KEY_A)
        .hasMessageNotContaining(KEY_A.substring(0, 20));
    assertThatThrownBy(() -> SecretSettings.of("a=" + KEY_A + ",b=c2hvcnQ=", false))
        .hasMessageContaining("entry 2").hasMessageContaining("32 random bytes").hasMessageNotContaining("c2hvcnQ");
    assertThatThrownBy(() -> SecretSettings.of("a=not base64!", false))
        .hasMessageContaining("32 random bytes").hasMessageNotContaining("not base64");
    assertThatThrownBy(() -> SecretSettings.of("a=" + KEY_A + ",a=" + KEY_B, false))
        .hasMessageContaining("given twice").hasMessageNotContaining(KEY_B);
    assertThatThrownBy(() -> SecretSettings.of("", false))
        .hasMessageContaining("BERTH_SECRETS_KEYS").hasMessageContaining("allow-plaintext");
    assertThat(SecretSettings.of("a=" + KEY_A, false).toString()).doesNotContain(KEY_A);
  }

  @Test
  void withoutKeysPlaintextIsWrittenOnlyWhenAllowed() {
    SecretSealer plain = new SecretSealer(SecretSettings.of("", true));
    assertThat(plain.seal(SECRET)).isEqualTo(SECRET);
    assertThat(plain.isCurrent(SECRET)).isTrue();
    String sealed = sealer("a=" + KEY_A).seal(SECRET);
    assertThatThrownBy(() -> plain.open(sealed)).isInstanceOf(SecretSealer.UnknownKey.class);
  }
}
