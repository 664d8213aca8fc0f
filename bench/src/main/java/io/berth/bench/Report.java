package io.berth.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The table a run prints: figure, Berth, anchor, ratio, goal, whether the goal is met. */
final class Report {

  /** One figure. {@code anchor} is NaN when the figure has no anchor. */
  record Row(String scenario, String figure, double berth, double anchor, String unit, String goal, Boolean met) {}

  private final List<Row> rows = new ArrayList<>();
  private final List<String> notes = new ArrayList<>();

  void add(Row row) {
    rows.add(row);
  }

  void note(String note) {
    notes.add(note);
  }

  String render(String machine) {
    StringBuilder sb = new StringBuilder();
    sb.append("Berth benchmark, ").append(Instant.now()).append('\n').append(machine).append("\n\n");
    sb.append("| scenario | figure | Berth | anchor | ratio | goal | met |\n");
    sb.append("|---|---|---:|---:|---:|---|---|\n");
    for (Row r : rows) {
      sb.append("| ").append(r.scenario()).append(" | ").append(r.figure()).append(" | ")
          .append(format(r.berth(), r.unit())).append(" | ")
          .append(Double.isNaN(r.anchor()) ? "—" : format(r.anchor(), r.unit())).append(" | ")
          .append(Double.isNaN(r.anchor()) || r.anchor() == 0 ? "—"
              : String.format(Locale.ROOT, "%.2f×", r.berth() / r.anchor())).append(" | ")
          .append(r.goal() == null ? "—" : r.goal()).append(" | ")
          .append(r.met() == null ? "—" : r.met() ? "yes" : "**no**").append(" |\n");
    }
    if (!notes.isEmpty()) {
      sb.append('\n');
      notes.forEach(n -> sb.append("- ").append(n).append('\n'));
    }
    return sb.toString();
  }

  void write(Path file, String machine) throws IOException {
    Files.createDirectories(file.getParent());
    Files.writeString(file, render(machine));
  }

  private static String format(double v, String unit) {
    if (Double.isNaN(v)) {
      return "—";
    }
    // Counts (frames lost, rounds) read as whole numbers, not "0.00".
    String number = Math.abs(v) >= 100 || v == Math.rint(v) ? String.format(Locale.ROOT, "%,.0f", v)
        : String.format(Locale.ROOT, "%.2f", v);
    return unit.isEmpty() ? number : number + " " + unit;
  }
}
