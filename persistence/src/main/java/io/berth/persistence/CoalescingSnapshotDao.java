package io.berth.persistence;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.dispatch.ExecutionContexts$;
import org.apache.pekko.persistence.SnapshotMetadata;
import org.apache.pekko.persistence.jdbc.config.SnapshotConfig;
import org.apache.pekko.persistence.jdbc.config.SnapshotTableColumnNames;
import org.apache.pekko.persistence.jdbc.config.SnapshotTableConfiguration;
import org.apache.pekko.persistence.jdbc.snapshot.dao.DefaultSnapshotDao;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.stream.Materializer;
import scala.Option;
import scala.Tuple2;
import scala.concurrent.ExecutionContext;
import scala.concurrent.Future;
import scala.jdk.javaapi.FutureConverters;
import scala.util.Failure;
import scala.util.Success;
import scala.util.Try;
import slick.jdbc.JdbcBackend;
import slick.jdbc.JdbcProfile;
import slick.jdbc.PostgresProfile;

/**
 * Pekko Persistence JDBC's snapshot DAO, except that on PostgreSQL the latest snapshots that
 * recovering actors ask for at the same time are read with one query ({@link CoalescedReads}):
 * every recovery starts with that read, and a reconnecting fleet recovers thousands of sockets a
 * second. Each snapshot is deserialized as the stock DAO does it, by its reader on the plugin's
 * dispatcher, not while the query holds its connection. Configured as {@code
 * jdbc-snapshot-store.dao} (persistence.conf); everything else is the stock DAO's, and so is
 * every read on H2.
 */
public class CoalescingSnapshotDao extends DefaultSnapshotDao {

  private final Serialization serialization;
  private final ExecutionContext ec;
  /** Latest snapshots read together on PostgreSQL, or null elsewhere. */
  private final CoalescedReads<String, Optional<Row>> latestReads;

  /** The reads of latest snapshots, for tests; null elsewhere than on PostgreSQL. */
  CoalescedReads<String, Optional<Row>> latestReads() {
    return latestReads;
  }

  public CoalescingSnapshotDao(JdbcBackend.JdbcDatabaseDef db, JdbcProfile profile, SnapshotConfig snapshotConfig,
                               Serialization serialization, ExecutionContext ec, Materializer mat) {
    super(db, profile, snapshotConfig, serialization, ec, mat);
    this.serialization = serialization;
    this.ec = ec;
    this.latestReads = profile instanceof PostgresProfile
        ? Jdbc.readsByIds(db, ec, latestIn(snapshotConfig.snapshotTableConfiguration()), Optional.empty(),
            CoalescingSnapshotDao::row)
        : null;
  }

  /**
   * The newest snapshot of each of an array of persistence ids, with the stock DAO's columns: one
   * backward step in the primary key each.
   */
  static String latestIn(SnapshotTableConfiguration table) {
    SnapshotTableColumnNames c = table.columnNames();
    String columns = String.join(", ", List.of(c.persistenceId(), c.sequenceNumber(), c.created(),
        c.snapshotSerId(), c.snapshotSerManifest(), c.snapshotPayload(), c.metaSerId(), c.metaSerManifest(),
        c.metaPayload()).stream().map(name -> "s." + Jdbc.quote(name)).toList());
    return "SELECT " + columns + " FROM unnest(?::text[]) AS k(id) CROSS JOIN LATERAL (SELECT * FROM "
        + Jdbc.table(table.schemaName(), table.tableName()) + " s WHERE s." + Jdbc.quote(c.persistenceId())
        + " = k.id ORDER BY s." + Jdbc.quote(c.sequenceNumber()) + " DESC LIMIT 1) s";
  }

  /** A snapshot row as stored; deserialized by its reader, after the connection went back. */
  record Row(String persistenceId, long sequenceNr, long created, int serId, String manifest, byte[] payload,
             Integer metaSerId, String metaManifest, byte[] metaPayload) {}

  private static Optional<Row> row(ResultSet row) throws SQLException {
    int metaSerId = row.getInt(7);
    Integer meta = row.wasNull() ? null : metaSerId;
    return Optional.of(new Row(row.getString(1), row.getLong(2), row.getLong(3), row.getInt(4), row.getString(5),
        row.getBytes(6), meta, row.getString(8), row.getBytes(9)));
  }

  /** The row's snapshot and metadata, deserialized as the stock DAO's {@code toSnapshotData} does. */
  private Try<Tuple2<SnapshotMetadata, Object>> snapshot(Row row) {
    Try<Object> snapshot = serialization.deserialize(row.payload(), row.serId(), row.manifest());
    if (snapshot.isFailure()) {
      return new Failure<>(snapshot.failed().get());
    }
    Option<Object> meta = Option.empty();
    if (row.metaSerId() != null && row.metaPayload() != null) {
      Try<Object> read = serialization.deserialize(row.metaPayload(), row.metaSerId(),
          row.metaManifest() == null ? "" : row.metaManifest());
      if (read.isFailure()) {
        return new Failure<>(read.failed().get());
      }
      meta = Option.apply(read.get());
    }
    return new Success<>(Tuple2.apply(
        new SnapshotMetadata(row.persistenceId(), row.sequenceNr(), row.created(), meta), snapshot.get()));
  }

  /**
   * Every recovery starts here; when many recover at once, as when devices reconnect after a
   * restart, their reads go to PostgreSQL together (docs/persistence.md). A snapshot that cannot
   * be deserialized fails its own recovery only.
   */
  @Override
  public Future<Option<Tuple2<SnapshotMetadata, Object>>> latestSnapshot(String persistenceId) {
    if (latestReads == null) {
      return super.latestSnapshot(persistenceId);
    }
    return FutureConverters.asScala(latestReads.read(persistenceId)).flatMap(row -> row.isEmpty()
        ? Future.successful(Option.<Tuple2<SnapshotMetadata, Object>>empty())
        : Future.fromTry(snapshot(row.get())).map(Option::apply, ExecutionContexts$.MODULE$.parasitic()), ec);
  }
}
