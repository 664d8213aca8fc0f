package io.berth.bench;

import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * A device streaming numbered frames through {@code echo}. Echoes should come back once each and
 * in order, so a {@link SequenceCheck} tells what was lost, duplicated or reordered; the gaps
 * between consecutive echoes show how long delivery paused.
 */
final class EchoLoad implements AutoCloseable {

  /** A pause in the echo stream: when it ended (epoch millis) and how long it was. */
  record Gap(long endedAtMillis, long millis) {}

  record Result(long sent, long echoed, long duplicates, long outOfOrder) {
    long lost() {
      return sent - echoed;
    }
  }

  private final DeviceClient client;
  private final LongSupplier pauseNanos;
  private final int payloadSize;
  private final AtomicLong sent = new AtomicLong();
  private final SequenceCheck echoes = new SequenceCheck();
  private final ConcurrentLinkedQueue<Gap> gaps = new ConcurrentLinkedQueue<>();
  private volatile long lastEchoAt;
  private volatile boolean stop;
  private final Thread sender;

  EchoLoad(List<InetSocketAddress> edges, String deviceId, int payloadSize, LongSupplier pauseNanos) {
    this.payloadSize = Math.max(8, payloadSize);
    this.pauseNanos = pauseNanos;
    this.client = DeviceClient.builder().addresses(edges).deviceId(deviceId).mapping("echo")
        .tls(ClientTls.PLAINTEXT)
        .secret(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1))
        .reconnectBackoff(Duration.ofMillis(50), Duration.ofSeconds(1))
        .listener(new DeviceListener() {
          @Override
          public void onData(long seq, byte[] payload) {
            if (!echoes.accept(ByteBuffer.wrap(payload).getLong())) {
              return;
            }
            long now = System.currentTimeMillis();
            if (lastEchoAt != 0 && now - lastEchoAt >= 20) {
              gaps.add(new Gap(now, now - lastEchoAt));
            }
            lastEchoAt = now;
          }
        }).build();
    this.sender = new Thread(this::run, "load-" + deviceId);
    this.sender.setDaemon(true);
  }

  EchoLoad start() {
    client.connect();
    sender.start();
    return this;
  }

  private void run() {
    try {
      for (long n = 0; !stop; n++) {
        byte[] payload = new byte[payloadSize];
        ByteBuffer.wrap(payload).putLong(n);
        client.send(payload);
        sent.incrementAndGet();
        long p = pauseNanos.getAsLong();
        if (p > 0) {
          LockSupport.parkNanos(p);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      // Reported through the counts: what was sent and not echoed is lost.
    }
  }

  long echoed() {
    return echoes.received();
  }

  List<Gap> gaps() {
    return List.copyOf(gaps);
  }

  /** Stops sending, waits (bounded) for every acknowledgement and echo, and counts. */
  Result finish(Duration timeout) throws InterruptedException {
    stop = true;
    sender.join(timeout.toMillis());
    client.awaitAllAcked(timeout);
    long deadline = System.nanoTime() + timeout.toNanos();
    while (echoes.received() < sent.get() && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    return new Result(sent.get(), echoes.received(), echoes.duplicates(), echoes.outOfOrder());
  }

  @Override
  public void close() {
    stop = true;
    client.close();
  }
}
