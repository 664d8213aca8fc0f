package io.berth.node.secrets;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Seals mapping secrets for storage (docs/secrets.md): {@code enc:v1:<key id>:<base64url(nonce ||
 * ciphertext || tag)>}, AES-256-GCM with a random 12-byte nonce and {@code enc:v1:<key id>} as
 * associated data, so that neither the key id nor the format can be changed without the value
 * failing to open. A value without the {@code enc:} prefix was stored before secrets were sealed
 * and opens as it is.
 *
 * <p>Sealing runs on every connect (each {@code Opened} event carries its mapping's secret):
 * sealed forms are cached per secret, and opened ones per sealed form, so that a connect costs a
 * map lookup rather than an AES-GCM operation. The same secret thus keeps one sealed form while
 * the node runs: a reader of the journal learns which rows carry the same secret, nothing more.
 */
public final class SecretSealer implements Extension {

  public static final String PREFIX = "enc:";
  private static final String V1 = "enc:v1:";
  private static final int NONCE_BYTES = 12;
  private static final int TAG_BITS = 128;
  /** Distinct secrets a node's caches hold before they start over: far more than mappings. */
  private static final int CACHE_LIMIT = 4096;
  private static final Logger log = LoggerFactory.getLogger(SecretSealer.class);
  private static final SecureRandom RANDOM = new SecureRandom();

  private static final ExtensionId<SecretSealer> ID = new ExtensionId<>() {
    @Override
    public SecretSealer createExtension(ActorSystem<?> system) {
      return new SecretSealer(SecretSettings.fromConfig(system.settings().config()));
    }
  };

  /** A sealed value names a key this node does not hold. */
  public static final class UnknownKey extends IllegalStateException {
    private final String keyId;

    UnknownKey(String keyId) {
      super("a mapping secret is sealed with key id '" + keyId + "', which " + SecretSettings.KEYS
          + " does not hold: add that key back (after the newest) to use it (docs/secrets.md#rotation)");
      this.keyId = keyId;
    }

    public String keyId() {
      return keyId;
    }
  }

  private final SecretSettings settings;
  private final Map<String, String> sealed = new ConcurrentHashMap<>();
  private final Map<String, String> opened = new ConcurrentHashMap<>();
  private final Set<String> reportedMissing = ConcurrentHashMap.newKeySet();

  public SecretSealer(SecretSettings settings) {
    this.settings = settings;
  }

  public static SecretSealer get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  public static boolean isSealed(String stored) {
    return stored != null && stored.startsWith(PREFIX);
  }

  /**
   * The sealed form of {@code secret}, with a fresh nonce; null for null. Without keys (allowed by
   * {@code allow-plaintext} only) the secret as it is.
   */
  public String seal(String secret) {
    if (secret == null) {
      return null;
    }
    String keyId = settings.currentKeyId();
    if (keyId == null) {
      return secret;
    }
    byte[] nonce = new byte[NONCE_BYTES];
    RANDOM.nextBytes(nonce);
    try {
      Cipher gcm = cipher(Cipher.ENCRYPT_MODE, keyId, nonce);
      byte[] body = gcm.doFinal(secret.getBytes(StandardCharsets.UTF_8));
      byte[] out = ByteBuffer.allocate(NONCE_BYTES + body.length).put(nonce).put(body).array();
      return V1 + keyId + ":" + Base64.getUrlEncoder().withoutPadding().encodeToString(out);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot seal a mapping secret: " + e.getClass().getSimpleName(), e);
    }
  }

  /** As {@link #seal}, the same sealed form for the same secret while this node runs. */
  public String sealCached(String secret) {
    return secret == null ? null : cached(sealed, secret, this::seal);
  }

  /**
   * The secret a stored value holds: opened when sealed, as it is when stored before sealing.
   *
   * @throws UnknownKey when its key id is not among this node's keys (logged once per id)
   * @throws IllegalStateException when it does not open: altered, or not sealed with that key
   */
  public String open(String stored) {
    return isSealed(stored) ? cached(opened, stored, this::openUncached) : stored;
  }

  /**
   * Whether a stored value needs no resealing: it is sealed with the newest key, or there is
   * nothing to seal it with (no keys, plaintext allowed).
   */
  public boolean isCurrent(String stored) {
    String keyId = settings.currentKeyId();
    return stored == null || keyId == null || keyId.equals(keyIdOf(stored));
  }

  /** The key id a sealed value names; null when it is not sealed in a form this node knows. */
  public static String keyIdOf(String stored) {
    if (stored == null || !stored.startsWith(V1)) {
      return null;
    }
    int colon = stored.indexOf(':', V1.length());
    return colon < 0 ? null : stored.substring(V1.length(), colon);
  }

  private String openUncached(String stored) {
    String keyId = keyIdOf(stored);
    if (keyId == null) {
      throw new IllegalStateException("a stored mapping secret starts with '" + PREFIX + "' but is not in the "
          + V1 + "<key id>:<data> form this node reads");
    }
    if (!settings.keys().containsKey(keyId)) {
      if (reportedMissing.add(keyId)) {
        log.error("Mapping secrets sealed with key id '{}' cannot be opened: {} does not hold it", keyId,
            SecretSettings.KEYS);
      }
      throw new UnknownKey(keyId);
    }
    try {
      byte[] data = Base64.getUrlDecoder().decode(stored.substring(V1.length() + keyId.length() + 1));
      if (data.length < NONCE_BYTES + TAG_BITS / 8) {
        throw new IllegalStateException("a sealed mapping secret (key id '" + keyId + "') is too short");
      }
      Cipher gcm = cipher(Cipher.DECRYPT_MODE, keyId, Arrays.copyOf(data, NONCE_BYTES));
      byte[] secret = gcm.doFinal(data, NONCE_BYTES, data.length - NONCE_BYTES);
      return new String(secret, StandardCharsets.UTF_8);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new IllegalStateException("a sealed mapping secret (key id '" + keyId + "') does not open: it was "
          + "altered, or the key under that id is not the one it was sealed with", e);
    }
  }

  private Cipher cipher(int mode, String keyId, byte[] nonce) throws GeneralSecurityException {
    Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
    gcm.init(mode, new SecretKeySpec(settings.keys().get(keyId), "AES"), new GCMParameterSpec(TAG_BITS, nonce));
    gcm.updateAAD((V1 + keyId).getBytes(StandardCharsets.UTF_8));
    return gcm;
  }

  private static String cached(Map<String, String> cache, String key, UnaryOperator<String> make) {
    String value = cache.get(key);
    if (value == null) {
      value = make.apply(key);
      if (cache.size() >= CACHE_LIMIT) {
        cache.clear();
      }
      cache.put(key, value);
    }
    return value;
  }
}
