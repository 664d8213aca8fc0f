package io.berth.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Percentiles of a sample (nearest rank); medians across runs. */
final class Stats {

  private final List<Double> values = new ArrayList<>();

  void add(double v) {
    values.add(v);
  }

  int count() {
    return values.size();
  }

  double percentile(double p) {
    if (values.isEmpty()) {
      return Double.NaN;
    }
    List<Double> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    int rank = (int) Math.ceil(p / 100.0 * sorted.size());
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
  }

  double median() {
    return percentile(50);
  }
}
