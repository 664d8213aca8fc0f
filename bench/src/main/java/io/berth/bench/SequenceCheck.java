package io.berth.bench;

import java.util.BitSet;

/**
 * The receiving end of one numbered stream (0, 1, 2, ...), which should deliver every number
 * once and in order. Counts stay exact whatever the disorder: a number seen before is a
 * duplicate, a new number below the highest seen so far arrived out of order, and what was sent
 * but never counted here is lost. Called from a client's reader thread, read from the harness's.
 */
final class SequenceCheck {

  private final BitSet seen = new BitSet();
  private long highest = -1;
  private long received;
  private long duplicates;
  private long outOfOrder;

  /** Counts {@code n}; true when it is new (not a duplicate). */
  synchronized boolean accept(long n) {
    if (n < 0 || n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("sequence number out of range: " + n);
    }
    if (seen.get((int) n)) {
      duplicates++;
      return false;
    }
    seen.set((int) n);
    if (n < highest) {
      outOfOrder++;
    }
    highest = Math.max(highest, n);
    received++;
    return true;
  }

  synchronized long received() {
    return received;
  }

  synchronized long duplicates() {
    return duplicates;
  }

  synchronized long outOfOrder() {
    return outOfOrder;
  }
}
