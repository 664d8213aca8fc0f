package io.berth.bench;

import io.berth.node.balance.MigrationLog;
import io.berth.persistence.DatabaseSettings;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Migration figures: in each round a fresh socket streams through echo on a node that also
 * carries a few warm sockets; it crosses the threshold, its shard moves, and the round ends once
 * the new node has delivered again. Time from threshold crossing to serving and the delivery
 * pause come from the migration record (the nodes' own clocks); the device also measures the
 * longest gap between echoes around the move, and counts frames lost, duplicated or reordered.
 */
final class MigrationScenario {

  static final String CONFIG = """
      berth.migration.socket-threshold.frames-per-second = 300
      berth.migration.socket-threshold.bytes-per-second = 100 MiB
      berth.migration.rate-window = 1s
      berth.migration.sustain = 1s
      berth.migration.check-interval = 500ms
      berth.migration.cooldown = 5s
      """;

  private MigrationScenario() {}

  static void run(Report report, DatabaseSettings db, int rounds, PrintStream progress) throws Exception {
    Stats crossingToServing = new Stats();
    Stats decisionToServing = new Stats();
    Stats crossingToDecision = new Stats();
    Stats serverPause = new Stats();
    Stats devicePause = new Stats();
    long lost = 0;
    long duplicated = 0;
    long reordered = 0;
    int completed = 0;
    progress.println("migration: starting 3 nodes");
    try (LocalCluster cluster = new LocalCluster(db, 3, CONFIG)) {
      MigrationLog log = MigrationLog.get(cluster.nodes().get(0).system());
      // Round 0 warms the nodes up (the first move after a start runs cold code on every node)
      // and is not in the figures; its frames are checked like the others'.
      for (int round = 0; round <= rounds; round++) {
        String hot = "bench-hot-" + round + "-" + UUID.randomUUID().toString().substring(0, 6);
        String busy = cluster.entityNode(hot);
        List<EchoLoad> warm = new ArrayList<>();
        for (int i = 0; i < 300 && warm.size() < 3; i++) {
          String candidate = "bench-warm-" + UUID.randomUUID().toString().substring(0, 8);
          if (cluster.entityNode(candidate).equals(busy)) {
            warm.add(new EchoLoad(cluster.edges(), candidate, 16, () -> 12_000_000L).start());
          }
        }
        LocalCluster.awaitCondition(Duration.ofSeconds(30), () -> warm.stream().allMatch(w -> w.echoed() >= 100));
        EchoLoad load = new EchoLoad(cluster.edges(), hot, 16, () -> 500_000L).start();
        MigrationLog.Migration record = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
          List<MigrationLog.Migration> found = log.recent(1, hot, null).toCompletableFuture().get(10, TimeUnit.SECONDS);
          if (!found.isEmpty() && found.get(0).completedAt() != null) {
            record = found.get(0);
            break;
          }
          LocalCluster.pause(100);
        }
        long echoedAtMove = load.echoed();
        LocalCluster.awaitCondition(Duration.ofSeconds(20), () -> load.echoed() >= echoedAtMove + 500);
        EchoLoad.Result result = load.finish(Duration.ofSeconds(60));
        load.close();
        for (EchoLoad w : warm) {
          EchoLoad.Result r = w.finish(Duration.ofSeconds(30));
          lost += r.lost();
          duplicated += r.duplicates();
          reordered += r.outOfOrder();
          w.close();
        }
        lost += result.lost();
        duplicated += result.duplicates();
        reordered += result.outOfOrder();
        String name = round == 0 ? "warm-up round" : "round " + round + "/" + rounds;
        if (record == null) {
          progress.printf("migration: %s: no migration within 60 s (%d frames sent)%n", name, result.sent());
          continue;
        }
        long done = record.completedAt().toEpochMilli();
        long decided = record.startedAt().toEpochMilli();
        long crossed = record.hotSince() == null ? -1 : record.hotSince().toEpochMilli();
        long maxGap = load.gaps().stream()
            .filter(g -> g.endedAtMillis() >= decided - 1000 && g.endedAtMillis() <= done + 2000)
            .mapToLong(EchoLoad.Gap::millis).max().orElse(0);
        progress.printf("migration: %s: moved %s -> %s, %d ms after crossing (decided after %d ms), pause %d ms"
                + " (device %d ms), %d frames, lost %d, duplicated %d%n", name, short_(record.from()),
            short_(record.to()), crossed < 0 ? -1 : done - crossed, crossed < 0 ? -1 : decided - crossed,
            record.pauseMs(), maxGap, result.sent(), result.lost(), result.duplicates());
        if (round == 0) {
          continue;
        }
        completed++;
        decisionToServing.add(done - decided);
        if (crossed >= 0) {
          crossingToServing.add(done - crossed);
          crossingToDecision.add(decided - crossed);
        }
        serverPause.add(record.pauseMs());
        devicePause.add(maxGap);
      }
    }
    String s = "migration";
    report.add(new Report.Row(s, "migrations completed / rounds", completed, Double.NaN, "of " + rounds, null,
        completed == rounds));
    report.add(new Report.Row(s, "threshold crossing → serving on new node, p50", crossingToServing.median(),
        Double.NaN, "ms", "≤ 2000 ms", crossingToServing.median() <= 2000));
    report.add(new Report.Row(s, "threshold crossing → serving on new node, p99", crossingToServing.percentile(99),
        Double.NaN, "ms", "≤ 2000 ms", crossingToServing.percentile(99) <= 2000));
    report.add(new Report.Row(s, "threshold crossing → decision (sustain 1 s), p50", crossingToDecision.median(),
        Double.NaN, "ms", null, null));
    report.add(new Report.Row(s, "threshold crossing → decision (sustain 1 s), p99",
        crossingToDecision.percentile(99), Double.NaN, "ms", null, null));
    report.add(new Report.Row(s, "decision → serving on new node, p50", decisionToServing.median(), Double.NaN,
        "ms", null, null));
    report.add(new Report.Row(s, "decision → serving on new node, p99", decisionToServing.percentile(99), Double.NaN,
        "ms", null, null));
    report.add(new Report.Row(s, "delivery pause (node clocks), p50", serverPause.median(), Double.NaN, "ms", null,
        null));
    report.add(new Report.Row(s, "delivery pause (node clocks), p99", serverPause.percentile(99), Double.NaN, "ms",
        "≤ 300 ms", serverPause.percentile(99) <= 300));
    report.add(new Report.Row(s, "longest echo gap seen by the device, p50", devicePause.median(), Double.NaN, "ms",
        null, null));
    report.add(new Report.Row(s, "longest echo gap seen by the device, p99", devicePause.percentile(99), Double.NaN,
        "ms", "≤ 300 ms", devicePause.percentile(99) <= 300));
    report.add(new Report.Row(s, "frames lost", lost, Double.NaN, "", "0", lost == 0));
    report.add(new Report.Row(s, "frames duplicated", duplicated, Double.NaN, "", "0", duplicated == 0));
    report.add(new Report.Row(s, "frames reordered", reordered, Double.NaN, "", "0", reordered == 0));
    report.note("migration: 3 nodes in the harness JVM on PostgreSQL; threshold 300 frames/s, sustain 1 s, rate "
        + "window 1 s, check every 500 ms, decide every 200 ms; after one warm-up round, the hot device sends 16-byte frames every 0.5 ms through echo while 3 "
        + "warm sockets (~80 frames/s each) share its node. Crossing → serving includes the 1 s sustain.");
  }

  private static String short_(String address) {
    return address == null ? "?" : address.replaceFirst("pekko://berth@", "");
  }
}
