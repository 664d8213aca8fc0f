package io.berth.node.secrets;

import com.typesafe.config.Config;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The keys mapping secrets are sealed with ({@code berth.secrets.*} in reference.conf,
 * docs/secrets.md): by id, in the order given, the first sealing new values and all of them
 * opening. Checked when the node starts: a wrong entry stops it with a sentence that names the
 * entry by its place, never by its text, which may be key material.
 */
public record SecretSettings(Map<String, byte[]> keys, boolean allowPlaintext) {

  public static final String KEYS = "berth.secrets.keys (BERTH_SECRETS_KEYS)";
  public static final String ALLOW_PLAINTEXT = "berth.secrets.allow-plaintext";
  /** AES-256: keys are exactly this long. */
  public static final int KEY_BYTES = 32;
  /** A key id: a lowercase letter, then up to 31 lowercase letters, digits and '-'. */
  public static final Pattern KEY_ID = Pattern.compile("[a-z][a-z0-9-]{0,31}");

  public SecretSettings {
    keys = Collections.unmodifiableMap(new LinkedHashMap<>(keys));
  }

  public static SecretSettings fromConfig(Config config) {
    Config c = config.getConfig("berth.secrets");
    return of(c.getString("keys"), c.getBoolean("allow-plaintext"));
  }

  /**
   * Settings from the "id=base64key,id2=base64key" form. No key at all is refused unless plaintext
   * is allowed: a node that could not seal would have to store secrets as they are, or refuse to
   * save and open mappings while looking healthy.
   */
  public static SecretSettings of(String spec, boolean allowPlaintext) {
    Map<String, byte[]> keys = new LinkedHashMap<>();
    String[] entries = spec.split(",");
    for (int i = 0; i < entries.length; i++) {
      String entry = entries[i];
      if (entry.isBlank()) {
        continue;
      }
      String where = KEYS + ", entry " + (i + 1) + ": ";
      int equals = entry.indexOf('=');
      String id = equals < 0 ? "" : entry.substring(0, equals).strip();
      if (!KEY_ID.matcher(id).matches()) {
        throw new IllegalArgumentException(where + "not id=key with an id of a lowercase letter and up to 31 "
            + "lowercase letters, digits and '-' (is its id= missing?)");
      }
      byte[] key = decode(entry.substring(equals + 1).strip());
      if (key == null || key.length != KEY_BYTES) {
        throw new IllegalArgumentException(where + "the key must be " + KEY_BYTES + " random bytes in base64 "
            + "(openssl rand -base64 32)");
      }
      if (keys.put(id, key) != null) {
        throw new IllegalArgumentException(where + "its id is given twice");
      }
    }
    if (keys.isEmpty() && !allowPlaintext) {
      throw new IllegalArgumentException(KEYS + " must be set: mapping secrets are encrypted at rest with it "
          + "(docs/secrets.md). Generate a key with: echo \"k1=$(openssl rand -base64 32)\". Only for a node "
          + "that must store them unencrypted: " + ALLOW_PLAINTEXT + " = on");
    }
    return new SecretSettings(keys, allowPlaintext);
  }

  /** Standard or URL-safe base64, padded or not; null when it is neither. */
  private static byte[] decode(String base64) {
    try {
      return Base64.getDecoder().decode(base64.replace('-', '+').replace('_', '/'));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  /** The id of the key new values are sealed with; null when there is none (plaintext allowed). */
  public String currentKeyId() {
    return keys.isEmpty() ? null : keys.keySet().iterator().next();
  }

  @Override
  public String toString() {
    // Never the keys themselves.
    return "SecretSettings[keys=" + keys.keySet() + ", allowPlaintext=" + allowPlaintext + "]";
  }
}
