package io.berth.bench;

import io.berth.node.socket.SocketEvent;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import java.io.PrintStream;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Journal throughput: events persisted per second through Pekko Persistence JDBC to PostgreSQL,
 * with the node's journal settings, by {@link JournalWriter}s (each one write at a time, like a
 * socket): a single writer, where every event is a commit of its own, and {@value #MANY_WRITERS}
 * writers at once, whose writes the journal batches into multi-row inserts. The anchor, in the
 * same run and on the same database, is pgbench inserting rows of the same shape and size into a
 * scratch table: one client with a row per commit, and {@value #PGBENCH_CLIENTS} clients with
 * {@value #PGBENCH_ROWS}-row inserts (larger inserts did up to a sixth more in a trial). The many
 * writers are as many as pgbench has rows in flight, which is also the journal's largest batch
 * (jdbc-journal.batchSize), so that both sides may batch as much. The goal: the batched journal
 * reaches half of pgbench's rate. At the end every writer's acknowledged events are counted in the
 * journal ({@link #audit}): none may be missing, extra or skipped.
 */
final class JournalScenario {

  private static final int PGBENCH_CLIENTS = 8;
  private static final int PGBENCH_ROWS = 50;
  private static final int MANY_WRITERS = PGBENCH_CLIENTS * PGBENCH_ROWS;
  private static final Duration REPLY_GRACE = Duration.ofSeconds(60);

  private JournalScenario() {}

  static void run(Report report, DatabaseSettings db, boolean quick, Path workDir, PrintStream progress)
      throws Exception {
    int rounds = quick ? 1 : 3;
    Duration writeFor = Duration.ofSeconds(quick ? 3 : 10);
    Duration warmUp = Duration.ofSeconds(quick ? 2 : 4);
    List<String> why = new ArrayList<>();
    Optional<PgBench> pgbench = PgBench.locate(db, workDir, why);
    why.forEach(reason -> progress.println("journal: " + reason + "; measuring Berth without its anchor"));
    String run = "bench-journal-" + UUID.randomUUID().toString().substring(0, 8);
    Stats single = new Stats();
    Stats many = new Stats();
    Stats pgSingle = new Stats();
    Stats pgBatched = new Stats();
    int eventBytes;
    Map<String, Long> acknowledged = new HashMap<>();
    Audit audit;
    progress.println("journal: starting 1 node");
    try (LocalCluster cluster = new LocalCluster(db, 1, "berth.db.pool-size = 10\n")) {
      ActorSystem<Void> system = cluster.nodes().get(0).system();
      double warm = write(system, run + "-warm", MANY_WRITERS, warmUp, acknowledged);
      PgBench.Row template = journalRow(db, run + "-warm-0");
      eventBytes = template.payload().length;
      progress.printf(Locale.ROOT, "journal: warm-up %,.0f events/s with %d writers; events of %d bytes%n", warm,
          MANY_WRITERS, eventBytes);
      Path singleScript = null;
      Path batchedScript = null;
      if (pgbench.isPresent()) {
        singleScript = pgbench.get().script(template, 1);
        batchedScript = pgbench.get().script(template, PGBENCH_ROWS);
        createScratchTable(db);
      }
      for (int round = 1; round <= rounds; round++) {
        String tag = run + "-" + round;
        double one = write(system, tag + "-single", 1, writeFor, acknowledged);
        double pgOne = Double.NaN;
        if (pgbench.isPresent()) {
          truncateScratchTable(db);
          pgOne = pgbench.get().rowsPerSecond(singleScript, 1, 1, writeFor);
        }
        double all = write(system, tag + "-many", MANY_WRITERS, writeFor, acknowledged);
        double pgAll = Double.NaN;
        if (pgbench.isPresent()) {
          truncateScratchTable(db);
          pgAll = pgbench.get().rowsPerSecond(batchedScript, PGBENCH_ROWS, PGBENCH_CLIENTS, writeFor);
        }
        single.add(one);
        many.add(all);
        pgSingle.add(pgOne);
        pgBatched.add(pgAll);
        progress.printf(Locale.ROOT, "journal: round %d/%d: 1 writer %,.0f events/s (pgbench 1 client %,.0f rows/s); "
                + "%d writers %,.0f events/s (pgbench %d clients x %d rows %,.0f rows/s)%n", round, rounds, one, pgOne,
            MANY_WRITERS, all, PGBENCH_CLIENTS, PGBENCH_ROWS, pgAll);
      }
      audit = audit(db, run, acknowledged);
      progress.printf(Locale.ROOT, "journal: the journal holds %,d events of %,d acknowledged: %d lost, %d extra, "
          + "%d sequence numbers skipped%n", audit.rows(), audit.acknowledged(), audit.lost(), audit.extra(),
          audit.gaps());
    } finally {
      cleanUp(db, run, pgbench.isPresent(), progress);
    }
    double batchedAnchor = pgBatched.median();
    report.add(new Report.Row("journal", "1 writer: events/s vs pgbench, 1 client, a row per commit", single.median(),
        pgSingle.median(), "", null, null));
    report.add(new Report.Row("journal", MANY_WRITERS + " writers: events/s vs pgbench, " + PGBENCH_CLIENTS
        + " clients × " + PGBENCH_ROWS + "-row inserts", many.median(), batchedAnchor, "", "≥ 0.50× pgbench",
        Double.isNaN(batchedAnchor) ? null : many.median() >= 0.5 * batchedAnchor));
    report.add(new Report.Row("journal", "events lost (acknowledged, not in the journal)", audit.lost(), Double.NaN,
        "", "0", audit.lost() == 0));
    report.add(new Report.Row("journal", "events duplicated (in the journal beyond those acknowledged)",
        audit.extra(), Double.NaN, "", "0", audit.extra() == 0));
    report.add(new Report.Row("journal", "sequence numbers skipped", audit.gaps(), Double.NaN, "", "0",
        audit.gaps() == 0));
    report.note("journal: 1 node in the harness JVM on PostgreSQL with the node's journal settings (Pekko "
        + "Persistence JDBC with AppendingJournalDao: one binary COPY per batch; "
        + "berth.db.pool-size 10); each writer is a minimal EventSourcedBehavior persisting, one write at a time, "
        + "the event a socket writes for one 64-byte frame through echo (SocketEvent.Accepted with the "
        + "echoed frame: " + eventBytes + " bytes serialized), "
        + "fresh persistence ids each round. Anchor: " + pgbench.map(p -> p.binary().toString()).orElse("pgbench")
        + " (-M prepared) inserting rows of the journal's shape (same columns, key and indexes, the payload of a "
        + "journal row written in the warm-up) into the scratch table " + PgBench.TABLE + ", emptied before each "
        + "run. " + writeFor.toSeconds() + " s per run, " + rounds + " round(s) alternating Berth and pgbench "
        + "after a " + warmUp.toSeconds() + " s warm-up of the writers; medians. The rows written are deleted "
        + "and the scratch table dropped at the end, after every writer's acknowledged events were counted in the "
        + "journal (lost, duplicated, skipped: all writers, warm-up included)."
        + (why.isEmpty() ? "" : " Anchor skipped: " + why + "."));
  }

  /**
   * Runs {@code writers} writers on fresh persistence ids {@code prefix-0 ...} for {@code duration}
   * and returns events persisted per second. Each writer first writes one event unmeasured, so that
   * its recovery (a query for a history it does not have) is not measured.
   */
  private static double write(ActorSystem<Void> system, String prefix, int writers, Duration duration,
      Map<String, Long> acknowledged) throws Exception {
    Map<String, ActorRef<JournalWriter.Command>> refs = new LinkedHashMap<>();
    for (int i = 0; i < writers; i++) {
      String id = prefix + "-" + i;
      refs.put(id, system.systemActorOf(JournalWriter.create(id), id, Props.empty()));
    }
    try {
      runAll(system, refs, System.nanoTime(), Duration.ZERO, acknowledged);
      long start = System.nanoTime();
      long events = runAll(system, refs, start + duration.toNanos(), duration, acknowledged);
      return events / ((System.nanoTime() - start) / 1e9);
    } finally {
      refs.values().forEach(r -> r.tell(JournalWriter.Stop.INSTANCE));
    }
  }

  /** Runs every writer until {@code untilNanos}; adds each one's persisted events to {@code acknowledged}. */
  private static long runAll(ActorSystem<Void> system, Map<String, ActorRef<JournalWriter.Command>> refs,
      long untilNanos, Duration duration, Map<String, Long> acknowledged) throws Exception {
    Duration timeout = duration.plus(REPLY_GRACE);
    Map<String, CompletableFuture<Long>> replies = new LinkedHashMap<>();
    refs.forEach((id, ref) -> replies.put(id, AskPattern.<JournalWriter.Command, Long>ask(ref,
        replyTo -> new JournalWriter.Run(untilNanos, replyTo), timeout, system.scheduler()).toCompletableFuture()));
    CompletableFuture.allOf(replies.values().toArray(CompletableFuture[]::new))
        .get(timeout.toSeconds() + 5, TimeUnit.SECONDS);
    long events = 0;
    for (Map.Entry<String, CompletableFuture<Long>> reply : replies.entrySet()) {
      long n = reply.getValue().join();
      acknowledged.merge(reply.getKey(), n, Long::sum);
      events += n;
    }
    return events;
  }

  /**
   * What the journal holds against what its writers were told was persisted, writer by writer:
   * an acknowledged event missing is lost, a row beyond them extra (a write persisted twice, or
   * one that was never acknowledged), a number missing below the highest held a gap.
   */
  record Audit(long acknowledged, long rows, long lost, long extra, long gaps) {}

  static Audit audit(DatabaseSettings db, String run, Map<String, Long> acknowledged) throws SQLException {
    // Writer by writer, in the database (a full run writes millions of events): a writer told of n
    // events wrote sequence numbers 1..n, so one of those not held is lost, a number above them is
    // extra, and a number missing below the highest held is skipped. The journal's key is
    // (persistence_id, sequence_number): a number is held once or not at all.
    String sql = "WITH told(id, n) AS (SELECT * FROM unnest(?::varchar[], ?::bigint[])), "
        + "stored AS (SELECT persistence_id, sequence_number FROM event_journal WHERE persistence_id LIKE ?) "
        + "SELECT coalesce(t.n, 0), count(s.sequence_number), "
        + "count(s.sequence_number) FILTER (WHERE s.sequence_number <= coalesce(t.n, 0)), "
        + "coalesce(max(s.sequence_number), 0) "
        + "FROM told t FULL JOIN stored s ON s.persistence_id = t.id GROUP BY coalesce(t.id, s.persistence_id), t.n";
    long acked = 0;
    long rows = 0;
    long lost = 0;
    long extra = 0;
    long gaps = 0;
    try (Connection c = SchemaInstaller.connect(db); PreparedStatement s = c.prepareStatement(sql)) {
      List<String> ids = new ArrayList<>(acknowledged.keySet());
      s.setArray(1, c.createArrayOf("varchar", ids.toArray()));
      s.setArray(2, c.createArrayOf("bigint", ids.stream().map(acknowledged::get).toArray()));
      s.setString(3, run + "-%");
      try (ResultSet r = s.executeQuery()) {
        while (r.next()) {
          long told = r.getLong(1);
          long stored = r.getLong(2);
          long held = r.getLong(3);
          long highest = r.getLong(4);
          acked += told;
          rows += stored;
          lost += told - held;
          extra += stored - held;
          gaps += highest - stored;
        }
      }
    }
    return new Audit(acked, rows, lost, extra, gaps);
  }

  /** The latest event of a writer as the journal stored it: what pgbench's rows copy. */
  private static PgBench.Row journalRow(DatabaseSettings db, String persistenceId) throws SQLException {
    try (Connection c = SchemaInstaller.connect(db);
        PreparedStatement s = c.prepareStatement("SELECT persistence_id, writer, event_ser_id, event_ser_manifest, "
            + "event_payload FROM event_journal WHERE persistence_id = ? ORDER BY sequence_number DESC LIMIT 1")) {
      s.setString(1, persistenceId);
      try (ResultSet r = s.executeQuery()) {
        if (!r.next()) {
          throw new IllegalStateException("no journal row of " + persistenceId + " after the warm-up");
        }
        return new PgBench.Row(r.getString(1), r.getString(2), r.getInt(3), r.getString(4), r.getBytes(5));
      }
    }
  }

  /** The scratch table: event_journal's columns, key and indexes, its own ordering sequence. */
  private static void createScratchTable(DatabaseSettings db) throws SQLException {
    execute(db, "DROP TABLE IF EXISTS " + PgBench.TABLE,
        "CREATE TABLE " + PgBench.TABLE + " (LIKE event_journal INCLUDING DEFAULTS INCLUDING INDEXES)",
        "CREATE SEQUENCE IF NOT EXISTS " + PgBench.TABLE + "_ordering_seq",
        "ALTER TABLE " + PgBench.TABLE + " ALTER COLUMN ordering SET DEFAULT nextval('" + PgBench.TABLE
            + "_ordering_seq')");
  }

  private static void truncateScratchTable(DatabaseSettings db) throws SQLException {
    execute(db, "TRUNCATE " + PgBench.TABLE);
  }

  /** Deletes the writers' events and drops the scratch table; a failure here is reported, not thrown. */
  private static void cleanUp(DatabaseSettings db, String run, boolean scratch, PrintStream progress) {
    try (Connection c = SchemaInstaller.connect(db);
        PreparedStatement s = c.prepareStatement("DELETE FROM event_journal WHERE persistence_id LIKE ?")) {
      s.setString(1, run + "-%");
      int deleted = s.executeUpdate();
      if (scratch) {
        execute(db, "DROP TABLE IF EXISTS " + PgBench.TABLE, "DROP SEQUENCE IF EXISTS " + PgBench.TABLE
            + "_ordering_seq");
      }
      progress.printf(Locale.ROOT, "journal: deleted the %,d events written%s%n", deleted,
          scratch ? " and dropped " + PgBench.TABLE : "");
    } catch (SQLException | RuntimeException e) {
      progress.println("journal: clean-up failed (" + e.getMessage() + "); rows of " + run + "-* may remain");
    }
  }

  private static void execute(DatabaseSettings db, String... statements) throws SQLException {
    try (Connection c = SchemaInstaller.connect(db); Statement s = c.createStatement()) {
      for (String sql : statements) {
        s.execute(sql);
      }
    }
  }
}
