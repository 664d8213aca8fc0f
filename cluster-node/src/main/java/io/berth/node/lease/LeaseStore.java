package io.berth.node.lease;

import io.berth.persistence.BerthTables;
import io.berth.persistence.DatabaseSettings;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * The rows of {@code berth_node_lease} (docs/failover.md). Times are the database's clock, never
 * a node's: the nodes' clocks need not agree. A revocation locks the row {@code FOR UPDATE},
 * which waits for the journal batches in flight that hold it {@code FOR KEY SHARE} (the journal's
 * fence trigger, io.berth.persistence.JournalFence): once it commits, the node can write no more
 * events.
 */
final class LeaseStore {

  /** What a look at another node's lease found. */
  enum Look {
    /** It lapsed, and this call revoked it. */
    REVOKED_NOW,
    /** It was revoked already (by another node, or an earlier call). */
    REVOKED_BEFORE,
    /** It is still renewed: the node is alive, whatever the cluster says. */
    VALID,
    /** The node holds no lease (leases off there): left to the split brain resolver. */
    NONE
  }

  private static final int TIMEOUT_SECONDS = 5;
  /** SQLSTATE of a duplicate key, on PostgreSQL and H2 alike. */
  private static final String UNIQUE_VIOLATION = "23505";
  /** SQLSTATE of a lock not granted within lock_timeout (PostgreSQL). */
  private static final String LOCK_NOT_AVAILABLE = "55P03";
  /** How long a revocation waits for the node's batches in flight before it ends their sessions. */
  private static final Duration LOCK_WAIT = Duration.ofSeconds(1);

  private final BerthTables tables;
  private final boolean postgres;
  /** The database's now plus the lease's time to live, in its SQL. */
  private final String validUntil;

  LeaseStore(ActorSystem<?> system, Duration ttl) {
    this.tables = BerthTables.get(system);
    long ms = ttl.toMillis();
    this.postgres = DatabaseSettings.fromConfig(system.settings().config()).kind() == DatabaseSettings.Kind.POSTGRES;
    this.validUntil = postgres ? "(CURRENT_TIMESTAMP + INTERVAL '" + ms + " milliseconds')"
        : "DATEADD(MILLISECOND, " + ms + ", CURRENT_TIMESTAMP)";
  }

  /** Takes this incarnation's lease, and forgets those that lapsed more than a day ago. */
  CompletionStage<Void> take(String node) {
    return tables.run(c -> {
      try (PreparedStatement old = c.prepareStatement(
          "DELETE FROM berth_node_lease WHERE valid_until < CURRENT_TIMESTAMP - INTERVAL '1' DAY")) {
        old.setQueryTimeout(TIMEOUT_SECONDS);
        old.executeUpdate();
      }
      try (PreparedStatement insert = c.prepareStatement("INSERT INTO berth_node_lease (node, started_at, "
          + "valid_until) VALUES (?, CURRENT_TIMESTAMP, " + validUntil + ")")) {
        insert.setQueryTimeout(TIMEOUT_SECONDS);
        insert.setString(1, node);
        insert.executeUpdate();
      } catch (SQLException e) {
        // Taken by an earlier try whose answer was lost: the key names this incarnation alone.
        if (!UNIQUE_VIOLATION.equals(e.getSQLState())) {
          throw e;
        }
      }
      return null;
    });
  }

  /** Renews this node's lease: false when it was revoked (or is gone). */
  CompletionStage<Boolean> renew(String node) {
    return tables.run(c -> {
      try (PreparedStatement update = c.prepareStatement("UPDATE berth_node_lease SET valid_until = " + validUntil
          + " WHERE node = ? AND revoked_at IS NULL")) {
        update.setQueryTimeout(TIMEOUT_SECONDS);
        update.setString(1, node);
        return update.executeUpdate() == 1;
      }
    });
  }

  /** Revokes {@code node}'s lease if it lapsed; a lease that is renewed is only read, never locked. */
  CompletionStage<Look> revokeIfLapsed(String node, String by) {
    return tables.run(c -> {
      Look seen = read(c, node);
      return seen == Look.REVOKED_NOW ? revoke(c, node, by, "unreachable, lease lapsed", true) : seen;
    });
  }

  /** Revokes {@code node}'s lease whatever its time: the cluster downed it. */
  CompletionStage<Look> revoke(String node, String by, String why) {
    return tables.run(c -> revoke(c, node, by, why, false));
  }

  /** What the lease looks like, without a lock: REVOKED_NOW here means "lapsed, revoke it". */
  private static Look read(Connection c, String node) throws SQLException {
    try (PreparedStatement read = c.prepareStatement("SELECT valid_until < CURRENT_TIMESTAMP, revoked_at "
        + "FROM berth_node_lease WHERE node = ?")) {
      read.setQueryTimeout(TIMEOUT_SECONDS);
      read.setString(1, node);
      try (ResultSet row = read.executeQuery()) {
        return classify(row, true);
      }
    }
  }

