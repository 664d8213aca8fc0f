package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;

/**
 * Peer links against Mosquitto. Pairs of devices send 64-byte frames to each other through a
 * 2-node Berth cluster ({@code builtin:pair}) and, in the same run, through a private Mosquitto
 * with MQTT QoS 1 and QoS 0; every system gets the same pair counts, frames, window and counting.
 * Rounds alternate the systems so that the machine's noise falls on all of them; the table has
 * medians across rounds. The goal (from the issue): Berth's acknowledged relay carries at least as
 * many frames/s as MQTT QoS 1, for 1 and for 8 pairs.
 */
final class RelayScenario {

  /**
   * Frames a device may have unconfirmed: Berth's client window (the node allows up to 512) and
   * the MQTT client's publishes awaiting PUBACK; also Mosquitto's per-subscriber in-flight limit.
   */
  static final int WINDOW = 512;
  private static final List<Integer> PAIR_COUNTS = List.of(1, 8);
  /** One unmeasured round per system first, so that neither is measured while the JIT warms up. */
  static final int WARM_UP_PAIRS = 8;
  /** The MQTT uplink's message size: the relay's frames are 64 bytes too. */
  private static final int FRAME_BYTES = 64;

  private RelayScenario() {}

  static void run(Report report, DatabaseSettings db, boolean quick, Path workDir, PrintStream progress)
      throws Exception {
    int rounds = quick ? 1 : 3;
    Duration sendFor = Duration.ofSeconds(quick ? 3 : 10);
    Duration warmUp = Duration.ofSeconds(quick ? 2 : 4);
    progress.println("relay: starting mosquitto and 2 nodes");
    Map<String, List<RelayRound.Result>> everyRound = new HashMap<>();
    try (Mosquitto broker = Mosquitto.start(workDir, WINDOW); LocalCluster cluster = new LocalCluster(db, 2, "")) {
      progress.printf("relay: mosquitto pid %d on %s (config and log in %s)%n", broker.pid(), broker.uri(), workDir);
      RelayTransport berth = new BerthRelay(cluster, WINDOW);
      RelayTransport qos1 = new MqttRelay(broker.uri(), 1, WINDOW);
      RelayTransport qos0 = new MqttRelay(broker.uri(), 0, WINDOW);
      RelayTransport berthMqtt = MqttRelay.berth(cluster.nodes().stream()
          .map(n -> "tcp://127.0.0.1:" + n.mqttPort()).toList(),
          LocalCluster.SECRET.getBytes(java.nio.charset.StandardCharsets.UTF_8), WINDOW);
      // QoS 0 is a comparison, not the goal's anchor; its rounds are the slowest to end (the broker's
      // queue drains long after the senders stop), so a --quick run leaves it out.
      List<RelayTransport> systems = quick ? List.of(berth, berthMqtt, qos1) : List.of(berth, berthMqtt, qos1, qos0);
      for (RelayTransport system : systems) {
        RelayRound.Result r = RelayRound.run(system, WARM_UP_PAIRS, warmUp);
        everyRound.computeIfAbsent(system.name(), k -> new ArrayList<>()).add(r);
        progress.println("relay: warm-up " + describe(r));
      }
      for (int pairs : PAIR_COUNTS) {
        Map<String, List<RelayRound.Result>> measured = new HashMap<>();
        for (int round = 1; round <= rounds; round++) {
          for (RelayTransport system : systems) {
            RelayRound.Result r = RelayRound.run(system, pairs, sendFor);
            measured.computeIfAbsent(system.name(), k -> new ArrayList<>()).add(r);
            everyRound.get(system.name()).add(r);
            progress.printf("relay: round %d/%d %s%n", round, rounds, describe(r));
          }
        }
        addFigures(report, pairs, measured.get(berth.name()), measured.get(qos1.name()),
            measured.getOrDefault(qos0.name(), List.of()));
        addMqttFigures(report, pairs, measured.get(berthMqtt.name()), measured.get(qos1.name()));
      }
      addIntegrity(report, everyRound.get(berth.name()), everyRound.get(qos1.name()),
          everyRound.getOrDefault(qos0.name(), List.of()));
      addMqttIntegrity(report, everyRound.get(berthMqtt.name()), everyRound.get(qos1.name()));
      mqttUplink(report, broker, cluster, rounds, sendFor, warmUp, progress);
    }
    report.note("relay: 2 nodes in the harness JVM on PostgreSQL, the two devices of a pair on different nodes, "
        + "linked by builtin:pair; anchor: Mosquitto on loopback (persistence off, max_inflight_messages " + WINDOW
        + ", max_queued_messages " + Mosquitto.MAX_QUEUED + ", TCP_NODELAY), Eclipse Paho MqttAsyncClient 1.2.5, "
        + "MQTT 3.1.1, each client subscribed to its own topic and publishing to its peer's. 64-byte frames; every "
        + "device sends as fast as a window of " + WINDOW + " unconfirmed frames allows (Berth: acknowledged once "
        + "the peer device acknowledged; QoS 1: PUBACK from the broker" + (quick ? "" : "; QoS 0: written by Paho")
        + "), for "
        + sendFor.toSeconds() + " s per round, " + rounds + " round(s) per system and pair count, medians. "
        + "frames/s: frames delivered, both directions and all pairs summed, from the first send to the last "
        + "arrival. Latency: one-way, send to arrival at the peer, under that full load (so mostly queueing: in "
        + "Berth's window, in Mosquitto's per-subscriber queue). Loss, duplicates and reordering: every round, "
        + "warm-up included. Berth MQTT: the same Paho clients at QoS 1 on the nodes' MQTT ports, each a socket, "
        + "the two of a pair on different nodes and linked by pair; a PUBACK comes once the peer client has "
        + "acknowledged the message (docs/edges.md)." + (quick ? " --quick: without MQTT QoS 0." : ""));
  }

