package io.berth.persistence;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.persistence.PersistentRepr;
import org.apache.pekko.persistence.SnapshotMetadata;
import org.apache.pekko.persistence.jdbc.config.EventJournalTableConfiguration;
import org.apache.pekko.persistence.jdbc.config.JournalConfig;
import org.apache.pekko.persistence.jdbc.config.SnapshotConfig;
import org.apache.pekko.persistence.jdbc.config.SnapshotTableConfiguration;
import org.apache.pekko.persistence.jdbc.db.SlickDatabase;
import org.apache.pekko.persistence.jdbc.db.SlickExtension;
import org.apache.pekko.persistence.jdbc.db.SlickExtensionImpl;
import org.apache.pekko.persistence.jdbc.journal.dao.JournalTables;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.jdk.javaapi.FutureConverters;
import scala.util.Try;

/**
 * Recoveries that run at once read their snapshots and highest sequence numbers together, on real
 * PostgreSQL: whatever was gathered into one query, each actor gets its own snapshot and its own
 * events, a socket with nothing gets nothing, and a row that cannot be read fails only its reader.
 */
class CoalescedRecoveryTest {

  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private static DatabaseSettings db;
  private static ActorSystem<Void> system;

  @BeforeAll
  static void start() {
    db = TestDatabase.createScratchDatabase();
    system = TestDatabase.persistenceSystem(db, "coalesced-recovery-test", """
        jdbc-journal.dao = "io.berth.persistence.AppendingJournalDao"
        jdbc-snapshot-store.dao = "io.berth.persistence.CoalescingSnapshotDao"
        """);
  }

  @AfterAll
  static void stop() throws Exception {
    TestDatabase.stop(system, db);
  }

