package io.berth.persistence;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.Scheduler;
import org.apache.pekko.dispatch.ExecutionContexts$;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.persistence.PersistentRepr;
import org.apache.pekko.persistence.jdbc.PekkoSerialization;
import org.apache.pekko.persistence.jdbc.config.EventJournalTableColumnNames;
import org.apache.pekko.persistence.jdbc.config.EventJournalTableConfiguration;
import org.apache.pekko.persistence.jdbc.config.JournalConfig;
import org.apache.pekko.persistence.jdbc.journal.dao.DefaultJournalDao;
import org.apache.pekko.persistence.jdbc.journal.dao.JournalTables;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.scaladsl.Source;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;
import scala.Option;
import scala.Tuple2;
import scala.collection.Iterator;
import scala.collection.immutable.Seq;
import scala.collection.immutable.Set;
import scala.concurrent.ExecutionContext;
import scala.concurrent.Future;
import scala.concurrent.duration.FiniteDuration;
import scala.jdk.javaapi.FutureConverters;
import scala.runtime.BoxedUnit;
import scala.util.Try;
import slick.jdbc.JdbcBackend;
import slick.jdbc.JdbcProfile;
import slick.jdbc.PostgresProfile;

/**
 * Pekko Persistence JDBC's journal DAO, with five changes:
 *
 * <ul>
 *   <li>The rows of each write enter the write queue as a {@code Vector} instead of the {@code
 *       List} the journal hands over. The DAO's write queue gathers concurrent writes into one
 *       insert of up to {@code batchSize} rows with {@code batchWeighted}, appending each write's
 *       rows to the batch with {@code rows ++ newRows}, where {@code rows} is the first write's
 *       collection. When that is a {@code List} (as for every event-sourced actor's write), each
 *       append copies the whole batch so far: gathering n single-event writes costs n²/2 list
 *       cells, 80,000 for a batch of 400. In a profile of the journal benchmark this copying was
 *       11 % of the node's CPU. Appending to a {@code Vector} costs the same per row whatever the
 *       batch size.
 *   <li>On PostgreSQL, a batch without tags is one {@code COPY ... FROM STDIN} in the binary
 *       format instead of Slick's JDBC batch (which the driver rewrites into multi-row {@code
 *       VALUES} of up to 128 rows, 12 parameters a row, inside a transaction). See
 *       docs/persistence.md.
 *   <li>On PostgreSQL, the highest sequence numbers that recovering actors ask for at the same
 *       time are read with one query ({@link CoalescedReads}).
 *   <li>On PostgreSQL, so are the events they replay ({@link #messagesWithBatch}): the stock DAO
 *       has Slick compile its query again for every replay and runs a stream for each batch.
 *   <li>On PostgreSQL, events are deleted (after a snapshot) by one statement instead of three,
 *       two of which Slick compiles again on every call ({@link #deleteTo}).
 * </ul>
 *
 * <p>Configured as {@code jdbc-journal.dao} (persistence.conf); everything else is the stock DAO's,
 * and so are reads and writes on H2 and writes of tagged events.
 */
public class AppendingJournalDao extends DefaultJournalDao {

  /** The one COPY of a batch on PostgreSQL, or null elsewhere. */
  private final String copyIn;
  /** The journal table as the COPY names it. */
  private final String journalTable;
  /** Highest sequence numbers read together on PostgreSQL, or null elsewhere. */
  private final CoalescedReads<String, Long> highestReads;
  /** Events replayed together on PostgreSQL, or null elsewhere. */
  private final CoalescedReads<Replay, List<JournalTables.JournalPekkoSerializationRow>> replays;
  private final Serialization serialization;
  /** The deletion of events up to a sequence number, as one statement on PostgreSQL; null elsewhere. */
  private final String deleteTo;
  /** Told of each batch written. */
  private final JournalWrites writes;
  /** Checked by each batch, in its transaction. */
  private final JournalFence fence;
  /** The writer id its rows carry has been logged. */
  private final java.util.concurrent.atomic.AtomicBoolean writerLogged = new java.util.concurrent.atomic.AtomicBoolean();