  /**
   * One MQTT 5 client publishing at QoS 1 to Berth's MQTT port (mapping discard, named in the
   * CONNECT) and, in the same rounds, to Mosquitto (a topic with no subscriber): PUBACKs per
   * second. Berth's PUBACK means the frame is durable at the endpoint; Mosquitto's that the broker
   * has it (persistence off).
   */
  private static void mqttUplink(Report report, Mosquitto broker, LocalCluster cluster, int rounds, Duration sendFor,
      Duration warmUp, PrintStream progress) {
    byte[] secret = LocalCluster.SECRET.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    String berthUri = "tcp://127.0.0.1:" + cluster.nodes().get(0).mqttPort();
    java.util.function.IntFunction<MqttUplink.Spec> berth = round -> {
      String device = "mq-up-" + java.util.UUID.randomUUID().toString().substring(0, 8) + "-" + round;
      String token = io.berth.protocol.DeviceToken.mint(secret, device, java.time.Instant.now().plusSeconds(3600));
      return new MqttUplink.Spec("Berth MQTT QoS 1 (discard)", berthUri, device, device, MqttUplink.utf8(token),
          "berth/" + device + "/up", "discard");
    };
    java.util.function.IntFunction<MqttUplink.Spec> mosquitto = round -> new MqttUplink.Spec("Mosquitto QoS 1",
        broker.uri(), "bench-up-" + round, null, null, "berth-bench/uplink/" + round, null);
    List<MqttUplink.Result> berthRounds = new ArrayList<>();
    List<MqttUplink.Result> brokerRounds = new ArrayList<>();
    long mismatched = 0;
    boolean failed = false;
    for (int round = 0; round <= rounds; round++) {
      Duration length = round == 0 ? warmUp : sendFor;
      MqttUplink.Spec spec = berth.apply(round);
      MqttUplink.Result b = MqttUplink.run(spec, WINDOW, FRAME_BYTES, length);
      // The edge numbers each PUBLISH once and the socket takes each number once: its watermark
      // must be what was sent, no less (lost) and no more (a publish taken twice).
      io.berth.node.socket.api.SocketStatus status = cluster.status(spec.clientId());
      mismatched += Math.abs(b.sent() - status.lastAccepted());
      MqttUplink.Result m = MqttUplink.run(mosquitto.apply(round), WINDOW, FRAME_BYTES, length);
      for (MqttUplink.Result r : List.of(b, m)) {
        progress.printf(Locale.ROOT, "relay: mqtt uplink %s %s: %,.0f PUBACKs/s; sent %d, unacknowledged %d%s%n",
            round == 0 ? "warm-up" : "round " + round + "/" + rounds, r.system(), r.publishesPerSecond(), r.sent(),
            r.unacknowledged(), r.failure() == null ? "" : " (" + r.failure() + ")");
      }
      progress.printf(Locale.ROOT, "relay: mqtt uplink: the socket's watermark %d, %d publishes sent%n",
          status.lastAccepted(), b.sent());
      failed |= b.failure() != null || m.failure() != null;
      if (round > 0) {
        berthRounds.add(b);
        brokerRounds.add(m);
      }
    }
    double rate = medianOf(berthRounds);
    double anchor = medianOf(brokerRounds);
    report.add(new Report.Row("relay", "MQTT uplink, 1 client QoS 1: PUBACKs/s, Berth MQTT to discard vs Mosquitto",
        rate, anchor, "", "≥ 1.00× Mosquitto", !failed && rate >= anchor));
    double unacknowledged = berthRounds.stream().mapToLong(MqttUplink.Result::unacknowledged).sum();
    report.add(new Report.Row("relay", "MQTT uplink: publishes never acknowledged, all rounds", unacknowledged,
        brokerRounds.stream().mapToLong(MqttUplink.Result::unacknowledged).sum(), "", "0", unacknowledged == 0));
    report.add(new Report.Row("relay", "MQTT uplink: publishes sent less the socket's watermark (either way), "
        + "warm-up and all rounds", mismatched, Double.NaN, "", "0", !failed && mismatched == 0));
    report.note("relay, MQTT uplink: one Eclipse Paho MQTT 5 client (MqttAsyncClient 1.2.5) publishing "
        + FRAME_BYTES + "-byte messages at QoS 1 as fast as a window of " + WINDOW + " unacknowledged publishes "
        + "allows, for " + sendFor.toSeconds() + " s per round after a " + warmUp.toSeconds() + " s warm-up, "
        + rounds + " round(s), medians: to the first node's MQTT port as a socket of its own with mapping "
        + "discard (its CONNECT's user property), a PUBACK once the frame is durable at the endpoint; and to "
        + "Mosquitto, a topic nobody subscribes to, a PUBACK once the broker has it. PUBACKs/s from the first "
        + "publish to the last PUBACK. Integrity: the edge numbers each PUBLISH as one frame and the socket "
        + "takes each number once, so its watermark (the socket's status, read after each round) must equal the "
        + "publishes sent; a failed round fails both rows.");
  }

