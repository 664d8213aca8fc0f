package io.berth.bench;

import io.berth.persistence.DatabaseSettings;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The journal scenario's anchor: {@code pgbench}, PostgreSQL's own load generator, inserting rows
 * shaped like the journal's (same columns, same keys and indexes, a payload of the same size)
 * into a scratch table, with a script written per run. Prepared statements and one commit per
 * transaction, as the JDBC journal does; a transaction inserts one row or a multi-row batch.
 */
final class PgBench {

  /** The scratch table: a copy of event_journal's definition, dropped at the end of the scenario. */
  static final String TABLE = "bench_pgbench_journal";

  private static final Pattern TPS = Pattern.compile("^tps = ([0-9.]+)", Pattern.MULTILINE);
  private static final String INSTALL_HINT = "pgbench not found: the journal scenario's anchor needs it (Debian/"
      + "Ubuntu: apt-get install postgresql-client, or postgresql-contrib on older releases; or set "
      + "BERTH_BENCH_PGBENCH to its path)";

  /** One journal row as the node wrote it: the template of the rows pgbench inserts. */
  record Row(String persistenceId, String writer, int serializerId, String manifest, byte[] payload) {}

  private final Path binary;
  private final DatabaseSettings db;
  private final Path workDir;

  private PgBench(Path binary, DatabaseSettings db, Path workDir) {
    this.binary = binary;
    this.db = db;
    this.workDir = workDir;
  }

  /** pgbench, or empty with the reason (how to install it) when it is not there. */
  static Optional<PgBench> locate(DatabaseSettings db, Path workDir, List<String> why) {
    String configured = System.getenv("BERTH_BENCH_PGBENCH");
    Stream<Path> candidates;
    if (configured != null && !configured.isBlank()) {
      candidates = Stream.of(Path.of(configured));
    } else {
      Stream<Path> onPath = Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
          .filter(d -> !d.isEmpty()).map(d -> Path.of(d, "pgbench"));
      candidates = Stream.concat(onPath, debianInstalls());
    }
    Optional<Path> found = candidates.filter(Files::isExecutable).findFirst();
    if (found.isEmpty()) {
      why.add(INSTALL_HINT);
      return Optional.empty();
    }
    if (db.kind() != DatabaseSettings.Kind.POSTGRES) {
      why.add("pgbench needs PostgreSQL, the benchmark database is " + db.url());
      return Optional.empty();
    }
    return Optional.of(new PgBench(found.get(), db, workDir));
  }

  /** /usr/lib/postgresql/VERSION/bin/pgbench, newest version first. */
  private static Stream<Path> debianInstalls() {
    Path root = Path.of("/usr/lib/postgresql");
    if (!Files.isDirectory(root)) {
      return Stream.empty();
    }
    try (Stream<Path> versions = Files.list(root)) {
      return versions.sorted(Comparator.comparing((Path p) -> p.getFileName().toString(), PgBench::byNumber)
          .reversed()).map(p -> p.resolve("bin/pgbench")).toList().stream();
    } catch (IOException e) {
      return Stream.empty();
    }
  }

  private static int byNumber(String a, String b) {
    try {
      return Double.compare(Double.parseDouble(a), Double.parseDouble(b));
    } catch (NumberFormatException e) {
      return a.compareTo(b);
    }
  }

  Path binary() {
    return binary;
  }

  /**
   * Writes the script of one transaction: {@code rows} rows like {@code template}, keyed by the
   * client ({@code :client_id}) and a counter each client keeps ({@code :base}), so that keys
   * never collide. The persistence id is the template's with its last characters replaced by the
   * client number: keys as long as the journal's.
   */
  Path script(Row template, int rows) throws IOException {
    String payload = "'\\x" + HexFormat.of().formatHex(template.payload()) + "'";
    String idPrefix = template.persistenceId().substring(0, Math.max(1, template.persistenceId().length() - 3));
    StringBuilder sql = new StringBuilder();
    sql.append("\\set base :base + ").append(rows).append('\n');
    sql.append("INSERT INTO ").append(TABLE).append(" (persistence_id, sequence_number, deleted, writer, "
        + "write_timestamp, adapter_manifest, event_ser_id, event_ser_manifest, event_payload) VALUES");
    for (int i = rows - 1; i >= 0; i--) {
      sql.append("\n  ('").append(idPrefix).append("' || :client_id, :base - ").append(i).append(", false, '")
          .append(template.writer()).append("', ").append(System.currentTimeMillis()).append(", '', ")
          .append(template.serializerId()).append(", '").append(template.manifest()).append("', ").append(payload)
          .append(')').append(i == 0 ? ";" : ",");
    }
    sql.append('\n');
    Files.createDirectories(workDir);
    Path file = workDir.resolve("pgbench-insert-" + rows + ".sql");
    Files.writeString(file, sql);
    return file;
  }

  /**
   * Runs {@code script} with {@code clients} connections for {@code duration} and returns rows
   * inserted per second (transactions per second times rows per transaction).
   */
  double rowsPerSecond(Path script, int rowsPerTransaction, int clients, Duration duration) throws IOException {
    URI uri = URI.create(db.url().substring("jdbc:".length()));
    String database = uri.getPath().replaceFirst("^/", "");
    List<String> command = new ArrayList<>(List.of(binary.toString(), "-n", "-M", "prepared", "-f", script.toString(),
        "-c", Integer.toString(clients), "-j", Integer.toString(Math.min(clients, 2)),
        "-T", Long.toString(duration.toSeconds()), "-D", "base=0",
        "-h", uri.getHost() == null ? "127.0.0.1" : uri.getHost(),
        "-p", Integer.toString(uri.getPort() < 0 ? 5432 : uri.getPort()), "-U", db.user(), database));
    Map<String, String> env = db.password().isEmpty() ? Map.of() : Map.of("PGPASSWORD", db.password());
    ChildProcess.Finished run = ChildProcess.runToEnd("pgbench", command, env, workDir.resolve("pgbench.log"),
        duration.plusSeconds(60));
    Matcher m = TPS.matcher(run.output());
    if (run.exitCode() != 0 || !m.find()) {
      throw new IllegalStateException("pgbench failed (exit " + run.exitCode() + "): " + run.output().strip());
    }
    return Double.parseDouble(m.group(1)) * rowsPerTransaction;
  }
}
