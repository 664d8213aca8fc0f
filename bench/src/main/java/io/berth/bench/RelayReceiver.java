package io.berth.bench;

import java.nio.ByteBuffer;

/**
 * Relay frames, and what one side of a pair receives of them. A frame is 64 bytes: the sender's
 * sequence number and its {@code System.nanoTime()} at send, then padding. Senders and receivers
 * all live in the harness's JVM, so the receiver's clock minus the stamp is the one-way latency.
 */
final class RelayReceiver {

  static final int FRAME_SIZE = 64;

  private final SequenceCheck sequence = new SequenceCheck();
  private final Stats latencyMs = new Stats();
  private long lastArrivalNanos;

  /** Frame {@code seq}, stamped now: call it right before handing the frame over. */
  static byte[] frame(long seq) {
    return ByteBuffer.allocate(FRAME_SIZE).putLong(seq).putLong(System.nanoTime()).array();
  }

  /** Called on the transport's reader thread for every frame that arrives. */
  void accept(byte[] frame) {
    long now = System.nanoTime();
    ByteBuffer b = ByteBuffer.wrap(frame);
    long seq = b.getLong();
    long sentAt = b.getLong();
    if (sequence.accept(seq)) {
      synchronized (this) {
        latencyMs.add((now - sentAt) / 1e6);
        lastArrivalNanos = now;
      }
    }
  }

  long received() {
    return sequence.received();
  }

  long duplicates() {
    return sequence.duplicates();
  }

  long outOfOrder() {
    return sequence.outOfOrder();
  }

  synchronized Stats latencies() {
    Stats copy = new Stats();
    copy.addAll(latencyMs);
    return copy;
  }

  synchronized long lastArrivalNanos() {
    return lastArrivalNanos;
  }
}
