package io.berth.persistence;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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

  public CoalescingSnapshotDao(JdbcBackend.JdbcDatabaseDef db, JdbcProfile profile, SnapshotConfig snapshotConfig,
                               Serialization serialization, ExecutionContext ec, Materializer mat) {
    super(db, profile, snapshotConfig, serialization, ec, mat);
    this.serialization = serialization;
    this.ec = ec;
    if (profile instanceof PostgresProfile) {
      String sql = latestIn(snapshotConfig.snapshotTableConfiguration());
      this.latestReads = new CoalescedReads<>(CoalescedReads.IN_FLIGHT, CoalescedReads.KEYS, CoalescedReads.DEADLINE,
          ec::execute, Jdbc::retryable,
          ids -> FutureConverters.asJava(Jdbc.run(db, connection -> selectLatest(connection, sql, ids))));
    } else {
      this.latestReads = null;
    }
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

  private static Map<String, Optional<Row>> selectLatest(Connection connection, String sql, List<String> ids)
      throws SQLException {
    Map<String, Optional<Row>> latest = new HashMap<>(ids.size() * 2);
    ids.forEach(id -> latest.put(id, Optional.empty()));
    try (PreparedStatement select = connection.prepareStatement(sql)) {
      select.setQueryTimeout((int) CoalescedReads.QUERY_TIMEOUT.toSeconds());
      select.setArray(1, connection.createArrayOf("text", ids.toArray()));
      try (ResultSet rows = select.executeQuery()) {
        while (rows.next()) {
          int metaSerId = rows.getInt(7);
          Integer meta = rows.wasNull() ? null : metaSerId;
          latest.put(rows.getString(1), Optional.of(new Row(rows.getString(1), rows.getLong(2), rows.getLong(3),
              rows.getInt(4), rows.getString(5), rows.getBytes(6), meta, rows.getString(8), rows.getBytes(9))));
        }
      }
    }
    return latest;
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