  @Test
  void manyActorsRecoveringAtOnceEachGetTheirOwnSnapshotAndEvents() throws Exception {
    // 0 to 11 events each, a snapshot every 5: none, one or two snapshots, events after them or not.
    int writers = 150;
    for (int w = 0; w < writers; w++) {
      ActorRef<Command> writer = system.systemActorOf(Counter.create("many-" + w), "first-" + w, Props.empty());
      for (int e = 1; e <= w % 12; e++) {
        int event = e;
        ask(writer, replyTo -> new Add("e" + event, replyTo));
      }
      ask(writer, Read::new).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }
    // Snapshots are saved after the event's reply: wait until every writer with five events has one.
    long withSnapshots = java.util.stream.IntStream.range(0, writers).filter(w -> w % 12 >= 5).count();
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (count("SELECT count(DISTINCT persistence_id) FROM snapshot WHERE persistence_id LIKE 'many-%'")
        < withSnapshots && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertThat(count("SELECT count(DISTINCT persistence_id) FROM snapshot WHERE persistence_id LIKE 'many-%'"))
        .isEqualTo(withSnapshots);

    // Every writer again, all at once: more recoveries than are allowed to run at the same time.
    List<CompletionStage<String>> recovered = new ArrayList<>();
    for (int w = 0; w < writers; w++) {
      ActorRef<Command> again = system.systemActorOf(Counter.create("many-" + w), "again-" + w, Props.empty());
      recovered.add(ask(again, Read::new));
    }
    for (int w = 0; w < writers; w++) {
      StringBuilder expected = new StringBuilder();
      for (int e = 1; e <= w % 12; e++) {
        expected.append(",e").append(e);
      }
      assertThat(recovered.get(w).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
          .as("many-" + w).isEqualTo(expected.toString());
    }
  }

  @Test
  void theHighestSequenceNumberOfEachIdCountsDeletedRowsAndIsZeroForNone() throws Exception {
    AppendingJournalDao dao = journalDao();
    List<JournalTables.JournalPekkoSerializationRow> rows = new ArrayList<>();
    for (int id = 0; id < 60; id++) {
      for (int seq = 1; seq <= id % 9; seq++) {
        rows.add(new JournalTables.JournalPekkoSerializationRow(Long.MIN_VALUE, seq == 8, "high-" + id,
            seq, "w", 0L, "", new byte[] {1}, 42, "E", Option.empty(), Option.empty(), Option.empty()));
      }
    }
    write(dao, rows);

    // The journal locked from another connection: the first read's query waits for the lock,
    // and the other 79 reads gather behind it. Released, they go as one second query.
    long before = dao.highestReads().queries();
    Map<String, CompletionStage<Object>> asked = new HashMap<>();
    try (Connection lock = SchemaInstaller.connect(db); Statement s = lock.createStatement()) {
      lock.setAutoCommit(false);
      s.execute("LOCK TABLE event_journal IN ACCESS EXCLUSIVE MODE");
      for (int id = 0; id < 80; id++) { // 20 that were never written
        asked.put("high-" + id, FutureConverters.asJava(dao.highestSequenceNr("high-" + id, 1 + id % 3)));
      }
      lock.commit();
    }
    for (int id = 0; id < 80; id++) {
      assertThat(asked.get("high-" + id).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
          .as("high-" + id).isEqualTo(id < 60 ? (long) (id % 9) : 0L);
    }
    assertThat(dao.highestReads().queries() - before).isEqualTo(2);
  }

  @Test
  void replaysReadTogetherGiveEachItsOwnEventsWithinItsBoundsAndABadRowFailsOnlyItsReader() throws Exception {
    AppendingJournalDao dao = journalDao();
    // Ids 0 to 39 with id % 10 events each; 3 and 4 of id 9 deleted; event 2 of id 7 unreadable.
    Serialization serialization = SerializationExtension.get(system);
    int strings = serialization.findSerializerFor("").identifier();
    List<JournalTables.JournalPekkoSerializationRow> rows = new ArrayList<>();
    for (int id = 0; id < 40; id++) {
      for (int seq = 1; seq <= id % 10; seq++) {
        boolean deleted = id == 9 && (seq == 3 || seq == 4);
        boolean withMeta = id % 2 == 0;
        rows.add(new JournalTables.JournalPekkoSerializationRow(Long.MIN_VALUE, deleted, "replay-" + id, seq,
            "w-" + id, 1000L + seq, "", serialization.serialize("e" + seq).get(),
            id == 7 && seq == 2 ? 987654 : strings, "",
            withMeta ? Option.apply(serialization.serialize("meta-" + id + "-" + seq).get()) : Option.empty(),
            withMeta ? Option.apply(strings) : Option.empty(), withMeta ? Option.apply("") : Option.empty()));
      }
    }
    write(dao, rows);

    // With the journal locked, the first replay's query waits and the other 39 gather behind it.
    long before = dao.replays().queries();
    Map<Integer, CompletionStage<List<Try<Tuple2<PersistentRepr, Object>>>>> asked = new HashMap<>();
    try (Connection lock = SchemaInstaller.connect(db); Statement s = lock.createStatement()) {
      lock.setAutoCommit(false);
      s.execute("LOCK TABLE event_journal IN ACCESS EXCLUSIVE MODE");
      for (int id = 0; id < 40; id++) {
        // Id 8 from its third event, id 6 up to its fourth; id 5 at most two.
        long from = id == 8 ? 3 : 1;
        long to = id == 6 ? 4 : Long.MAX_VALUE;
        long max = id == 5 ? 2 : Long.MAX_VALUE;
        asked.put(id, dao.messages("replay-" + id, from, to, max).asJava().runWith(Sink.seq(), system));
      }
      lock.commit();
    }
    for (int id = 0; id < 40; id++) {
      List<Try<Tuple2<PersistentRepr, Object>>> got =
          asked.get(id).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      List<Long> expected = new ArrayList<>();
      for (long seq = id == 8 ? 3 : 1; seq <= (id == 6 ? 4 : id % 10); seq++) {
        if (!(id == 9 && (seq == 3 || seq == 4)) && !(id == 5 && expected.size() == 2)) {
          expected.add(seq);
        }
      }
      assertThat(got).as("replay-" + id).hasSize(expected.size());
      for (int i = 0; i < got.size(); i++) {
        long seq = expected.get(i);
        if (id == 7 && seq == 2) {
          assertThat(got.get(i).isFailure()).as("replay-7, event 2").isTrue();
          assertThat(got.get(i).failed().get()).hasMessageContaining("987654");
          continue;
        }
        PersistentRepr event = got.get(i).get()._1();
        assertThat(event.persistenceId()).isEqualTo("replay-" + id);
        assertThat(event.sequenceNr()).isEqualTo(seq);
        assertThat(event.payload()).isEqualTo("e" + seq);
        assertThat(event.writerUuid()).isEqualTo("w-" + id);
        assertThat(event.timestamp()).isEqualTo(1000L + seq);
        assertThat(event.metadata()).isEqualTo(id % 2 == 0 ? Option.apply("meta-" + id + "-" + seq) : Option.empty());
        if (seq == 1) { // the row's ordering, as the stock DAO gives it
          assertThat(got.get(i).get()._2()).isEqualTo(count("SELECT ordering FROM event_journal WHERE persistence_id = "
              + "'replay-" + id + "' AND sequence_number = 1"));
        }
      }
    }
    assertThat(dao.replays().queries() - before).isEqualTo(2);

    // In batches of 3, for id 9's 9 events less the 2 deleted: a full batch asks for the next one,
    // unless it reached the end of the range; a short or empty one ends the replay.
    assertThat(batches(dao, "replay-9", 2, Long.MAX_VALUE)).containsExactly(2L, 5L, 6L, 7L, 8L, 9L);
    assertThat(dao.replays().queries() - before).isEqualTo(2 + 3);
    assertThat(batches(dao, "replay-9", 1, 5)).containsExactly(1L, 2L, 5L);
    assertThat(dao.replays().queries() - before).isEqualTo(5 + 1);
    assertThat(batches(dao, "replay-9", 0, 2)).containsExactly(1L, 2L);
    assertThat(dao.replays().queries() - before).isEqualTo(6 + 1);
    assertThat(batches(dao, "replay-9", 10, Long.MAX_VALUE)).isEmpty();
    assertThat(dao.replays().queries() - before).isEqualTo(7 + 1);
    assertThat(batches(dao, "replay-9", 6, 5)).isEmpty();
    assertThat(dao.replays().queries() - before).isEqualTo(8);

    // A stream built is read only when it runs, as the stock DAO's.
    org.apache.pekko.stream.scaladsl.Source<Try<Tuple2<PersistentRepr, Object>>, ?> built =
        dao.messages("replay-3", 1, Long.MAX_VALUE, Long.MAX_VALUE);
    assertThat(dao.replays().queries() - before).isEqualTo(8);
    assertThat(built.asJava().runWith(Sink.seq(), system).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).hasSize(3);
    assertThat(dao.replays().queries() - before).isEqualTo(9);
  }

  /** The sequence numbers a replay in batches of 3 gives. */
  private static List<Long> batches(AppendingJournalDao dao, String persistenceId, long from, long to)
      throws Exception {
    List<Long> seqs = new ArrayList<>();
    dao.messagesWithBatch(persistenceId, from, to, 3, Option.empty()).asJava()
        .runWith(Sink.seq(), system).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS)
        .forEach(e -> seqs.add(e.get()._1().sequenceNr()));
    return seqs;
  }

  /** Rows written as the journal writes a batch of untagged events. */
  private static void write(AppendingJournalDao dao, List<JournalTables.JournalPekkoSerializationRow> rows)
      throws Exception {
    List<Tuple2<JournalTables.JournalPekkoSerializationRow, scala.collection.immutable.Set<String>>> untagged =
        rows.stream().map(row -> Tuple2.apply(row, scala.collection.immutable.Set$.MODULE$.<String>empty())).toList();
    FutureConverters.asJava(dao.writeJournalRows(CollectionConverters.asScala(untagged).toList()))
        .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
  }

  private static AppendingJournalDao journalDao() {
    Config journal = system.settings().config().getConfig("jdbc-journal");
    SlickDatabase slick = ((SlickExtensionImpl) SlickExtension.get(system)).database(journal);
    return new AppendingJournalDao(slick.database(), slick.profile(), new JournalConfig(journal),
        SerializationExtension.get(system), system.executionContext(), Materializer.matFromSystem(system));
  }

  @Test
  void theLatestSnapshotOfEachIdWithItsMetadataAndABadRowFailsOnlyItsReader() throws Exception {
    Config store = system.settings().config().getConfig("jdbc-snapshot-store");
    SlickDatabase slick = ((SlickExtensionImpl) SlickExtension.get(system)).database(store);
    CoalescingSnapshotDao dao = new CoalescingSnapshotDao(slick.database(), slick.profile(), new SnapshotConfig(store),
        SerializationExtension.get(system), system.executionContext(), Materializer.matFromSystem(system));
    for (int id = 0; id < 40; id++) {
      for (int seq = 1; seq <= id % 4; seq++) {
        Option<Object> meta = id % 2 == 0 ? Option.apply("meta-" + id + "-" + seq) : Option.empty();
        FutureConverters.asJava(dao.save(new SnapshotMetadata("snap-" + id, seq * 10L, 1000L + seq, meta),
            "state-" + id + "-" + seq)).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      }
    }
    try (Connection c = SchemaInstaller.connect(db); PreparedStatement s = c.prepareStatement(
        "UPDATE snapshot SET snapshot_ser_id = 987654 WHERE persistence_id = 'snap-7' AND sequence_number = 30")) {
      assertThat(s.executeUpdate()).isEqualTo(1);
    }

    // As for the journal: with the table locked, the first read waits and the other 39 gather.
    long before = dao.latestReads().queries();
    Map<Integer, CompletableFuture<Option<Tuple2<SnapshotMetadata, Object>>>> asked = new HashMap<>();
    try (Connection lock = SchemaInstaller.connect(db); Statement s = lock.createStatement()) {
      lock.setAutoCommit(false);
      s.execute("LOCK TABLE snapshot IN ACCESS EXCLUSIVE MODE");
      for (int id = 0; id < 40; id++) {
        asked.put(id, FutureConverters.asJava(dao.latestSnapshot("snap-" + id)).toCompletableFuture());
      }
      lock.commit();
    }
    for (int id = 0; id < 40; id++) {
      int latest = id % 4;
      if (id == 7) {
        assertThatThrownBy(() -> asked.get(7).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS))
            .isInstanceOf(ExecutionException.class).hasMessageContaining("987654");
        continue;
      }
      Option<Tuple2<SnapshotMetadata, Object>> got = asked.get(id).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      if (latest == 0) {
        assertThat(got.isEmpty()).as("snap-" + id).isTrue();
        continue;
      }
      SnapshotMetadata meta = got.get()._1();
      assertThat(got.get()._2()).isEqualTo("state-" + id + "-" + latest);
      assertThat(meta.persistenceId()).isEqualTo("snap-" + id);
      assertThat(meta.sequenceNr()).isEqualTo(latest * 10L);
      assertThat(meta.timestamp()).isEqualTo(1000L + latest);
      assertThat(meta.metadata()).isEqualTo(id % 2 == 0 ? Option.apply("meta-" + id + "-" + latest) : Option.empty());
    }
    assertThat(dao.latestReads().queries() - before).isEqualTo(2);
  }

  @Test
  void theQueriesNameTheConfiguredTablesAndColumnsQuoted() {
    Config tables = ConfigFactory.parseString("""
        tables.event_journal {
          tableName = "journal"
          schemaName = "my\\"schema"
          columnNames {
            ordering = "ordering", deleted = "deleted", persistenceId = "pid"
            sequenceNumber = "seq", writer = "writer", writeTimestamp = "write_timestamp"
            adapterManifest = "adapter_manifest", eventPayload = "event_payload", eventSerId = "event_ser_id"
            eventSerManifest = "event_ser_manifest", metaPayload = "meta_payload", metaSerId = "meta_ser_id"
            metaSerManifest = "meta_ser_manifest"
          }
        }
        tables.snapshot {
          tableName = "snaps"
          schemaName = "s"
          columnNames {
            persistenceId = "pid", sequenceNumber = "seq", created = "at", snapshotPayload = "p"
            snapshotSerId = "p_id", snapshotSerManifest = "p_m", metaPayload = "m", metaSerId = "m_id"
            metaSerManifest = "m_m"
          }
        }
        """);
    assertThat(AppendingJournalDao.highestIn(new EventJournalTableConfiguration(tables))).isEqualTo(
        "SELECT k.id, (SELECT j.\"seq\" FROM \"my\"\"schema\".\"journal\" j WHERE j.\"pid\" = k.id "
            + "ORDER BY j.\"seq\" DESC LIMIT 1) FROM unnest(?::text[]) AS k(id)");
    assertThat(CoalescingSnapshotDao.latestIn(new SnapshotTableConfiguration(tables))).isEqualTo(
        "SELECT s.\"pid\", s.\"seq\", s.\"at\", s.\"p_id\", s.\"p_m\", s.\"p\", s.\"m_id\", s.\"m_m\", s.\"m\" "
            + "FROM unnest(?::text[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM \"s\".\"snaps\" s "
            + "WHERE s.\"pid\" = k.id ORDER BY s.\"seq\" DESC LIMIT 1) s");
    assertThat(AppendingJournalDao.eventsIn(new EventJournalTableConfiguration(tables))).isEqualTo(
        "SELECT r.i, j.\"ordering\", j.\"deleted\", j.\"pid\", j.\"seq\", j.\"writer\", j.\"write_timestamp\", "
            + "j.\"adapter_manifest\", j.\"event_payload\", j.\"event_ser_id\", j.\"event_ser_manifest\", "
            + "j.\"meta_payload\", j.\"meta_ser_id\", j.\"meta_ser_manifest\" "
            + "FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS r(id, lo, hi, mx, i) "
            + "CROSS JOIN LATERAL (SELECT * FROM \"my\"\"schema\".\"journal\" j WHERE j.\"pid\" = r.id "
            + "AND j.\"deleted\" = FALSE AND j.\"seq\" >= r.lo AND j.\"seq\" <= r.hi ORDER BY j.\"seq\" "
            + "LIMIT r.mx) j ORDER BY r.i, j.\"seq\"");
  }

  // ------------------------------------------------------------------ a minimal counter with snapshots

  sealed interface Command {}

  record Add(String event, ActorRef<String> replyTo) implements Command {}

  record Read(ActorRef<String> replyTo) implements Command {}

  /** Its state is every event so far, each after a comma; a snapshot every five events. */
  static final class Counter extends EventSourcedBehavior<Command, String, String> {

    private Counter(String persistenceId) {
      super(PersistenceId.ofUniqueId(persistenceId));
    }

    static Behavior<Command> create(String persistenceId) {
      return new Counter(persistenceId);
    }

    @Override
    public String emptyState() {
      return "";
    }

    @Override
    public RetentionCriteria retentionCriteria() {
      return RetentionCriteria.snapshotEvery(5, 2);
    }

    @Override
    public CommandHandler<Command, String, String> commandHandler() {
      return newCommandHandlerBuilder().forAnyState()
          .onCommand(Add.class, (state, c) -> Effect().persist(c.event()).thenReply(c.replyTo(), s -> s))
          .onCommand(Read.class, (state, c) -> Effect().reply(c.replyTo(), state))
          .build();
    }

    @Override
    public EventHandler<String, String> eventHandler() {
      return newEventHandlerBuilder().forAnyState().onAnyEvent((state, event) -> state + "," + event);
    }
  }

  private static CompletionStage<String> ask(ActorRef<Command> target,
      org.apache.pekko.japi.function.Function<ActorRef<String>, Command> message) {
    return AskPattern.ask(target, message, TIMEOUT, system.scheduler());
  }

  private static long count(String sql) throws SQLException {
    return TestDatabase.count(db, sql);
  }
}
