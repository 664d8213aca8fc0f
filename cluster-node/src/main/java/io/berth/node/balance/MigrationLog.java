package io.berth.node.balance;

import io.berth.node.BerthTables;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The record of migrations, in the {@code berth_migration} table: written when the coordinator
 * decides a move (from, to, cause, the rate that fired it) and completed by the socket's entity
 * when it delivers again on its new node (how long delivery paused). JDBC runs on the blocking
 * dispatcher; a failed write is logged, never allowed to disturb delivery.
 */
public final class MigrationLog implements Extension {

  private static final Logger log = LoggerFactory.getLogger(MigrationLog.class);

  private static final ExtensionId<MigrationLog> ID = new ExtensionId<>() {
    @Override
    public MigrationLog createExtension(ActorSystem<?> system) {
      return new MigrationLog(system);
    }
  };

  /** One migration; {@code socketId} is {@code *} for a whole shard moved off a drained node. */
  public record Migration(
      String id,
      String socketId,
      String shardId,
      String cause,
      String from,
      String to,
      Double framesPerSecond,
      Double bytesPerSecond,
      Instant hotSince,
      Instant startedAt,
      Instant completedAt,
      Long pauseMs) {}

  private final BerthTables tables;

  private MigrationLog(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
  }

  public static MigrationLog get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  public CompletionStage<Void> started(Migration m) {
    return run("record migration of " + m.socketId(), c -> {
      try (PreparedStatement s = c.prepareStatement(
          "INSERT INTO berth_migration (id, socket_id, shard_id, cause, from_node, to_node, frames_per_second,"
              + " bytes_per_second, started_at, hot_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
        s.setString(1, m.id());
        s.setString(2, m.socketId());
        s.setString(3, m.shardId());
        s.setString(4, m.cause());
        s.setString(5, m.from());
        s.setString(6, m.to());
        setDouble(s, 7, m.framesPerSecond());
        setDouble(s, 8, m.bytesPerSecond());
        s.setTimestamp(9, Timestamp.from(m.startedAt()));
        s.setTimestamp(10, m.hotSince() == null ? null : Timestamp.from(m.hotSince()));
        s.executeUpdate();
      }
      return null;
    });
  }

  /** The socket delivered again on {@code to}: completes its latest open migration record. */
  public CompletionStage<Void> completed(String socketId, String shardId, String to, long pauseMs, Instant at) {
    return run("complete migration of " + socketId, c -> {
      try (PreparedStatement s = c.prepareStatement(
          "UPDATE berth_migration SET completed_at = ?, pause_ms = ?, to_node = ? WHERE id = ("
              + " SELECT id FROM berth_migration WHERE (socket_id = ? OR (socket_id = '*' AND shard_id = ?))"
              + " AND completed_at IS NULL ORDER BY started_at DESC LIMIT 1)")) {
        s.setTimestamp(1, Timestamp.from(at));
        s.setLong(2, pauseMs);
        s.setString(3, to);
        s.setString(4, socketId);
        s.setString(5, shardId);
        s.executeUpdate();
      }
      return null;
    });
  }

  /** Newest first. */
  public CompletionStage<List<Migration>> recent(int limit, String socketId) {
    return tables.run(c -> {
      String sql = "SELECT id, socket_id, shard_id, cause, from_node, to_node, frames_per_second, bytes_per_second,"
          + " hot_since, started_at, completed_at, pause_ms FROM berth_migration"
          + (socketId == null ? "" : " WHERE socket_id = ?") + " ORDER BY started_at DESC LIMIT ?";
      try (PreparedStatement s = c.prepareStatement(sql)) {
        int i = 1;
        if (socketId != null) {
          s.setString(i++, socketId);
        }
        s.setInt(i, limit);
        List<Migration> out = new ArrayList<>();
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            out.add(new Migration(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
                rs.getString(5), rs.getString(6), getDouble(rs, 7), getDouble(rs, 8), instant(rs, 9),
                instant(rs, 10), instant(rs, 11), rs.getObject(12) == null ? null : rs.getLong(12)));
          }
        }
        return out;
      }
    });
  }

  /** Writes are best effort: a failure is logged and never disturbs delivery. */
  private CompletionStage<Void> run(String what, BerthTables.Work<Void> work) {
    return tables.run(work).exceptionally(e -> {
      log.warn("Cannot {}: {}", what, e.getMessage());
      return null;
    });
  }

  private static void setDouble(PreparedStatement s, int i, Double v) throws SQLException {
    if (v == null) {
      s.setNull(i, Types.DOUBLE);
    } else {
      s.setDouble(i, v);
    }
  }

  private static Double getDouble(ResultSet rs, int i) throws SQLException {
    double v = rs.getDouble(i);
    return rs.wasNull() ? null : v;
  }

  private static Instant instant(ResultSet rs, int i) throws SQLException {
    Timestamp t = rs.getTimestamp(i);
    return t == null ? null : t.toInstant();
  }
}
