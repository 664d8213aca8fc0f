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
 *
 * <p>Only the canonical spelling is accepted: the expiry as decimal digits without sign or leading
 * zero, the signature as exactly 64 lowercase hex digits. Each token then has one spelling, the
 * one {@link #mint} writes, and the signed text is the expiry exactly as it appears in the token.
 */
public final class DeviceToken {

  public enum Verdict {
    VALID,
    MALFORMED,
    BAD_SIGNATURE,
    EXPIRED
  }

  /** A verdict and, unless valid, why: for the ERROR message and logs, never parsed. */
  public record Check(Verdict verdict, String reason) {}

  /** Characters of the signature: 32 bytes of HMAC-SHA256, two hex digits each. */
  public static final int SIGNATURE_HEX_LENGTH = 64;
  /** Digits of the largest expiry, 2^63 - 1 = 9223372036854775807. */
  public static final int MAX_EXPIRY_DIGITS = 19;

  private static final String ALGORITHM = "HmacSHA256";
  private static final HexFormat HEX = HexFormat.of();

  private DeviceToken() {}

  public static String mint(byte[] secret, String deviceId, Instant expiry) {
    long expirySeconds = expiry.getEpochSecond();
    if (expirySeconds < 0) {
      throw new IllegalArgumentException("token expiry before 1970: " + expiry);
    }
    return expirySeconds + ":" + HEX.formatHex(sign(secret, deviceId, expirySeconds));
  }

  public static Verdict verify(byte[] secret, String deviceId, String token, Instant now) {
    return check(secret, deviceId, token, now).verdict();
  }

  /** Verifies a token and says why it is refused. */
  public static Check check(byte[] secret, String deviceId, String token, Instant now) {
    String problem = formProblem(token);
    if (problem != null) {
      return new Check(Verdict.MALFORMED, problem);
    }
    int colon = token.indexOf(':');
    long expirySeconds = Long.parseLong(token, 0, colon, 10);
    byte[] presented = HEX.parseHex(token, colon + 1, token.length());
    // Compare the signature first so that an attacker learns nothing from the expiry check.
    if (!MessageDigest.isEqual(presented, sign(secret, deviceId, expirySeconds))) {
      return new Check(Verdict.BAD_SIGNATURE, "the signature does not match: a token minted with another fleet "
          + "secret, for another device id, or with an altered expiry");
    }
    if (now.getEpochSecond() >= expirySeconds) {
      return new Check(Verdict.EXPIRED, "the token expired at " + Instant.ofEpochSecond(expirySeconds));
    }
    return new Check(Verdict.VALID, "");
  }

  /**
   * Why {@code token} is not of the canonical form {@code expiry ":" signature}, or {@code null}
   * when it is (PROTOCOL.md#authentication).
   */
  public static String formProblem(String token) {
    int colon = token.indexOf(':');
    if (colon < 0) {
      return "a token is <expiry>:<signature>, this one has no ':'";
    }
    if (colon == 0) {
      return "the expiry before ':' is empty";
    }
    for (int i = 0; i < colon; i++) {
      char c = token.charAt(i);
      if (c < '0' || c > '9') {
        return "the expiry must be decimal digits, found '" + c + "' at position " + i;
      }
    }
    if (colon > 1 && token.charAt(0) == '0') {
      return "the expiry must not have a leading zero";
    }
    if (colon > MAX_EXPIRY_DIGITS
        || (colon == MAX_EXPIRY_DIGITS && token.substring(0, colon).compareTo(String.valueOf(Long.MAX_VALUE)) > 0)) {
      return "the expiry is above 2^63 - 1 seconds";
    }
    int signatureLength = token.length() - colon - 1;
    if (signatureLength != SIGNATURE_HEX_LENGTH) {
      return "the signature after ':' must be " + SIGNATURE_HEX_LENGTH + " hex digits, found " + signatureLength
          + " characters";
    }
    for (int i = colon + 1; i < token.length(); i++) {
      char c = token.charAt(i);
      if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f')) {
        return "the signature must be lowercase hex digits (0-9 a-f), found '" + c + "' at position " + i;
      }
    }
    return null;
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
