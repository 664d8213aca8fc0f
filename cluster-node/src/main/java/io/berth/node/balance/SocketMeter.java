package io.berth.node.balance;

import java.util.concurrent.atomic.LongAdder;

/**
 * The throughput of one socket on this node. The socket's entity adds what each accepted batch
 * carried (two adders, no message, no allocation); the node's {@link LoadReporter} turns the
 * counts into smoothed rates once per check interval. Rates are only written by the reporter.
 */
public final class SocketMeter {

  final String socketId;
  final String shardId;
  private final LongAdder frames = new LongAdder();
  private final LongAdder bytes = new LongAdder();
  volatile double framesPerSecond;
  volatile double bytesPerSecond;
  /** When the rate last went above the threshold (nanoTime), 0 when it is below. */
  long hotSince;
  private boolean sampled;

  /** The node's totals ({@link LoadRegistry}), which metrics read. */
  private final LongAdder nodeFrames;
  private final LongAdder nodeBytes;

  SocketMeter(String socketId, String shardId, LongAdder nodeFrames, LongAdder nodeBytes) {
    this.socketId = socketId;
    this.shardId = shardId;
    this.nodeFrames = nodeFrames;
    this.nodeBytes = nodeBytes;
  }

  public void record(int frameCount, long byteCount) {
    frames.add(frameCount);
    bytes.add(byteCount);
    nodeFrames.add(frameCount);
    nodeBytes.add(byteCount);
  }

  /** Folds what was recorded since the last sample into the smoothed rates. */
  void sample(double seconds, double alpha) {
    double f = frames.sumThenReset() / seconds;
    double b = bytes.sumThenReset() / seconds;
    if (!sampled) {
      // The first interval sets the rate, so that a socket that starts hot is seen at once.
      framesPerSecond = f;
      bytesPerSecond = b;
      sampled = true;
    } else {
      framesPerSecond += alpha * (f - framesPerSecond);
      bytesPerSecond += alpha * (b - bytesPerSecond);
    }
  }
}
