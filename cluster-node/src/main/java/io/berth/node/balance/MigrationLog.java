package io.berth.node.balance;

import io.berth.node.metrics.Metrics;
import io.berth.persistence.BerthTables;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The record of migrations, in the {@code berth_migration} table (docs/migration.md#the-record).
 * A manual move is recorded when it is asked for, under the id its request was answered with; the
 * coordinator records what it decides (from, to, cause, the rate that fired it) and when the
 * shard has reached its new node; the socket's entity completes the record when it delivers
 * again there (how long delivery paused), and a socket with nothing to deliver is completed as
 * {@code moved-idle} after {@code idle-grace}. JDBC runs on the blocking dispatcher; a failed
 * write is logged, never allowed to disturb delivery.
 */
public final class MigrationLog implements Extension {

  private static final Logger log = LoggerFactory.getLogger(MigrationLog.class);

  /** Asked for by an operator; the coordinator has not acted on it yet. */
  public static final String REQUESTED = "requested";
  /** The shard is handing off. */
  public static final String MOVING = "moving";
  /** The shard runs on its new node; the pause is measured at the socket's first delivery there. */
  public static final String WAITING_FOR_TRAFFIC = "waiting-for-traffic";
  /** Delivered again on the new node: {@code pauseMs} is set. */
  public static final String COMPLETED = "completed";
  /** Moved, with no delivery to measure a pause by. */
  public static final String MOVED_IDLE = "moved-idle";
  /** A request that was not carried out: {@code note} says why. */
  public static final String NOT_MOVED = "not-moved";

  private static final ExtensionId<MigrationLog> ID = new ExtensionId<>() {
    @Override
    public MigrationLog createExtension(ActorSystem<?> system) {
      return new MigrationLog(system);
    }
  };

  /**
   * One migration. {@code socketId} is {@code *} for a whole shard moved off a drained node, and
   * {@code shardId} is {@code *} too for the record of a drain itself, which counts the shards and
   * sockets it moved.
   */
  public record Migration(
      String id,
      String socketId,
      String shardId,
      String cause,
      String status,
      String from,
      String to,
      Double framesPerSecond,
      Double bytesPerSecond,
      Instant hotSince,
      Instant startedAt,
      Instant movedAt,
      Instant completedAt,
      Long pauseMs,
      Integer shards,
      Integer sockets,
      String note) {

    /** A record the coordinator starts with what it decided. */
    public static Migration decided(String id, String socketId, String shardId, String cause, String from, String to,
                                    Double framesPerSecond, Double bytesPerSecond, Instant hotSince) {
      return new Migration(id, socketId, shardId, cause, MOVING, from, to, framesPerSecond, bytesPerSecond, hotSince,
          Instant.now(), null, null, null, null, null, null);
    }
  }

  private static final String COLUMNS = "id, socket_id, shard_id, cause, status, from_node, to_node,"
      + " frames_per_second, bytes_per_second, hot_since, started_at, moved_at, completed_at, pause_ms, shards,"
      + " sockets, note";

  private final BerthTables tables;
  private final Metrics metrics;

  private MigrationLog(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
    this.metrics = Metrics.get(system);
  }

  public static MigrationLog get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /**
   * Inserts a record. Unlike the updates this fails the stage when the row cannot be written: an
   * operator's request is answered only once its record exists.
   */
  public CompletionStage<Void> insert(Migration m) {
    metrics.migrationStarted(m.cause());
    return inOrder(m.id(), c -> {
      try (PreparedStatement s = c.prepareStatement("INSERT INTO berth_migration (" + COLUMNS
          + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
        s.setString(1, m.id());
        s.setString(2, m.socketId());
        s.setString(3, m.shardId());
        s.setString(4, m.cause());
        s.setString(5, m.status());
        s.setString(6, m.from());
        s.setString(7, m.to());
        setDouble(s, 8, m.framesPerSecond());
        setDouble(s, 9, m.bytesPerSecond());
        setInstant(s, 10, m.hotSince());
        setInstant(s, 11, m.startedAt());
        setInstant(s, 12, m.movedAt());
        setInstant(s, 13, m.completedAt());
        setLong(s, 14, m.pauseMs());
        setInt(s, 15, m.shards());
        setInt(s, 16, m.sockets());
        s.setString(17, m.note());
        s.executeUpdate();
      }
      return null;
    });
  }

  /** A record the coordinator starts (automatic moves, drains): best effort. */
  public CompletionStage<Void> started(Migration m) {
    return insert(m).exceptionally(e -> {
      log.warn("Cannot record migration of {}: {}", m.socketId(), e.getMessage());
      return null;
    });
  }

  /** The coordinator acted on a requested move: what it decided, or why nothing moves. */
  public CompletionStage<Void> decided(String id, String status, String from, String to, Double framesPerSecond,
                                       Double bytesPerSecond, String note) {
    boolean done = !status.equals(MOVING);
    return update(id, "record the decision on migration " + id, "UPDATE berth_migration SET status = ?, from_node = ?,"
        + " to_node = ?, frames_per_second = ?, bytes_per_second = ?, note = ?, completed_at = ? WHERE id = ?"
        + " AND status = '" + REQUESTED + "'", s -> {
          s.setString(1, status);
          s.setString(2, from == null ? "" : from);
          s.setString(3, to);
          setDouble(s, 4, framesPerSecond);
          setDouble(s, 5, bytesPerSecond);
          s.setString(6, note);
          setInstant(s, 7, done ? Instant.now() : null);
          s.setString(8, id);
        });
  }

  /** The shard reached its new node: the socket's first delivery there will complete the record. */
  public CompletionStage<Void> arrived(String id, String to, Instant at) {
    return update(id, "record the arrival of migration " + id, "UPDATE berth_migration SET status = ?, to_node = ?,"
        + " moved_at = ? WHERE id = ? AND status = '" + MOVING + "'", s -> {
          s.setString(1, WAITING_FOR_TRAFFIC);
          s.setString(2, to);
          setInstant(s, 3, at);
          s.setString(4, id);
        });
  }

  /** A newer decision about the same shard took the place of this record's: it is closed. */
  public CompletionStage<Void> superseded(String id, String by) {
    return update(id, "close superseded migration " + id, "UPDATE berth_migration SET status = ?, note = ?,"
        + " completed_at = ? WHERE id = ? AND completed_at IS NULL", s -> {
          s.setString(1, NOT_MOVED);
          s.setString(2, "superseded by " + by);
          setInstant(s, 3, Instant.now());
          s.setString(4, id);
        });
  }

  /**
   * The shard left its node and has not been started again: sharding starts it at its next
   * message, which may be days away. A later arrival leaves the closed record alone.
   */
  public CompletionStage<Void> notStarted(String id, String note) {
    return update(id, "close unstarted migration " + id, "UPDATE berth_migration SET status = ?, completed_at = ?,"
        + " note = ? WHERE id = ? AND status = '" + MOVING + "'", s -> {
          s.setString(1, MOVED_IDLE);
          setInstant(s, 2, Instant.now());
          s.setString(3, note);
          s.setString(4, id);
        });
  }

  /** Nothing was delivered since the shard arrived: there is no pause to measure. */
  public CompletionStage<Void> idle(String id, String note) {
    return update(id, "complete idle migration " + id, "UPDATE berth_migration SET status = ?, completed_at = moved_at,"
        + " note = ? WHERE id = ? AND status = '" + WAITING_FOR_TRAFFIC + "'", s -> {
          s.setString(1, MOVED_IDLE);
          s.setString(2, note);
          s.setString(3, id);
        });
  }

  /** A drain's progress: the shards moved so far, the sockets running in them, where they went. */
  public CompletionStage<Void> drainProgress(String id, int shards, int sockets, String to, boolean done) {
    return update(id, "record drain " + id, "UPDATE berth_migration SET shards = ?, sockets = ?, to_node = ?,"
        + " status = ?, completed_at = ? WHERE id = ? AND completed_at IS NULL", s -> {
          s.setInt(1, shards);
          s.setInt(2, sockets);
          s.setString(3, to);
          s.setString(4, done ? COMPLETED : MOVING);
          setInstant(s, 5, done ? Instant.now() : null);
          s.setString(6, id);
        });
  }

  /**
   * The socket delivered again on {@code to}: completes its latest open migration record. The
   * record's decision is written by the coordinator's node and may land after this (another
   * node, another connection): while the socket's record still reads {@code requested}, this
   * tries again, a few times over about {@link #COMPLETION_ATTEMPTS} seconds.
   */
  public CompletionStage<Void> completed(String socketId, String shardId, String to, long pauseMs, Instant at) {
    metrics.migrationCompleted(pauseMs / 1000.0);
    return completed(socketId, shardId, to, pauseMs, at, 1);
  }

  private static final int COMPLETION_ATTEMPTS = 6;

  private CompletionStage<Void> completed(String socketId, String shardId, String to, long pauseMs, Instant at,
                                          int attempt) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("UPDATE berth_migration SET completed_at = ?, pause_ms = ?,"
          + " to_node = ?, status = ?, moved_at = COALESCE(moved_at, ?) WHERE id = ("
          + " SELECT id FROM berth_migration WHERE (socket_id = ? OR (socket_id = '*' AND shard_id = ?))"
          + " AND completed_at IS NULL AND status <> '" + REQUESTED + "' ORDER BY started_at DESC LIMIT 1)")) {
        setInstant(s, 1, at);
        s.setLong(2, pauseMs);
        s.setString(3, to);
        s.setString(4, COMPLETED);
        setInstant(s, 5, at);
        s.setString(6, socketId);
        s.setString(7, shardId);
        if (s.executeUpdate() > 0) {
          return false;
        }
      }
      try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM berth_migration WHERE socket_id = ?"
          + " AND status = '" + REQUESTED + "' AND started_at <= ?")) {
        s.setString(1, socketId);
        setInstant(s, 2, at);
        try (ResultSet rs = s.executeQuery()) {
          return rs.next();
        }
      }
    }).thenCompose(undecided -> {
      if (!undecided || attempt >= COMPLETION_ATTEMPTS) {
        return CompletableFuture.<Void>completedFuture(null);
      }
      Executor later = CompletableFuture.delayedExecutor(1, TimeUnit.SECONDS, tables.blocking());
      return CompletableFuture.supplyAsync(() -> null, later)
          .thenCompose(x -> completed(socketId, shardId, to, pauseMs, at, attempt + 1));
    }).exceptionally(e -> {
      log.warn("Cannot complete migration of {}: {}", socketId, e.getMessage());
      return null;
    });
  }

  /** Newest first; {@code socketId} and {@code cause} filter when given. */
  public CompletionStage<List<Migration>> recent(int limit, String socketId, String cause) {
    return tables.run(c -> {
      List<String> where = new ArrayList<>();
      if (socketId != null) {
        where.add("socket_id = ?");
      }
      if (cause != null) {
        where.add("cause = ?");
      }
      String sql = "SELECT " + COLUMNS + " FROM berth_migration"
          + (where.isEmpty() ? "" : " WHERE " + String.join(" AND ", where)) + " ORDER BY started_at DESC LIMIT ?";
      try (PreparedStatement s = c.prepareStatement(sql)) {
        int i = 1;
        if (socketId != null) {
          s.setString(i++, socketId);
        }
        if (cause != null) {
          s.setString(i++, cause);
        }
        s.setInt(i, limit);
        return read(s);
      }
    });
  }

  public CompletionStage<Optional<Migration>> find(String id) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("SELECT " + COLUMNS + " FROM berth_migration WHERE id = ?")) {
        s.setString(1, id);
        return read(s).stream().findFirst();
      }
    });
  }

  private static List<Migration> read(PreparedStatement s) throws SQLException {
    List<Migration> out = new ArrayList<>();
    try (ResultSet rs = s.executeQuery()) {
      while (rs.next()) {
        Instant completed = instant(rs, 13);
        String status = rs.getString(5);
        if (status == null) {
          // Written before records had a status.
          status = completed == null ? MOVING : COMPLETED;
        }
        out.add(new Migration(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), status,
            rs.getString(6), rs.getString(7), getDouble(rs, 8), getDouble(rs, 9), instant(rs, 10), instant(rs, 11),
            instant(rs, 12), completed, getLong(rs, 14), getInt(rs, 15), getInt(rs, 16), rs.getString(17)));
      }
    }
    return out;
  }

  private interface Binder {
    void bind(PreparedStatement s) throws SQLException;
  }

  private CompletionStage<Void> update(String id, String what, String sql, Binder binder) {
    return run(id, what, c -> {
      try (PreparedStatement s = c.prepareStatement(sql)) {
        binder.bind(s);
        s.executeUpdate();
      }
      return null;
    });
  }

  /** Writes are best effort: a failure is logged and never disturbs delivery. */
  private CompletionStage<Void> run(String id, String what, BerthTables.Work<Void> work) {
    return inOrder(id, work).exceptionally(e -> {
      log.warn("Cannot {}: {}", what, e.getMessage());
      return null;
    });
  }

  /**
   * The writes of one record from this node, one after another in the order they were asked
   * for: on a pool of connections a record's arrival could otherwise land before its decision,
   * or its decision before its insert, and be lost to the status guards (a record stuck at
   * {@code moving}). Per record, so that a write that hangs holds up only its own record. A
   * failed write does not stop the ones after it.
   */
  private final ConcurrentHashMap<String, CompletableFuture<?>> lastWrite = new ConcurrentHashMap<>();

  private <T> CompletionStage<T> inOrder(String id, BerthTables.Work<T> work) {
    CompletableFuture<T> next = new CompletableFuture<>();
    CompletableFuture<?> before = lastWrite.put(id, next);
    CompletableFuture<?> after = before == null ? CompletableFuture.completedFuture(null) : before;
    after.handle((done, failure) -> null)
        .thenCompose(x -> tables.run(work))
        .whenComplete((value, failure) -> {
          lastWrite.remove(id, next);
          if (failure != null) {
            next.completeExceptionally(failure);
          } else {
            next.complete(value);
          }
        });
    return next;
  }

  private static void setDouble(PreparedStatement s, int i, Double v) throws SQLException {
    if (v == null) {
      s.setNull(i, Types.DOUBLE);
    } else {
      s.setDouble(i, v);
    }
  }

  private static void setLong(PreparedStatement s, int i, Long v) throws SQLException {
    if (v == null) {
      s.setNull(i, Types.BIGINT);
    } else {
      s.setLong(i, v);
    }
  }

  private static void setInt(PreparedStatement s, int i, Integer v) throws SQLException {
    if (v == null) {
      s.setNull(i, Types.INTEGER);
    } else {
      s.setInt(i, v);
    }
  }

  private static void setInstant(PreparedStatement s, int i, Instant v) throws SQLException {
    s.setTimestamp(i, v == null ? null : Timestamp.from(v));
  }

  private static Long getLong(ResultSet rs, int i) throws SQLException {
    long v = rs.getLong(i);
    return rs.wasNull() ? null : v;
  }

  private static Integer getInt(ResultSet rs, int i) throws SQLException {
    int v = rs.getInt(i);
    return rs.wasNull() ? null : v;
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
