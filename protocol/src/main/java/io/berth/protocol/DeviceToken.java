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
 * Device credentials (PROTOCOL.md#authentication): {@code <keyId>:<expiry>:<hex HMAC-SHA256(key,
 * "<keyId>:<deviceId>:<expiry>")>}, or, minted with the fleet secret of before key ids, {@code
 * <expiry>:<hex HMAC-SHA256(secret, "<deviceId>:<expiry>")>}; expiry is in Unix seconds. A node
 * verifies a token with the keys it accepts ({@link TokenKeys}) alone, without a database round
 * trip; several keys at once let the fleet's key be rotated.
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
    EXPIRED,
    /** The token names a key this node does not accept: retired, or not yet rolled out. */
    UNKNOWN_KEY
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

  /** A token of the fleet secret, which names no key. */
  public static String mint(byte[] secret, String deviceId, Instant expiry) {
    return mint("", secret, deviceId, expiry);
  }

  /** A token of the key {@code keyId} (empty: the fleet secret's form, which names no key). */
  public static String mint(String keyId, byte[] secret, String deviceId, Instant expiry) {
    long expirySeconds = expiry.getEpochSecond();
    if (expirySeconds < 0) {
      throw new IllegalArgumentException("token expiry before 1970: " + expiry);
    }
    if (!keyId.isEmpty() && !TokenKeys.KEY_ID.matcher(keyId).matches()) {
      throw new IllegalArgumentException("token key id '" + keyId + "' must be a lowercase letter, then up to 31 "
          + "lowercase letters, digits and '-'");
    }
    String signature = HEX.formatHex(sign(secret, keyId, deviceId, expirySeconds));
    return (keyId.isEmpty() ? "" : keyId + ":") + expirySeconds + ":" + signature;
  }

  public static Verdict verify(byte[] secret, String deviceId, String token, Instant now) {
    return check(secret, deviceId, token, now).verdict();
  }

  /** Verifies a token with the fleet secret alone and says why it is refused. */
  public static Check check(byte[] secret, String deviceId, String token, Instant now) {
    return check(TokenKeys.legacy(secret), deviceId, token, now);
  }

  /** Verifies a token with the key it names, if {@code keys} holds it, and says why it is refused. */
  public static Check check(TokenKeys keys, String deviceId, String token, Instant now) {
    String problem = formProblem(token);
    if (problem != null) {
      return new Check(Verdict.MALFORMED, problem);
    }
    String keyId = keyId(token);
    int start = keyId.isEmpty() ? 0 : keyId.length() + 1;
    byte[] secret = keys.secret(keyId).orElse(null);
    if (secret == null) {
      return new Check(Verdict.UNKNOWN_KEY, keyId.isEmpty()
          ? "tokens that name no key are not accepted here: the fleet secret they were signed with is retired; "
              + "the device needs a token of a current key"
          : "the token's key '" + keyId + "' is not accepted here: retired, or not yet on this node");
    }
    int colon = token.indexOf(':', start);
    long expirySeconds = Long.parseLong(token, start, colon, 10);
    byte[] presented = HEX.parseHex(token, colon + 1, token.length());
    // Compare the signature first so that an attacker learns nothing from the expiry check.
    if (!MessageDigest.isEqual(presented, sign(secret, keyId, deviceId, expirySeconds))) {
      return new Check(Verdict.BAD_SIGNATURE, "the signature does not match: a token minted with another fleet "
          + "secret, for another device id, or with an altered expiry");
    }
    if (now.getEpochSecond() >= expirySeconds) {
      return new Check(Verdict.EXPIRED, "the token expired at " + Instant.ofEpochSecond(expirySeconds));
    }
    return new Check(Verdict.VALID, "");
  }

  /**
   * The key a well-formed token names: the part before the first of two ':', "" for a token of
   * the fleet secret, which starts with its expiry's digits (a key id starts with a letter).
   */
  public static String keyId(String token) {
    int first = token.indexOf(':');
    return namesKey(token, first) ? token.substring(0, first) : "";
  }

  private static boolean namesKey(String token, int firstColon) {
    return firstColon >= 0 && token.indexOf(':', firstColon + 1) >= 0
        && !(firstColon > 0 && token.charAt(0) >= '0' && token.charAt(0) <= '9');
  }

  /**
   * Why {@code token} is not of the canonical form {@code [keyId ":"] expiry ":" signature}, or
   * {@code null} when it is (PROTOCOL.md#authentication).
   */
  public static String formProblem(String token) {
    int start = 0;
    int first = token.indexOf(':');
    if (namesKey(token, first)) {
      String keyId = token.substring(0, first);
      if (!TokenKeys.KEY_ID.matcher(keyId).matches()) {
        return "the key id before the first ':' must be a lowercase letter, then up to 31 lowercase letters, "
            + "digits and '-'";
      }
      start = first + 1;
    }
    int colon = token.indexOf(':', start);
    if (colon < 0) {
      return "a token is [<key id>:]<expiry>:<signature>, this one has no ':'";
    }
    if (colon == start) {
      return "the expiry before ':' is empty";
    }
    for (int i = start; i < colon; i++) {
      char c = token.charAt(i);
      if (c < '0' || c > '9') {
        return "the expiry must be decimal digits, found '" + c + "' at position " + i;
      }
    }
    int digits = colon - start;
    if (digits > 1 && token.charAt(start) == '0') {
      return "the expiry must not have a leading zero";
    }
    if (digits > MAX_EXPIRY_DIGITS || (digits == MAX_EXPIRY_DIGITS
        && token.substring(start, colon).compareTo(String.valueOf(Long.MAX_VALUE)) > 0)) {
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

  /** Signs "deviceId:expiry", preceded by "keyId:" for a key with an id: a key signs only its own tokens. */
  private static byte[] sign(byte[] secret, String keyId, String deviceId, long expirySeconds) {
    String text = (keyId.isEmpty() ? "" : keyId + ":") + deviceId + ":" + expirySeconds;
    return KEYED.get().mac(secret).doFinal(text.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Each thread's MACs, kept with the keys they were initialized with (two: the old and the new
   * key during a rotation): looking the algorithm up and initializing it cost more than the
   * signature itself in a profile of many devices connecting.
   * {@code doFinal} leaves the MAC ready for the next message under the same key.
   */
  private static final ThreadLocal<KeyedMac> KEYED = ThreadLocal.withInitial(KeyedMac::new);

  private static final class KeyedMac {
    private byte[] key;
    private Mac mac;
    /** The key used before: during a rotation, tokens of the old and the new key alternate. */
    private byte[] previousKey;
    private Mac previousMac;

    Mac mac(byte[] secret) {
      if (mac != null && MessageDigest.isEqual(key, secret)) {
        return mac;
      }
      byte[] otherKey = previousKey;
      Mac other = previousMac;
      previousKey = key;
      previousMac = mac;
      if (other != null && MessageDigest.isEqual(otherKey, secret)) {
        key = otherKey;
        mac = other;
        return mac;
      }
      try {
        Mac fresh = Mac.getInstance(ALGORITHM);
        fresh.init(new SecretKeySpec(secret, ALGORITHM));
        key = secret.clone();
        mac = fresh;
      } catch (NoSuchAlgorithmException | InvalidKeyException e) {
        throw new IllegalStateException("HMAC-SHA256 unavailable", e);
      }
      return mac;
    }
  }
}
