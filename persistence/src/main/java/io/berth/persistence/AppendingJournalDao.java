package io.berth.persistence;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.List;
import org.apache.pekko.dispatch.ExecutionContexts$;
import org.apache.pekko.persistence.jdbc.config.EventJournalTableColumnNames;
import org.apache.pekko.persistence.jdbc.config.EventJournalTableConfiguration;
import org.apache.pekko.persistence.jdbc.config.JournalConfig;
import org.apache.pekko.persistence.jdbc.journal.dao.DefaultJournalDao;
import org.apache.pekko.persistence.jdbc.journal.dao.JournalTables;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.stream.Materializer;
import scala.Tuple2;
import scala.collection.Iterator;
import scala.collection.immutable.Seq;
import scala.collection.immutable.Set;
import scala.concurrent.ExecutionContext;
import scala.concurrent.Future;
import scala.runtime.BoxedUnit;
import slick.dbio.DBIOAction;
import slick.jdbc.JdbcBackend;
import slick.jdbc.JdbcProfile;
import slick.jdbc.PostgresProfile;
import slick.jdbc.SimpleJdbcAction;

/**
 * Pekko Persistence JDBC's journal DAO, with two changes to how it writes:
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
 *   <li>On PostgreSQL, a batch without tags is one {@code INSERT ... SELECT FROM unnest(...)}
 *       with an array per column, instead of Slick's JDBC batch (which the driver rewrites into
 *       multi-row {@code VALUES} of up to 128 rows, 12 parameters a row). See docs/persistence.md.
 * </ul>
 *
 * <p>Configured as {@code jdbc-journal.dao} (persistence.conf); everything else, reads included,
 * is the stock DAO's, and so are writes on H2 and writes of tagged events.
 */
public class AppendingJournalDao extends DefaultJournalDao {

  /** The columns' types, in the insert's order (that of {@link Columns}' arrays). */
  private static final List<String> ELEMENT_TYPES = List.of("boolean", "varchar", "bigint", "varchar", "bigint",
      "varchar", "integer", "varchar", "bytea", "integer", "varchar", "bytea");

  /** The one insert of a batch on PostgreSQL, or null elsewhere. */
  private final String unnestInsert;

  public AppendingJournalDao(JdbcBackend.JdbcDatabaseDef db, JdbcProfile profile, JournalConfig journalConfig,
                             Serialization serialization, ExecutionContext ec, Materializer mat) {
    super(db, profile, journalConfig, serialization, ec, mat);
    this.unnestInsert = profile instanceof PostgresProfile
        ? unnestInsert(journalConfig.eventJournalTableConfiguration()) : null;
  }

  /** The insert of a whole batch: one array parameter per column, in the row's order. */
  static String unnestInsert(EventJournalTableConfiguration table) {
    EventJournalTableColumnNames c = table.columnNames();
    String name = table.schemaName().isDefined()
        ? quote(table.schemaName().get()) + "." + quote(table.tableName()) : quote(table.tableName());
    List<String> columns = List.of(c.deleted(), c.persistenceId(), c.sequenceNumber(), c.writer(),
        c.writeTimestamp(), c.adapterManifest(), c.eventSerId(), c.eventSerManifest(), c.eventPayload(),
        c.metaSerId(), c.metaSerManifest(), c.metaPayload());
    return "INSERT INTO " + name + " ("
        + String.join(", ", columns.stream().map(AppendingJournalDao::quote).toList()) + ") "
        + "SELECT * FROM unnest("
        + String.join(", ", ELEMENT_TYPES.stream().map(type -> "?::" + type + "[]").toList()) + ")";
  }

  private static String quote(String identifier) {
    return "\"" + identifier.replace("\"", "\"\"") + "\"";
  }

  @Override
  public Future<BoxedUnit> queueWriteJournalRows(
      Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    return super.queueWriteJournalRows(rows.toVector());
  }

  @Override
  public Future<BoxedUnit> writeJournalRows(
      Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    if (unnestInsert == null || tagged(rows)) {
      return super.writeJournalRows(rows);
    }
    Columns columns = new Columns(rows.size());
    Iterator<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> it = rows.iterator();
    for (int i = 0; it.hasNext(); i++) {
      columns.set(i, it.next()._1());
    }
    SimpleJdbcAction<Integer> insert = SimpleJdbcAction.apply(ctx -> columns.insert(ctx.connection(), unnestInsert));
    // Scala's variance (an action needing no effects is one of "Nothing") has no Java spelling.
    @SuppressWarnings({"unchecked", "rawtypes"})
    Future<Object> done = db().run((DBIOAction) insert);
    return done.map(inserted -> BoxedUnit.UNIT, ExecutionContexts$.MODULE$.parasitic());
  }

  @SuppressWarnings("unchecked")
  private static <T extends Throwable> T rethrow(Throwable t) throws T {
    throw (T) t;
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

  /** A batch of rows turned into one array per column. */
  private static final class Columns {

    final Boolean[] deleted;
    final String[] persistenceId;
    final Long[] sequenceNumber;
    final String[] writer;
    final Long[] writeTimestamp;
    final String[] adapterManifest;
    final Integer[] eventSerId;
    final String[] eventSerManifest;
    final byte[][] eventPayload;
    final Integer[] metaSerId;
    final String[] metaSerManifest;
    final byte[][] metaPayload;

    Columns(int n) {
      deleted = new Boolean[n];
      persistenceId = new String[n];
      sequenceNumber = new Long[n];
      writer = new String[n];
      writeTimestamp = new Long[n];
      adapterManifest = new String[n];
      eventSerId = new Integer[n];
      eventSerManifest = new String[n];
      eventPayload = new byte[n][];
      metaSerId = new Integer[n];
      metaSerManifest = new String[n];
      metaPayload = new byte[n][];
    }

    void set(int i, JournalTables.JournalPekkoSerializationRow row) {
      deleted[i] = row.deleted();
      persistenceId[i] = row.persistenceId();
      sequenceNumber[i] = row.sequenceNumber();
      writer[i] = row.writer();
      writeTimestamp[i] = row.writeTimestamp();
      adapterManifest[i] = row.adapterManifest();
      eventSerId[i] = row.eventSerId();
      eventSerManifest[i] = row.eventSerManifest();
      eventPayload[i] = row.eventPayload();
      metaSerId[i] = row.metaSerId().isDefined() ? (Integer) row.metaSerId().get() : null;
      metaSerManifest[i] = row.metaSerManifest().isDefined() ? row.metaSerManifest().get() : null;
      metaPayload[i] = row.metaPayload().isDefined() ? row.metaPayload().get() : null;
    }

    /** Fails with the driver's own {@code SQLException}, as the stock insert does, though unchecked. */
    int insert(Connection connection, String sql) {
      try (PreparedStatement statement = connection.prepareStatement(sql)) {
        Object[][] arrays = {deleted, persistenceId, sequenceNumber, writer, writeTimestamp, adapterManifest,
            eventSerId, eventSerManifest, eventPayload, metaSerId, metaSerManifest, metaPayload};
        for (int i = 0; i < arrays.length; i++) {
          statement.setArray(i + 1, connection.createArrayOf(ELEMENT_TYPES.get(i), arrays[i]));
        }
        return statement.executeUpdate();
      } catch (SQLException e) {
        throw AppendingJournalDao.<RuntimeException>rethrow(e);
      }
    }
  }
}
