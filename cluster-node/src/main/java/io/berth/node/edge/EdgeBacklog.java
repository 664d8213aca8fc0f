package io.berth.node.edge;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * What waits on this node's edge for devices to take it, node-wide: frames queued in the
 * connections (ACKs not counted: they replace each other) and connections whose TCP send buffer
 * is full, so that the device reads slower than it is sent to. Kept where the frames are queued
 * and taken (one add per frame offered, one per batch written) and where Netty reports
 * writability; read when Prometheus scrapes (docs/metrics.md).
 */
final class EdgeBacklog {

  private final LongAdder queuedFrames = new LongAdder();
  private final AtomicInteger blocked = new AtomicInteger();

  long queuedFrames() {
    return queuedFrames.sum();
  }

  int blockedConnections() {
    return blocked.get();
  }

  void queued(int frames) {
    queuedFrames.add(frames);
  }

  void taken(int frames) {
    if (frames != 0) {
      queuedFrames.add(-frames);
    }
  }

  void blocked(boolean now) {
    blocked.addAndGet(now ? 1 : -1);
  }
}
