package io.berth.bench;

import io.berth.node.socket.api.SocketStatus;
import io.berth.persistence.DatabaseSettings;
import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ToLongFunction;

/**
 * Uplink throughput. Devices (the reference client, window {@value #WINDOW}) stream 64-byte DATA
 * frames to {@code builtin:discard} as fast as their window allows, and the figure is frames
 * acknowledged per second: an ACK means the frame reached its destination and is durable
 * (PROTOCOL.md#delivery-contract), so every one of them went through the socket's journal. The
 * anchor, in the same run, is the same client with the same window and frames against {@link
 * RawEdge} in the harness, which acknowledges each read at once: what this machine does with this
 * client when nothing but TCP and the codec stand between device and acknowledgement.
 *
 * <p>Integrity: after each round every frame sent must be acknowledged (the client's cumulative
 * ACK equals what it sent), and the destination must have taken each frame once: Berth's socket
 * reports its watermark and the frames it handed to discard, the anchor counts every seq.
 */
final class UplinkScenario {

  static final int WINDOW = 512;
  private static final int FRAME_BYTES = 64;
  private static final List<Integer> CONNECTIONS = List.of(1, 16);
  static final int WARM_UP_CONNECTIONS = 16;
  private static final Duration DRAIN_LIMIT = Duration.ofSeconds(60);

  private UplinkScenario() {}

  /** Frames that reached the destination from one socket: distinct, and taken more than once. */
  private record Delivery(long distinct, long duplicates) {}

  /** Where the devices connect, how (plaintext or TLS), and what reached the destination behind it. */
  interface Destination {
    String name();

    List<InetSocketAddress> edges();

    ClientTls clientTls();

    Delivery delivered(String socketId);
  }

  /** One round: acknowledged frames per second, and the integrity counts. */
  record Result(String system, int connections, double framesPerSecond, long sent, long lost, long duplicated) {}

