package io.berth.persistence;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import org.apache.pekko.actor.AbstractExtensionId;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.Extension;
import org.postgresql.PGConnection;

/**
 * The journal's fence against a node that the cluster took for dead (docs/failover.md): once the
 * node holds a lease row in {@code berth_node_lease}, every batch it writes to the journal is
 * checked against that row, in the transaction of the insert, and keeps it locked against a
 * revocation until the insert commits. The nodes that take a dead node's sessions over revoke its
 * lease under an update lock first, so each of its writes either committed before the
 * revocation, and the new incarnation of the session recovers it, or fails: a paused node that
 * wakes up cannot add a single event to a session that lives elsewhere now.
 *
 * <p>On PostgreSQL the check is the journal table's statement trigger {@code berth_journal_fence}
 * (schema/postgres.sql), run by the batch's own COPY: each journal connection names the node's
 * lease once, in its session ({@link #enter}), and a batch costs no round trip more than the
 * COPY. On H2 the DAO checks the row in a statement of its own before the insert ({@link #check}).
 *
 * <p>Until {@link #hold} is called (the node has no lease yet, or leases are off) nothing is
 * checked.
 */
public final class JournalFence implements Extension {

  /**
   * Names the lease in a session: the trigger reads {@code berth.lease}; a revocation finds the
   * node's sessions by their {@code application_name} ({@link #sessionName}) to end those that
   * hold the row's lock and cannot be cancelled (a COPY frozen while it streams its rows).
   */
  static final String ENTER = "SELECT set_config('berth.lease', ?, false), set_config('application_name', ?, false)";
  private static final String SESSION_NAME_PREFIX = "berth-fenced-batch ";
  /** The lease's check where the insert cannot run it itself (H2), unlocked. */
  static final String CHECK = "SELECT revoked_at FROM berth_node_lease WHERE node = ?";

  private static final AbstractExtensionId<JournalFence> ID = new AbstractExtensionId<>() {
    @Override
    public JournalFence createExtension(ExtendedActorSystem system) {
      return new JournalFence();
    }
  };

  private volatile String holder;
  /** Journal tables found with the fence trigger. */
  private final java.util.Set<String> fencedTables = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private JournalFence() {}

  public static JournalFence get(ActorSystem system) {
    return ID.get(system);
  }

  /** From now on, every batch checks the lease row {@code node}, which must exist; null: none. */
  public void hold(String node) {
    this.holder = node;
  }

  /** The lease row checked, or null when there is none. */
  String holder() {
    return holder;
  }

  /**
   * Makes the session of {@code connection} (a PostgreSQL one) name the lease held now, or none.
   * Whether it does already is read from the session's {@code application_name} as the driver
   * last heard it from the server (PostgreSQL reports every change of it, a {@code DISCARD ALL},
   * a {@code RESET} or a rolled-back change included): a round trip the first time a connection
   * is used after the lease changed, or after its session was reset; none after.
   */
  void enter(Connection connection) throws SQLException {
    String lease = holder;
    String named = connection.unwrap(PGConnection.class).getParameterStatus("application_name");
    boolean naming = named != null && named.startsWith(SESSION_NAME_PREFIX);
    if (lease == null ? !naming : sessionName(lease).equals(named)) {
      return;
    }
    try (PreparedStatement enter = connection.prepareStatement(ENTER)) {
      enter.setString(1, lease == null ? "" : lease);
      enter.setString(2, lease == null ? "" : sessionName(lease));
      enter.executeQuery().close();
    }
    if (!connection.getAutoCommit()) {
      connection.commit();
    }
  }

  /**
   * Fails unless the journal table {@code table} (quoted as the COPY names it) has the fence
   * trigger: a table other than the schema's {@code event_journal}, made by hand, would take the
   * node's batches unchecked. Asked once per table; a table found without it is asked again.
   */
  void requireTrigger(Connection connection, String table) throws SQLException {
    if (fencedTables.contains(table)) {
      return;
    }
    try (PreparedStatement look = connection.prepareStatement("SELECT count(*) FROM pg_trigger "
        + "WHERE tgrelid = to_regclass(?) AND tgname = 'berth_journal_fence'")) {
      look.setString(1, table);
      try (ResultSet row = look.executeQuery()) {
        if (!row.next() || row.getInt(1) == 0) {
          throw new SQLException("the journal table " + table + " has no trigger berth_journal_fence, which node "
              + "leases need to refuse a revoked node's writes: create it as schema/postgres.sql does, or turn "
              + "leases off (BERTH_NODE_LEASE=off)", "BL002");
        }
      }
    }
    if (!connection.getAutoCommit()) {
      connection.commit();
    }
    fencedTables.add(table);
  }

  /** Checks, on {@code connection}, that the lease {@code node} stands (not under a lock). */
  static void check(Connection connection, String node) throws SQLException {
    try (PreparedStatement check = connection.prepareStatement(CHECK)) {
      check.setString(1, node);
      try (ResultSet row = check.executeQuery()) {
        if (!row.next()) {
          throw new LeaseRevokedException("this node's lease " + node + " is gone: it was taken for dead");
        }
        if (row.getTimestamp(1) != null) {
          throw new LeaseRevokedException("this node's lease " + node + " was revoked at " + row.getTimestamp(1)
              + ": the cluster took it for dead, and its sessions live elsewhere now");
        }
      }
    }
  }

  /**
   * The {@code application_name} of the journal sessions of the node holding lease {@code node}:
   * short enough for PostgreSQL's 63 bytes whatever the node's address, and the same for every
   * node that computes it.
   */
  public static String sessionName(String node) {
    try {
      byte[] digest = java.security.MessageDigest.getInstance("SHA-256")
          .digest(node.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return SESSION_NAME_PREFIX + java.util.HexFormat.of().formatHex(digest, 0, 12);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /**
   * A journal write refused: the node's lease was revoked. Not retryable on this node. On
   * PostgreSQL the trigger's refusal is the driver's exception with this SQLSTATE.
   */
  public static final class LeaseRevokedException extends SQLException {
    /** The SQLSTATE of a refusal, the trigger's as well. */
    public static final String SQL_STATE = "BL001";

    LeaseRevokedException(String message) {
      super(message, SQL_STATE);
    }
  }
}
