package io.berth.protocol;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The keys a node verifies device tokens with, by key id (PROTOCOL.md#authentication). The empty id
 * is the fleet secret of tokens that name no key, as tokens were minted before keys had ids. Several
 * keys are accepted at once so that the fleet's key can be rotated without a moment in which some
 * devices' tokens are refused: add the new key on every node, mint new tokens with it, retire the
 * old one (docs/auth.md).
 */
public final class TokenKeys {

  /** A key id: a lowercase letter, then up to 31 lowercase letters, digits and '-'. */
  public static final Pattern KEY_ID = Pattern.compile("[a-z][a-z0-9-]{0,31}");
  /** What a node asks of each key at least: HMAC-SHA256 with a guessable key signs nothing. */
  public static final int MIN_SECRET_BYTES = 16;

  private final Map<String, byte[]> byId;

  private TokenKeys(Map<String, byte[]> byId) {
    this.byId = byId;
  }

  /**
   * @param byId each key's secret by its id ("" for the fleet secret of tokens that name no key)
   * @throws IllegalArgumentException for no key, an invalid id or an empty secret
   */
  public static TokenKeys of(Map<String, byte[]> byId) {
    if (byId.isEmpty()) {
      throw new IllegalArgumentException("no token key: devices could not authenticate");
    }
    Map<String, byte[]> copy = new LinkedHashMap<>();
    byId.forEach((id, secret) -> {
      if (!id.isEmpty() && !KEY_ID.matcher(id).matches()) {
        throw new IllegalArgumentException("token key id '" + id + "' must be a lowercase letter, then up to 31 "
            + "lowercase letters, digits and '-'");
      }
      if (secret.length == 0) {
        throw new IllegalArgumentException("token key " + (id.isEmpty() ? "(the fleet secret)" : "'" + id + "'")
            + " is empty");
      }
      copy.put(id, secret.clone());
    });
    return new TokenKeys(Collections.unmodifiableMap(copy));
  }

  /** One fleet secret, for tokens that name no key. */
  public static TokenKeys legacy(byte[] secret) {
    return of(Map.of("", secret));
  }

  /** The secret of the key {@code id} names, if this node accepts it. */
  Optional<byte[]> secret(String id) {
    return Optional.ofNullable(byId.get(id));
  }

  /** The ids accepted, "" standing for the fleet secret of tokens that name no key. */
  public Set<String> ids() {
    return byId.keySet();
  }

  /** The ids only: secrets never reach a log line. */
  @Override
  public String toString() {
    return "TokenKeys" + ids();
  }
}
