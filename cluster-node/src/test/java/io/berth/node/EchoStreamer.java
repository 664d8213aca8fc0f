package io.berth.node;

import static org.awaitility.Awaitility.await;

import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A device that sends {@code total} numbered frames through {@code echo} and counts how often
 * each number comes back, so that tests can assert "every frame exactly once".
 */
public final class EchoStreamer implements AutoCloseable {

  private final int total;
  private final java.util.function.LongSupplier pauseNanos;
  private final AtomicIntegerArray echoes;
  private final AtomicInteger distinct = new AtomicInteger();
  private final AtomicInteger duplicates = new AtomicInteger();
  private final AtomicInteger outOfOrder = new AtomicInteger();
  private volatile int lastNumber = -1;
  /** When the last new echo came, and the longest wait between two new echoes. */
  private volatile long lastEchoNanos;
  private volatile long longestGapNanos;
  private volatile long longestGapEndedNanos;
  private final AtomicInteger sent = new AtomicInteger();
  private final AtomicInteger redirects = new AtomicInteger();
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final DeviceClient client;
  private final Thread sender;
  private volatile boolean stopped;

  public EchoStreamer(DeviceClient.Builder builder, int total, Duration pause) {
    this(builder, total, () -> pause.toNanos());
  }

  /** A sender whose pause between frames may change while it runs. */
  public EchoStreamer(DeviceClient.Builder builder, int total, java.util.function.LongSupplier pause) {
    this.total = total;
    this.pauseNanos = pause;
    this.echoes = new AtomicIntegerArray(total);
    this.client = builder.mapping("echo").listener(new DeviceListener() {
      @Override
      public void onData(long seq, byte[] payload) {
        int n = ByteBuffer.wrap(payload).getInt();
        if (echoes.incrementAndGet(n) == 1) {
          long now = System.nanoTime();
          if (lastEchoNanos != 0 && now - lastEchoNanos > longestGapNanos) {
            longestGapNanos = now - lastEchoNanos;
            longestGapEndedNanos = now;
          }
          lastEchoNanos = now;
          distinct.incrementAndGet();
          if (n != lastNumber + 1) {
            outOfOrder.incrementAndGet();
          }
          lastNumber = n;
        } else {
          duplicates.incrementAndGet();
        }
      }

      @Override
      public void onDisconnected(String address, String cause) {
        if (cause.startsWith("redirected")) {
          redirects.incrementAndGet();
        }
      }
    }).build();
    this.sender = new Thread(this::run, "echo-streamer");
    this.sender.setDaemon(true);
  }

  /** How many of its connections the node ended with a REDIRECT. */
  public int redirects() {
    return redirects.get();
  }

  public EchoStreamer start() {
    client.connect();
    sender.start();
    return this;
  }

  private void run() {
    try {
      for (int i = 0; i < total && !stopped; i++) {
        byte[] payload = ByteBuffer.allocate(16).putInt(i).putInt(~i).putLong(i * 31L).array();
        client.send(payload);
        sent.incrementAndGet();
        long pause = pauseNanos.getAsLong();
        if (pause > 0) {
          LockSupport.parkNanos(pause);
        }
      }
    } catch (Throwable t) {
      failure.set(t);
    }
  }

  public int sent() {
    return sent.get();
  }

  public int distinctEchoed() {
    return distinct.get();
  }

  /** Echoes that did not come right after the previous number (none when order is kept). */
  public int outOfOrder() {
    return outOfOrder.get();
  }

  /** The longest wait between two new echoes so far (a failover's outage, seen by the device). */
  public Duration longestGap() {
    return Duration.ofNanos(longestGapNanos);
  }

  /** When ({@link System#nanoTime}) the longest wait ended; 0 before there was one. */
  public long longestGapEndedNanos() {
    return longestGapEndedNanos;
  }

  public int duplicateEchoes() {
    return duplicates.get();
  }

  public DeviceClient client() {
    return client;
  }

  /** Waits until every frame is acknowledged and echoed; rethrows a sender failure. */
  public void awaitComplete(Duration timeout) {
    await().atMost(timeout).pollInterval(Duration.ofMillis(100)).until(() -> {
      if (failure.get() != null) {
        throw new AssertionError("sender failed", failure.get());
      }
      return sent.get() == total && client.unackedCount() == 0 && distinct.get() == total;
    });
  }

  public Throwable failure() {
    return failure.get();
  }

  @Override
  public void close() {
    stopped = true;
    client.close();
  }
}
