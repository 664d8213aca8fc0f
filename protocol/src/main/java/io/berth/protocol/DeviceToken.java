package io.berth.protocol;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Device credentials (PROTOCOL.md#authentication): {@code <expiry>:<hex HMAC-SHA256(secret,
 * "<deviceId>:<expiry>")>} where expiry is in Unix seconds. A node verifies a token with the fleet
 * secret alone, without a database round trip.
 */
public final class DeviceToken {

  public enum Verdict {
    VALID,
    MALFORMED,
    BAD_SIGNATURE,
    EXPIRED
  }

  private static final String ALGORITHM = "HmacSHA256";
  private static final HexFormat HEX = HexFormat.of();

  private DeviceToken() {}

  public static String mint(byte[] secret, String deviceId, Instant expiry) {
    long expirySeconds = expiry.getEpochSecond();
    return expirySeconds + ":" + HEX.formatHex(sign(secret, deviceId, expirySeconds));
  }

  public static Verdict verify(byte[] secret, String deviceId, String token, Instant now) {
    int colon = token.indexOf(':');
    if (colon <= 0 || colon == token.length() - 1) {
      return Verdict.MALFORMED;
    }
    long expirySeconds;
    byte[] presented;
    try {
      expirySeconds = Long.parseLong(token.substring(0, colon));
      presented = HEX.parseHex(token.substring(colon + 1));
    } catch (IllegalArgumentException e) {
      return Verdict.MALFORMED;
    }
    // Compare the signature first so that an attacker learns nothing from the expiry check.
    if (!MessageDigest.isEqual(presented, sign(secret, deviceId, expirySeconds))) {
      return Verdict.BAD_SIGNATURE;
    }
    return now.getEpochSecond() >= expirySeconds ? Verdict.EXPIRED : Verdict.VALID;
  }

  private static byte[] sign(byte[] secret, String deviceId, long expirySeconds) {
    return KEYED.get().mac(secret).doFinal((deviceId + ":" + expirySeconds).getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Each thread's MAC, kept with the key it was initialized with: looking the algorithm up and
   * initializing it cost more than the signature itself in a profile of many devices connecting.
   * {@code doFinal} leaves the MAC ready for the next message under the same key.
   */
  private static final ThreadLocal<KeyedMac> KEYED = ThreadLocal.withInitial(KeyedMac::new);

  private static final class KeyedMac {
    private byte[] key;
    private Mac mac;

    Mac mac(byte[] secret) {
      if (mac == null || !MessageDigest.isEqual(key, secret)) {
        try {
          Mac fresh = Mac.getInstance(ALGORITHM);
          fresh.init(new SecretKeySpec(secret, ALGORITHM));
          key = secret.clone();
          mac = fresh;
        } catch (NoSuchAlgorithmException | InvalidKeyException e) {
          throw new IllegalStateException("HMAC-SHA256 unavailable", e);
        }
      }
      return mac;
    }
  }
}
