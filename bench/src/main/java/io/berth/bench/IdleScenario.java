package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.function.IntSupplier;
import java.util.function.ToDoubleFunction;
import java.util.stream.Collectors;

/**
 * Idle sockets: how many devices one node holds, how fast they connect, and what each costs in
 * memory. The server runs in a JVM of its own (a Berth node from berth-node.jar, then the raw-TCP
 * anchor, {@link RawEdge}, with the same JVM options), so that the harness holds the device ends
 * and the server the other ends, each against its own open-file limit. Devices do the real
 * handshake ({@link IdleDevices}) and then stay silent; the node's idle timeout is raised so that
 * it does not close them while they are counted.
 *
 * <p>Memory per socket is the server's growth from a baseline to the full load, both sampled
 * right after a full GC, divided by the sockets opened. The baseline is taken after a warm-up of
 * {@value #WARM_UP} devices has come and gone, so that class loading, JIT compilation and the
 * node's shards are in it and the figure is the cost of one more socket. The warm-up's own rate
 * is reported too: connects into a freshly started server. The figure the goal applies to is the live
 * heap plus what grew outside the heap (RSS less the heap's resident pages); RSS is reported too,
 * but it also holds whatever heap the collector keeps committed beyond what is live (a serial
 * young generation is a third of the heap), which is the collector's sizing, not the socket's.
 */
final class IdleScenario {

  /** Open files left to each process for its own needs: jars, selectors, database connections. */
  private static final int HEADROOM = 1000;
  /**
   * Enough connects for the connect path to run as compiled code and for the node's shards to
   * run: with 500, the node spent 0.47-0.54 ms per connect during the opening (0.37-0.45 ms with
   * 4,000, most of the difference in the actor threads), a profile found each HELLO's HMAC at
   * ~22 µs where C2-compiled code takes ~0.2 µs, and about half of the node's shards started
   * during the measurement. The warm-up's
   * detached entities run until sharding passivates them, after {@link #IDLE_PASSIVATION} here,
   * so that they are in both memory samples however long the samples take to settle.
   */
  private static final int WARM_UP = 4_000;
  /** Open files a server may keep after the warm-up's connections closed: pool, jars, logs. */
  private static final int FILES_KEPT = 50;
  private static final String IDLE_PASSIVATION_KEY =
      "pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout";
  /** Instead of sharding's 2 minutes: longer than a round of this scenario takes. */
  private static final String IDLE_PASSIVATION = "10m";
  /** Handshakes under way at once: below the edge's TCP backlog (1024). */
  private static final int IN_FLIGHT = 512;
  /** A --quick run opens this many: enough for the per-socket figures, not the full count. */
  private static final int QUICK_SOCKETS = 4000;
  private static final Duration OPEN_LIMIT = Duration.ofSeconds(300);
  /** The serial collector of scripts/cluster.sh, and a heap free to grow and to shrink after a GC. */
  private static final String JAVA_OPTIONS = "-Xms32m -Xmx2g -XX:+UseSerialGC";
  private static final double KB = 1024;
  /**
   * After the last WELCOME, before idle CPU is measured: the server finishes its backlog and the
   * JIT its compiles. Measured 2 s after the last WELCOME, the idle figure was mostly those.
   */
  private static final Duration IDLE_SETTLE = Duration.ofSeconds(15);
  /**
   * How long, after the settle, to wait for a node's sockets to sleep (berth.socket.sleep-after,
   * 30 s by default, from each socket's WELCOME): the figures are those of quiet sockets.
   */
  private static final Duration SLEEP_LIMIT = Duration.ofSeconds(90);
  private static final Duration EMPTY_SETTLE = Duration.ofSeconds(2);
  private static final int SETTLE_SAMPLES = 5;
  private static final long SETTLE_TOLERANCE = 1024 * 1024;

  /**
   * How long the idle CPU is measured over, and how far apart the memory samples are taken (each
   * sample is repeated until the live heap falls by no more than {@link #SETTLE_TOLERANCE}, at
   * most {@link #SETTLE_SAMPLES} times). A --quick run halves both to finish in its 5 minutes.
   */
  private record Pace(Duration cpuWindow, Duration sampleInterval) {}

  private static final Pace FULL = new Pace(Duration.ofSeconds(10), Duration.ofSeconds(10));
  private static final Pace QUICK = new Pace(Duration.ofSeconds(5), Duration.ofSeconds(5));

