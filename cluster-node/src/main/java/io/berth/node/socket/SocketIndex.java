package io.berth.node.socket;

import com.typesafe.config.Config;
import io.berth.persistence.BerthTables;
import io.berth.persistence.DatabaseSettings;
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
 * each socket's last state change (open, detached, closed), written by its entity once the event
 * that made it is in the journal, and again when the entity recovers. The entity is the truth
 * ({@code GET /api/sockets/{id}} asks it); this is an index that answers for every socket, asleep
 * or closed, without waking one (docs/operator-api.md#listing-sockets).
 *
 * <p>Writes are coalesced: a change waits up to {@code flush-interval} with the others of this
 * node, only the latest per socket is kept, and they go in one batched upsert, one flush at a time
 * per node (the pool is small and shared with mappings, links and the migration log). A row only
 * moves forward in the socket's journal sequence number, not in a node's clock: the node a socket
 * left and the one it runs on now may disagree on the time, never on the order of its events.
 * A failed write keeps its rows for the next flush, unless a newer change of the socket replaced
 * them meanwhile.
 */
public final class SocketIndex implements Extension {

  private static final Logger log = LoggerFactory.getLogger(SocketIndex.class);

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

  /**
   * A socket as last recorded. {@code edgeNode}: the node whose edge held its connection, while
   * open. {@code seqNr}: the sequence number of the socket's last event the row reflects, which
   * orders its writes; {@code updatedAt} is for reading only.
   */
  public record Row(String socketId, String shardId, String deviceId, String state, String mapping, String edgeNode,
                    Instant openedAt, Instant updatedAt, long seqNr) {}

  /**
   * What to list: null fields do not filter; {@code shards} (the shards a node hosts) filters by
   * node; {@code after}: the last socket id of the previous page.
   */
  public record Query(String state, String deviceId, String mapping, String edgeNode, Set<String> shards,
                      String after, int limit) {}

  /** One page, in socket id order; {@code next}: the cursor of the following page, null on the last. */
  public record Page(List<Row> rows, String next) {}

  /** Writes rows; the stage fails when they were not written. */
  interface Store {
    CompletionStage<?> save(List<Row> rows);
  }

  /** Runs a task once, after a delay. */
  interface Later {
    void run(Duration delay, Runnable task);
  }

  private final BerthTables tables;
  private final Settings settings;
  private final Store store;
  private final Later later;
  private final Map<String, Row> pending = new ConcurrentHashMap<>();
  /** A flush is scheduled or writing: changes arriving meanwhile wait for the next one. */
  private final AtomicBoolean flushing = new AtomicBoolean();
  /** Flushes failed since the last one that wrote: warned about once. */
  private int failures;

  private SocketIndex(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
    this.settings = Settings.fromConfig(system.settings().config());
    DatabaseSettings.Kind kind = DatabaseSettings.fromConfig(system.settings().config()).kind();
    this.store = rows -> tables.run(c -> {
      save(c, kind, rows);
      return null;
    });
    this.later = (delay, task) -> system.scheduler().scheduleOnce(delay, task, system.executionContext());
  }

  /** An index writing to {@code store}, for tests. */
  SocketIndex(Settings settings, Store store, Later later) {
    this.tables = null;
    this.settings = settings;
    this.store = store;
    this.later = later;
  }

  public static SocketIndex get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  public Settings settings() {
    return settings;
  }

  /** The socket's state changed: recorded with the next flush. */
  void changed(Row row) {
    pending.merge(row.socketId(), row, SocketIndex::newer);
    scheduleFlush();
  }

  private static Row newer(Row a, Row b) {
    return b.seqNr() >= a.seqNr() ? b : a;
  }

  private void scheduleFlush() {
    if (!pending.isEmpty() && flushing.compareAndSet(false, true)) {
      later.run(settings.flushInterval(), this::flush);
    }
  }

  private void flush() {
    List<Row> rows = new ArrayList<>();
    for (Map.Entry<String, Row> e : pending.entrySet()) {
      if (pending.remove(e.getKey(), e.getValue())) {
        rows.add(e.getValue());
      }
    }
    if (rows.isEmpty()) {
      done();
      return;
    }
    CompletionStage<?> write;
    try {
      write = store.save(rows);
    } catch (RuntimeException e) {
      write = java.util.concurrent.CompletableFuture.failedFuture(e);
    }
    write.whenComplete((ok, e) -> {
      if (e == null) {
        if (failures > 0) {
          log.info("Socket index written again after {} failed attempts", failures);
        }
        failures = 0;
      } else {
        for (Row r : rows) {
          // Back for the next flush, unless the socket changed again meanwhile.
          pending.merge(r.socketId(), r, SocketIndex::newer);
        }
        if (failures++ == 0) {
          log.warn("Cannot write the socket index ({} sockets), retrying with every flush: {}", rows.size(),
              e.getMessage());
        }
      }
      done();
    });
  }

  private void done() {
    flushing.set(false);
    scheduleFlush();
  }

  /**
   * One batched upsert: a row is inserted, or replaces the recorded one if that is older in the
   * socket's journal. An equal one is left alone: every start of the entity (a wake-up, a move)
   * lists the state it recovered, which the row already shows unless its write was lost. Rewritten by the PostgreSQL driver into multi-row statements.
   */
  static void save(Connection c, DatabaseSettings.Kind kind, List<Row> rows) throws SQLException {
    String sql = kind == DatabaseSettings.Kind.POSTGRES
        ? "INSERT INTO berth_socket (shard_id, device_id, state, mapping, edge_node, opened_at, updated_at, seq_nr,"
            + " socket_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (socket_id) DO UPDATE SET"
            + " shard_id = EXCLUDED.shard_id, device_id = EXCLUDED.device_id, state = EXCLUDED.state,"
            + " mapping = EXCLUDED.mapping, edge_node = EXCLUDED.edge_node, opened_at = EXCLUDED.opened_at,"
            + " updated_at = EXCLUDED.updated_at, seq_nr = EXCLUDED.seq_nr"
            + " WHERE berth_socket.seq_nr < EXCLUDED.seq_nr"
        : "MERGE INTO berth_socket t USING (VALUES (CAST(? AS VARCHAR(32)), CAST(? AS VARCHAR(64)),"
            + " CAST(? AS VARCHAR(16)), CAST(? AS VARCHAR(64)), CAST(? AS VARCHAR(255)),"
            + " CAST(? AS TIMESTAMP WITH TIME ZONE), CAST(? AS TIMESTAMP WITH TIME ZONE), CAST(? AS BIGINT),"
            + " CAST(? AS VARCHAR(160))))"
            + " s (shard_id, device_id, state, mapping, edge_node, opened_at, updated_at, seq_nr, socket_id)"
            + " ON t.socket_id = s.socket_id"
            + " WHEN MATCHED AND t.seq_nr < s.seq_nr THEN UPDATE SET shard_id = s.shard_id,"
            + " device_id = s.device_id, state = s.state, mapping = s.mapping, edge_node = s.edge_node,"
            + " opened_at = s.opened_at, updated_at = s.updated_at, seq_nr = s.seq_nr"
            + " WHEN NOT MATCHED THEN INSERT (shard_id, device_id, state, mapping, edge_node, opened_at,"
            + " updated_at, seq_nr, socket_id) VALUES (s.shard_id, s.device_id, s.state, s.mapping, s.edge_node,"
            + " s.opened_at, s.updated_at, s.seq_nr, s.socket_id)";
    try (PreparedStatement s = c.prepareStatement(sql)) {
      for (Row r : rows) {
        s.setString(1, r.shardId());
        s.setString(2, r.deviceId());
        s.setString(3, r.state());
        s.setString(4, r.mapping());
        s.setString(5, r.edgeNode());
        s.setTimestamp(6, r.openedAt() == null ? null : Timestamp.from(r.openedAt()));
        s.setTimestamp(7, Timestamp.from(r.updatedAt()));
        s.setLong(8, r.seqNr());
        s.setString(9, r.socketId());
        s.addBatch();
      }
      s.executeBatch();
    }
  }

  /**
   * One page in socket id order, read from the index: keyset paging on the primary key, so a page
   * costs the same wherever it starts, and sockets opened meanwhile neither repeat nor shift pages.
   */
  public CompletionStage<Page> list(Query q) {
    return tables.run(c -> {
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
      String sql = "SELECT socket_id, shard_id, device_id, state, mapping, edge_node, opened_at, updated_at, seq_nr"
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
                rs.getString(6), instant(rs.getTimestamp(7)), instant(rs.getTimestamp(8)), rs.getLong(9)));
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
