package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A node lost under a fleet of idle devices, and a node drained under one: three nodes, each in a
 * JVM of its own (berth-node.jar, default settings: node leases on, PostgreSQL), with as many idle
 * devices on each as the harness's open-file limit allows ({@link FleetDevices}: welcomed, one
 * frame acknowledged, then silent).
 *
 * <ul>
 *   <li><b>kill</b>: SIGKILL of node 1. Its devices see their connections reset and reconnect at
 *       once to the next node, which holds each HELLO until the session is taken over (the dead
 *       node's lease lapses, it is downed, its shards start elsewhere). Figures: from the kill to
 *       each device's WELCOME (p50, p99, max), the rate of WELCOMEs during the storm, failed
 *       handshakes, and frames a device had acknowledged that its resumed session no longer has.
 *   <li><b>drain</b>: on a fresh cluster, {@code POST /api/nodes/{node}/drain} of node 2. Figures:
 *       when its readiness fails, from the request to each redirected device's WELCOME, and to
 *       the node's edge holding no device.
 * </ul>
 *
 * <p>The anchor is the time Berth took before node leases (docs/failover.md): 46 s from a kill to
 * a device served again, with one device.
 */
final class FailoverScenario {

  /** From a kill -9 to one device served again, before node leases (docs/cluster.md, 2026-11). */
  private static final double BEFORE_LEASES_SECONDS = 46;
  private static final int NODES = 3;
  /** Open files left to the harness for its own needs: jars, selectors, its HTTP client. */
  private static final int HEADROOM = 1500;
  private static final int QUICK_PER_NODE = 1000;
  /**
   * Handshakes under way at once while the fleet opens. Three freshly started nodes on two cores
   * welcome some 50 devices a second at first (every shard is allocated once, the JITs compile):
   * with 512 in flight most waited past the edge's open-timeout (10 s) and started again.
   */
  private static final int IN_FLIGHT = 128;
  private static final Duration OPEN_LIMIT = Duration.ofMinutes(15);
  private static final Duration EVENT_LIMIT = Duration.ofSeconds(120);
  /** After the devices are open, before the event: the nodes finish their backlog, sockets settle. */
  private static final Duration SETTLE = Duration.ofSeconds(10);
  private static final String JAVA_OPTIONS = "-Xms64m -Xmx2g -XX:+UseSerialGC";

  private FailoverScenario() {}

  /** What one event did to the fleet: resumption times from the event (s), and the storm. */
  record Outcome(int devices, int connectedToNode, int droppedFromNode, int dropped, int resumed, Stats resumeSeconds,
      Stats darkSeconds, double welcomesPerSecond, int failed,
      String firstFailure, long lost, double readinessFailedAfter, double emptyAfter, Cpu cpu) {}

  /**
   * CPU seconds the nodes (those running throughout) used over an event, and how much of it their
   * JIT compiler threads. (PostgreSQL's is not summed: the killed node's backends end meanwhile.)
   */
  record Cpu(double nodes, double compiler) {
    double compilerShare() {
      return nodes <= 0 ? Double.NaN : 100 * compiler / nodes;
    }
  }

  /** Reads the CPU of {@code pids} now, and gives the difference when asked again. */
  private static final class CpuMeter {
    private final List<Long> pids;
    private final double nodes;
    private final double compiler;

    CpuMeter(List<Long> pids) {
      this.pids = pids;
      this.nodes = nodes(pids);
      this.compiler = compiler(pids);
    }

    Cpu since() {
      return new Cpu(nodes(pids) - nodes, compiler(pids) - compiler);
    }

    private static double nodes(List<Long> pids) {
      return pids.stream().mapToDouble(JvmProbe::cpuSeconds).sum();
    }

    private static double compiler(List<Long> pids) {
      return pids.stream().mapToDouble(pid -> JvmProbe.cpuSecondsByThreadGroup(pid).entrySet().stream()
          .filter(e -> e.getKey().contains("CompilerThre")).mapToDouble(Map.Entry::getValue).sum()).sum();
    }
  }

  static void run(Report report, DatabaseSettings db, boolean quick, Path workDir, PrintStream progress)
      throws Exception {
    long limit = JvmProbe.openFileLimit(JvmProbe.selfPid());
    int fits = (int) ((limit - JvmProbe.openFiles(JvmProbe.selfPid()) - HEADROOM) / NODES);
    int perNode = quick ? Math.min(QUICK_PER_NODE, fits) : Math.min(6000, fits);
    progress.printf(Locale.ROOT, "failover: open-file limit %,d: %,d idle devices per node, %d nodes%n", limit, perNode,
        NODES);
    Outcome kill;
    try (Cluster cluster = Cluster.start(db, workDir, "kill", progress)) {
      kill = kill(cluster, perNode, progress);
    }
    Outcome drain;
    try (Cluster cluster = Cluster.start(db, workDir, "drain", progress)) {
      drain = drain(cluster, perNode, progress);
    }
    addRows(report, perNode, kill, drain);
    report.note("failover: 3 Berth nodes, each in a JVM of its own (" + javaOptions() + ", berth-node.jar, "
        + "otherwise default settings: node leases on, PostgreSQL; edge idle timeout 10 m; between the nodes "
        + "plaintext), "
        + String.format(Locale.ROOT, "%,d", perNode) + " idle devices on each, driven by one NIO thread in the "
        + "harness (HELLO → WELCOME, one DATA frame acknowledged, then silent). kill: SIGKILL of node 1; its devices "
        + "reconnect at once to the next node and resume (HELLO with resume); a refused connect moves on at once, a "
        + "retryable ERROR or a close before the WELCOME waits " + FleetDevices.RETRY_PAUSE.toMillis() + " ms. "
        + "Times from the kill to each device's last WELCOME elsewhere; resumptions/s from the first such WELCOME to "
        + "the last (in the anchor column of the lost-connection rows: how many of them were on the node); lost: "
        + "devices whose resumed session says it accepted less than the frame the device had acknowledged. "
        + "drain: a fresh cluster, POST /api/nodes/{node 2}/drain; its readiness polled every 100 ms, its "
        + "edge's connections (GET /api/nodes) every 250 ms. Anchor: " + (int) BEFORE_LEASES_SECONDS + " s from a "
        + "kill -9 to one device served again, before node leases (docs/failover.md).");
  }

  /** The nodes' JVM options: BERTH_BENCH_FAILOVER_JAVA_OPTS, else {@value #JAVA_OPTIONS}. */
  private static String javaOptions() {
    return BenchMain.env("BERTH_BENCH_FAILOVER_JAVA_OPTS", JAVA_OPTIONS);
  }

  private static Outcome kill(Cluster cluster, int perNode, PrintStream progress) throws IOException {
    try (FleetDevices fleet = new FleetDevices(cluster.edges())) {
      open(fleet, "kill", perNode, progress);
      NodeProcess victim = cluster.nodes.get(0);
      fleet.mark();
      int connected = fleet.heldOn(0);
      progress.printf(Locale.ROOT, "failover: kill -9 of node 1 (%s), %,d devices connected to it%n", victim.address(),
          connected);
      CpuMeter cpu = new CpuMeter(cluster.nodes.subList(1, NODES).stream().map(NodeProcess::pid).toList());
      long killedAt = System.nanoTime();
      victim.kill();
      fleet.runUntil(() -> fleet.dropped() > 0 && fleet.allResumed(), EVENT_LIMIT, reporter(fleet, progress));
      Outcome o = outcome(fleet, perNode * NODES, connected, fleet.droppedFrom(0), killedAt, Double.NaN, Double.NaN,
          cpu.since());
      progress.printf(Locale.ROOT, "failover: kill: %,d dropped, %,d resumed; p50 %.1f s, p99 %.1f s, max %.1f s after "
          + "the kill; %,.0f WELCOMEs/s; %,d failed handshakes%s; %d lost; %s%n", o.dropped(), o.resumed(),
          o.resumeSeconds().median(), o.resumeSeconds().percentile(99), o.resumeSeconds().percentile(100),
          o.welcomesPerSecond(), o.failed(), o.firstFailure() == null ? "" : " (first: " + o.firstFailure() + ")",
          o.lost(), describe(o.cpu()));
      return o;
    }
  }

  private static Outcome drain(Cluster cluster, int perNode, PrintStream progress) throws Exception {
    NodeProcess drained = cluster.nodes.get(1);
    try (FleetDevices fleet = new FleetDevices(cluster.edges())) {
      open(fleet, "drain", perNode, progress);
      fleet.mark();
      int connected = fleet.heldOn(1);
      progress.printf(Locale.ROOT, "failover: draining node 2 (%s), %,d devices connected to it%n", drained.address(),
          connected);
      AtomicLong notReadyAt = new AtomicLong();
      AtomicLong emptyAt = new AtomicLong();
      CpuMeter cpu = new CpuMeter(cluster.nodes.stream().map(NodeProcess::pid).toList());
      long askedAt = System.nanoTime();
      int status = drained.call("POST", "/api/nodes/" + drained.address() + "/drain");
      if (status / 100 != 2) {
        throw new IllegalStateException("POST drain answered " + status);
      }
      ScheduledExecutorService pollers = Executors.newScheduledThreadPool(2);
      try {
        pollers.scheduleWithFixedDelay(() -> {
          if (notReadyAt.get() == 0 && drained.call("GET", "/ready") != 200) {
            notReadyAt.compareAndSet(0, System.nanoTime());
          }
        }, 0, 100, TimeUnit.MILLISECONDS);
        pollers.scheduleWithFixedDelay(() -> {
          if (emptyAt.get() == 0 && drained.connections() == 0) {
            emptyAt.compareAndSet(0, System.nanoTime());
          }
        }, 0, 250, TimeUnit.MILLISECONDS);
        fleet.runUntil(() -> fleet.dropped() > 0 && fleet.allResumed() && emptyAt.get() != 0,
            EVENT_LIMIT, reporter(fleet, progress));
      } finally {
        pollers.shutdownNow();
        pollers.awaitTermination(10, TimeUnit.SECONDS);
      }
      Outcome o = outcome(fleet, perNode * NODES, connected, fleet.droppedFrom(1), askedAt,
          seconds(askedAt, notReadyAt.get()),
          seconds(askedAt, emptyAt.get()), cpu.since());
      progress.printf(Locale.ROOT, "failover: drain: not ready after %.2f s, empty after %.1f s; %,d redirected, %,d "
          + "resumed; p50 %.1f s, p99 %.1f s, max %.1f s; redirect to WELCOME p50 %.1f s, p99 %.1f s, max %.1f s; "
          + "%,d failed handshakes%s; %d lost; %s%n",
          o.readinessFailedAfter(), o.emptyAfter(), o.dropped(), o.resumed(), o.resumeSeconds().median(),
          o.resumeSeconds().percentile(99), o.resumeSeconds().percentile(100), o.darkSeconds().median(),
          o.darkSeconds().percentile(99), o.darkSeconds().percentile(100), o.failed(), o.firstFailure() == null
              ? "" : " (first: " + o.firstFailure() + ")", o.lost(), describe(o.cpu()));
      drained.call("DELETE", "/api/nodes/" + drained.address() + "/drain");
      return o;
    }
  }

  private static void open(FleetDevices fleet, String event, int perNode, PrintStream progress) throws IOException {
    String prefix = "bench-" + event + "-" + UUID.randomUUID().toString().substring(0, 8);
    int held = fleet.open(prefix, perNode, IN_FLIGHT, OPEN_LIMIT, progress);
    if (held < perNode * NODES) {
      throw new IllegalStateException("only " + held + " of " + perNode * NODES + " devices connected within "
          + OPEN_LIMIT.toMinutes() + " min" + (fleet.firstFailure() == null ? "" : "; first failure: "
          + fleet.firstFailure()));
    }
    progress.printf(Locale.ROOT, "failover: %,d devices held; settling %d s%n", held, SETTLE.toSeconds());
    fleet.runUntil(() -> false, SETTLE, () -> { });
  }

  private static Runnable reporter(FleetDevices fleet, PrintStream progress) {
    long[] next = {System.nanoTime() + Duration.ofSeconds(2).toNanos()};
    return () -> {
      long now = System.nanoTime();
      if (now > next[0]) {
        next[0] += Duration.ofSeconds(2).toNanos();
        progress.printf(Locale.ROOT, "failover: %.0f s: %,d dropped, %,d resumed, %,d failed handshakes%n",
            (now - fleet.markedAt()) / 1e9, fleet.dropped(), fleet.resumed(), fleet.failedHandshakes());
      }
    };
  }

  /**
   * What the fleet went through since the mark. The rate of resumptions runs from the first WELCOME
   * on another node to the last: the wait before any session can be taken over is not in it.
   */
  private static Outcome outcome(FleetDevices fleet, int devices, int connected, int droppedFromNode, long from,
      double notReady, double empty, Cpu cpu) {
    long first = fleet.firstResume();
    long last = fleet.lastResume();
    double rate = first == 0 || last <= first ? Double.NaN : fleet.resumed() / ((last - first) / 1e9);
    return new Outcome(devices, connected, droppedFromNode, fleet.dropped(), fleet.resumed(),
        fleet.resumeSeconds(from), fleet.darkSeconds(), rate,
        fleet.failedHandshakes(), fleet.firstFailure(), fleet.lostFrames(), notReady, empty, cpu);
  }

  private static String describe(Cpu cpu) {
    return String.format(Locale.ROOT, "nodes' CPU %.1f s (JIT compiler %.0f %%)", cpu.nodes(), cpu.compilerShare());
  }

  private static double seconds(long from, long at) {
    return at == 0 ? Double.NaN : (at - from) / 1e9;
  }

  private static void addRows(Report report, int perNode, Outcome kill, Outcome drain) {
    String s = "failover";
    report.add(new Report.Row(s, "idle devices per node", perNode, Double.NaN, "", "~6,000", perNode >= 5000));
    report.add(new Report.Row(s, "kill -9: devices connected to the killed node", kill.connectedToNode(), Double.NaN,
        "", null, null));
    report.add(new Report.Row(s, "kill -9: devices that lost their connection (from the killed node)", kill.dropped(),
        kill.droppedFromNode(), "", null, null));
    report.add(new Report.Row(s, "kill -9: resumed elsewhere", kill.resumed(), Double.NaN, "", "all",
        kill.resumed() == kill.dropped() && kill.dropped() > 0));
    report.add(new Report.Row(s, "kill -9 to WELCOME, p50", kill.resumeSeconds().median(), BEFORE_LEASES_SECONDS, "s",
        null, null));
    double p99 = kill.resumeSeconds().percentile(99);
    report.add(new Report.Row(s, "kill -9 to WELCOME, p99", p99, BEFORE_LEASES_SECONDS, "s", "≤ 10 s", p99 <= 10));
    double max = kill.resumeSeconds().percentile(100);
    report.add(new Report.Row(s, "kill -9 to WELCOME, max (all resumed)", max, BEFORE_LEASES_SECONDS, "s", "≤ 15 s",
        max <= 15 && kill.resumed() == kill.dropped()));
    report.add(new Report.Row(s, "kill -9: resumptions/s, first to last WELCOME elsewhere", kill.welcomesPerSecond(),
        Double.NaN, "", null, null));
    report.add(new Report.Row(s, "kill -9: failed handshakes (refused connects, retryable ERRORs)", kill.failed(),
        Double.NaN, "", null, null));
    report.add(new Report.Row(s, "kill -9: acknowledged frames lost", kill.lost(), Double.NaN, "", "0",
        kill.lost() == 0));
    report.add(new Report.Row(s, "kill -9: surviving nodes' CPU until all resumed", kill.cpu().nodes(), Double.NaN,
        "s", null, null));
    report.add(new Report.Row(s, "kill -9: of which their JIT compiler threads", kill.cpu().compilerShare(),
        Double.NaN, "%", null, null));
    report.add(new Report.Row(s, "drain: readiness fails after", drain.readinessFailedAfter(), Double.NaN, "s", null,
        null));
    report.add(new Report.Row(s, "drain: devices connected to the drained node", drain.connectedToNode(), Double.NaN,
        "", null, null));
    report.add(new Report.Row(s, "drain: devices redirected or dropped (from the drained node)", drain.dropped(),
        drain.droppedFromNode(), "", null, null));
    report.add(new Report.Row(s, "drain: resumed elsewhere", drain.resumed(), Double.NaN, "", "all",
        drain.resumed() == drain.dropped() && drain.dropped() > 0));
    report.add(new Report.Row(s, "drain to WELCOME, p50", drain.resumeSeconds().median(), Double.NaN, "s", null,
        null));
    report.add(new Report.Row(s, "drain to WELCOME, p99", drain.resumeSeconds().percentile(99), Double.NaN, "s", null,
        null));
    report.add(new Report.Row(s, "drain to WELCOME, max", drain.resumeSeconds().percentile(100), Double.NaN, "s", null,
        null));
    report.add(new Report.Row(s, "drain: each device's redirect to its WELCOME, p50", drain.darkSeconds().median(),
        Double.NaN, "s", null, null));
    report.add(new Report.Row(s, "drain: each device's redirect to its WELCOME, p99",
        drain.darkSeconds().percentile(99), Double.NaN, "s", null, null));
    report.add(new Report.Row(s, "drain: each device's redirect to its WELCOME, max",
        drain.darkSeconds().percentile(100), Double.NaN, "s", null, null));
    report.add(new Report.Row(s, "drain: node's edge empty after", drain.emptyAfter(), Double.NaN, "s", null, null));
    report.add(new Report.Row(s, "drain: failed handshakes", drain.failed(), Double.NaN, "", null, null));
    report.add(new Report.Row(s, "drain: acknowledged frames lost", drain.lost(), Double.NaN, "", "0",
        drain.lost() == 0));
    report.add(new Report.Row(s, "drain: nodes' CPU until all resumed", drain.cpu().nodes(), Double.NaN, "s", null,
        null));
    report.add(new Report.Row(s, "drain: of which their JIT compiler threads", drain.cpu().compilerShare(),
        Double.NaN, "%", null, null));
  }

  /** Three node processes on one database, stopped by PID at the end (a killed one is gone already). */
  private static final class Cluster implements AutoCloseable {
    final List<NodeProcess> nodes = new ArrayList<>();

    static Cluster start(DatabaseSettings db, Path workDir, String event, PrintStream progress) throws IOException {
      Cluster cluster = new Cluster();
      try {
        for (int i = 1; i <= NODES; i++) {
          progress.printf("failover: %s: starting node %d of %d%n", event, i, NODES);
          cluster.nodes.add(NodeProcess.start(db, javaOptions(),
              List.of("-Dberth.edge.idle-timeout=10m"), Map.of(),
              workDir.resolve("failover-" + event + "-node-" + i + ".log"),
              cluster.nodes.isEmpty() ? null : cluster.nodes.get(0)));
        }
      } catch (IOException | RuntimeException e) {
        cluster.close();
        throw e;
      }
      return cluster;
    }

    List<InetSocketAddress> edges() {
      return nodes.stream().map(NodeProcess::edge).toList();
    }

    @Override
    public void close() {
      for (int i = nodes.size() - 1; i >= 0; i--) {
        nodes.get(i).close();
      }
    }
  }
}