  /** The replays, for tests; null elsewhere than on PostgreSQL. */
  CoalescedReads<Replay, List<JournalTables.JournalPekkoSerializationRow>> replays() {
    return replays;
  }

  /** The reads of highest sequence numbers, for tests; null elsewhere than on PostgreSQL. */
  CoalescedReads<String, Long> highestReads() {
    return highestReads;
  }

  public AppendingJournalDao(JdbcBackend.JdbcDatabaseDef db, JdbcProfile profile, JournalConfig journalConfig,
                             Serialization serialization, ExecutionContext ec, Materializer mat) {
    super(db, profile, journalConfig, serialization, ec, mat);
    boolean postgres = profile instanceof PostgresProfile;
    EventJournalTableConfiguration table = journalConfig.eventJournalTableConfiguration();
    this.copyIn = postgres ? copyIn(table) : null;
    this.journalTable = Jdbc.table(table.schemaName(), table.tableName());
    // SQL NULL (an id without rows) reads as 0, as it does for the stock DAO.
    this.highestReads = postgres ? Jdbc.readsByIds(db, ec, highestIn(table), 0L, row -> row.getLong(2)) : null;
    String events = eventsIn(table);
    this.replays = postgres
        ? Jdbc.reads(db, ec, REPLAYS, REPLAY_DEADLINE, (connection, asked) -> replay(connection, events, asked))
        : null;
    this.serialization = serialization;
    this.deleteTo = postgres ? deleteTo(table) : null;
    this.writes = JournalWrites.get(serialization.system());
    this.fence = JournalFence.get(serialization.system());
  }

  /** The COPY of a whole batch, its columns in the order {@link BinaryRows} writes a row's fields. */
  static String copyIn(EventJournalTableConfiguration table) {
    EventJournalTableColumnNames c = table.columnNames();
    List<String> columns = List.of(c.deleted(), c.persistenceId(), c.sequenceNumber(), c.writer(),
        c.writeTimestamp(), c.adapterManifest(), c.eventSerId(), c.eventSerManifest(), c.eventPayload(),
        c.metaSerId(), c.metaSerManifest(), c.metaPayload());
    return "COPY " + Jdbc.table(table.schemaName(), table.tableName()) + " ("
        + String.join(", ", columns.stream().map(Jdbc::quote).toList()) + ") FROM STDIN (FORMAT binary)";
  }

  /**
   * The highest sequence number of each of an array of persistence ids, deleted rows included and
   * 0 for none, as the stock DAO reads it for one id: one backward step in the primary key each.
   */
  static String highestIn(EventJournalTableConfiguration table) {
    EventJournalTableColumnNames c = table.columnNames();
    String pid = Jdbc.quote(c.persistenceId());
    String seq = Jdbc.quote(c.sequenceNumber());
    return "SELECT k.id, (SELECT j." + seq + " FROM " + Jdbc.table(table.schemaName(), table.tableName())
        + " j WHERE j." + pid + " = k.id ORDER BY j." + seq + " DESC LIMIT 1) FROM unnest(?::text[]) AS k(id)";
  }

  /**
   * Replays per query. Each brings at most the journal's {@code replayBatchSize} (400) rows, and a
   * socket's events after its latest snapshot are fewer than its snapshot interval (200).
   */
  static final int REPLAYS = 100;
  /**
   * A replay's statement timeout, and the backstop for its batch, retry included. Longer than the
   * other gathered reads' (3 and 4 s): a replay is not bound by the journal's circuit breaker, whose
   * 10 s call timeout those stay below, and it brings more rows. A replay that fails fails its
   * actor's recovery, and Pekko gives a recovery 30 s between events (recovery-event-timeout).
   */
  static final Duration REPLAY_TIMEOUT = Duration.ofSeconds(10);
  static final Duration REPLAY_DEADLINE = Duration.ofSeconds(12);

