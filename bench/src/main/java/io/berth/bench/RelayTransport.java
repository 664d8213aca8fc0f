package io.berth.bench;

import java.util.ArrayList;
import java.util.List;

/** A system that carries relay pairs: Berth, or Mosquitto at one QoS. */
interface RelayTransport {

  /** Two devices that talk to each other through the system. */
  record Pair(RelaySide a, RelaySide b) {}

  /** How the report names the system. */
  String name();

  /** Opens {@code count} pairs, each ready to carry frames both ways; the caller closes them. */
  List<Pair> open(int count) throws Exception;

  /** Pairs up sides opened in order a, b, a, b, ... */
  static List<Pair> pairUp(List<? extends RelaySide> sides) {
    List<Pair> pairs = new ArrayList<>();
    for (int i = 0; i + 1 < sides.size(); i += 2) {
      pairs.add(new Pair(sides.get(i), sides.get(i + 1)));
    }
    return pairs;
  }
}
