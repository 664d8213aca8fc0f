package io.berth.node.metrics;

import ch.qos.logback.classic.AsyncAppender;
import ch.qos.logback.classic.spi.ILoggingEvent;
import java.util.concurrent.atomic.LongAdder;

/**
 * Logback's {@link AsyncAppender}, counting what it drops (logback.xml). With {@code neverBlock}
 * a full queue drops a line rather than stall the thread that logs (an event loop, an actor);
 * past the discarding threshold it also drops INFO and lower. Both used to vanish unseen: they
 * are {@code berth_log_lines_dropped_total} now (docs/metrics.md).
 */
public final class CountingAsyncAppender extends AsyncAppender {

  private static final LongAdder DROPPED = new LongAdder();

  /** Lines every such appender of this JVM dropped. */
  public static long dropped() {
    return DROPPED.sum();
  }

  @Override
  protected void append(ILoggingEvent event) {
    int remaining = getRemainingCapacity();
    if (remaining == 0 || (remaining < getDiscardingThreshold() && isDiscardable(event))) {
      DROPPED.increment();
    }
    super.append(event);
  }
}
