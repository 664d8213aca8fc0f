package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import io.berth.protocol.ClientTls;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Function;
import java.util.function.IntSupplier;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What TLS on the device edge costs: Berth plaintext and Berth TLS side by side in one run, and
 * Mosquitto with a TLS listener as the anchor.
 *
 * <ul>
 *   <li>Idle sockets: memory per connection and connects/s with full handshakes, on three servers
 *       each in a process of its own: a plaintext node and a TLS node (berth-node.jar, as the idle
 *       scenario starts it) and Mosquitto. Memory per connection is the growth from a first set of
 *       held connections to that set plus a second one, each sampled once they are quiet, by the
 *       second set: nothing closed between the samples, so freed memory that the allocator keeps
 *       (a C program's malloc, a JVM's pools) is neither counted nor reused.
 *   <li>Uplink: acked frames/s with 16 connections ({@link UplinkScenario}'s rounds), plaintext vs
 *       TLS, each on a 1-node cluster in the harness.
 *   <li>Relay: 1 pair ({@link RelayScenario}'s rounds), plaintext vs TLS, each on a 2-node cluster.
 * </ul>
 */
final class TlsScenario {

  private static final String S = "tls";
  /** Clients between connect and answer at once: below Mosquitto's accept backlog (100). */
  private static final int IN_FLIGHT = 64;
  private static final Duration OPEN_LIMIT = Duration.ofSeconds(120);
  private static final Duration TOKEN_TTL = Duration.ofHours(2);
  /** The MQTT keep-alive of the idle clients: as long as the nodes' raised idle timeout. */
  private static final Duration MQTT_KEEP_ALIVE = Duration.ofMinutes(10);
  /** The node settings of the idle part: quiet devices stay, and their entities sleep soon. */
  private static final List<String> NODE_SETTINGS = List.of("-Dberth.edge.idle-timeout=10m",
      "-Dberth.socket.sleep-after=5s");
  /** How long to wait for a node's quiet sockets to sleep (5 s after their WELCOME). */
  private static final Duration SLEEP_LIMIT = Duration.ofSeconds(60);
  private static final Duration SAMPLE_INTERVAL = Duration.ofSeconds(5);
  private static final long SETTLE_TOLERANCE = 1024 * 1024;
  /** Mosquitto frees each handshake's buffers as it ends; a moment before its RSS is read. */
  private static final Duration MOSQUITTO_SETTLE = Duration.ofSeconds(3);
  /** Open files a server may keep after the clients of a round closed. */
  private static final int FILES_KEPT = 50;
  private static final Duration FILES_LIMIT = Duration.ofSeconds(60);
  /**
   * CPU, in cores, under which the servers and PostgreSQL together count as quiet: two idle nodes
   * keep their cluster and load reports going. A node whose devices just left is far above it
   * for a while (each socket records the end of its connection), which would weigh on the next
   * server measured.
   */
  private static final double QUIET_CORES = 0.2;
  private static final Duration QUIET_LIMIT = Duration.ofSeconds(90);
  private static final int UPLINK_CONNECTIONS = 16;
  private static final double KB = 1024;
  private static final Pattern EDGE_LISTENING = Pattern.compile("Edge listening for devices on \\S+ \\(([^;)]+)");

  /**
   * How much a run does: connections held in the first and second set, how many memory samples
   * a node's reading may take to settle (each takes a few seconds of jcmd), connects per connect
   * round and how many rounds, and the uplink and relay rounds' length.
   */
  private record Pace(int firstSet, int secondSet, int settleSamples, int connectsPerRound, int rounds,
      Duration sendFor, Duration warmUp) {}

  /**
   * A full run's warm-up rounds are 10 s: after 4 s (the uplink scenario's), the first measured
   * uplink round still ran at half the rate of the later ones, for plaintext and TLS alike.
   */
  private static final Pace FULL = new Pace(2000, 4000, 5, 2000, 3, Duration.ofSeconds(10), Duration.ofSeconds(10));
  private static final Pace QUICK = new Pace(500, 1500, 1, 1000, 1, Duration.ofSeconds(3), Duration.ofSeconds(2));

  private TlsScenario() {}

  /** A server of the idle part: where clients connect, how they greet it, and how to read it. */
  private record Server(String name, long pid, InetSocketAddress address, IdleClients.Greeting greeting,
      SslContext clientTls, boolean jvm, IntSupplier runningSockets, Runnable stop) implements AutoCloseable {
    @Override
    public void close() {
      stop.run();
    }
  }

  /**
   * One server's idle figures: per connection of the second set, live heap, memory outside the
   * heap (for Mosquitto: all of its RSS) and RSS, in KB; its connects and what failed or dropped.
   */
  private record Idle(String system, int opened, int failed, int dropped, double heapKb, double outsideHeapKb,
      double rssKb, String session) {
    double memoryKb() {
      return heapKb + outsideHeapKb;
    }
  }

  /**
   * One connect round on one server: connects/s, CPU per connect in the server and in the harness,
   * and the harness's CPU over the round in cores (near 1: its clients' one event loop set the pace).
   */
  private record Connects(String system, int opened, int failed, double perSecond, double serverCpuMs, double clientCpuMs,
      double clientCores, String serverThreads) {}

  /** The idle part's figures: per server, its idle connections and its connect rounds; what the TLS node logged. */
  private record Sockets(Map<String, Idle> idle, Map<String, List<Connects>> connects, String edgeLog) {}

  static void run(Report report, DatabaseSettings db, boolean quick, Path workDir, PrintStream progress)
      throws Exception {
    Pace pace = quick ? QUICK : FULL;
    long start = System.nanoTime();
    Path dir = workDir.resolve("tls");
    TlsMaterial tls = TlsMaterial.create(dir);
    String javaOptions = IdleScenario.javaOptions();
    String loadBefore = loadAverage();
    progress.printf("tls: load average %s; certificates in %s; TLS provider %s (edge and the harness's clients)%n",
        loadBefore, dir, tls.providerName());
    Sockets sockets = sockets(db, tls, pace, javaOptions, dir, progress);
    addIdleRows(report, tls, sockets.idle(), sockets.connects());
    progress.printf("tls: idle connections and connects done (%d s in)%n", secondsSince(start));
    Map<String, List<UplinkScenario.Result>> uplink = uplink(db, tls, pace, progress);
    progress.printf("tls: uplink done (%d s in)%n", secondsSince(start));
    Map<String, List<RelayRound.Result>> relay = relay(db, tls, pace, progress);
    addUplinkAndRelayRows(report, tls, uplink, relay);
    String loadAfter = loadAverage();
    progress.printf("tls: load average %s%n", loadAfter);
    report.note(note(tls, pace, javaOptions, sockets, quick) + " Load average (1, 5, 15 min) at the scenario's "
        + "start: " + loadBefore + "; at its end: " + loadAfter + ".");
  }

  /**
   * The idle part: starts the two nodes (at once) and Mosquitto, measures each one's idle
   * connections in turn, then the connect rounds, alternating; stops them all by PID.
   */
  private static Sockets sockets(DatabaseSettings db, TlsMaterial tls, Pace pace, String javaOptions, Path dir,
      PrintStream progress) throws Exception {
    progress.println("tls: starting a plaintext node and a TLS node (each a JVM of its own, at once) and mosquitto "
        + "with TLS");
    SslContext clientTls = tls.clientContext();
    CompletableFuture<Server> secureStart = CompletableFuture.supplyAsync(() -> node("Berth TLS", db, javaOptions,
        tls.nodeEnvironment(), clientTls, dir.resolve("node-tls.log")));
    Server plainStarted;
    try {
      plainStarted = node("Berth plaintext", db, javaOptions, Map.of(), null, dir.resolve("node-plain.log"));
    } catch (RuntimeException e) {
      secureStart.thenAccept(Server::close);
      throw e;
    }
    Map<String, Idle> idle = new HashMap<>();
    Map<String, List<Connects>> connects = new HashMap<>();
    try (Server plain = plainStarted; Server secure = started(secureStart); Server mosquitto = mosquitto(dir, tls)) {
      String edgeLog = edgeLine(dir.resolve("node-tls.log"));
      progress.printf("tls: the TLS node says: %s; mosquitto pid %d on %s%n", edgeLog, mosquitto.pid(),
          mosquitto.address());
      List<Server> servers = List.of(plain, secure, mosquitto);
      for (Server s : servers) {
        awaitQuiet(servers, progress);
        idle.put(s.name(), idle(s, pace, progress));
      }
      for (int round = 1; round <= pace.rounds(); round++) {
        for (Server s : inTurn(servers, round)) {
          awaitQuiet(servers, progress);
          Connects c = connects(s, pace.connectsPerRound(), progress);
          connects.computeIfAbsent(s.name(), k -> new ArrayList<>()).add(c);
          progress.printf(Locale.ROOT, "tls: connect round %d/%d, %s: %,.0f connects/s; CPU per connect %.2f ms in "
              + "the server (%s), %.2f ms in the harness (%.2f cores); %d failed%n", round, pace.rounds(), s.name(),
              c.perSecond(), c.serverCpuMs(), c.serverThreads(), c.clientCpuMs(), c.clientCores(), c.failed());
        }
      }
      progress.println("tls: stopping the nodes and mosquitto");
      return new Sockets(idle, connects, edgeLog);
    }
  }

  // ------------------------------------------------------------------ idle sockets and connects

  private static Server node(String name, DatabaseSettings db, String javaOptions, Map<String, String> env,
      SslContext clientTls, Path log) {
    NodeProcess node;
    try {
      node = NodeProcess.start(db, javaOptions, NODE_SETTINGS, env, log);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + name, e);
    }
    IdleClients.Greeting hello = IdleClients.berthHello(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8),
        TOKEN_TTL);
    return new Server(name, node.pid(), node.edge(), hello, clientTls, true, node::runningSockets, node::close);
  }

  private static Server mosquitto(Path dir, TlsMaterial tls) throws IOException {
    Mosquitto broker = Mosquitto.startTls(dir, tls.chain(), tls.key());
    return new Server("Mosquitto TLS", broker.pid(), broker.address(), IdleClients.mqttConnect(MQTT_KEEP_ALIVE),
        tls.clientContext(), false, () -> 0, broker::close);
  }

  private static long secondsSince(long nanos) {
    return Math.round((System.nanoTime() - nanos) / 1e9);
  }

  /** The server a start in the background gave, or what it failed with. */
  private static Server started(CompletableFuture<Server> start) throws Exception {
    try {
      return start.get();
    } catch (ExecutionException e) {
      throw e.getCause() instanceof Exception cause ? cause : e;
    }
  }

  /**
   * Waits (bounded) until the servers and PostgreSQL together use less than {@value #QUIET_CORES}
   * of a core over a second, so that what one server still does for the clients just gone does
   * not weigh on the next one measured.
   */
  private static void awaitQuiet(List<Server> servers, PrintStream progress) {
    long deadline = System.nanoTime() + QUIET_LIMIT.toNanos();
    while (true) {
      double before = cpuSeconds(servers);
      LocalCluster.pause(1000);
      double used = cpuSeconds(servers) - before;
      if (used < QUIET_CORES) {
        return;
      }
      if (System.nanoTime() > deadline) {
        progress.printf(Locale.ROOT, "tls: WARNING: the servers and PostgreSQL still use %.0f%% of a core after %d "
            + "s; measuring anyway%n", 100 * used, QUIET_LIMIT.toSeconds());
        return;
      }
    }
  }

  /** CPU seconds the servers and the local PostgreSQL (none: 0) have used so far. */
  private static double cpuSeconds(List<Server> servers) {
    double postgres = JvmProbe.postgresCpuSeconds();
    return servers.stream().mapToDouble(s -> JvmProbe.cpuSeconds(s.pid())).sum()
        + (Double.isNaN(postgres) ? 0 : postgres);
  }

  /** The machine's load averages over 1, 5 and 15 minutes, as /proc/loadavg has them: "1.52 2.10 3.00". */
  private static String loadAverage() {
    try {
      String[] fields = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return String.join(" ", fields[0], fields[1], fields[2]);
    } catch (IOException | RuntimeException e) {
      return "(unknown: " + e.getMessage() + ")";
    }
  }

  /** What the node logged of its edge at start: "TLS, openssl provider, client certificates none". */
  private static String edgeLine(Path log) throws IOException {
    Matcher m = EDGE_LISTENING.matcher(Files.readString(log));
    return m.find() ? m.group(1).strip() : "(no \"Edge listening\" line in " + log + ")";
  }

  /**
   * Holds a first set of connections, samples the server once they are quiet, adds a second set
   * and samples again: the growth by the second set is the cost of one more idle connection.
   */
  private static Idle idle(Server server, Pace pace, PrintStream progress) {
    String prefix = "bench-tls-" + UUID.randomUUID().toString().substring(0, 8);
    try (IdleClients clients = new IdleClients(server.greeting(), server.clientTls())) {
      IdleDevices.Opening first = clients.open(server.address(), prefix + "-a", pace.firstSet(), IN_FLIGHT,
          OPEN_LIMIT, server.name() + " first set", progress);
      requireAnswers(server, first);
      JvmProbe.Sample base = sample(server, pace, progress);
      IdleDevices.Opening second = clients.open(server.address(), prefix + "-b", pace.secondSet(), IN_FLIGHT,
          OPEN_LIMIT, server.name() + " second set", progress);
      JvmProbe.Sample loaded = sample(server, pace, progress);
      JvmProbe.Sample growth = loaded.minus(base);
      double per = Math.max(1, second.opened()) * KB;
      Idle r = new Idle(server.name(), first.opened() + second.opened(), first.failed() + second.failed(),
          clients.dropped(), growth.heapUsedBytes() / per, growth.outsideHeapBytes() / per, growth.rssBytes() / per,
          clients.session());
      progress.printf(Locale.ROOT, "tls: %s: %,d + %,d held (%,.0f connects/s into the second set), %d failed, %d "
              + "dropped; RSS %,d -> %,d KB, live heap %,d -> %,d KB: per connection %.2f KB heap + %.2f KB outside "
              + "it (RSS %.2f KB)%s%s%n", server.name(), first.opened(), second.opened(),
          second.connectsPerSecond(), r.failed(), r.dropped(), base.rssBytes() / 1024, loaded.rssBytes() / 1024,
          base.heapUsedBytes() / 1024, loaded.heapUsedBytes() / 1024, r.heapKb(), r.outsideHeapKb(), r.rssKb(),
          r.session() == null ? "" : "; " + r.session(), firstFailure(second));
      return r;
    }
  }

  /** A server that answered nobody is set up wrong: say why now, not with a table of NaN. */
  private static void requireAnswers(Server server, IdleDevices.Opening opening) {
    if (opening.opened() == 0) {
      throw new IllegalStateException(server.name() + " answered none of " + opening.failed() + " clients"
          + firstFailure(opening));
    }
  }

  /**
   * The server's memory once its connections are quiet: for a node, after its sockets' entities
   * fell asleep, after a full GC (the idle scenario's {@link JvmProbe#afterGcSettled}); for
   * Mosquitto, its RSS, which is all of it.
   */
  private static JvmProbe.Sample sample(Server server, Pace pace, PrintStream progress) {
    if (!server.jvm()) {
      LocalCluster.pause(MOSQUITTO_SETTLE.toMillis());
      return new JvmProbe.Sample(JvmProbe.rssKb(server.pid()) * 1024, 0, 0);
    }
    long deadline = System.nanoTime() + SLEEP_LIMIT.toNanos();
    int running = server.runningSockets().getAsInt();
    while (running != 0 && System.nanoTime() < deadline) {
      LocalCluster.pause(1000);
      running = server.runningSockets().getAsInt();
    }
    if (running != 0) {
      progress.printf(Locale.ROOT, "tls: %s: WARNING: %,d socket entities still running after %d s: the memory per "
          + "connection is off by what they hold%n", server.name(), running, SLEEP_LIMIT.toSeconds());
    }
    return JvmProbe.afterGcSettled(server.pid(), SAMPLE_INTERVAL, pace.settleSamples(), SETTLE_TOLERANCE);
  }

  /** Opens {@code count} connections, timing them and the CPU they cost, then closes them. */
  private static Connects connects(Server server, int count, PrintStream progress) {
    String prefix = "bench-tls-c-" + UUID.randomUUID().toString().substring(0, 8);
    int filesBefore = JvmProbe.openFiles(server.pid());
    IdleDevices.Opening opening;
    double serverCpu;
    double clientCpu;
    Map<String, Double> threadsBefore = JvmProbe.cpuSecondsByThreadGroup(server.pid());
    Map<String, Double> threadsAfter;
    try (IdleClients clients = new IdleClients(server.greeting(), server.clientTls())) {
      double serverBefore = JvmProbe.cpuSeconds(server.pid());
      double clientBefore = JvmProbe.cpuSeconds(JvmProbe.selfPid());
      opening = clients.open(server.address(), prefix, count, IN_FLIGHT, OPEN_LIMIT, server.name() + " connects",
          progress);
      serverCpu = JvmProbe.cpuSeconds(server.pid()) - serverBefore;
      clientCpu = JvmProbe.cpuSeconds(JvmProbe.selfPid()) - clientBefore;
      threadsAfter = JvmProbe.cpuSecondsByThreadGroup(server.pid());
    }
    requireAnswers(server, opening);
    // The next round starts once this one's connections are gone from the server too.
    LocalCluster.awaitCondition(FILES_LIMIT, () -> JvmProbe.openFiles(server.pid()) < filesBefore + FILES_KEPT);
    int n = Math.max(1, opening.opened());
    double seconds = n / opening.connectsPerSecond();
    return new Connects(server.name(), opening.opened(), opening.failed(), opening.connectsPerSecond(),
        1000 * serverCpu / n, 1000 * clientCpu / n, clientCpu / seconds,
        IdleScenario.byThreadGroup(threadsBefore, threadsAfter, n));
  }

  private static String firstFailure(IdleDevices.Opening opening) {
    return opening.firstFailure() == null ? "" : " (first failure: " + opening.firstFailure() + ")";
  }

  private static void addIdleRows(Report report, TlsMaterial tls, Map<String, Idle> idle,
      Map<String, List<Connects>> connects) {
    Idle plain = idle.get("Berth plaintext");
    Idle secure = idle.get("Berth TLS");
    Idle mosquitto = idle.get("Mosquitto TLS");
    String p = " [" + tls.providerName() + "]";
    report.add(new Report.Row(S, "idle connection memory, Berth TLS (live heap + outside the heap) vs Mosquitto TLS "
        + "(RSS)" + p, secure.memoryKb(), mosquitto.memoryKb(), "KB", "≤ 1.00× Mosquitto TLS",
        secure.memoryKb() <= mosquitto.memoryKb()));
    report.add(new Report.Row(S, "idle connection memory, Berth TLS vs plaintext (live heap + outside the heap)" + p,
        secure.memoryKb(), plain.memoryKb(), "KB", null, null));
    report.add(new Report.Row(S, "of which live Java heap, Berth TLS vs plaintext" + p, secure.heapKb(),
        plain.heapKb(), "KB", null, null));
    report.add(new Report.Row(S, "idle connection RSS growth, Berth TLS vs Mosquitto TLS" + p, secure.rssKb(),
        mosquitto.rssKb(), "KB", null, null));
    report.add(new Report.Row(S, "idle connection RSS growth, Berth TLS vs plaintext" + p, secure.rssKb(),
        plain.rssKb(), "KB", null, null));
    double berthRate = median(connects.get(secure.system()), Connects::perSecond);
    double mosquittoRate = median(connects.get(mosquitto.system()), Connects::perSecond);
    report.add(new Report.Row(S, "connects/s, full handshakes: Berth TLS (HELLO → WELCOME) vs Mosquitto TLS "
        + "(CONNECT → CONNACK)" + p, berthRate, mosquittoRate, "", "≥ 0.50× Mosquitto TLS",
        berthRate >= 0.5 * mosquittoRate));
    report.add(new Report.Row(S, "connects/s, Berth TLS vs plaintext" + p, berthRate,
        median(connects.get(plain.system()), Connects::perSecond), "", null, null));
    report.add(new Report.Row(S, "server CPU per connect, Berth TLS vs Mosquitto TLS" + p,
        median(connects.get(secure.system()), Connects::serverCpuMs),
        median(connects.get(mosquitto.system()), Connects::serverCpuMs), "ms", null, null));
    report.add(new Report.Row(S, "server CPU per connect, Berth TLS vs plaintext" + p,
        median(connects.get(secure.system()), Connects::serverCpuMs),
        median(connects.get(plain.system()), Connects::serverCpuMs), "ms", null, null));
    ToDoubleFunction<String> lost = system -> idle.get(system).failed() + idle.get(system).dropped()
        + connects.get(system).stream().mapToInt(Connects::failed).sum();
    double berthLost = lost.applyAsDouble(secure.system()) + lost.applyAsDouble(plain.system());
    report.add(new Report.Row(S, "connects failed or connections dropped, Berth (TLS and plaintext) vs Mosquitto TLS",
        berthLost, lost.applyAsDouble(mosquitto.system()), "", "0", berthLost == 0));
  }

  // ------------------------------------------------------------------ uplink and relay

  private static Map<String, List<UplinkScenario.Result>> uplink(DatabaseSettings db, TlsMaterial tls, Pace pace,
      PrintStream progress) throws Exception {
    progress.println("tls: uplink: starting a plaintext and a TLS 1-node cluster in the harness");
    try (LocalCluster plain = new LocalCluster(db, 1, "");
        LocalCluster secure = new LocalCluster(db, 1, tls.clusterOverrides())) {
      return alternate("uplink", List.of(
              UplinkScenario.berth(plain, "Berth plaintext", ClientTls.PLAINTEXT),
              UplinkScenario.berth(secure, "Berth TLS", tls.deviceClientTls())),
          UplinkScenario.Destination::name,
          system -> UplinkScenario.round(system, UplinkScenario.WARM_UP_CONNECTIONS, pace.warmUp()),
          system -> UplinkScenario.round(system, UPLINK_CONNECTIONS, pace.sendFor()),
          UplinkScenario::describe, pace.rounds(), progress);
    }
  }

  private static Map<String, List<RelayRound.Result>> relay(DatabaseSettings db, TlsMaterial tls, Pace pace,
      PrintStream progress) throws Exception {
    progress.println("tls: relay: starting a plaintext and a TLS 2-node cluster in the harness");
    try (LocalCluster plain = new LocalCluster(db, 2, "");
        LocalCluster secure = new LocalCluster(db, 2, tls.clusterOverrides())) {
      return alternate("relay", List.of(
              new BerthRelay(plain, RelayScenario.WINDOW, "Berth plaintext", ClientTls.PLAINTEXT),
              new BerthRelay(secure, RelayScenario.WINDOW, "Berth TLS", tls.deviceClientTls())),
          RelayTransport::name,
          system -> RelayRound.run(system, RelayScenario.WARM_UP_PAIRS, pace.warmUp()),
          system -> RelayRound.run(system, 1, pace.sendFor()),
          RelayScenario::describe, pace.rounds(), progress);
    }
  }

  /**
   * The systems in the order they take their turn in {@code round}: as listed in odd rounds,
   * reversed in even ones, so that none always runs right after the same other one.
   */
  private static <S> List<S> inTurn(List<S> systems, int round) {
    if (round % 2 == 1) {
      return systems;
    }
    List<S> reversed = new ArrayList<>(systems);
    Collections.reverse(reversed);
    return reversed;
  }

  /** One round of a system: what {@link #alternate} runs. */
  private interface Round<S, R> {
    R run(S system) throws Exception;
  }

  /**
   * A warm-up round per system, then {@code rounds} rounds alternating the systems ({@link
   * #inTurn}), so that the machine's noise falls on each; results by system name, the warm-ups
   * under "NAME warm-up".
   */
  private static <S, R> Map<String, List<R>> alternate(String what, List<S> systems, Function<S, String> name,
      Round<S, R> warmUp, Round<S, R> measured, Function<R, String> describe, int rounds, PrintStream progress)
      throws Exception {
    Map<String, List<R>> results = new HashMap<>();
    for (S system : systems) {
      R r = warmUp.run(system);
      progress.printf("tls: %s warm-up %s%n", what, describe.apply(r));
      results.computeIfAbsent(name.apply(system) + " warm-up", k -> new ArrayList<>()).add(r);
    }
    for (int round = 1; round <= rounds; round++) {
      for (S system : inTurn(systems, round)) {
        R r = measured.run(system);
        progress.printf("tls: %s round %d/%d %s%n", what, round, rounds, describe.apply(r));
        results.computeIfAbsent(name.apply(system), k -> new ArrayList<>()).add(r);
      }
    }
    return results;
  }

  private static void addUplinkAndRelayRows(Report report, TlsMaterial tls,
      Map<String, List<UplinkScenario.Result>> uplink, Map<String, List<RelayRound.Result>> relay) {
    String p = " [" + tls.providerName() + " edge, JDK client]";
    double secureUplink = median(uplink.get("Berth TLS"), UplinkScenario.Result::framesPerSecond);
    double plainUplink = median(uplink.get("Berth plaintext"), UplinkScenario.Result::framesPerSecond);
    report.add(new Report.Row(S, "uplink, " + UPLINK_CONNECTIONS + " connections: acked frames/s, Berth TLS vs "
        + "plaintext" + p, secureUplink, plainUplink, "", "≥ 0.70× plaintext", secureUplink >= 0.7 * plainUplink));
    ToLongFunction<UplinkScenario.Result> uplinkLost = r -> r.lost() + r.duplicated();
    long secureUplinkLost = sum(uplink, "Berth TLS", uplinkLost);
    report.add(new Report.Row(S, "uplink: frames lost or duplicated, Berth TLS vs plaintext (all rounds)",
        secureUplinkLost, sum(uplink, "Berth plaintext", uplinkLost), "", "0", secureUplinkLost == 0));
    List<RelayRound.Result> secure = relay.get("Berth TLS");
    List<RelayRound.Result> plain = relay.get("Berth plaintext");
    report.add(new Report.Row(S, "relay, 1 pair: frames/s, Berth TLS vs plaintext" + p,
        median(secure, RelayRound.Result::framesPerSecond), median(plain, RelayRound.Result::framesPerSecond), "",
        null, null));
    report.add(new Report.Row(S, "relay, 1 pair: one-way latency p50, Berth TLS vs plaintext" + p,
        median(secure, RelayRound.Result::p50Ms), median(plain, RelayRound.Result::p50Ms), "ms", null, null));
    report.add(new Report.Row(S, "relay, 1 pair: one-way latency p99, Berth TLS vs plaintext" + p,
        median(secure, RelayRound.Result::p99Ms), median(plain, RelayRound.Result::p99Ms), "ms", null, null));
    ToLongFunction<RelayRound.Result> relayLost = r -> r.lost() + r.duplicates() + r.outOfOrder();
    long secureRelayLost = sum(relay, "Berth TLS", relayLost);
    report.add(new Report.Row(S, "relay: frames lost, duplicated or reordered, Berth TLS vs plaintext (all rounds)",
        secureRelayLost, sum(relay, "Berth plaintext", relayLost), "", "0", secureRelayLost == 0));
  }

  private static String note(TlsMaterial tls, Pace pace, String javaOptions, Sockets sockets, boolean quick) {
    String provider = tls.providerName().equals("openssl") ? "BoringSSL (netty-tcnative, provider openssl)"
        : "the JDK's TLS (provider jdk)";
    String memorySamples = pace.settleSamples() > 1 ? "repeated every " + SAMPLE_INTERVAL.toSeconds()
        + " s until the live heap falls by at most 1 MB, at most " + pace.settleSamples() + " times" : "once";
    return String.join(" ", List.of(
        "tls: certificates from a LocalCa made for the run (EC P-256, ECDSA-SHA256; the node's names localhost and "
            + "127.0.0.1), the same files for every server.",
        "Rows marked [openssl] or [jdk] name the TLS provider, set by name on every node (berth.edge.tls.provider; "
            + "BERTH_BENCH_TLS_PROVIDER, by default what auto picks): " + provider + "; the TLS node in its own JVM "
            + "logged \"" + sockets.edgeLog() + "\".",
        "Idle connections and connects: a plaintext node and a TLS node from berth-node.jar, each a 1-node cluster "
            + "in a JVM of its own (" + javaOptions + ", berth.edge.idle-timeout 10m, berth.socket.sleep-after 5s), "
            + "and Mosquitto 2 with one TLS listener (certfile and keyfile, require_certificate false, persistence "
            + "off), all three running throughout, each measured in turn while the others idle (before each "
            + "measurement the servers and PostgreSQL together use less than " + Math.round(100 * QUIET_CORES)
            + "% of a core, waited for at most " + QUIET_LIMIT.toSeconds() + " s).",
        "Clients: the harness's, one Netty event loop (" + provider + "), " + IN_FLIGHT + " between connect and "
            + "answer at once (below Mosquitto's accept backlog of 100), from 8 loopback addresses; each makes a full "
            + "TLS handshake (no session resumption: handlers made without the server's address keep no session; "
            + "the server's certificate is not checked, a device's work that would cost the harness more than "
            + "Mosquitto spends on a connect), then a Berth HELLO answered by WELCOME (mapping discard) or an MQTT "
            + "3.1.1 CONNECT (clean session, keep-alive " + MQTT_KEEP_ALIVE.toMinutes() + " min) answered by "
            + "CONNACK, then silence; closed with a reset. Negotiated: " + sessions(sockets.idle()) + ".",
        "Memory per idle connection: " + count(pace.firstSet()) + " connections held and sampled, "
            + count(pace.secondSet()) + " more held and sampled again, the growth divided by the second set "
            + "(nothing closed in between, so memory freed and kept by an allocator is neither counted nor reused); "
            + "a node is sampled once its sockets' entities sleep, after a full GC (jcmd GC.run; " + memorySamples
            + "), as live heap plus what is resident outside the heap (the idle scenario's figure); Mosquitto by its "
            + "RSS " + MOSQUITTO_SETTLE.toSeconds() + " s after the last CONNACK. 1 KB = 1,024 bytes.",
        "Connects/s: " + pace.rounds() + " round(s) of " + count(pace.connectsPerRound()) + " connects per server, "
            + "alternating (in reverse order in even rounds), first connect to last answer, medians; the connections "
            + "are held until the round ends, then closed. CPU per connect from /proc (by thread in the progress "
            + "lines). The harness's CPU during the connect rounds, in cores (its clients run on one event loop: "
            + "near 1, they set the pace): " + clientCores(sockets.connects()) + ".",
        "Uplink (" + UPLINK_CONNECTIONS + " connections) and relay (1 pair): the uplink and relay scenarios' rounds "
            + "on a plaintext and a TLS cluster in the harness JVM (1 node for uplink, 2 for relay), alternating as "
            + "the connect rounds, " + pace.rounds() + " round(s) of " + pace.sendFor().toSeconds() + " s after a "
            + pace.warmUp().toSeconds() + " s warm-up round each, medians; devices are the reference DeviceClient, "
            + "whose TLS is the JDK's (one context per client, checking the node's certificate and name)."
            + (quick ? " --quick: fewer connections and rounds." : "")));
  }

  private static String count(int n) {
    return String.format(Locale.ROOT, "%,d", n);
  }

  private static String clientCores(Map<String, List<Connects>> connects) {
    return String.join(", ", connects.entrySet().stream().sorted(Map.Entry.comparingByKey())
        .map(e -> String.format(Locale.ROOT, "%s %.2f", e.getKey(), median(e.getValue(), Connects::clientCores)))
        .toList());
  }

  private static String sessions(Map<String, Idle> idle) {
    return String.join(", ", idle.values().stream().filter(i -> i.session() != null)
        .map(i -> i.system() + " " + i.session()).sorted().toList());
  }

  private static <T> double median(List<T> results, ToDoubleFunction<T> figure) {
    Stats s = new Stats();
    results.forEach(r -> s.add(figure.applyAsDouble(r)));
    return s.median();
  }

  private static <T> long sum(Map<String, List<T>> results, String system, ToLongFunction<T> count) {
    return results.entrySet().stream().filter(e -> e.getKey().startsWith(system))
        .flatMap(e -> e.getValue().stream()).mapToLong(count).sum();
  }
}
