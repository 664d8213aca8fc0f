package io.berth.node.connection;

import com.typesafe.config.Config;
import io.berth.node.BerthTables;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The list of sockets operators page through ({@code GET /api/sockets}), in {@code berth_socket}:
 * each socket's last state change (open, detached, closed), written by its entity after the
 * event that made it. The entity is the truth ({@code GET /api/sockets/{id}} asks it); this is an
 * index that answers for every socket, asleep or closed, without waking one
 * (docs/operator-api.md#listing-sockets).
 *
 * <p>Writes are coalesced: a change waits up to {@code flush-interval} with the others of this
 * node, only the latest per socket is kept, and they go in one batch. A row only moves forward in
 * time, so a late write from the node a socket left cannot undo the newer one. Best effort: a
 * failed write is logged and the next change of the socket corrects the row.
 */
public final class SocketIndex implements Extension {

  private static final Logger log = LoggerFactory.getLogger(SocketIndex.class);
  /** SQLSTATE of a unique-key violation, in PostgreSQL and H2 alike. */
  private static final String UNIQUE_VIOLATION = "23505";

  private static final ExtensionId<SocketIndex> ID = new ExtensionId<>() {
    @Override
    public SocketIndex createExtension(ActorSystem<?> system) {
      return new SocketIndex(system);
    }
  };

  /** {@code berth.sockets.*} in reference.conf. */
  public record Settings(Duration flushInterval, int defaultPageSize, int maxPageSize) {
    public static Settings fromConfig(Config config) {
      Config c = config.getConfig("berth.sockets");
      return new Settings(c.getDuration("flush-interval"), c.getInt("page-size"), c.getInt("max-page-size"));
    }
  }

  /** A socket as last recorded. {@code edgeNode}: the node whose edge held its connection, while open. */
  public record Row(String socketId, String shardId, String deviceId, String state, String mapping, String edgeNode,
                    Instant openedAt, Instant updatedAt) {}

  /**
   * What to list: null fields do not filter; {@code shards} (the shards a node hosts) filters by
   * node; {@code after}: the last socket id of the previous page.
   */
  public record Query(String state, String deviceId, String mapping, String edgeNode, Set<String> shards,
                      String after, int limit) {}

  /** One page, in socket id order; {@code next}: the cursor of the following page, null on the last. */
  public record Page(List<Row> rows, String next) {}

  private final ActorSystem<?> system;
  private final Settings settings;
  private final Map<String, Row> pending = new ConcurrentHashMap<>();
  private final AtomicBoolean flushScheduled = new AtomicBoolean();

  private SocketIndex(ActorSystem<?> system) {
    this.system = system;
    this.settings = Settings.fromConfig(system.settings().config());
  }

  public static SocketIndex get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  public Settings settings() {
    return settings;
  }

  /** The socket's state changed: recorded with the next flush. */
  void changed(Row row) {
    pending.merge(row.socketId(), row, (old, now) -> now.updatedAt().isBefore(old.updatedAt()) ? old : now);
    if (flushScheduled.compareAndSet(false, true)) {
      system.scheduler().scheduleOnce(settings.flushInterval(), this::flush, system.executionContext());
    }
  }

  private void flush() {
    flushScheduled.set(false);
    List<Row> rows = new ArrayList<>();
    for (Map.Entry<String, Row> e : pending.entrySet()) {
      if (pending.remove(e.getKey(), e.getValue())) {
        rows.add(e.getValue());
      }
    }
    if (rows.isEmpty()) {
      return;
    }
    BerthTables.get(system).run(c -> {
      save(c, rows);
      return null;
    }).exceptionally(e -> {
      log.warn("Cannot record the state of {} sockets: {}", rows.size(), e.getMessage());
      return null;
    });
  }

  private static void save(Connection c, List<Row> rows) throws SQLException {
    int[] updated = updateIfNewer(c, rows);
    List<Row> missing = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      if (updated[i] == 0) {
        missing.add(rows.get(i));
      }
    }
    for (Row r : missing) {
      if (exists(c, r.socketId())) {
        continue; // a newer state is recorded already
      }
      try (PreparedStatement s = c.prepareStatement("INSERT INTO berth_socket (shard_id, device_id, state, mapping,"
          + " edge_node, opened_at, updated_at, socket_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
        bind(s, r);
        s.executeUpdate();
      } catch (SQLException e) {
        if (!UNIQUE_VIOLATION.equals(e.getSQLState())) {
          throw e;
        }
        updateIfNewer(c, List.of(r)); // another node inserted it meanwhile
      }
    }
  }

  private static int[] updateIfNewer(Connection c, List<Row> rows) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("UPDATE berth_socket SET shard_id = ?, device_id = ?, state = ?,"
        + " mapping = ?, edge_node = ?, opened_at = ?, updated_at = ? WHERE socket_id = ? AND updated_at <= ?")) {
      for (Row r : rows) {
        bind(s, r);
        s.setTimestamp(9, Timestamp.from(r.updatedAt()));
        s.addBatch();
      }
      int[] counts = s.executeBatch();
      for (int i = 0; i < counts.length; i++) {
        // A driver may answer "done, count unknown" for a batched statement.
        counts[i] = counts[i] == java.sql.Statement.SUCCESS_NO_INFO ? 1 : counts[i];
      }
      return counts;
    }
  }

  private static boolean exists(Connection c, String socketId) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM berth_socket WHERE socket_id = ?")) {
      s.setString(1, socketId);
      try (ResultSet rs = s.executeQuery()) {
        return rs.next();
      }
    }
  }

  private static void bind(PreparedStatement s, Row r) throws SQLException {
    s.setString(1, r.shardId());
    s.setString(2, r.deviceId());
    s.setString(3, r.state());
    s.setString(4, r.mapping());
    s.setString(5, r.edgeNode());
    s.setTimestamp(6, r.openedAt() == null ? null : Timestamp.from(r.openedAt()));
    s.setTimestamp(7, Timestamp.from(r.updatedAt()));
    s.setString(8, r.socketId());
  }

  /**
   * One page in socket id order, read from the index: keyset paging on the primary key, so a page
   * costs the same wherever it starts, and sockets opened meanwhile neither repeat nor shift pages.
   */
  public CompletionStage<Page> list(Query q) {
    return BerthTables.get(system).run(c -> {
      List<String> where = new ArrayList<>();
      List<Object> args = new ArrayList<>();
      if (q.after() != null) {
        where.add("socket_id > ?");
        args.add(q.after());
      }
      if (q.state() != null) {
        where.add("state = ?");
        args.add(q.state());
      }
      if (q.deviceId() != null) {
        where.add("device_id = ?");
        args.add(q.deviceId());
      }
      if (q.mapping() != null) {
        where.add("mapping = ?");
        args.add(q.mapping());
      }
      if (q.edgeNode() != null) {
        where.add("edge_node = ?");
        args.add(q.edgeNode());
      }
      if (q.shards() != null) {
        if (q.shards().isEmpty()) {
          return new Page(List.of(), null);
        }
        where.add("shard_id IN (" + String.join(", ", java.util.Collections.nCopies(q.shards().size(), "?")) + ")");
        args.addAll(q.shards());
      }
      String sql = "SELECT socket_id, shard_id, device_id, state, mapping, edge_node, opened_at, updated_at"
          + " FROM berth_socket" + (where.isEmpty() ? "" : " WHERE " + String.join(" AND ", where))
          + " ORDER BY socket_id LIMIT ?";
      try (PreparedStatement s = c.prepareStatement(sql)) {
        int i = 1;
        for (Object a : args) {
          s.setString(i++, (String) a);
        }
        s.setInt(i, q.limit() + 1);
        List<Row> rows = new ArrayList<>();
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            rows.add(new Row(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
                rs.getString(6), instant(rs.getTimestamp(7)), instant(rs.getTimestamp(8))));
          }
        }
        if (rows.size() > q.limit()) {
          List<Row> page = rows.subList(0, q.limit());
          return new Page(List.copyOf(page), page.get(page.size() - 1).socketId());
        }
        return new Page(rows, null);
      }
    });
  }

  private static Instant instant(Timestamp t) {
    return t == null ? null : t.toInstant();
  }
}
