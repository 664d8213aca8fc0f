package io.berth.node.ops;

import io.berth.persistence.BerthTables;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The audit trail of the management port (docs/operator-access.md#audit): every call that changes
 * something, and every call refused for its role, as one row of {@code berth_audit} and one log
 * line on the logger {@code berth.audit} (key=value pairs, so that a log shipper can index them).
 * A row is written before the answer leaves, so that what an operator was told happened is on
 * record; when the row cannot be written the answer still goes out and the log line says so.
 */
public final class AuditLog implements Extension {

  private static final Logger log = LoggerFactory.getLogger("berth.audit");

  private static final ExtensionId<AuditLog> ID = new ExtensionId<>() {
    @Override
    public AuditLog createExtension(ActorSystem<?> system) {
      return new AuditLog(system);
    }
  };

  public static final int MAX_PATH_LENGTH = 1000;
  public static final int MAX_LIST = 1000;

  /**
   * One call. {@code actor} and {@code role} name the key that made it; {@code path} is the
   * request's path and query as sent; {@code remote} the address it came from.
   */
  public record Entry(long id, Instant at, String actor, String role, String method, String path, int status,
      String requestId, String remote, String node) {

    public Entry {
      if (path.length() > MAX_PATH_LENGTH) {
        path = path.substring(0, MAX_PATH_LENGTH);
      }
    }

    String logLine() {
      return "actor=" + actor + " role=" + role + " method=" + method + " path=" + quoted(path) + " status=" + status
          + " request=" + requestId + " remote=" + remote + " node=" + node;
    }

    private static String quoted(String s) {
      return '"' + s.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }
  }

  private final BerthTables tables;

  private AuditLog(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
  }

  public static AuditLog get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Writes the entry (its {@code id} is ignored) and logs it; completes when both are done. */
  public CompletionStage<Void> record(Entry e) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("INSERT INTO berth_audit"
          + " (occurred_at, actor, role, method, path, status, request_id, remote, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
        s.setTimestamp(1, Timestamp.from(e.at()));
        s.setString(2, e.actor());
        s.setString(3, e.role());
        s.setString(4, e.method());
        s.setString(5, e.path());
        s.setInt(6, e.status());
        s.setString(7, e.requestId());
        s.setString(8, e.remote());
        s.setString(9, e.node());
        s.executeUpdate();
      }
      return (Void) null;
    }).whenComplete((ok, failure) -> {
      if (failure == null) {
        log.info("audit {}", e.logLine());
      } else {
        log.error("audit {} NOT RECORDED in berth_audit: {}", e.logLine(), failure.getMessage());
      }
    });
  }

  /** Entries newest first, at most {@code limit}, those before the id {@code before} if given. */
  public CompletionStage<List<Entry>> list(int limit, Optional<Long> before) {
    return tables.run(c -> {
      List<Entry> out = new ArrayList<>();
      try (PreparedStatement s = c.prepareStatement("SELECT id, occurred_at, actor, role, method, path, status,"
          + " request_id, remote, node FROM berth_audit WHERE id < ? ORDER BY id DESC LIMIT ?")) {
        s.setLong(1, before.orElse(Long.MAX_VALUE));
        s.setInt(2, limit);
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            out.add(new Entry(rs.getLong(1), rs.getTimestamp(2).toInstant(), rs.getString(3), rs.getString(4),
                rs.getString(5), rs.getString(6), rs.getInt(7), rs.getString(8), rs.getString(9), rs.getString(10)));
          }
        }
      }
      return out;
    });
  }
}
