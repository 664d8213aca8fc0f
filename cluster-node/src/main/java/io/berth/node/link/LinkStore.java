package io.berth.node.link;

import io.berth.persistence.BerthTables;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The list of links operators see ({@code berth_link}): written by each link entity when its
 * state changes (best effort; the entity is the truth and answers for one link).
 */
public final class LinkStore {

  private static final Logger log = LoggerFactory.getLogger(LinkStore.class);
  /** SQLSTATE of a unique-key violation, in PostgreSQL and H2 alike. */
  private static final String UNIQUE_VIOLATION = "23505";

  public record Row(String id, String a, String b, String state, String waiter, String reason, Instant since,
             Instant updatedAt) {}

  private final BerthTables tables;

  public LinkStore(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
  }

  /**
   * Records the link's latest state. Saves run concurrently on a pool, so a row only ever moves
   * forward in time (an older state arriving late changes nothing), and two first saves racing
   * to insert end as one row.
   */
  void save(Row r) {
    tables.run(c -> {
      if (updateIfNewer(c, r) == 0) {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO berth_link (socket_a, socket_b, state, waiter,"
            + " reason, since, updated_at, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
          bind(s, r);
          s.executeUpdate();
        } catch (SQLException e) {
          if (!UNIQUE_VIOLATION.equals(e.getSQLState())) {
            throw e;
          }
          updateIfNewer(c, r);
        }
      }
      return null;
    }).exceptionally(e -> {
      log.warn("Cannot record link {}: {}", r.id(), e.getMessage());
      return null;
    });
  }

  private static int updateIfNewer(Connection c, Row r) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("UPDATE berth_link SET socket_a = ?, socket_b = ?, state = ?,"
        + " waiter = ?, reason = ?, since = ?, updated_at = ? WHERE id = ? AND updated_at <= ?")) {
      bind(s, r);
      s.setTimestamp(9, Timestamp.from(r.updatedAt()));
      return s.executeUpdate();
    }
  }

  public CompletionStage<List<Row>> list(int limit, String state) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("SELECT id, socket_a, socket_b, state, waiter, reason, since,"
          + " updated_at FROM berth_link" + (state == null ? "" : " WHERE state = ?")
          + " ORDER BY updated_at DESC LIMIT ?")) {
        int i = 1;
        if (state != null) {
          s.setString(i++, state);
        }
        s.setInt(i, limit);
        List<Row> out = new ArrayList<>();
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            out.add(new Row(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
                rs.getString(6), rs.getTimestamp(7).toInstant(), rs.getTimestamp(8).toInstant()));
          }
        }
        return out;
      }
    });
  }

  private static void bind(PreparedStatement s, Row r) throws SQLException {
    s.setString(1, r.a());
    s.setString(2, r.b());
    s.setString(3, r.state());
    s.setString(4, r.waiter());
    s.setString(5, r.reason() == null ? null : r.reason().length() > 1000 ? r.reason().substring(0, 1000) : r.reason());
    s.setTimestamp(6, Timestamp.from(r.since()));
    s.setTimestamp(7, Timestamp.from(r.updatedAt()));
    s.setString(8, r.id());
  }
}