  static String describe(RelayRound.Result r) {
    return String.format(Locale.ROOT,
        "%s, %d pair(s): %,.0f frames/s, p50 %.2f ms, p99 %.2f ms; sent %d, lost %d, duplicated %d, reordered %d%s",
        r.system(), r.pairs(), r.framesPerSecond(), r.p50Ms(), r.p99Ms(), r.sent(),
        r.lost(), r.duplicates(), r.outOfOrder(), r.failure() == null ? "" : " (" + r.failure() + ")");
  }

  /** Throughput and latency rows for one pair count; {@code qos0} is empty when it was not measured. */
  private static void addFigures(Report report, int pairs, List<RelayRound.Result> berth,
      List<RelayRound.Result> qos1, List<RelayRound.Result> qos0) {
    String n = pairs == 1 ? "1 pair" : pairs + " pairs";
    ToDoubleFunction<RelayRound.Result> rate = RelayRound.Result::framesPerSecond;
    ToDoubleFunction<RelayRound.Result> p50 = RelayRound.Result::p50Ms;
    ToDoubleFunction<RelayRound.Result> p99 = RelayRound.Result::p99Ms;
    double berthRate = median(berth, rate);
    double qos1Rate = median(qos1, rate);
    report.add(new Report.Row("relay", n + ": frames/s vs MQTT QoS 1", berthRate, qos1Rate, "", "≥ 1.00× QoS 1",
        berthRate >= qos1Rate));
    if (!qos0.isEmpty()) {
      report.add(new Report.Row("relay", n + ": frames/s vs MQTT QoS 0", berthRate, median(qos0, rate), "", null,
          null));
    }
    List<Anchor> anchors = qos0.isEmpty() ? List.of(new Anchor("QoS 1", qos1))
        : List.of(new Anchor("QoS 1", qos1), new Anchor("QoS 0", qos0));
    for (var anchor : anchors) {
      report.add(new Report.Row("relay", n + ": one-way latency p50 vs MQTT " + anchor.name(), median(berth, p50),
          median(anchor.results(), p50), "ms", null, null));
      report.add(new Report.Row("relay", n + ": one-way latency p99 vs MQTT " + anchor.name(), median(berth, p99),
          median(anchor.results(), p99), "ms", null, null));
    }
  }