  static void run(Report report, DatabaseSettings db, boolean quick, PrintStream progress) throws Exception {
    int rounds = quick ? 1 : 3;
    Duration sendFor = Duration.ofSeconds(quick ? 3 : 10);
    Duration warmUp = Duration.ofSeconds(quick ? 2 : 4);
    progress.println("uplink: starting 1 node and the raw-TCP anchor");
    try (LocalCluster cluster = new LocalCluster(db, 1, "");
        RawEdge raw = RawEdge.start(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8), 0)) {
      List<Destination> systems = List.of(berth(cluster, "Berth", ClientTls.PLAINTEXT), anchor(raw));
      List<Result> all = new ArrayList<>();
      for (Destination system : systems) {
        Result r = round(system, WARM_UP_CONNECTIONS, warmUp);
        all.add(r);
        progress.println("uplink: warm-up " + describe(r));
      }
      for (int connections : CONNECTIONS) {
        Stats berthRate = new Stats();
        Stats rawRate = new Stats();
        for (int round = 1; round <= rounds; round++) {
          for (Destination system : systems) {
            Result r = round(system, connections, sendFor);
            all.add(r);
            (system.name().equals("Berth") ? berthRate : rawRate).add(r.framesPerSecond());
            progress.printf("uplink: round %d/%d %s%n", round, rounds, describe(r));
          }
        }
        String n = connections == 1 ? "1 connection" : connections + " connections";
        boolean hasGoal = connections == 16;
        report.add(new Report.Row("uplink", n + ": acked frames/s vs raw TCP", berthRate.median(), rawRate.median(),
            "", hasGoal ? "≥ 100,000" : null, hasGoal ? berthRate.median() >= 100_000 : null));
      }
      long lost = sum(all, "Berth", Result::lost);
      long duplicated = sum(all, "Berth", Result::duplicated);
      report.add(new Report.Row("uplink", "frames lost vs raw TCP", lost, sum(all, "raw TCP", Result::lost), "", "0",
          lost == 0));
      report.add(new Report.Row("uplink", "frames duplicated vs raw TCP", duplicated,
          sum(all, "raw TCP", Result::duplicated), "", "0", duplicated == 0));
    }
    report.note("uplink: 1 node in the harness JVM on PostgreSQL; devices are the reference DeviceClient (window "
        + WINDOW + ", mapping discard), each sending " + FRAME_BYTES + "-byte frames from its own thread as fast as "
        + "the window allows, for " + sendFor.toSeconds() + " s per round; acked frames/s counts every frame "
        + "acknowledged, from the first send to the last ACK. Anchor: the same clients against the harness's raw-TCP "
        + "edge (one NIO thread, the protocol codec, a cumulative ACK per read, nothing persisted). " + rounds
        + " round(s) per system and connection count, alternating, after one " + warmUp.toSeconds() + " s warm-up "
        + "round each with " + WARM_UP_CONNECTIONS + " connections; medians. Lost: sent but not acknowledged, or "
        + "acknowledged but not taken by the destination; duplicated: taken more than once (all rounds, warm-up "
        + "included).");
  }

  /** The cluster's edges, reached with {@code tls}: plaintext, or TLS where the cluster's edge serves it. */
  static Destination berth(LocalCluster cluster, String name, ClientTls tls) {
    return new Destination() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public List<InetSocketAddress> edges() {
        return cluster.edges();
      }

      @Override
      public ClientTls clientTls() {
        return tls;
      }

      @Override
      public Delivery delivered(String socketId) {
        SocketStatus s = cluster.status(socketId);
        // The watermark counts each frame once; framesIn counts every hand-over to the endpoint.
        return new Delivery(s.lastAccepted(), s.counters().framesIn() - s.lastAccepted());
      }
    };
  }

  private static Destination anchor(RawEdge raw) {
    return new Destination() {
      @Override
      public String name() {
        return "raw TCP";
      }

      @Override
      public List<InetSocketAddress> edges() {
        return List.of(new InetSocketAddress("127.0.0.1", raw.port()));
      }

      @Override
      public ClientTls clientTls() {
        return ClientTls.PLAINTEXT;
      }

      @Override
      public Delivery delivered(String socketId) {
        SequenceCheck check = raw.received(socketId);
        return check == null ? new Delivery(0, 0) : new Delivery(check.received(), check.duplicates());
      }
    };
  }

  /** One device: a reference client and the thread that feeds it. */
  private static final class Device {
    final String id;
    final DeviceClient client;
    final AtomicLong sent = new AtomicLong();
    Thread sender;

    Device(Destination to, String id) {
      this.id = id;
      this.client = DeviceClient.builder().addresses(to.edges()).deviceId(id).mapping("discard").window(WINDOW)
          .tls(to.clientTls())
          .secret(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1)).build();
    }

    void startSending(long endNanos) {
      sender = new Thread(() -> {
        byte[] payload = new byte[FRAME_BYTES];
        try {
          while (System.nanoTime() < endNanos) {
            client.send(payload);
            sent.incrementAndGet();
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
          // Shows in the counts: what was sent and not acknowledged is lost.
        }
      }, "uplink-" + id);
      sender.setDaemon(true);
      sender.start();
    }
  }

  static Result round(Destination system, int connections, Duration sendFor) throws InterruptedException {
    String run = UUID.randomUUID().toString().substring(0, 8);
    List<Device> devices = new ArrayList<>();
    for (int i = 0; i < connections; i++) {
      devices.add(new Device(system, "bench-up-" + run + "-" + i));
    }
    try {
      devices.forEach(d -> d.client.connect());
      // Timed from the first send: the handshakes are the idle scenario's business.
      LocalCluster.awaitCondition(Duration.ofSeconds(30),
          () -> devices.stream().allMatch(d -> d.client.welcome() != null));
      long start = System.nanoTime();
      long end = start + sendFor.toNanos();
      devices.forEach(d -> d.startSending(end));
      long drainBy = end + DRAIN_LIMIT.toNanos();
      for (Device d : devices) {
        d.sender.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(drainBy - System.nanoTime())));
        if (d.sender.isAlive()) {
          d.sender.interrupt();
          d.sender.join(TimeUnit.SECONDS.toMillis(5));
        }
      }
      for (Device d : devices) {
        d.client.awaitAllAcked(Duration.ofNanos(Math.max(1, drainBy - System.nanoTime())));
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      long sent = 0;
      long acked = 0;
      long lost = 0;
      long duplicated = 0;
      for (Device d : devices) {
        Delivery delivery = system.delivered(d.id);
        long s = d.sent.get();
        long ackedHere = Math.min(s, d.client.lastAcked());
        sent += s;
        acked += ackedHere;
        lost += s - Math.min(ackedHere, delivery.distinct());
        duplicated += delivery.duplicates();
      }
      return new Result(system.name(), connections, acked / seconds, sent, lost, duplicated);
    } finally {
      devices.forEach(d -> d.client.close());
    }
  }

  static String describe(Result r) {
    return String.format(Locale.ROOT, "%s, %d connection(s): %,.0f acked frames/s; sent %,d, lost %d, duplicated %d",
        r.system(), r.connections(), r.framesPerSecond(), r.sent(), r.lost(), r.duplicated());
  }

  private static long sum(List<Result> results, String system, ToLongFunction<Result> count) {
    return results.stream().filter(r -> r.system().equals(system)).mapToLong(count).sum();
  }
}