  private IdleScenario() {}

  /**
   * One round on one server: what it held, how fast it took the devices, the CPU it used while
   * they sat idle, and what each socket cost (KB): live heap, memory outside the heap, and RSS.
   */
  record Round(String system, int opened, int failed, int dropped, double connectsPerSecond,
      double secondHalfPerSecond, double coldConnectsPerSecond, int warmUpFailed, double serverCpuMsPerConnect,
      double postgresCpuMsPerConnect,
      double idleCpuPercent, double emptyCpuPercent, double heapKb, double outsideHeapKb, double rssKb,
      int awake) {
    int held() {
      return opened - dropped;
    }

    double memoryKb() {
      return heapKb + outsideHeapKb;
    }
  }

  /**
   * A server process under test, how many socket entities it runs (a node's sockets sleep when
   * quiet; the anchor has none), and how to stop it (by its PID).
   */
  private record Server(long pid, InetSocketAddress address, IntSupplier runningSockets, Runnable stop)
      implements AutoCloseable {
    @Override
    public void close() {
      stop.run();
    }
  }

  /** The JVM options of a server in a JVM of its own: BERTH_BENCH_IDLE_JAVA_OPTS, else {@value #JAVA_OPTIONS}. */
  static String javaOptions() {
    return BenchMain.env("BERTH_BENCH_IDLE_JAVA_OPTS", JAVA_OPTIONS);
  }

  static void run(Report report, DatabaseSettings db, boolean quick, Path workDir, PrintStream progress)
      throws Exception {
    String javaOptions = javaOptions();
    long limit = JvmProbe.openFileLimit(JvmProbe.selfPid());
    int fits = (int) Math.min(limit - HEADROOM, limit - JvmProbe.openFiles(JvmProbe.selfPid()) - HEADROOM);
    int target = quick ? Math.min(QUICK_SOCKETS, fits) : fits;
    int rounds = quick ? 1 : 3;
    Pace pace = quick ? QUICK : FULL;
    progress.printf(Locale.ROOT, "idle: open-file limit %,d per process: %,d sockets per round, %d round(s)%n", limit,
        target, rounds);
    List<Round> berth = new ArrayList<>();
    List<Round> raw = new ArrayList<>();
    List<Round> mqtt = new ArrayList<>();
    for (int round = 1; round <= rounds; round++) {
      progress.printf("idle: round %d/%d: starting a Berth node in its own JVM%n", round, rounds);
      try (Server node = berthNode(db, javaOptions, workDir, false)) {
        berth.add(measure("Berth", node, IdleDevices.Kind.NATIVE, target, pace, progress));
        progress.println("idle: stopping the node");
      }
      try (Server edge = rawEdge(javaOptions, workDir)) {
        raw.add(measure("raw TCP", edge, IdleDevices.Kind.NATIVE, target, pace, progress));
      }
      progress.printf("idle: round %d/%d: starting a Berth node with its MQTT port%n", round, rounds);
      try (Server node = berthNode(db, javaOptions, workDir, true)) {
        mqtt.add(measure("Berth MQTT", node, IdleDevices.Kind.MQTT, target, pace, progress));
        progress.println("idle: stopping the node");
      }
    }
    addRows(report, limit, target, berth, raw);
    addMqttRows(report, berth, mqtt);
    String count = quick ? String.format(Locale.ROOT, "%,d (--quick; a full run opens as many as the open-file "
        + "limit allows)", target) : String.format(Locale.ROOT, "%,d (the open-file limit, %,d, minus %,d for each "
        + "process's own files)", target, limit, HEADROOM);
    report.note("idle: each server in a JVM of its own (" + javaOptions + "): a 1-node Berth cluster from "
        + "berth-node.jar on PostgreSQL (berth.edge.idle-timeout = 10m; sharding's idle passivation "
        + IDLE_PASSIVATION + ", so that the "
        + "warm-up's detached sockets stay in both memory samples), then the anchor, the harness's minimal "
        + "raw-TCP edge (one NIO thread: HELLO checked and answered with WELCOME, nothing kept but the connection). "
        + "Devices per round: " + count + ", driven by one NIO thread in the harness from 8 loopback addresses: real "
        + "HELLO/WELCOME handshakes (mapping discard), " + IN_FLIGHT + " at a time, then silent; closed with a reset "
        + "at the end. Then the same on a node's MQTT port (berth.edge.mqtt, mapping discard): each device an "
        + "MQTT 3.1.1 client (CONNECT with its token as the password, clean session, keep alive 0, encoded by "
        + "Netty's MQTT codec; CONNACK accepted), its rows beside Berth's own protocol's. "
        + "Before them, " + WARM_UP + " warm-up devices connect the same way and close with a reset, "
        + "so that the JIT has compiled the connect path and the node's shards run (their rate is the fresh "
        + "server's row). Connects/s: first connect to last WELCOME; CPU per connect: the server's and PostgreSQL's "
        + "processes' CPU time (/proc) over the opening, by the sockets opened (the server's by thread in the "
        + "progress lines). Idle CPU: over " + pace.cpuWindow().toSeconds()
        + " s, " + IDLE_SETTLE.toSeconds() + " s after the last WELCOME and, for the node, once its quiet sockets "
        + "sleep (berth.socket.sleep-after, 30 s by default: the entities stop, the connections stay; waited for "
        + "at most " + SLEEP_LIMIT.toSeconds() + " s, by the node's running sockets in GET /api/nodes); with no "
        + "device: over as long, after the warm-up devices left. Memory per socket: the server's growth from "
        + "a baseline taken after " + WARM_UP + " warm-up devices came and went to all devices connected, each "
        + "sampled after a full GC (jcmd GC.run, heap free ratios lowered for it; repeated every "
        + pace.sampleInterval().toSeconds() + " s until the live heap falls by at most "
        + SETTLE_TOLERANCE / (1024 * 1024) + " MB, at most " + SETTLE_SAMPLES + " times, so that connections just "
        + "closed and timers just cancelled are not counted): live heap (GC.heap_info used), "
        + "outside the heap (RSS less the heap's resident pages in /proc/PID/smaps: metaspace, code, stacks, direct "
        + "buffers, malloc), and RSS itself, which also holds heap the collector keeps beyond what is live; "
        + "1 KB = 1,024 bytes. " + rounds + " round(s), a fresh server each, medians.");
  }

