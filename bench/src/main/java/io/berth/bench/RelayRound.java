package io.berth.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One round of the relay scenario on fresh pairs: every side of every pair sends numbered frames
 * to its peer as fast as its window allows for a fixed time, then the round waits (bounded) for
 * the frames still in flight and counts. Throughput is every frame delivered, both directions and
 * all pairs summed, over the time from the first send to the last arrival, so the drain is paid
 * for and nothing is counted twice.
 */
final class RelayRound {

  /** How long a sender may still be blocked after the sending time before it is interrupted. */
  private static final Duration SENDER_GRACE = Duration.ofSeconds(30);
  /** The drain ends when every frame arrived, or nothing arrived for this long (QoS 0 loses). */
  private static final Duration DRAIN_QUIET = Duration.ofSeconds(2);
  private static final Duration DRAIN_LIMIT = Duration.ofSeconds(30);

  /** A round's figures; {@code failure} says why a sender stopped early, null when none did. */
  record Result(String system, int pairs, double framesPerSecond, double p50Ms, double p99Ms, long sent,
      long received, long duplicates, long outOfOrder, String failure) {
    long lost() {
      return sent - received;
    }
  }

  private RelayRound() {}

  static Result run(RelayTransport transport, int pairs, Duration sendFor) throws Exception {
    List<RelayTransport.Pair> opened = transport.open(pairs);
    try {
      return measure(transport.name(), opened, sendFor);
    } finally {
      for (RelayTransport.Pair p : opened) {
        p.a().close();
        p.b().close();
      }
    }
  }

  /** A thread sending numbered frames from one side until the deadline. */
  private static final class Sender {
    final RelayReceiver at;
    final AtomicLong sent = new AtomicLong();
    final AtomicReference<Throwable> failure = new AtomicReference<>();
    final Thread thread;

    Sender(RelaySide from, RelayReceiver at, long endNanos, String name) {
      this.at = at;
      this.thread = new Thread(() -> {
        try {
          for (long seq = 0; System.nanoTime() < endNanos; seq++) {
            from.send(RelayReceiver.frame(seq));
            sent.incrementAndGet();
          }
        } catch (InterruptedException e) {
          failure.set(new IllegalStateException("still blocked " + SENDER_GRACE.toSeconds()
              + " s after the sending time"));
        } catch (RuntimeException e) {
          failure.set(e);
        }
      }, name);
      this.thread.setDaemon(true);
    }
  }

  private static Result measure(String system, List<RelayTransport.Pair> pairs, Duration sendFor)
      throws InterruptedException {
    long start = System.nanoTime();
    long end = start + sendFor.toNanos();
    List<Sender> senders = new ArrayList<>();
    for (int i = 0; i < pairs.size(); i++) {
      RelayTransport.Pair p = pairs.get(i);
      senders.add(new Sender(p.a(), p.b().received(), end, "relay-" + i + "-a"));
      senders.add(new Sender(p.b(), p.a().received(), end, "relay-" + i + "-b"));
    }
    senders.forEach(s -> s.thread.start());
    long joinBy = end + SENDER_GRACE.toNanos();
    for (Sender s : senders) {
      s.thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(joinBy - System.nanoTime())));
      if (s.thread.isAlive()) {
        s.thread.interrupt();
        s.thread.join(TimeUnit.SECONDS.toMillis(5));
      }
    }
    long sent = senders.stream().mapToLong(s -> s.sent.get()).sum();
    drain(senders, sent);

    long received = 0;
    long duplicates = 0;
    long outOfOrder = 0;
    long lastArrival = start;
    Stats latency = new Stats();
    for (Sender s : senders) {
      received += s.at.received();
      duplicates += s.at.duplicates();
      outOfOrder += s.at.outOfOrder();
      lastArrival = Math.max(lastArrival, s.at.lastArrivalNanos());
      latency.addAll(s.at.latencies());
    }
    String failure = senders.stream().map(s -> s.failure.get()).filter(Objects::nonNull).findFirst()
        .map(Throwable::toString).orElse(null);
    double seconds = Math.max(1, lastArrival - start) / 1e9;
    return new Result(system, pairs.size(), received / seconds, latency.median(), latency.percentile(99), sent,
        received, duplicates, outOfOrder, failure);
  }

  private static void drain(List<Sender> senders, long sent) {
    long limit = System.nanoTime() + DRAIN_LIMIT.toNanos();
    long seen = -1;
    long progressAt = System.nanoTime();
    while (System.nanoTime() < limit) {
      long received = senders.stream().mapToLong(s -> s.at.received()).sum();
      if (received >= sent) {
        return;
      }
      if (received != seen) {
        seen = received;
        progressAt = System.nanoTime();
      } else if (System.nanoTime() - progressAt > DRAIN_QUIET.toNanos()) {
        return;
      }
      LocalCluster.pause(10);
    }
  }
}
