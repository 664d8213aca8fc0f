package io.berth.node.tls;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;

/**
 * Runs a check of certificate files every interval, on a daemon thread of its own, until closed:
 * what {@link EdgeTls} and {@link ClusterTls} reload with. A check that throws is logged and the
 * next one runs all the same (a scheduled task that throws would never run again).
 */
final class FileWatch implements AutoCloseable {

  private final ScheduledExecutorService thread;

  /** @param every zero: never checks */
  FileWatch(Duration every, String threadName, Runnable check, Logger log, String what) {
    if (every.isZero()) {
      thread = null;
      return;
    }
    thread = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, threadName);
      t.setDaemon(true);
      return t;
    });
    long millis = every.toMillis();
    thread.scheduleWithFixedDelay(() -> {
      try {
        check.run();
      } catch (RuntimeException e) {
        log.error("{}: checking the certificate files failed", what, e);
      }
    }, millis, millis, TimeUnit.MILLISECONDS);
  }

  @Override
  public void close() {
    if (thread != null) {
      thread.shutdownNow();
    }
  }
}