  /**
   * One replay as the journal asks for it: the events of {@code persistenceId} from {@code from}
   * to {@code to}, deleted ones left out, in order, at most {@code max}.
   */
  record Replay(String persistenceId, long from, long to, long max) {}

  /**
   * The events of each of several replays, with the stock DAO's columns and bounds: its four arrays
   * are the replays' ids, first and last sequence numbers and counts, and each row starts with the
   * number of its replay among them (from 1). A range in the primary key each.
   */
  static String eventsIn(EventJournalTableConfiguration table) {
    EventJournalTableColumnNames c = table.columnNames();
    String columns = String.join(", ", Stream.of(c.ordering(), c.deleted(), c.persistenceId(), c.sequenceNumber(),
        c.writer(), c.writeTimestamp(), c.adapterManifest(), c.eventPayload(), c.eventSerId(), c.eventSerManifest(),
        c.metaPayload(), c.metaSerId(), c.metaSerManifest()).map(name -> "j." + Jdbc.quote(name)).toList());
    String seq = "j." + Jdbc.quote(c.sequenceNumber());
    return "SELECT r.i, " + columns + " FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[]) WITH ORDINALITY"
        + " AS r(id, lo, hi, mx, i) CROSS JOIN LATERAL (SELECT * FROM " + Jdbc.table(table.schemaName(), table.tableName())
        + " j WHERE j." + Jdbc.quote(c.persistenceId()) + " = r.id AND j." + Jdbc.quote(c.deleted()) + " = FALSE AND "
        + seq + " >= r.lo AND " + seq + " <= r.hi ORDER BY " + seq + " LIMIT r.mx) j ORDER BY r.i, " + seq;
  }

  private static Map<Replay, List<JournalTables.JournalPekkoSerializationRow>> replay(
      Connection connection, String sql, List<Replay> asked) throws SQLException {
    Map<Replay, List<JournalTables.JournalPekkoSerializationRow>> events = new HashMap<>(asked.size() * 2);
    Object[] ids = new Object[asked.size()];
    Object[] from = new Object[asked.size()];
    Object[] to = new Object[asked.size()];
    Object[] max = new Object[asked.size()];
    for (int i = 0; i < asked.size(); i++) {
      Replay r = asked.get(i);
      events.put(r, new ArrayList<>());
      ids[i] = r.persistenceId();
      from[i] = r.from();
      to[i] = r.to();
      max[i] = Math.max(0, r.max());
    }
    try (PreparedStatement select = connection.prepareStatement(sql)) {
      select.setQueryTimeout((int) REPLAY_TIMEOUT.toSeconds());
      select.setArray(1, connection.createArrayOf("text", ids));
      select.setArray(2, connection.createArrayOf("bigint", from));
      select.setArray(3, connection.createArrayOf("bigint", to));
      select.setArray(4, connection.createArrayOf("bigint", max));
      try (ResultSet rows = select.executeQuery()) {
        while (rows.next()) {
          events.get(asked.get((int) rows.getLong(1) - 1)).add(row(rows));
        }
      }
    }
    return events;
  }

  /** A journal row as {@link #eventsIn} answers it, after the replay's number. */
  private static JournalTables.JournalPekkoSerializationRow row(ResultSet row) throws SQLException {
    int metaSerId = row.getInt(13);
    Option<Object> meta = row.wasNull() ? Option.empty() : Option.apply(metaSerId);
    return new JournalTables.JournalPekkoSerializationRow(row.getLong(2), row.getBoolean(3), row.getString(4),
        row.getLong(5), row.getString(6), row.getLong(7), row.getString(8), row.getBytes(9), row.getInt(10),
        row.getString(11), Option.apply(row.getBytes(12)), meta, Option.apply(row.getString(14)));
  }