  private static Round measure(String system, Server server, IdleDevices.Kind kind, int target, Pace pace,
      PrintStream progress) throws IOException {
    String prefix = "bench-idle-" + UUID.randomUUID().toString().substring(0, 8);
    long pid = server.pid();
    int filesBefore = JvmProbe.openFiles(pid);
    IdleDevices.Opening cold;
    try (IdleDevices warm = new IdleDevices(kind)) {
      cold = warm.open(server.address(), prefix + "-warm", WARM_UP, IN_FLIGHT, OPEN_LIMIT, system + " warm-up",
          progress);
    }
    progress.printf(Locale.ROOT, "idle: %s warm-up: %,.0f connects/s into the fresh server, %,d failed%s%n", system,
        cold.connectsPerSecond(), cold.failed(), firstFailure(cold));
    // The server has let go of the warm-up connections once its open files are about back where
    // they were (a node keeps a few more: its database pool grew, its jars are open).
    LocalCluster.awaitCondition(Duration.ofSeconds(30), () -> JvmProbe.openFiles(pid) < filesBefore + FILES_KEPT);
    long room = JvmProbe.openFileLimit(pid) - JvmProbe.openFiles(pid) - HEADROOM / 2;
    if (room < target) {
      throw new IllegalStateException(system + " has room for " + room + " more open files, not " + target);
    }
    JvmProbe.Sample baseline = settledSample(pid, pace);
    // The warm-up's sockets are detached, not gone: their entities run until sharding passivates them.
    int runningAtBaseline = server.runningSockets().getAsInt();
    // What the server burns with no device at all (a node's cluster, sharding and load reporting
    // run on timers of their own), so that the idle figure can be read per socket.
    LocalCluster.pause(EMPTY_SETTLE.toMillis());
    double emptyCpu = cpuPercent(pid, pace.cpuWindow());
    String histogramDir = BenchMain.env("BERTH_BENCH_IDLE_HISTOGRAM", "");
    Path histograms = histogramDir.isEmpty() ? null : Path.of(histogramDir);
    JvmProbe.Histogram before = histograms == null ? null : JvmProbe.histogram(pid);
    progress.printf(Locale.ROOT, "idle: %s: warmed up; opening %,d sockets%n", system, target);
    try (IdleDevices devices = new IdleDevices(kind)) {
      Map<String, Double> threadsBefore = JvmProbe.cpuSecondsByThreadGroup(pid);
      double cpuBefore = JvmProbe.cpuSeconds(pid);
      double postgresBefore = JvmProbe.postgresCpuSeconds();
      IdleDevices.Opening opening = devices.open(server.address(), prefix, target, IN_FLIGHT, OPEN_LIMIT, system,
          progress);
      int connects = Math.max(1, opening.opened());
      double cpuMs = 1000 * (JvmProbe.cpuSeconds(pid) - cpuBefore) / connects;
      double postgresMs = 1000 * (JvmProbe.postgresCpuSeconds() - postgresBefore) / connects;
      progress.printf(Locale.ROOT, "idle: %s: CPU per connect while opening: %.2f ms in the server (%s), %.2f ms in "
          + "PostgreSQL%n", system, cpuMs, byThreadGroup(threadsBefore, JvmProbe.cpuSecondsByThreadGroup(pid),
          connects), postgresMs);
      LocalCluster.pause(IDLE_SETTLE.toMillis());
      long sleepStart = System.nanoTime();
      boolean asleep = awaitAsleep(server, runningAtBaseline);
      int awake = Math.max(0, server.runningSockets().getAsInt() - runningAtBaseline);
      if (runningAtBaseline > 0 || awake > 0) {
        progress.printf(Locale.ROOT, "idle: %s: %s %.0f s after the settle: %,d socket entities running beyond the "
            + "%,d of the baseline%n", system, asleep ? "asleep" : "not all asleep",
            (System.nanoTime() - sleepStart) / 1e9, awake, runningAtBaseline);
      }
      double idleCpu = cpuPercent(pid, pace.cpuWindow());
      JvmProbe.Sample loaded = settledSample(pid, pace);
      int runningAtLoaded = server.runningSockets().getAsInt();
      if (runningAtLoaded >= 0 && (runningAtLoaded < runningAtBaseline || !asleep)) {
        // Warm-up entities passivated between the samples (their memory is missing from the
        // growth), or measured ones still awake (theirs is in it): either way the figure is off.
        progress.printf(Locale.ROOT, "idle: %s: WARNING: %,d socket entities running at the loaded sample, %,d at the "
            + "baseline%s: the memory per socket is off by what the difference holds%n", system, runningAtLoaded,
            runningAtBaseline, asleep ? "" : ", the measured sockets not all asleep");
      }
      if (histograms != null) {
        Path file = histograms.resolve("idle-" + system.replaceAll("\\W+", "-") + "-" + pid + ".txt");
        Files.createDirectories(histograms);
        Files.write(file, JvmProbe.histogram(pid).growthPer(before, opening.opened(), 60));
        progress.printf("idle: %s: heap growth per socket by class written to %s%n", system, file);
      }
      int dropped = devices.dropped();
      JvmProbe.Sample growth = loaded.minus(baseline);
      double per = Math.max(1, opening.opened()) * KB;
      Round r = new Round(system, opening.opened(), opening.failed(), dropped, opening.connectsPerSecond(),
          opening.secondHalfPerSecond(), cold.connectsPerSecond(), cold.failed(), cpuMs, postgresMs, idleCpu, emptyCpu,
          growth.heapUsedBytes() / per, growth.outsideHeapBytes() / per, growth.rssBytes() / per, awake);
      progress.printf(Locale.ROOT, "idle: %s: %,d open, %,d failed, %,d dropped; %,.0f connects/s (second half "
              + "%,.0f/s); %.0f%% of a core while idle (%.0f%% with no device); RSS %,d -> %,d KB, live heap %,d -> "
              + "%,d KB: per socket %.2f KB heap + %.2f KB outside it (RSS %.2f KB)%s%n", system, opening.opened(),
          opening.failed(), dropped, opening.connectsPerSecond(), opening.secondHalfPerSecond(), idleCpu, emptyCpu,
          baseline.rssBytes() / 1024,
          loaded.rssBytes() / 1024, baseline.heapUsedBytes() / 1024, loaded.heapUsedBytes() / 1024, r.heapKb(),
          r.outsideHeapKb(), r.rssKb(), firstFailure(opening));
      return r;
    }
  }