  /**
   * What a row of (lapsed, revoked_at) says, or NONE without one: REVOKED_NOW is "to revoke",
   * which a lease still renewed is only when {@code onlyLapsed} is off.
   */
  private static Look classify(ResultSet row, boolean onlyLapsed) throws SQLException {
    if (!row.next()) {
      return Look.NONE;
    }
    if (row.getTimestamp(2) != null) {
      return Look.REVOKED_BEFORE;
    }
    return !onlyLapsed || row.getBoolean(1) ? Look.REVOKED_NOW : Look.VALID;
  }

  /**
   * Revokes under {@code FOR UPDATE}, which waits for the node's batches in flight. On
   * PostgreSQL the wait is bounded: a batch of a frozen node may never end by itself (a COPY that
   * waits for the client's data cannot be cancelled), so past {@link #LOCK_WAIT} the node's fenced
   * sessions are terminated and the revocation tried once more. Only the journal sessions of that
   * node's incarnation carry its session name.
   */
  private Look revoke(Connection c, String node, String by, String why, boolean onlyLapsed) throws SQLException {
    try {
      return revokeLocked(c, node, by, why, onlyLapsed);
    } catch (SQLException e) {
      if (UNIQUE_VIOLATION.equals(e.getSQLState())) {
        // Another survivor inserted the downed member's revoked row first, or the member took its
        // lease meanwhile: the row is there now, and is revoked (again) under its lock.
        return revokeLocked(c, node, by, why, onlyLapsed);
      }
      if (!postgres || !LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
        throw e;
      }
      int ended = terminateFencedSessions(c, node);
      return revokeLocked(c, node, by, why + (ended > 0 ? "; ended " + ended + " of its sessions" : ""), onlyLapsed);
    }
  }

  private int terminateFencedSessions(Connection c, String node) throws SQLException {
    try (PreparedStatement end = c.prepareStatement("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        + "WHERE application_name = ? AND pid <> pg_backend_pid()")) {
      end.setQueryTimeout(TIMEOUT_SECONDS);
      end.setString(1, io.berth.persistence.JournalFence.sessionName(node));
      try (ResultSet row = end.executeQuery()) {
        return row.next() ? row.getInt(1) : 0;
      }
    }
  }

  private Look revokeLocked(Connection c, String node, String by, String why, boolean onlyLapsed)
      throws SQLException {
    boolean autoCommit = c.getAutoCommit();
    c.setAutoCommit(false);
    try {
      if (postgres) {
        try (java.sql.Statement wait = c.createStatement()) {
          wait.execute("SET LOCAL lock_timeout = '" + LOCK_WAIT.toMillis() + "ms'");
        }
      }
      Look look;
      try (PreparedStatement lock = c.prepareStatement("SELECT valid_until < CURRENT_TIMESTAMP, revoked_at "
          + "FROM berth_node_lease WHERE node = ? FOR UPDATE")) {
        lock.setQueryTimeout(TIMEOUT_SECONDS);
        lock.setString(1, node);
        try (ResultSet row = lock.executeQuery()) {
          look = classify(row, onlyLapsed);
        }
      }
      if (look == Look.NONE && !onlyLapsed) {
        // Downed before it took its lease (or with leases off): a row revoked already, so that
        // its take finds the key used, and its journal's fence refuses its batches. A take that
        // comes first makes this insert fail, and the revocation is tried again.
        try (PreparedStatement insert = c.prepareStatement("INSERT INTO berth_node_lease (node, started_at, "
            + "valid_until, revoked_at, revoked_by, revoked_why) VALUES (?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
            + "CURRENT_TIMESTAMP, ?, ?)")) {
          insert.setQueryTimeout(TIMEOUT_SECONDS);
          insert.setString(1, node);
          insert.setString(2, by);
          String before = " (before it took its lease)";
          int room = 200 - before.length();
          insert.setString(3, (why.length() > room ? why.substring(0, room) : why) + before);
          insert.executeUpdate();
        }
        look = Look.REVOKED_NOW;
      } else if (look == Look.REVOKED_NOW) {
        try (PreparedStatement update = c.prepareStatement("UPDATE berth_node_lease SET revoked_at = "
            + "CURRENT_TIMESTAMP, revoked_by = ?, revoked_why = ? WHERE node = ?")) {
          update.setQueryTimeout(TIMEOUT_SECONDS);
          update.setString(1, by);
          update.setString(2, why.length() > 200 ? why.substring(0, 200) : why);
          update.setString(3, node);
          update.executeUpdate();
        }
      }
      c.commit();
      return look;
    } catch (SQLException | RuntimeException e) {
      c.rollback();
      throw e;
    } finally {
      c.setAutoCommit(autoCommit);
    }
  }
}
