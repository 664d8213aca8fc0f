package io.berth.persistence;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.persistence.jdbc.config.EventJournalTableConfiguration;
import org.apache.pekko.persistence.jdbc.config.JournalConfig;
import org.apache.pekko.persistence.jdbc.db.SlickDatabase;
import org.apache.pekko.persistence.jdbc.db.SlickExtension;
import org.apache.pekko.persistence.jdbc.db.SlickExtensionImpl;
import org.apache.pekko.persistence.jdbc.journal.dao.JournalTables;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.stream.Materializer;
import scala.Option;
import slick.jdbc.JdbcBackend;
import slick.jdbc.JdbcBackend$;
import slick.jdbc.PostgresProfile$;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.jdk.javaapi.FutureConverters;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The journal DAO's own COPY, through Pekko Persistence on real PostgreSQL: what concurrent
 * writers persist is what they recover, row by row as the stock insert would write it; tagged
 * events still get their tag rows; and a write that collides with a row already there fails its
 * writer instead of vanishing.
 */
class AppendingJournalDaoTest {

  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private static DatabaseSettings db;
  private static ActorSystem<Void> system;

  @BeforeAll
  static void start() {
    db = TestDatabase.createScratchDatabase();
    system = TestDatabase.persistenceSystem(db, "journal-dao-test",
        "jdbc-journal { dao = \"io.berth.persistence.AppendingJournalDao\", parallelism = 2 }");
  }

  @AfterAll
  static void stop() throws Exception {
    TestDatabase.stop(system, db);
  }