  private static JvmProbe.Sample settledSample(long pid, Pace pace) {
    return JvmProbe.afterGcSettled(pid, pace.sampleInterval(), SETTLE_SAMPLES, SETTLE_TOLERANCE);
  }

  private static String firstFailure(IdleDevices.Opening opening) {
    return opening.firstFailure() == null ? "" : " (first failure: " + opening.firstFailure() + ")";
  }

  /** The thread groups that used the most CPU between two readings, in ms per connect: "C2 CompilerThre 1.01, ...". */
  static String byThreadGroup(Map<String, Double> before, Map<String, Double> after, int connects) {
    return after.entrySet().stream()
        .map(e -> Map.entry(e.getKey(), 1000 * (e.getValue() - before.getOrDefault(e.getKey(), 0.0)) / connects))
        .filter(e -> e.getValue() >= 0.01)
        .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
        .limit(6)
        .map(e -> String.format(Locale.ROOT, "%s %.2f", e.getKey(), e.getValue()))
        .collect(Collectors.joining(", "));
  }

  /**
   * Whether the server's running socket entities fell back to {@code baseline} within
   * {@link #SLEEP_LIMIT}; asked once a second, so that the asking does not weigh on the idle figures.
   */
  private static boolean awaitAsleep(Server server, int baseline) {
    long deadline = System.nanoTime() + SLEEP_LIMIT.toNanos();
    while (true) {
      int running = server.runningSockets().getAsInt();
      if (running >= 0 && running <= baseline) {
        return true;
      }
      if (System.nanoTime() > deadline) {
        return false;
      }
      LocalCluster.pause(1000);
    }
  }

