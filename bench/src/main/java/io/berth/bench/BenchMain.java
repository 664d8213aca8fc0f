package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code scripts/bench.sh [--quick] [SCENARIO...]}: runs scenarios and prints the table. */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Measures Berth side by side with its anchors and prints ratios.")
public final class BenchMain implements Callable<Integer> {

  private static final String SCENARIOS_HELP = "endpoint, migration, relay, uplink, idle, journal, tls, failover";
  private static final List<String> ALL = List.of(SCENARIOS_HELP.split(", "));

  @Option(names = "--quick", description = "A smoke run: fewer rounds, shorter runs (under 5 minutes).")
  boolean quick;

  @Option(names = "--out", defaultValue = "bench/target/last-run.md", description = "Where the table is written.")
  Path out;

  @Parameters(arity = "0..*", description = {"Scenarios to run (default: all): " + SCENARIOS_HELP,
      "endpoint: builtin and HTTP mappings, latency and batching, vs calling the endpoint directly",
      "migration: threshold crossing to serving on the new node, delivery pause, integrity",
      "relay: peer-linked pairs vs Mosquitto QoS 1 and QoS 0",
      "uplink: acked frames/s to builtin:discard, 1 and 16 connections, vs a raw-TCP edge",
      "idle: sockets one node holds, connects/s and memory per socket, vs a raw-TCP edge",
      "journal: events/s through the journal, 1 and many writers, vs pgbench inserts",
      "tls: plaintext vs TLS edge: idle memory and connects/s vs Mosquitto TLS, uplink and relay",
      "failover: 3 nodes with ~6,000 idle devices each: kill -9 of one, drain of one; time to resumed"})
  List<String> scenarios;

  @Override
  public Integer call() throws Exception {
    PrintStream progress = System.out;
    DatabaseSettings db = new DatabaseSettings(
        env("BERTH_BENCH_DB_URL", "jdbc:postgresql://127.0.0.1:5432/berth_bench"),
        env("BERTH_BENCH_DB_USER", "postgres"), env("BERTH_BENCH_DB_PASSWORD", ""), 8, Duration.ofSeconds(5));
    List<String> run = scenarios == null || scenarios.isEmpty() ? ALL : scenarios;
    for (String scenario : run) {
      if (!ALL.contains(scenario)) {
        System.err.println("unknown scenario '" + scenario + "' (known: " + SCENARIOS_HELP + ")");
        return 1;
      }
    }
    // Say what is missing now rather than after the other scenarios have run.
    try {
      if (run.contains("relay") || run.contains("tls")) {
        Mosquitto.locate();
      }
      if (run.contains("idle") || run.contains("tls") || run.contains("failover")) {
        NodeProcess.locateJar();
      }
      if (run.contains("tls")) {
        TlsMaterial.chooseProvider(env("BERTH_BENCH_TLS_PROVIDER", "auto"));
      }
    } catch (IllegalStateException | IllegalArgumentException e) {
      System.err.println(e.getMessage());
      return 1;
    }
    Report report = new Report();
    long runStart = System.nanoTime();
    for (String scenario : run) {
      long start = System.nanoTime();
      switch (scenario) {
        case "migration" -> MigrationScenario.run(report, db, quick ? 5 : 20, progress);
        case "endpoint" -> EndpointScenario.run(report, db, quick, progress);
        case "relay" -> RelayScenario.run(report, db, quick, out.toAbsolutePath().getParent(), progress);
        case "uplink" -> UplinkScenario.run(report, db, quick, progress);
        case "idle" -> IdleScenario.run(report, db, quick, out.toAbsolutePath().getParent(), progress);
        case "journal" -> JournalScenario.run(report, db, quick, out.toAbsolutePath().getParent(), progress);
        case "tls" -> TlsScenario.run(report, db, quick, out.toAbsolutePath().getParent(), progress);
        case "failover" -> FailoverScenario.run(report, db, quick, out.toAbsolutePath().getParent(), progress);
        default -> throw new IllegalStateException("unhandled scenario " + scenario);
      }
      progress.printf(Locale.ROOT, "%s: done in %d s (%d s since the start)%n", scenario, seconds(start),
          seconds(runStart));
    }
    String machine = "Machine: " + Runtime.getRuntime().availableProcessors() + " cores, "
        + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB heap for the harness, Java "
        + System.getProperty("java.version") + ", " + System.getProperty("os.name") + " "
        + System.getProperty("os.version") + (quick ? " (--quick)" : "");
    report.write(out, machine);
    progress.println();
    progress.println(report.render(machine));
    progress.println("table written to " + out);
    return 0;
  }

  private static long seconds(long sinceNanos) {
    return Math.round((System.nanoTime() - sinceNanos) / 1e9);
  }

  /** An environment variable, or {@code fallback} when it is unset or blank. */
  static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isBlank() ? fallback : v;
  }

  public static void main(String[] args) {
    int code = new CommandLine(new BenchMain()).execute(args);
    System.exit(code);
  }
}
