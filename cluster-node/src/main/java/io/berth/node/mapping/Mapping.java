package io.berth.node.mapping;

import io.berth.persistence.CborSerializable;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * A function mapping (docs/ENDPOINTS.md): a named endpoint, the events it receives, and how a
 * socket's data is batched for it. A socket keeps the version it opened with until it reopens,
 * so the whole definition travels with the socket's session.
 */
public record Mapping(
    String name,
    long version,
    String endpoint,
    Set<Event> events,
    Criteria criteria,
    int timeoutMs,
    Retry retry,
    String secret,
    long linkWaitMs,
    boolean closeOnLinkTimeout)
    implements CborSerializable {

  public enum Event {
    OPEN,
    DATA,
    CLOSE;

    public String wire() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * When a batch is sent: once {@code minBytes} are buffered and any of the limits is reached
   * (a delimiter: each delimited message is one batch; {@code maxFrames} frames; {@code maxBytes}
   * bytes; {@code maxDelayMs} since
   * the first buffered byte). With no limit at all, whatever is buffered goes as soon as the
   * endpoint is free. {@code maxBytes} always splits: no batch is larger.
   */
  public record Criteria(int minBytes, int maxBytes, int maxFrames, byte[] delimiter, int maxDelayMs)
      implements CborSerializable {
    public static final Criteria NONE = new Criteria(0, 0, 0, null, 0);

    public boolean hasLimit() {
      return maxBytes > 0 || maxFrames > 0 || (delimiter != null && delimiter.length > 0) || maxDelayMs > 0;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Criteria c && c.minBytes == minBytes && c.maxBytes == maxBytes && c.maxFrames == maxFrames
          && Arrays.equals(c.delimiter, delimiter) && c.maxDelayMs == maxDelayMs;
    }

    @Override
    public int hashCode() {
      return ((minBytes * 31 + maxBytes) * 31 + maxFrames) * 31 + Arrays.hashCode(delimiter) + maxDelayMs;
    }
  }

  public record Retry(int maxAttempts, int backoffBaseMs, int backoffMaxMs) implements CborSerializable {
    public static final Retry DEFAULT = new Retry(5, 200, 5_000);
  }

  public static final String BUILTIN = "builtin:";

  public boolean isBuiltin() {
    return endpoint.startsWith(BUILTIN);
  }

  public String builtinName() {
    return isBuiltin() ? endpoint.substring(BUILTIN.length()) : null;
  }

  public boolean receives(Event event) {
    return events.contains(event);
  }

  /** The built-in mappings every registry starts with, one per built-in endpoint. */
  public static Mapping builtinDefault(String name) {
    Set<Event> events = name.equals("pair") ? EnumSet.allOf(Event.class) : EnumSet.of(Event.DATA);
    return new Mapping(name, 1, BUILTIN + name, events, Criteria.NONE, 5_000, Retry.DEFAULT, null, 30_000, false);
  }

  public Mapping withVersion(long newVersion) {
    return new Mapping(name, newVersion, endpoint, events, criteria, timeoutMs, retry, secret, linkWaitMs,
        closeOnLinkTimeout);
  }

  @Override
  public String toString() {
    // The secret never goes to logs.
    return "Mapping[" + name + " v" + version + " -> " + endpoint + ", events=" + events + "]";
  }
}