  /**
   * A recovering actor's events (docs/persistence.md): on PostgreSQL, in batches of {@code
   * batchSize} read with the batches of other replays that wait at the same time, one stream in
   * all; each event deserialized by its reader, as the stock DAO does. A replay that polls for new
   * events ({@code refreshInterval}) is the stock DAO's.
   */
  @Override
  public Source<Try<Tuple2<PersistentRepr, Object>>, NotUsed> messagesWithBatch(
      String persistenceId, long fromSequenceNr, long toSequenceNr, int batchSize,
      Option<Tuple2<FiniteDuration, Scheduler>> refreshInterval) {
    if (replays == null || refreshInterval.isDefined() || batchSize <= 0) {
      return super.messagesWithBatch(persistenceId, fromSequenceNr, toSequenceNr, batchSize, refreshInterval);
    }
    long done = Long.MIN_VALUE;
    return org.apache.pekko.stream.javadsl.Source.unfoldAsync(Math.max(1, fromSequenceNr), (Long from) -> {
      if (from == done || from > toSequenceNr) {
        return CompletableFuture.completedFuture(Optional.<Pair<Long, List<JournalTables.JournalPekkoSerializationRow>>>empty());
      }
      return replays.read(new Replay(persistenceId, from, toSequenceNr, batchSize)).thenApply(rows -> {
        if (rows.isEmpty()) {
          return Optional.empty();
        }
        long last = rows.get(rows.size() - 1).sequenceNumber();
        boolean more = rows.size() == batchSize && last < toSequenceNr;
        return Optional.of(Pair.create(more ? last + 1 : done, rows));
      });
    }).mapConcat(rows -> rows).map(this::event).asScala();
  }

  /** As {@link #messagesWithBatch}, for one batch of at most {@code max} events. */
  @Override
  public Source<Try<Tuple2<PersistentRepr, Object>>, NotUsed> messages(String persistenceId, long fromSequenceNr,
                                                                       long toSequenceNr, long max) {
    if (replays == null) {
      return super.messages(persistenceId, fromSequenceNr, toSequenceNr, max);
    }
    // Read when the stream runs, as the stock DAO's query is.
    return org.apache.pekko.stream.javadsl.Source.lazyCompletionStage(
            () -> replays.read(new Replay(persistenceId, fromSequenceNr, toSequenceNr, max)))
        .mapConcat(rows -> rows).map(this::event).asScala();
  }

  private Try<Tuple2<PersistentRepr, Object>> event(JournalTables.JournalPekkoSerializationRow row) {
    return PekkoSerialization.fromRow(serialization, row);
  }

  /**
   * Events up to a sequence number go, as the stock DAO deletes them: every row of the persistence
   * id below the highest at or under that number, and that one is kept, marked deleted, so that
   * the id's highest sequence number stays known. One statement, where the stock DAO runs three
   * in a transaction and has Slick compile two of them again on every call: a socket deletes its
   * events after every snapshot (BENCHMARKS.md, 2026-12-04). The statement's two changes touch
   * different rows and run on one snapshot, so it is as atomic as the transaction was.
   */
  static String deleteTo(EventJournalTableConfiguration table) {
    EventJournalTableColumnNames c = table.columnNames();
    String journal = Jdbc.table(table.schemaName(), table.tableName());
    String pid = Jdbc.quote(c.persistenceId());
    String seq = Jdbc.quote(c.sequenceNumber());
    String deleted = Jdbc.quote(c.deleted());
    return "WITH h AS (SELECT " + seq + " AS n FROM " + journal + " WHERE " + pid + " = ? AND " + seq + " <= ? ORDER BY "
        + seq + " DESC LIMIT 1), gone AS (DELETE FROM " + journal + " WHERE " + pid + " = ? AND " + seq
        + " < (SELECT n FROM h)) UPDATE " + journal + " SET " + deleted + " = TRUE WHERE " + pid + " = ? AND " + seq
        + " = (SELECT n FROM h) AND " + deleted + " = FALSE";
  }

