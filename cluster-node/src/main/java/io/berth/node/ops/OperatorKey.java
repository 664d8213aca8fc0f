package io.berth.node.ops;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * An operator's API key as a node keeps it: its id, its role and the SHA-256 of the key, never the
 * key (docs/operator-access.md#keys). A key is {@code ID.SECRET}, the secret 32 random bytes in
 * base64url: 256 bits that no guessing reaches, so one round of SHA-256 stores it as safely as a
 * slow password hash would, and checking a request costs a microsecond instead of the tens of
 * milliseconds PBKDF2 would add to every operator call. The id is public (it names the key in the
 * audit trail) and picks the one stored hash to compare with, in constant time.
 *
 * <p>In configuration a key is the entry {@code ID:ROLE:SHA256-HEX}, which {@code OperatorKeyCli}
 * prints with the key.
 */
public record OperatorKey(String id, OperatorRole role, byte[] sha256) {

  /** Ids are short names an operator picks: {@code alice}, {@code ci-deploy}, {@code grafana}. */
  static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_-]{0,31}");
  private static final int SECRET_BYTES = 32;
  /** The base64url length of 32 bytes: a presented secret shorter than this is no key of ours. */
  static final int MIN_SECRET_LENGTH = 43;
  private static final SecureRandom RANDOM = new SecureRandom();

  public OperatorKey {
    if (!ID.matcher(id).matches()) {
      throw new IllegalArgumentException("a key id is 1 to 32 letters, digits, '_' or '-', starting with a letter or"
          + " digit");
    }
    if (sha256.length != 32) {
      throw new IllegalArgumentException("a key's hash is a SHA-256: 64 hex digits");
    }
    sha256 = sha256.clone();
  }

  /** A copy: the record's array is not to be changed through its accessor. */
  @Override
  public byte[] sha256() {
    return sha256.clone();
  }

  /** A new key for an id: {@code ID.SECRET}. Shown once; only its hash is kept. */
  public static String newKey(String id) {
    if (!ID.matcher(id).matches()) {
      throw new IllegalArgumentException("a key id is 1 to 32 letters, digits, '_' or '-', starting with a letter or"
          + " digit");
    }
    byte[] secret = new byte[SECRET_BYTES];
    RANDOM.nextBytes(secret);
    return id + "." + Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
  }

  /** The id a presented key names, if it has the form of a key. */
  static Optional<String> idOf(String presented) {
    int dot = presented.indexOf('.');
    if (dot <= 0 || dot == presented.length() - 1 || presented.length() > 200) {
      return Optional.empty();
    }
    String id = presented.substring(0, dot);
    return ID.matcher(id).matches() ? Optional.of(id) : Optional.empty();
  }

  public static byte[] hash(String key) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /** Whether a presented key is this one; constant time in the key's content. */
  boolean matches(String presented) {
    return MessageDigest.isEqual(sha256, hash(presented));
  }

  /** The configuration entry {@code ID:ROLE:SHA256-HEX}. */
  public String entry() {
    return id + ":" + role.label() + ":" + HexFormat.of().formatHex(sha256);
  }

  /**
   * A configuration entry; an error names its place ({@code where}) and never repeats the entry,
   * which may be a key pasted where its hash belongs.
   */
  static OperatorKey parseEntry(String entry, String where) {
    String[] parts = entry.strip().split(":", -1);
    if (parts.length != 3) {
      throw new IllegalArgumentException(where + ": an entry is ID:ROLE:SHA256-HEX (print one with"
          + " io.berth.node.ops.OperatorKeyCli), got " + parts.length + " part(s)");
    }
    byte[] hash;
    try {
      hash = HexFormat.of().parseHex(parts[2]);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + ": the third part is not hex (it is the key's SHA-256, not the key)");
    }
    try {
      return new OperatorKey(parts[0], OperatorRole.of(parts[1]), hash);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + ": " + e.getMessage());
    }
  }

  @Override
  public String toString() {
    return "OperatorKey[" + id + ", " + role.label() + "]";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof OperatorKey k && k.id.equals(id) && k.role == role && MessageDigest.isEqual(k.sha256, sha256);
  }

  @Override
  public int hashCode() {
    return id.hashCode();
  }
}
