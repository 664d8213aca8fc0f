package io.berth.node;

import static org.awaitility.Awaitility.await;

import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import io.berth.protocol.LinkStatus;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * One side of a peer link in tests: records the LINK frames it gets and checks that the peer's
 * numbered frames arrive in order, each once.
 */
public final class LinkPeer implements AutoCloseable {

  public record LinkEvent(LinkStatus status, String peer, String reason) {}

  private final List<LinkEvent> links = new CopyOnWriteArrayList<>();
  private final AtomicInteger received = new AtomicInteger();
  private final AtomicInteger outOfOrder = new AtomicInteger();
  private final AtomicInteger duplicates = new AtomicInteger();
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final DeviceClient client;
  private volatile int last = -1;
  private volatile long readDelayNanos;
  private Thread sender;

  public LinkPeer(DeviceClient.Builder builder) {
    this.client = builder.listener(new DeviceListener() {
      @Override
      public void onData(long seq, byte[] payload) {
        int n = ByteBuffer.wrap(payload).getInt();
        if (n <= last) {
          duplicates.incrementAndGet();
        } else {
          if (n != last + 1) {
            outOfOrder.incrementAndGet();
          }
          last = n;
          received.incrementAndGet();
        }
        if (readDelayNanos > 0) {
          LockSupport.parkNanos(readDelayNanos);
        }
      }

      @Override
      public void onLink(LinkStatus status, String peer, String reason) {
        links.add(new LinkEvent(status, peer, reason));
      }
    }).build();
  }

  public LinkPeer connect() {
    client.connect();
    return this;
  }

  /** Slows this device's reading down (a slow receiver). */
  public void readSlowly(Duration perFrame) {
    readDelayNanos = perFrame.toNanos();
  }

  public LinkPeer send(int frames, Duration pause) {
    sender = new Thread(() -> {
      try {
        for (int i = 0; i < frames; i++) {
          client.send(ByteBuffer.allocate(8).putInt(i).putInt(~i).array());
          if (!pause.isZero()) {
            LockSupport.parkNanos(pause.toNanos());
          }
        }
      } catch (Throwable t) {
        failure.set(t);
      }
    }, "link-peer-sender");
    sender.setDaemon(true);
    sender.start();
    return this;
  }

  public void awaitLink(LinkStatus status, Duration timeout) {
    await().atMost(timeout).until(() -> links.stream().anyMatch(l -> l.status() == status));
  }

  public List<LinkEvent> links() {
    return links;
  }

  public int received() {
    return received.get();
  }

  public int outOfOrder() {
    return outOfOrder.get();
  }

  public int duplicates() {
    return duplicates.get();
  }

  public DeviceClient client() {
    return client;
  }

  public Throwable failure() {
    return failure.get();
  }

  @Override
  public void close() {
    client.close();
  }
}
