package io.berth.protocol;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The wait an ERROR 303 (throttled) asks for, carried at the start of its message as {@code retry
 * after <n> ms} (PROTOCOL.md#error-codes): the one part of an ERROR message a device may read.
 * Version 1 frames have no field for it, and an ERROR with a field of its own would be malformed
 * to every device written before it.
 */
public final class RetryAfter {

  private static final Pattern PREFIX = Pattern.compile("^retry after (\\d{1,9}) ms");

  private RetryAfter() {}

  /** The message of a refusal that asks for a wait of {@code millis} (at least 1). */
  public static String message(long millis, String detail) {
    return "retry after " + Math.max(1, millis) + " ms: " + detail;
  }

  /** The wait a message asks for, in milliseconds, or -1 when it asks for none. */
  public static long millis(String message) {
    Matcher m = PREFIX.matcher(message);
    return m.find() ? Long.parseLong(m.group(1)) : -1;
  }
}
