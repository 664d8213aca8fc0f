package io.berth.bench;

import java.util.Arrays;

/**
 * Percentiles of a sample (nearest rank); medians across runs. Values are kept in a primitive
 * array because a relay round records one latency per frame, hundreds of thousands of them.
 */
final class Stats {

  private double[] values = new double[64];
  private int size;
  private boolean sorted = true;

  void add(double v) {
    if (size == values.length) {
      values = Arrays.copyOf(values, values.length * 2);
    }
    values[size++] = v;
    sorted = false;
  }

  void addAll(Stats other) {
    if (size + other.size > values.length) {
      values = Arrays.copyOf(values, Math.max(values.length * 2, size + other.size));
    }
    System.arraycopy(other.values, 0, values, size, other.size);
    size += other.size;
    sorted = false;
  }

  int count() {
    return size;
  }

  double percentile(double p) {
    if (size == 0) {
      return Double.NaN;
    }
    if (!sorted) {
      Arrays.sort(values, 0, size);
      sorted = true;
    }
    int rank = (int) Math.ceil(p / 100.0 * size);
    return values[Math.max(0, Math.min(size - 1, rank - 1))];
  }

  double median() {
    return percentile(50);
  }
}