  /** The server's CPU time over {@code window}, in % of one core. */
  private static double cpuPercent(long pid, Duration window) {
    double before = JvmProbe.cpuSeconds(pid);
    LocalCluster.pause(window.toMillis());
    return 100 * (JvmProbe.cpuSeconds(pid) - before) / (window.toMillis() / 1000.0);
  }

  /** A node whose devices connect to its edge, or with {@code mqtt} to its MQTT port (mapping discard). */
  private static Server berthNode(DatabaseSettings db, String javaOptions, Path workDir, boolean mqtt)
      throws IOException {
    List<String> settings = new ArrayList<>(List.of("-Dberth.edge.idle-timeout=10m",
        "-D" + IDLE_PASSIVATION_KEY + "=" + IDLE_PASSIVATION));
    int mqttPort = mqtt ? LocalCluster.freePort() : 0;
    if (mqtt) {
      settings.addAll(List.of("-Dberth.edge.mqtt.enabled=on", "-Dberth.edge.mqtt.port=" + mqttPort,
          "-Dberth.edge.mqtt.mapping=discard"));
    }
    NodeProcess node = NodeProcess.start(db, javaOptions, settings,
        workDir.resolve(mqtt ? "idle-node-mqtt.log" : "idle-node.log"));
    InetSocketAddress address = mqtt ? new InetSocketAddress("127.0.0.1", mqttPort) : node.edge();
    return new Server(node.pid(), address, node::runningSockets, node::close);
  }

  private static Server rawEdge(String javaOptions, Path workDir) throws IOException {
    int port = LocalCluster.freePort();
    List<String> command = new ArrayList<>(List.of(ChildProcess.javaBinary()));
    command.addAll(List.of(javaOptions.trim().split("\\s+")));
    command.addAll(List.of("-cp", NodeProcess.harnessJar().toString(), RawEdge.class.getName(),
        Integer.toString(port)));
    ChildProcess process = ChildProcess.start("raw-edge", command, Map.of("BERTH_SECRET", LocalCluster.SECRET),
        workDir.resolve("idle-raw-edge.log"));
    try {
      process.awaitListening(port, Duration.ofSeconds(30));
    } catch (RuntimeException e) {
      process.close();
      throw e;
    }
    return new Server(process.pid(), new InetSocketAddress("127.0.0.1", port), () -> 0, process::close);
  }

