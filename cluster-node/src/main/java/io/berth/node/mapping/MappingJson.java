package io.berth.node.mapping;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.berth.node.secrets.SecretSealer;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Mapping definitions as JSON (docs/ENDPOINTS.md#mappings): parsing with a precise message for
 * every wrong field, and rendering. Unknown fields are errors, not silently ignored, so that a
 * typo never becomes a default.
 */
public final class MappingJson {

  public static final Set<String> BUILTINS = Set.of("echo", "discard", "log", "pair");
  public static final int MAX_BATCH_BYTES = 1 << 20;
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{1,64}");
  private static final Set<String> TOP = Set.of("endpoint", "events", "criteria", "timeoutMs", "retry", "secret",
      "linkWaitMs", "onLinkTimeout", "limits");
  private static final Set<String> CRITERIA = Set.of("minBytes", "maxBytes", "maxFrames", "delimiter", "maxDelayMs");
  private static final Set<String> RETRY = Set.of("maxAttempts", "backoffBaseMs", "backoffMaxMs");
  private static final Set<String> LIMITS = Set.of("framesPerSecond", "framesBurst", "bytesPerSecond", "bytesBurst");
  private static final ObjectMapper JSON = new ObjectMapper();

  private MappingJson() {}

  public static boolean isValidName(String name) {
    return NAME.matcher(name).matches();
  }

  /** Parses and checks a definition given by an operator; {@code version} is assigned by the store. */
  public static Mapping parse(String name, String body, long version) {
    return parse(name, body, version, null);
  }

  /**
   * Reads a stored definition ({@link #toStored}): its secret is opened by {@code sealer}, or taken
   * as it is when it was stored before secrets were sealed.
   *
   * @throws SecretSealer.UnknownKey when it is sealed with a key the node does not hold
   */
  public static Mapping fromStored(String name, String body, long version, SecretSealer sealer) {
    return parse(name, body, version, sealer);
  }

  private static Mapping parse(String name, String body, long version, SecretSealer sealer) {
    if (!isValidName(name)) {
      throw new InvalidMapping("name: 1 to 64 characters of A-Z a-z 0-9 . _ -, got '" + name + "'");
    }
    JsonNode root;
    try {
      root = JSON.readTree(body);
    } catch (JsonProcessingException e) {
      throw new InvalidMapping("body: not valid JSON: " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) {
      throw new InvalidMapping("body: a JSON object is expected");
    }
    onlyKnown(root, TOP, "");

    String endpoint = requiredText(root, "endpoint");
    checkEndpointSyntax(endpoint);
    boolean builtin = endpoint.startsWith(Mapping.BUILTIN);

    Set<Mapping.Event> events = EnumSet.noneOf(Mapping.Event.class);
    JsonNode ev = root.get("events");
    if (ev == null) {
      events = EnumSet.allOf(Mapping.Event.class);
    } else {
      if (!ev.isArray() || ev.isEmpty()) {
        throw new InvalidMapping("events: a non-empty array of \"open\", \"data\", \"close\" is expected");
      }
      for (JsonNode e : ev) {
        String v = e.isTextual() ? e.asText() : "";
        try {
          events.add(Mapping.Event.valueOf(v.toUpperCase(Locale.ROOT)));
        } catch (IllegalArgumentException x) {
          throw new InvalidMapping("events: unknown event '" + e.asText() + "' (known: open, data, close)");
        }
      }
    }

    Mapping.Criteria criteria = Mapping.Criteria.NONE;
    JsonNode c = root.get("criteria");
    if (c != null) {
      if (!c.isObject()) {
        throw new InvalidMapping("criteria: an object is expected");
      }
      onlyKnown(c, CRITERIA, "criteria.");
      int minBytes = intField(c, "criteria.minBytes", "minBytes", 0, 0, MAX_BATCH_BYTES);
      int maxBytes = intField(c, "criteria.maxBytes", "maxBytes", 0, 0, MAX_BATCH_BYTES);
      int maxFrames = intField(c, "criteria.maxFrames", "maxFrames", 0, 0, 10_000);
      int maxDelayMs = intField(c, "criteria.maxDelayMs", "maxDelayMs", 0, 0, 60_000);
      byte[] delimiter = null;
      JsonNode d = c.get("delimiter");
      if (d != null && !d.isNull()) {
        if (!d.isTextual() || d.asText().isEmpty()) {
          throw new InvalidMapping("criteria.delimiter: a non-empty string is expected");
        }
        delimiter = d.asText().getBytes(StandardCharsets.UTF_8);
        if (delimiter.length > 16) {
          throw new InvalidMapping("criteria.delimiter: at most 16 bytes, got " + delimiter.length);
        }
      }
      if (maxBytes > 0 && minBytes > maxBytes) {
        throw new InvalidMapping("criteria.minBytes: must not exceed criteria.maxBytes (" + maxBytes + "), got "
            + minBytes);
      }
      criteria = new Mapping.Criteria(minBytes, maxBytes, maxFrames, delimiter, maxDelayMs);
    }

    int timeoutMs = intField(root, "timeoutMs", "timeoutMs", 5_000, 1, 60_000);
    Mapping.Retry retry = Mapping.Retry.DEFAULT;
    JsonNode r = root.get("retry");
    if (r != null) {
      if (!r.isObject()) {
        throw new InvalidMapping("retry: an object is expected");
      }
      onlyKnown(r, RETRY, "retry.");
      int attempts = intField(r, "retry.maxAttempts", "maxAttempts", Mapping.Retry.DEFAULT.maxAttempts(), 1, 20);
      int base = intField(r, "retry.backoffBaseMs", "backoffBaseMs", Mapping.Retry.DEFAULT.backoffBaseMs(), 1, 60_000);
      int max = intField(r, "retry.backoffMaxMs", "backoffMaxMs", Math.max(base, Mapping.Retry.DEFAULT.backoffMaxMs()),
          1, 300_000);
      if (max < base) {
        throw new InvalidMapping("retry.backoffMaxMs: must be at least retry.backoffBaseMs (" + base + "), got " + max);
      }
      retry = new Mapping.Retry(attempts, base, max);
    }

    String secret = null;
    JsonNode s = root.get("secret");
    if (s != null && !s.isNull()) {
      String text = s.isTextual() ? s.asText() : null;
      if (text != null && sealer != null) {
        text = sealer.open(text);
      } else if (SecretSealer.isSealed(text)) {
        // A sealed value is opened when read back: given as a secret, it could not be told apart.
        throw new InvalidMapping("secret: must not start with \"" + SecretSealer.PREFIX + "\", the mark of an "
            + "encrypted secret");
      }
      if (text == null || text.length() < 16 || text.length() > 256) {
        throw new InvalidMapping("secret: a string of 16 to 256 characters is expected");
      }
      secret = text;
    }
    if (!builtin && secret == null) {
      throw new InvalidMapping("secret: required for an HTTP endpoint: requests are signed with it "
          + "(X-Berth-Signature) so that the endpoint can trust them");
    }
    long linkWaitMs = intField(root, "linkWaitMs", "linkWaitMs", 30_000, 0, 3_600_000);
    boolean closeOnLinkTimeout = false;
    JsonNode t = root.get("onLinkTimeout");
    if (t != null) {
      String v = t.isTextual() ? t.asText() : "";
      if (!v.equals("stay") && !v.equals("close")) {
        throw new InvalidMapping("onLinkTimeout: \"stay\" or \"close\" is expected, got " + t);
      }
      closeOnLinkTimeout = v.equals("close");
    }
    return new Mapping(name, version, endpoint, events, criteria, timeoutMs, retry, secret, linkWaitMs,
        closeOnLinkTimeout, limits(root.get("limits")));
  }

  /**
   * The mapping's own limits (docs/limits.md); a value left out is the edge node's. Null, the
   * node's for everything, when there is no {@code limits} object: definitions stored before
   * mappings had limits read that way.
   */
  private static Mapping.Limits limits(JsonNode l) {
    if (l == null || l.isNull()) {
      return null;
    }
    if (!l.isObject()) {
      throw new InvalidMapping("limits: an object is expected");
    }
    onlyKnown(l, LIMITS, "limits.");
    int max = (int) Mapping.Limits.MAX;
    return new Mapping.Limits(
        intField(l, "limits.framesPerSecond", "framesPerSecond", (int) Mapping.Limits.NODE, 0, max),
        intField(l, "limits.framesBurst", "framesBurst", (int) Mapping.Limits.NODE, 1, max),
        intField(l, "limits.bytesPerSecond", "bytesPerSecond", (int) Mapping.Limits.NODE, 0, max),
        intField(l, "limits.bytesBurst", "bytesBurst", (int) Mapping.Limits.NODE, 1, max));
  }

  private static void checkEndpointSyntax(String endpoint) {
    if (endpoint.startsWith(Mapping.BUILTIN)) {
      String b = endpoint.substring(Mapping.BUILTIN.length());
      if (!BUILTINS.contains(b)) {
        throw new InvalidMapping("endpoint: unknown built-in '" + b + "' (known: builtin:echo, builtin:discard, "
            + "builtin:log, builtin:pair)");
      }
      return;
    }
    if (endpoint.length() > 2048) {
      throw new InvalidMapping("endpoint: at most 2048 characters");
    }
    URI uri;
    try {
      uri = new URI(endpoint);
    } catch (URISyntaxException e) {
      throw new InvalidMapping("endpoint: not a valid URL: " + e.getReason());
    }
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      throw new InvalidMapping("endpoint: http://, https:// or builtin:NAME is expected, got '" + endpoint + "'");
    }
    if (uri.getHost() == null || uri.getHost().isEmpty()) {
      throw new InvalidMapping("endpoint: the URL has no host");
    }
    if (uri.getUserInfo() != null) {
      throw new InvalidMapping("endpoint: credentials in the URL are not allowed; use the mapping secret");
    }
    if (uri.getFragment() != null) {
      throw new InvalidMapping("endpoint: a URL fragment is not allowed");
    }
  }

  private static void onlyKnown(JsonNode node, Set<String> known, String prefix) {
    Iterator<String> names = node.fieldNames();
    while (names.hasNext()) {
      String f = names.next();
      if (!known.contains(f)) {
        throw new InvalidMapping(prefix + f + ": unknown field (known: " + String.join(", ", known.stream().sorted()
            .toList()) + ")");
      }
    }
  }

  private static String requiredText(JsonNode node, String field) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      throw new InvalidMapping(field + ": required");
    }
    if (!v.isTextual() || v.asText().isBlank()) {
      throw new InvalidMapping(field + ": a non-empty string is expected");
    }
    return v.asText();
  }

  private static int intField(JsonNode node, String path, String field, int fallback, int min, int max) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      return fallback;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min || v.asInt() > max) {
      throw new InvalidMapping(path + ": an integer between " + min + " and " + max + " is expected, got " + v);
    }
    return v.asInt();
  }

  // ------------------------------------------------------------------ rendering

  /** A limit the mapping sets; one left to the node is left out, as it was given. */
  private static void putSet(ObjectNode n, String field, long value) {
    if (value != Mapping.Limits.NODE) {
      n.put(field, value);
    }
  }

  /** The stored form: everything, the secret sealed by {@code sealer} (docs/secrets.md). */
  public static String toStored(Mapping m, SecretSealer sealer) {
    return render(m, sealer).toString();
  }

  /**
   * A stored definition with its secret sealed by the newest key, or null when it already is (or
   * has none): what the start-up migration writes back (MappingRegistry#sealStoredSecrets).
   */
  static String resealed(String stored, SecretSealer sealer) {
    JsonNode root;
    try {
      root = JSON.readTree(stored);
    } catch (JsonProcessingException e) {
      return null;
    }
    JsonNode s = root == null ? null : root.get("secret");
    if (!(root instanceof ObjectNode o) || s == null || !s.isTextual() || sealer.isCurrent(s.asText())) {
      return null;
    }
    o.put("secret", sealer.seal(sealer.open(s.asText())));
    return o.toString();
  }

  /** What operators see: the secret is never returned, only whether there is one. */
  public static ObjectNode toView(Mapping m) {
    ObjectNode n = render(m, null);
    n.put("name", m.name());
    n.put("version", m.version());
    return n;
  }

  /** The stored form with {@code sealer}, what operators see without. */
  private static ObjectNode render(Mapping m, SecretSealer sealer) {
    ObjectNode n = JSON.createObjectNode();
    n.put("endpoint", m.endpoint());
    ArrayNode ev = n.putArray("events");
    m.events().forEach(e -> ev.add(e.wire()));
    Mapping.Criteria c = m.criteria();
    if (!c.equals(Mapping.Criteria.NONE)) {
      ObjectNode cn = n.putObject("criteria");
      cn.put("minBytes", c.minBytes());
      cn.put("maxBytes", c.maxBytes());
      cn.put("maxFrames", c.maxFrames());
      if (c.delimiter() != null) {
        cn.put("delimiter", new String(c.delimiter(), StandardCharsets.UTF_8));
      }
      cn.put("maxDelayMs", c.maxDelayMs());
    }
    n.put("timeoutMs", m.timeoutMs());
    ObjectNode rn = n.putObject("retry");
    rn.put("maxAttempts", m.retry().maxAttempts());
    rn.put("backoffBaseMs", m.retry().backoffBaseMs());
    rn.put("backoffMaxMs", m.retry().backoffMaxMs());
    if (sealer == null) {
      n.put("hasSecret", m.secret() != null);
    } else if (m.secret() != null) {
      n.put("secret", sealer.seal(m.secret()));
    }
    n.put("linkWaitMs", m.linkWaitMs());
    n.put("onLinkTimeout", m.closeOnLinkTimeout() ? "close" : "stay");
    Mapping.Limits l = m.limits();
    if (l != null) {
      ObjectNode ln = n.putObject("limits");
      putSet(ln, "framesPerSecond", l.framesPerSecond());
      putSet(ln, "framesBurst", l.framesBurst());
      putSet(ln, "bytesPerSecond", l.bytesPerSecond());
      putSet(ln, "bytesBurst", l.bytesBurst());
    }
    return n;
  }
}