  @Override
  public Future<BoxedUnit> delete(String persistenceId, long maxSequenceNr) {
    if (deleteTo == null) {
      return super.delete(persistenceId, maxSequenceNr);
    }
    return Jdbc.run(db(), connection -> {
      boolean autoCommit = connection.getAutoCommit();
      try (java.sql.PreparedStatement s = connection.prepareStatement(deleteTo)) {
        s.setString(1, persistenceId);
        s.setLong(2, maxSequenceNr);
        s.setString(3, persistenceId);
        s.setString(4, persistenceId);
        s.executeUpdate();
        if (!autoCommit) {
          connection.commit();
        }
      } catch (SQLException e) {
        if (!autoCommit) {
          connection.rollback();
        }
        throw e;
      }
      return BoxedUnit.UNIT;
    });
  }

  /**
   * Every recovering actor asks for its highest sequence number (after its snapshot); when many
   * recover at once, as when devices reconnect after a restart, their questions go to PostgreSQL
   * together (docs/persistence.md).
   */
  @Override
  public Future<Object> highestSequenceNr(String persistenceId, long fromSequenceNr) {
    if (highestReads == null) {
      return super.highestSequenceNr(persistenceId, fromSequenceNr);
    }
    // The stock DAO ignores fromSequenceNr as well: the highest is the highest.
    @SuppressWarnings({"unchecked", "rawtypes"})
    Future<Object> answer = (Future) FutureConverters.asScala(highestReads.read(persistenceId));
    return answer;
  }

  @Override
  public Future<BoxedUnit> queueWriteJournalRows(
      Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    return super.queueWriteJournalRows(rows.toVector());
  }

  /** Called by the write queue with each batch it gathered; the batch is reported when written. */
  @Override
  public Future<BoxedUnit> writeJournalRows(
      Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    long start = System.nanoTime();
    if (!writerLogged.get() && rows.nonEmpty() && writerLogged.compareAndSet(false, true)) {
      // Which node wrote a row, for whoever reads the journal after a failover (docs/failover.md).
      org.slf4j.LoggerFactory.getLogger(AppendingJournalDao.class).info("Journal rows of this node carry writer {}",
          rows.head()._1().writer());
    }
    Future<BoxedUnit> written = insert(rows);
    int events = rows.size();
    FutureConverters.asJava(written).whenComplete((done, failure) ->
        writes.written(events, System.nanoTime() - start, failure != null));
    return written;
  }

  private Future<BoxedUnit> insert(Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    String lease = fence.holder();
    if (copyIn == null || tagged(rows)) {
      if (lease == null) {
        return super.writeJournalRows(rows);
      }
      // The stock insert runs on a connection of its own: the lease is checked just before it,
      // not under its lock (H2, the embedded database, and tagged events; docs/failover.md).
      return Jdbc.run(db(), connection -> {
        JournalFence.check(connection, lease);
        return BoxedUnit.UNIT;
      }).flatMap(checked -> super.writeJournalRows(rows), ExecutionContexts$.MODULE$.parasitic());
    }
    // Encoded where the COPY runs: whatever fails there fails this batch's writers, not the
    // plugin's write queue, whose stream calls this method. The COPY fires the journal's fence
    // trigger, which checks the lease the session names.
    return Jdbc.run(db(), connection -> {
      if (lease != null) {
        fence.requireTrigger(connection, journalTable);
      }
      fence.enter(connection);
      return copy(connection, copyIn, BinaryRows.of(rows));
    }).map(inserted -> BoxedUnit.UNIT, ExecutionContexts$.MODULE$.parasitic());
  }

  private static boolean tagged(Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    Iterator<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> it = rows.iterator();
    while (it.hasNext()) {
      if (!it.next()._2().isEmpty()) {
        return true;
      }
    }
    return false;
  }

  /**
   * Fails with the driver's own {@code SQLException}, as the stock insert does. The COPY commits
   * on its own, unless the pool hands out connections outside autocommit.
   */
  private static long copy(Connection connection, String sql, ByteBuffer data) throws SQLException {
    CopyIn in = connection.unwrap(PGConnection.class).getCopyAPI().copyIn(sql);
    long rows;
    try {
      in.writeToCopy(data.array(), 0, data.position());
      rows = in.endCopy();
    } finally {
      if (in.isActive()) {
        in.cancelCopy();
      }
    }
    if (!connection.getAutoCommit()) {
      connection.commit();
    }
    return rows;
  }