  private static void addRows(Report report, long limit, int target, List<Round> berth, List<Round> raw) {
    String s = "idle";
    String all = String.format(Locale.ROOT, "all %,d", target);
    report.add(new Report.Row(s, "open-file limit per process (ulimit -n)", limit, Double.NaN, "", null, null));
    double held = median(berth, Round::held);
    report.add(new Report.Row(s, "sockets held open at once", held, median(raw, Round::held), "", all,
        held >= target));
    double rate = median(berth, Round::connectsPerSecond);
    report.add(new Report.Row(s, "connects/s while opening (HELLO → WELCOME)", rate,
        median(raw, Round::connectsPerSecond), "", "≥ 3,000", rate >= 3000));
    report.add(new Report.Row(s, "connects/s, second half of the opening", median(berth, Round::secondHalfPerSecond),
        median(raw, Round::secondHalfPerSecond), "", null, null));
    report.add(new Report.Row(s, String.format(Locale.ROOT, "connects/s into a freshly started server (the %,d of "
        + "the warm-up)", WARM_UP), median(berth, Round::coldConnectsPerSecond), median(raw,
        Round::coldConnectsPerSecond), "", null, null));
    report.add(new Report.Row(s, "server CPU per connect while opening, ms", median(berth,
        Round::serverCpuMsPerConnect), median(raw, Round::serverCpuMsPerConnect), "ms", null, null));
    report.add(new Report.Row(s, "PostgreSQL CPU per connect while opening, ms", median(berth,
        Round::postgresCpuMsPerConnect), Double.NaN, "ms", null, null));
    report.add(new Report.Row(s, "sockets whose entity was running when measured (not asleep)",
        median(berth, Round::awake), Double.NaN, "", null, null));
    report.add(new Report.Row(s, "server CPU while the sockets sit idle, % of one core",
        median(berth, Round::idleCpuPercent), median(raw, Round::idleCpuPercent), "%", null, null));
    report.add(new Report.Row(s, "server CPU with no device connected, % of one core",
        median(berth, Round::emptyCpuPercent), median(raw, Round::emptyCpuPercent), "%", null, null));
    double memory = median(berth, Round::memoryKb);
    report.add(new Report.Row(s, "memory per socket: live heap + outside the heap", memory,
        median(raw, Round::memoryKb), "KB", "≤ 8 KB", memory <= 8));
    report.add(new Report.Row(s, "of which live Java heap", median(berth, Round::heapKb), median(raw, Round::heapKb),
        "KB", null, null));
    report.add(new Report.Row(s, "RSS growth per socket (with the collector's headroom)", median(berth, Round::rssKb),
        median(raw, Round::rssKb), "KB", null, null));
    ToDoubleFunction<List<Round>> lost = rs -> rs.stream().mapToLong(r -> r.failed() + r.warmUpFailed() + r.dropped())
        .sum();
    double failed = lost.applyAsDouble(berth);
    report.add(new Report.Row(s, "handshakes failed (warm-up included) or sockets dropped, all rounds", failed,
        lost.applyAsDouble(raw), "", "0", failed == 0));
  }

  /**
   * The MQTT port's rows, beside Berth's own protocol (the anchor column here). The goal: memory
   * per idle MQTT socket at most twice the native socket's.
   */
  private static void addMqttRows(Report report, List<Round> berth, List<Round> mqtt) {
    String s = "idle";
    String beside = " — MQTT 3.1.1 clients on the MQTT port (anchor column: Berth's own protocol)";
    double nativeMemory = median(berth, Round::memoryKb);
    double memory = median(mqtt, Round::memoryKb);
    report.add(new Report.Row(s, "memory per socket: live heap + outside the heap" + beside, memory, nativeMemory,
        "KB", "≤ 2× own protocol", memory <= 2 * nativeMemory));
    report.add(new Report.Row(s, "of which live Java heap" + beside, median(mqtt, Round::heapKb),
        median(berth, Round::heapKb), "KB", null, null));
    report.add(new Report.Row(s, "connects/s while opening (CONNECT → CONNACK)" + beside,
        median(mqtt, Round::connectsPerSecond), median(berth, Round::connectsPerSecond), "", null, null));
    report.add(new Report.Row(s, "server CPU per connect while opening, ms" + beside,
        median(mqtt, Round::serverCpuMsPerConnect), median(berth, Round::serverCpuMsPerConnect), "ms", null, null));
    report.add(new Report.Row(s, "server CPU while the sockets sit idle, % of one core" + beside,
        median(mqtt, Round::idleCpuPercent), median(berth, Round::idleCpuPercent), "%", null, null));
    double failed = mqtt.stream().mapToLong(r -> r.failed() + r.warmUpFailed() + r.dropped()).sum();
    report.add(new Report.Row(s, "handshakes failed (warm-up included) or sockets dropped, all rounds" + beside,
        failed, Double.NaN, "", "0", failed == 0));
  }

  private static double median(List<Round> rounds, ToDoubleFunction<Round> figure) {
    Stats stats = new Stats();
    rounds.forEach(r -> stats.add(figure.applyAsDouble(r)));
    return stats.median();
  }
}
