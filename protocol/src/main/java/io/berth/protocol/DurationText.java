package io.berth.protocol;

import java.time.Duration;

/** Durations in words for people reading a terminal ("2 minutes", "1 minute 30 seconds"). */
public final class DurationText {

  private DurationText() {}

  public static String of(Duration d) {
    long seconds = Math.max(0, (d.toMillis() + 500) / 1000);
    if (seconds == 0) {
      return d.toMillis() + " ms";
    }
    long hours = seconds / 3600;
    long minutes = seconds % 3600 / 60;
    long rest = seconds % 60;
    StringBuilder out = new StringBuilder();
    append(out, hours, "hour");
    append(out, minutes, "minute");
    append(out, rest, "second");
    return out.toString();
  }

  private static void append(StringBuilder out, long n, String unit) {
    if (n == 0) {
      return;
    }
    if (out.length() > 0) {
      out.append(' ');
    }
    out.append(n).append(' ').append(unit).append(n == 1 ? "" : "s");
  }
}