  /**
   * A batch in PostgreSQL's binary COPY format (the manual's "COPY", "Binary Format"): a header,
   * each row as its field count and every field as a length (-1 for null) and its bytes in the
   * column type's binary form, and a trailer. The fields follow {@link #copyIn}'s columns and the
   * types of the journal's schema (boolean, varchar, bigint, integer, bytea); text goes as UTF-8,
   * the encoding the driver sets for the connection.
   */
  static final class BinaryRows {

    private static final byte[] HEADER = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xff, '\r', '\n', 0,
        0, 0, 0, 0, 0, 0, 0, 0};
    private static final short FIELDS = 12;
    private static final short TRAILER = -1;
    /** A row's bytes besides its text and payloads: field count, lengths, boolean, bigints and integers. */
    private static final int FIXED_ROW_BYTES = 2 + FIELDS * 4 + 1 + 2 * 8 + 2 * 4;

    private ByteBuffer out;

    private BinaryRows(int rows) {
      out = ByteBuffer.allocate(HEADER.length + rows * 256 + 2);
    }

    /** The batch's bytes, from the buffer's start to its position. */
    static ByteBuffer of(Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
      BinaryRows data = new BinaryRows(rows.size());
      data.out.put(HEADER);
      Iterator<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> it = rows.iterator();
      while (it.hasNext()) {
        data.row(it.next()._1());
      }
      data.room(2);
      data.out.putShort(TRAILER);
      return data.out;
    }

    private void row(JournalTables.JournalPekkoSerializationRow row) {
      byte[] persistenceId = utf8(row.persistenceId());
      byte[] writer = utf8(row.writer());
      byte[] adapterManifest = utf8(row.adapterManifest());
      byte[] eventSerManifest = utf8(row.eventSerManifest());
      byte[] metaSerManifest = row.metaSerManifest().isDefined() ? utf8(row.metaSerManifest().get()) : null;
      byte[] eventPayload = row.eventPayload();
      byte[] metaPayload = row.metaPayload().isDefined() ? row.metaPayload().get() : null;
      room(FIXED_ROW_BYTES + length(persistenceId) + length(writer) + length(adapterManifest)
          + length(eventSerManifest) + length(eventPayload) + length(metaSerManifest) + length(metaPayload));
      out.putShort(FIELDS);
      out.putInt(1).put((byte) (row.deleted() ? 1 : 0));
      bytes(persistenceId);
      out.putInt(8).putLong(row.sequenceNumber());
      bytes(writer);
      out.putInt(8).putLong(row.writeTimestamp());
      bytes(adapterManifest);
      out.putInt(4).putInt(row.eventSerId());
      bytes(eventSerManifest);
      bytes(eventPayload);
      if (row.metaSerId().isDefined()) {
        out.putInt(4).putInt((Integer) row.metaSerId().get());
      } else {
        out.putInt(-1);
      }
      bytes(metaSerManifest);
      bytes(metaPayload);
    }

    private void room(int bytes) {
      if (out.remaining() < bytes) {
        ByteBuffer larger = ByteBuffer.allocate(Math.max(out.capacity() * 2, out.position() + bytes));
        out = larger.put(out.flip());
      }
    }

    private void bytes(byte[] value) {
      if (value == null) {
        out.putInt(-1);
      } else {
        out.putInt(value.length).put(value);
      }
    }

    /** Text as UTF-8, or null for null (NULL in the row, which the table refuses where it must). */
    private static byte[] utf8(String value) {
      return value == null ? null : value.getBytes(StandardCharsets.UTF_8);
    }

    private static int length(byte[] value) {
      return value == null ? 0 : value.length;
    }
  }
}