  @Test
  void concurrentWritersRecoverWhatTheyPersistedInOrder() throws Exception {
    int writers = 40;
    int events = 25;
    List<CompletionStage<List<String>>> done = new ArrayList<>();
    for (int w = 0; w < writers; w++) {
      ActorRef<Command> writer = system.systemActorOf(Writer.create("plain-" + w, Set.of()), "plain-" + w,
          Props.empty());
      List<CompletionStage<List<String>>> writes = new ArrayList<>();
      for (int e = 0; e < events; e++) {
        String event = "w" + w + "-e" + e;
        writes.add(ask(writer, replyTo -> new Persist(event, replyTo)));
      }
      done.add(writes.get(writes.size() - 1));
    }
    for (CompletionStage<List<String>> d : done) {
      assertThat(d.toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).hasSize(events);
    }

    // A fresh incarnation of each writer reads back exactly what it persisted, in order.
    for (int w = 0; w < writers; w += 13) {
      ActorRef<Command> again = system.systemActorOf(Writer.create("plain-" + w, Set.of()), "again-" + w,
          Props.empty());
      List<String> recovered = ask(again, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      List<String> expected = new ArrayList<>();
      for (int e = 0; e < events; e++) {
        expected.add("w" + w + "-e" + e);
      }
      assertThat(recovered).containsExactlyElementsOf(expected);
    }

    // The rows carry what the stock insert writes: the writer, a timestamp, the serializer, no metadata.
    try (Connection c = SchemaInstaller.connect(db);
         PreparedStatement s = c.prepareStatement("SELECT count(*), count(DISTINCT writer), min(write_timestamp), "
             + "bool_or(deleted), count(meta_payload), count(meta_ser_id), count(meta_ser_manifest), "
             + "max(sequence_number), count(DISTINCT ordering) FROM event_journal WHERE persistence_id LIKE 'plain-%'");
         ResultSet r = s.executeQuery()) {
      r.next();
      assertThat(r.getLong(1)).isEqualTo((long) writers * events);
      assertThat(r.getLong(2)).isEqualTo(writers);
      assertThat(r.getLong(3)).isGreaterThan(0);
      assertThat(r.getBoolean(4)).isFalse();
      assertThat(r.getLong(5) + r.getLong(6) + r.getLong(7)).isZero();
      assertThat(r.getLong(8)).isEqualTo(events);
      assertThat(r.getLong(9)).isEqualTo((long) writers * events);
    }
  }

  @Test
  void taggedEventsStillGetTheirTagRows() throws Exception {
    ActorRef<Command> writer = system.systemActorOf(Writer.create("tagged-1", Set.of("blue", "green")), "tagged-1",
        Props.empty());
    ask(writer, replyTo -> new Persist("a", replyTo)).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    ask(writer, replyTo -> new Persist("b", replyTo)).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    assertThat(count("SELECT count(*) FROM event_tag t JOIN event_journal j ON t.event_id = j.ordering "
        + "WHERE j.persistence_id = 'tagged-1'")).isEqualTo(4);
  }

  @Test
  void aWriteThatCollidesWithAnExistingRowFailsItsWriter() throws Exception {
    // Two incarnations of one persistence id, as after a split brain: both recover an empty
    // journal, both write sequence number 1. The second insert violates the primary key.
    ActorRef<Command> first = system.systemActorOf(Writer.create("twice", Set.of()), "twice-a",
        Props.empty());
    ActorRef<Command> second = system.systemActorOf(Writer.create("twice", Set.of()), "twice-b",
        Props.empty());
    ask(first, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    ask(second, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);

    ask(first, replyTo -> new Persist("from-first", replyTo)).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    CompletableFuture<Boolean> stopped = watch(second);
    second.tell(new Persist("from-second", system.ignoreRef()));

    assertThat(stopped.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
    assertThat(count("SELECT count(*) FROM event_journal WHERE persistence_id = 'twice'")).isEqualTo(1);
  }

  @Test
  void eachBatchIsReportedOnceWithItsEventsAndAFailedOneAsFailed() throws Exception {
    AtomicLong events = new AtomicLong();
    AtomicLong batches = new AtomicLong();
    AtomicLong failed = new AtomicLong();
    AtomicLong slowest = new AtomicLong();
    JournalWrites.get(Adapter.toClassic(system)).observe((n, nanos, failure) -> {
      events.addAndGet(n);
      batches.incrementAndGet();
      slowest.accumulateAndGet(nanos, Math::max);
      if (failure) {
        failed.incrementAndGet();
      }
    });
    try {
      int writers = 20;
      List<CompletionStage<List<String>>> done = new ArrayList<>();
      for (int w = 0; w < writers; w++) {
        ActorRef<Command> writer = system.systemActorOf(Writer.create("observed-" + w, Set.of()), "observed-" + w,
            Props.empty());
        for (int e = 0; e < 5; e++) {
          String event = "e" + e;
          CompletionStage<List<String>> persisted = ask(writer, replyTo -> new Persist(event, replyTo));
          if (e == 4) {
            done.add(persisted);
          }
        }
      }
      for (CompletionStage<List<String>> d : done) {
        d.toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      }
      // Reported when the insert completed, which may be just after the writers heard of it.
      await().atMost(TIMEOUT).until(() -> events.get() == writers * 5L);
      assertThat(batches.get()).isBetween(1L, writers * 5L);
      assertThat(slowest.get()).isPositive();
      assertThat(failed.get()).isZero();

      // A batch the database refuses (a second writer of one persistence id) is reported failed.
      ActorRef<Command> again = system.systemActorOf(Writer.create("observed-0", Set.of()), "observed-0-again",
          Props.empty());
      ActorRef<Command> stale = system.systemActorOf(Writer.create("observed-0", Set.of()), "observed-0-stale",
          Props.empty());
      ask(again, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      ask(stale, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      ask(again, replyTo -> new Persist("e5", replyTo)).toCompletableFuture()
          .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      stale.tell(new Persist("e5-stale", system.ignoreRef()));
      await().atMost(TIMEOUT).until(() -> failed.get() == 1);
    } finally {
      JournalWrites.get(Adapter.toClassic(system))
          .observe((n, nanos, failure) -> { });
    }
  }

  @Test
  void aRevokedNodeLeaseFailsEveryLaterBatchAndARevocationWaitsForTheBatchesInFlight() throws Exception {
    String lease = "pekko://journal-dao-test@127.0.0.1:1#42";
    execute("INSERT INTO berth_node_lease (node, started_at, valid_until) VALUES ('" + lease
        + "', now(), now() + interval '1 hour')");
    JournalFence fence = JournalFence.get(Adapter.toClassic(system));
    fence.hold(lease);
    try {
      ActorRef<Command> writer = system.systemActorOf(Writer.create("fenced", Set.of()), "fenced", Props.empty());
      ask(writer, replyTo -> new Persist("before", replyTo)).toCompletableFuture()
          .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);

      // A revocation in progress (its update lock taken, not committed) holds the next batch
      // back: the batch commits after it or not at all.
      try (Connection revoking = SchemaInstaller.connect(db)) {
        revoking.setAutoCommit(false);
        try (PreparedStatement lock = revoking.prepareStatement(
            "SELECT 1 FROM berth_node_lease WHERE node = ? FOR UPDATE")) {
          lock.setString(1, lease);
          lock.executeQuery().close();
        }
        CompletionStage<List<String>> held = ask(writer, replyTo -> new Persist("during", replyTo));
        Thread.sleep(500);
        assertThat(held.toCompletableFuture()).as("held by the revocation's lock").isNotDone();
        try (PreparedStatement revoke = revoking.prepareStatement(
            "UPDATE berth_node_lease SET revoked_at = now(), revoked_by = 'test' WHERE node = ?")) {
          revoke.setString(1, lease);
          revoke.executeUpdate();
        }
        CompletableFuture<Boolean> stopped = watch(writer);
        revoking.commit();
        // The batch saw the revocation: refused, and its writer stopped without an answer.
        assertThat(stopped.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(held.toCompletableFuture()).isNotDone();
      }
      assertThat(count("SELECT count(*) FROM event_journal WHERE persistence_id = 'fenced'")).isEqualTo(1);

      // And every later batch of this node fails as well.
      ActorRef<Command> again = system.systemActorOf(Writer.create("fenced-2", Set.of()), "fenced-2", Props.empty());
      CompletableFuture<Boolean> stoppedAgain = watch(again);
      again.tell(new Persist("after", system.ignoreRef()));
      assertThat(stoppedAgain.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isTrue();
      assertThat(count("SELECT count(*) FROM event_journal WHERE persistence_id = 'fenced-2'")).isZero();
    } finally {
      fence.hold(null);
    }
  }

  /**
   * The journal's trigger, as a node's session meets it: an insert into the journal from a session
   * naming a lease locks the lease's row until its transaction ends, which a renewal does not
   * wait for and a revocation does; the session is found by its name; a revoked lease fails the
   * insert with SQLSTATE BL001; a session naming no lease is not checked.
   */
  @Test
  void theJournalsTriggerHoldsOffARevocationButNotARenewalAndRefusesARevokedLease() throws Exception {
    String lease = "pekko://journal-dao-test@127.0.0.1:2#7";
    execute("INSERT INTO berth_node_lease (node, started_at, valid_until) VALUES ('" + lease
        + "', now(), now() + interval '1 hour')");
    String insert = "INSERT INTO event_journal (deleted, persistence_id, sequence_number, writer, write_timestamp,"
        + " adapter_manifest, event_ser_id, event_ser_manifest, event_payload) VALUES (false, ?, ?, 'w', 0, '', 1,"
        + " '', '\\x01')";
    try (Connection batch = SchemaInstaller.connect(db); Connection other = SchemaInstaller.connect(db)) {
      JournalFence fence = JournalFence.get(Adapter.toClassic(system));
      fence.hold(lease);
      try {
        fence.enter(batch);
      } finally {
        fence.hold(null);
      }
      assertThat(count("SELECT count(*) FROM pg_stat_activity WHERE application_name = '"
          + JournalFence.sessionName(lease) + "'")).as("the node's journal session, by its name").isEqualTo(1);
      // A session reset (a pool's DISCARD ALL) forgets the lease; the next batch names it again.
      try (java.sql.Statement reset = batch.createStatement()) {
        reset.execute("DISCARD ALL");
      }
      fence.hold(lease);
      try {
        fence.enter(batch);
      } finally {
        fence.hold(null);
      }
      try (java.sql.Statement read = batch.createStatement();
          ResultSet named = read.executeQuery("SELECT current_setting('berth.lease', true)")) {
        assertThat(named.next()).isTrue();
        assertThat(named.getString(1)).as("named again after the reset").isEqualTo(lease);
      }
      // A batch's insert, its transaction not yet committed.
      batch.setAutoCommit(false);
      try (PreparedStatement row = batch.prepareStatement(insert)) {
        row.setString(1, "trigger-test");
        row.setLong(2, 1);
        row.executeUpdate();
      }

      // The node's own renewal goes through at once...
      try (PreparedStatement renew = other.prepareStatement(
          "UPDATE berth_node_lease SET valid_until = now() + interval '1 hour' WHERE node = ?")) {
        renew.setQueryTimeout(5);
        renew.setString(1, lease);
        assertThat(renew.executeUpdate()).isEqualTo(1);
      }
      // ...a revocation's lock does not.
      other.setAutoCommit(false);
      try (java.sql.Statement wait = other.createStatement()) {
        wait.execute("SET LOCAL lock_timeout = '300ms'");
      }
      try (PreparedStatement lock = other.prepareStatement(
          "SELECT 1 FROM berth_node_lease WHERE node = ? FOR UPDATE")) {
        lock.setString(1, lease);
        assertThatThrownBy(lock::executeQuery).isInstanceOf(SQLException.class)
            .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("55P03"));
      }
      other.rollback();
      other.setAutoCommit(true);
      batch.commit();

      // Revoked: the session's next insert is refused, and nothing of it stays.
      execute("UPDATE berth_node_lease SET revoked_at = now() WHERE node = '" + lease + "'");
      try (PreparedStatement row = batch.prepareStatement(insert)) {
        row.setString(1, "trigger-test");
        row.setLong(2, 2);
        assertThatThrownBy(row::executeUpdate).isInstanceOf(SQLException.class)
            .hasMessageContaining("was revoked at")
            .satisfies(e -> assertThat(((SQLException) e).getSQLState())
                .isEqualTo(JournalFence.LeaseRevokedException.SQL_STATE));
      }
      batch.rollback();
      // A session that names no lease (this one, once the node holds none) is not checked.
      fence.enter(batch);
      try (PreparedStatement row = batch.prepareStatement(insert)) {
        row.setString(1, "trigger-test");
        row.setLong(2, 3);
        assertThat(row.executeUpdate()).isEqualTo(1);
      }
      batch.commit();
      assertThat(count("SELECT count(*) FROM event_journal WHERE persistence_id = 'trigger-test'")).isEqualTo(2);
    }
  }

  @Test
  void aJournalTableWithoutTheFenceTriggerIsRefusedWhileALeaseIsHeld() throws Exception {
    execute("CREATE TABLE IF NOT EXISTS journal_by_hand (LIKE event_journal INCLUDING ALL)");
    JournalFence fence = JournalFence.get(Adapter.toClassic(system));
    try (Connection c = SchemaInstaller.connect(db)) {
      assertThatThrownBy(() -> fence.requireTrigger(c, "\"journal_by_hand\"")).isInstanceOf(SQLException.class)
          .hasMessageContaining("has no trigger berth_journal_fence");
      fence.requireTrigger(c, "\"event_journal\"");
    }
  }

  @Test
  void onPostgresABatchIsOneCopyThatKeepsEveryColumn() throws Exception {
    // Metadata, which the writers above never carry, goes in as well, a row marked deleted, and
    // text that is not ASCII.
    AppendingJournalDao dao = directDao();
    List<Tuple2<JournalTables.JournalPekkoSerializationRow, scala.collection.immutable.Set<String>>> rows =
        new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      boolean meta = i == 2;
      rows.add(Tuple2.apply(new JournalTables.JournalPekkoSerializationRow(Long.MIN_VALUE, i == 3, "direct", i,
          "wrïter-☃", 1000L + i, "", new byte[] {(byte) i, 0, (byte) 255}, 42, "E.1",
          meta ? Option.apply(new byte[] {7, 7}) : Option.empty(), meta ? Option.apply((Object) 43) : Option.empty(),
          meta ? Option.apply("M.1") : Option.empty()), scala.collection.immutable.Set$.MODULE$.<String>empty()));
    }
    FutureConverters.asJava(dao.writeJournalRows(CollectionConverters.asScala(rows).toList())).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);

    try (Connection c = SchemaInstaller.connect(db);
         PreparedStatement s = c.prepareStatement("SELECT sequence_number, writer, write_timestamp, "
             + "adapter_manifest, event_ser_id, event_ser_manifest, event_payload, meta_ser_id, meta_ser_manifest, "
             + "meta_payload, xmin::text, deleted FROM event_journal WHERE persistence_id = 'direct' "
             + "ORDER BY ordering");
         ResultSet r = s.executeQuery()) {
      List<String> seen = new ArrayList<>();
      java.util.Set<String> transactions = new java.util.HashSet<>();
      while (r.next()) {
        seen.add(r.getLong(1) + " " + r.getString(2) + " " + r.getLong(3) + " [" + r.getString(4) + "] "
            + r.getInt(5) + " " + r.getString(6) + " " + java.util.Arrays.toString(r.getBytes(7)) + " "
            + r.getObject(8) + " " + r.getString(9) + " " + java.util.Arrays.toString(r.getBytes(10))
            + (r.getBoolean(12) ? " deleted" : ""));
        transactions.add(r.getString(11));
      }
      assertThat(seen).containsExactly(
          "1 wrïter-☃ 1001 [] 42 E.1 [1, 0, -1] null null null",
          "2 wrïter-☃ 1002 [] 42 E.1 [2, 0, -1] 43 M.1 [7, 7]",
          "3 wrïter-☃ 1003 [] 42 E.1 [3, 0, -1] null null null deleted");
      assertThat(transactions).as("one statement, one transaction").hasSize(1);
    }

    // The same batch again collides on every row. The failure is the driver's error for one
    // statement: the stock path would fail with a JDBC batch's BatchUpdateException.
    assertThatThrownBy(() -> FutureConverters.asJava(dao.writeJournalRows(CollectionConverters.asScala(rows).toList()))
        .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause().isExactlyInstanceOf(org.postgresql.util.PSQLException.class)
        .hasMessageContaining("duplicate key");

    // The failed COPY left its connection usable: more batches than the pool has connections.
    for (int batch = 1; batch <= 12; batch++) {
      List<Tuple2<JournalTables.JournalPekkoSerializationRow, scala.collection.immutable.Set<String>>> after =
          List.of(Tuple2.apply(new JournalTables.JournalPekkoSerializationRow(Long.MIN_VALUE, false, "after", batch,
              "w", 0L, "", new byte[] {(byte) batch}, 42, "E", Option.empty(), Option.empty(), Option.empty()),
              scala.collection.immutable.Set$.MODULE$.<String>empty()));
      FutureConverters.asJava(dao.writeJournalRows(CollectionConverters.asScala(after).toList()))
          .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }
    assertThat(count("SELECT count(*) FROM event_journal WHERE persistence_id = 'after'")).isEqualTo(12);
  }

  @Test
  void rowsLargerThanTheBuffersFirstGuessArriveWhole() throws Exception {
    // The COPY data starts from a guess of 256 bytes a row and grows: one small row, then one of
    // 300 KB, then small ones again.
    AppendingJournalDao dao = directDao();
    byte[] large = new byte[300_000];
    new Random(7).nextBytes(large);
    List<Tuple2<JournalTables.JournalPekkoSerializationRow, scala.collection.immutable.Set<String>>> rows =
        new ArrayList<>();
    for (int i = 1; i <= 4; i++) {
      rows.add(Tuple2.apply(new JournalTables.JournalPekkoSerializationRow(Long.MIN_VALUE, false, "large", i, "w",
          0L, "", i == 2 ? large : new byte[] {(byte) i}, 42, "E", Option.empty(), Option.empty(), Option.empty()),
          scala.collection.immutable.Set$.MODULE$.<String>empty()));
    }
    FutureConverters.asJava(dao.writeJournalRows(CollectionConverters.asScala(rows).toList())).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);

    try (Connection c = SchemaInstaller.connect(db);
         PreparedStatement s = c.prepareStatement("SELECT event_payload FROM event_journal "
             + "WHERE persistence_id = 'large' ORDER BY sequence_number");
         ResultSet r = s.executeQuery()) {
      List<byte[]> payloads = new ArrayList<>();
      while (r.next()) {
        payloads.add(r.getBytes(1));
      }
      assertThat(payloads).hasSize(4);
      assertThat(payloads.get(0)).containsExactly(1);
      assertThat(payloads.get(1)).isEqualTo(large);
      assertThat(payloads.get(2)).containsExactly(3);
      assertThat(payloads.get(3)).containsExactly(4);
    }
  }

  @Test
  void aPoolOutsideAutocommitStillCommitsTheCopy() throws Exception {
    // Slick runs the COPY as a plain action: on a connection outside autocommit nobody else would
    // commit it, and the pool would roll it back when the connection comes back.
    Config slickConfig = ConfigFactory.parseString("""
        db { autoCommit = false, numThreads = 1, maxConnections = 1, minConnections = 1 }
        """).withFallback(db.pekkoOverrides().getConfig("pekko-persistence-jdbc.shared-databases.slick"));
    JdbcBackend.JdbcDatabaseDef manual = JdbcBackend$.MODULE$.Database().forConfig("db", slickConfig, null,
        getClass().getClassLoader());
    try {
      Config journal = system.settings().config().getConfig("jdbc-journal");
      AppendingJournalDao dao = new AppendingJournalDao(manual, PostgresProfile$.MODULE$, new JournalConfig(journal),
          SerializationExtension.get(system), system.executionContext(), Materializer.matFromSystem(system));
      List<Tuple2<JournalTables.JournalPekkoSerializationRow, scala.collection.immutable.Set<String>>> rows =
          List.of(Tuple2.apply(new JournalTables.JournalPekkoSerializationRow(Long.MIN_VALUE, false, "manual", 1,
              "w", 0L, "", new byte[] {1}, 42, "E", Option.empty(), Option.empty(), Option.empty()),
              scala.collection.immutable.Set$.MODULE$.<String>empty()));
      FutureConverters.asJava(dao.writeJournalRows(CollectionConverters.asScala(rows).toList()))
          .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } finally {
      manual.close();
    }
    assertThat(count("SELECT count(*) FROM event_journal WHERE persistence_id = 'manual'")).isEqualTo(1);
  }

  /**
   * Deleting events up to a sequence number leaves exactly the rows the stock DAO leaves (the
   * highest at or under it, marked deleted, and everything after it), recovery replays only what
   * follows, and the sequence numbers go on.
   */
  @Test
  void deletingEventsLeavesWhatTheStockDaoLeaves() throws Exception {
    Config journal = system.settings().config().getConfig("jdbc-journal");
    SlickDatabase slick = ((SlickExtensionImpl) SlickExtension.get(system)).database(journal);
    org.apache.pekko.persistence.jdbc.journal.dao.DefaultJournalDao stock =
        new org.apache.pekko.persistence.jdbc.journal.dao.DefaultJournalDao(slick.database(), slick.profile(),
            new JournalConfig(journal), SerializationExtension.get(system), system.executionContext(),
            Materializer.matFromSystem(system));
    AppendingJournalDao ours = directDao();
    for (String pid : List.of("deleting-ours", "deleting-stock")) {
      ActorRef<Command> writer = system.systemActorOf(Writer.create(pid, Set.of()), pid, Props.empty());
      for (int e = 1; e <= 10; e++) {
        ask(writer, replyTo -> new Persist("e", replyTo)).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      }
    }
    for (long upTo : new long[] {7, 7, 3, Long.MAX_VALUE}) {
      FutureConverters.asJava(ours.delete("deleting-ours", upTo)).toCompletableFuture()
          .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      FutureConverters.asJava(stock.delete("deleting-stock", upTo)).toCompletableFuture()
          .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      assertThat(rows("deleting-ours")).as("after deleting up to %d", upTo).isEqualTo(rows("deleting-stock"));
      if (upTo == 7) {
        assertThat(rows("deleting-ours")).isEqualTo(List.of("7 deleted", "8", "9", "10"));
        ActorRef<Command> again = system.systemActorOf(Writer.create("deleting-ours", Set.of()),
            "deleting-again-" + System.nanoTime(), Props.empty());
        assertThat(ask(again, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
            .as("recovered: the events after the deleted ones").hasSize(3);
      }
    }
    assertThat(rows("deleting-ours")).isEqualTo(List.of("10 deleted"));
    FutureConverters.asJava(ours.delete("deleting-nobody", 5)).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    assertThat(FutureConverters.asJava(ours.highestSequenceNr("deleting-ours", 0)).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).isEqualTo(10L);
  }

  /** A persistence id's rows: each sequence number, and whether it is marked deleted. */
  private static List<String> rows(String persistenceId) throws SQLException {
    List<String> out = new ArrayList<>();
    try (Connection c = SchemaInstaller.connect(db);
         PreparedStatement s = c.prepareStatement(
             "SELECT sequence_number, deleted FROM event_journal WHERE persistence_id = ? ORDER BY sequence_number")) {
      s.setString(1, persistenceId);
      try (ResultSet r = s.executeQuery()) {
        while (r.next()) {
          out.add(r.getLong(1) + (r.getBoolean(2) ? " deleted" : ""));
        }
      }
    }
    return out;
  }

  /** The DAO itself, as the journal builds it, so that a batch cannot take the stock path unnoticed. */
  private static AppendingJournalDao directDao() {
    Config journal = system.settings().config().getConfig("jdbc-journal");
    SlickDatabase slick = ((SlickExtensionImpl) SlickExtension.get(system)).database(journal);
    assertThat(slick.profile()).isInstanceOf(slick.jdbc.PostgresProfile.class);
    return new AppendingJournalDao(slick.database(), slick.profile(), new JournalConfig(journal),
        SerializationExtension.get(system), system.executionContext(), Materializer.matFromSystem(system));
  }

  @Test
  void theCopyNamesTheConfiguredTableAndColumnsQuoted() {
    EventJournalTableConfiguration table = new EventJournalTableConfiguration(ConfigFactory.parseString("""
        tables.event_journal {
          tableName = "journal"
          schemaName = "my\\"schema"
          columnNames {
            ordering = "ordering", deleted = "deleted", persistenceId = "persistence_id"
            sequenceNumber = "sequence_number", writer = "writer", writeTimestamp = "write_timestamp"
            adapterManifest = "adapter_manifest", eventPayload = "event_payload", eventSerId = "event_ser_id"
            eventSerManifest = "event_ser_manifest", metaPayload = "meta_payload", metaSerId = "meta_ser_id"
            metaSerManifest = "meta_ser_manifest"
          }
        }
        """));
    assertThat(AppendingJournalDao.copyIn(table)).isEqualTo("COPY \"my\"\"schema\".\"journal\" (\"deleted\", "
        + "\"persistence_id\", \"sequence_number\", \"writer\", \"write_timestamp\", \"adapter_manifest\", "
        + "\"event_ser_id\", \"event_ser_manifest\", \"event_payload\", \"meta_ser_id\", \"meta_ser_manifest\", "
        + "\"meta_payload\") FROM STDIN (FORMAT binary)");
  }

  // ------------------------------------------------------------------ a minimal writer

  sealed interface Command {}

  /** Persists {@code event}; replies with every event this writer holds. */
  record Persist(String event, ActorRef<List<String>> replyTo) implements Command {}

  /** Replies with every event this writer holds (after recovery). */
  record Read(ActorRef<List<String>> replyTo) implements Command {}

  static final class Writer extends EventSourcedBehavior<Command, String, List<String>> {
    private final Set<String> tags;

    private Writer(String persistenceId, Set<String> tags) {
      super(PersistenceId.ofUniqueId(persistenceId));
      this.tags = tags;
    }

    static Behavior<Command> create(String persistenceId, Set<String> tags) {
      return new Writer(persistenceId, tags);
    }

    @Override
    public List<String> emptyState() {
      return List.of();
    }

    @Override
    public Set<String> tagsFor(String event) {
      return tags;
    }

    @Override
    public CommandHandler<Command, String, List<String>> commandHandler() {
      return newCommandHandlerBuilder().forAnyState()
          .onCommand(Persist.class, (state, c) -> Effect().persist(c.event()).thenReply(c.replyTo(), s -> s))
          .onCommand(Read.class, (state, c) -> Effect().reply(c.replyTo(), state))
          .build();
    }

    @Override
    public EventHandler<List<String>, String> eventHandler() {
      return newEventHandlerBuilder().forAnyState().onAnyEvent((state, event) -> {
        List<String> next = new ArrayList<>(state);
        next.add(event);
        return next;
      });
    }
  }

  private static CompletionStage<List<String>> ask(ActorRef<Command> target,
      org.apache.pekko.japi.function.Function<ActorRef<List<String>>, Command> message) {
    return AskPattern.ask(target, message, TIMEOUT, system.scheduler());
  }

  /** Completes with true when {@code target} stops. */
  private static CompletableFuture<Boolean> watch(ActorRef<Command> target) {
    CompletableFuture<Boolean> stopped = new CompletableFuture<>();
    system.systemActorOf(Behaviors.<Void>setup(ctx -> {
      ctx.watch(target);
      return Behaviors.<Void>receiveSignal((c, signal) -> {
        if (signal instanceof Terminated) {
          stopped.complete(true);
          return Behaviors.stopped();
        }
        return Behaviors.same();
      });
    }), "watch-" + System.nanoTime(), Props.empty());
    return stopped;
  }

  private static long count(String sql) throws SQLException {
    return TestDatabase.count(db, sql);
  }

  private static void execute(String sql) throws SQLException {
    try (Connection c = SchemaInstaller.connect(db); java.sql.Statement s = c.createStatement()) {
      s.execute(sql);
    }
  }
}