  private record Anchor(String name, List<RelayRound.Result> results) {}

  /**
   * Berth's MQTT port against Mosquitto, the same Paho clients at QoS 1 on both: the goal (issue
   * 23) is at least Mosquitto's rate, with a PUBACK that means the peer client acknowledged.
   */
  private static void addMqttFigures(Report report, int pairs, List<RelayRound.Result> berthMqtt,
      List<RelayRound.Result> qos1) {
    String n = pairs == 1 ? "1 pair" : pairs + " pairs";
    double rate = median(berthMqtt, RelayRound.Result::framesPerSecond);
    double anchor = median(qos1, RelayRound.Result::framesPerSecond);
    report.add(new Report.Row("relay", n + ": Berth MQTT frames/s vs MQTT QoS 1", rate, anchor, "", "≥ 1.00× QoS 1",
        rate >= anchor));
    report.add(new Report.Row("relay", n + ": Berth MQTT one-way latency p50 vs MQTT QoS 1",
        median(berthMqtt, RelayRound.Result::p50Ms), median(qos1, RelayRound.Result::p50Ms), "ms", null, null));
    report.add(new Report.Row("relay", n + ": Berth MQTT one-way latency p99 vs MQTT QoS 1",
        median(berthMqtt, RelayRound.Result::p99Ms), median(qos1, RelayRound.Result::p99Ms), "ms", null, null));
  }

  private static void addMqttIntegrity(Report report, List<RelayRound.Result> berthMqtt, List<RelayRound.Result> qos1) {
    Map<String, ToLongFunction<RelayRound.Result>> counts = new LinkedHashMap<>();
    counts.put("lost", RelayRound.Result::lost);
    counts.put("duplicated", RelayRound.Result::duplicates);
    counts.put("reordered", RelayRound.Result::outOfOrder);
    counts.forEach((what, count) -> {
      long b = sum(berthMqtt, count);
      report.add(new Report.Row("relay", "Berth MQTT frames " + what + " vs MQTT QoS 1", b, sum(qos1, count), "", "0",
          b == 0));
    });
  }

  /**
   * Berth must lose, duplicate and reorder nothing; the MQTT counts are there to compare. {@code
   * qos0} is empty when QoS 0 was not measured (--quick): its rows are left out.
   */
  private static void addIntegrity(Report report, List<RelayRound.Result> berth, List<RelayRound.Result> qos1,
      List<RelayRound.Result> qos0) {
    Map<String, ToLongFunction<RelayRound.Result>> counts = new LinkedHashMap<>();
    counts.put("lost", RelayRound.Result::lost);
    counts.put("duplicated", RelayRound.Result::duplicates);
    counts.put("reordered", RelayRound.Result::outOfOrder);
    counts.forEach((what, count) -> {
      long b = sum(berth, count);
      report.add(new Report.Row("relay", "frames " + what + " vs MQTT QoS 1", b, sum(qos1, count), "", "0", b == 0));
      if (!qos0.isEmpty()) {
        report.add(new Report.Row("relay", "frames " + what + " vs MQTT QoS 0", b, sum(qos0, count), "", null, null));
      }
    });
  }

  private static double medianOf(List<MqttUplink.Result> results) {
    Stats s = new Stats();
    results.forEach(r -> s.add(r.publishesPerSecond()));
    return s.median();
  }

  private static double median(List<RelayRound.Result> results, ToDoubleFunction<RelayRound.Result> figure) {
    Stats s = new Stats();
    results.forEach(r -> s.add(figure.applyAsDouble(r)));
    return s.median();
  }

  private static long sum(List<RelayRound.Result> results, ToLongFunction<RelayRound.Result> count) {
    return results.stream().mapToLong(count).sum();
  }
}
