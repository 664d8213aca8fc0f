package io.berth.persistence;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import org.apache.pekko.actor.AbstractExtensionId;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.Extension;

/**
 * The journal's fence against a node that the cluster took for dead (docs/failover.md): once the
 * node holds a lease row in {@code berth_node_lease}, every batch it writes to the journal first
 * takes a key-share lock on that row and checks that it was not revoked, in the transaction of
 * the insert. The nodes that take a dead node's sessions over revoke its lease under an update
 * lock first, so each of its writes either committed before the revocation, and the new
 * incarnation of the session recovers it, or fails: a paused node that wakes up cannot add a
 * single event to a session that lives elsewhere now.
 *
 * <p>Until {@link #hold} is called (the node has no lease yet, or leases are off) nothing is
 * checked.
 */
public final class JournalFence implements Extension {

  /**
   * How long the rest of a fenced batch's transaction may take: its {@code COPY} (while the
   * server works on it: PostgreSQL does not cancel a COPY that waits for the client's data), and
   * the wait between its statements. A node frozen in the middle of a batch (a stop signal, a
   * stalled VM) holds the lease row's lock and its uncommitted rows' index entries, which the
   * revocation and the session's next incarnation wait for; whatever these bounds do not end,
   * the revoking node ends by terminating the frozen node's fenced sessions, which it finds by
   * their {@link #sessionName}.
   */
  static final int STATEMENT_TIMEOUT_MS = 8_000;
  static final int IDLE_TIMEOUT_MS = 2_000;

  /**
   * The lease's check on PostgreSQL: the row, locked against a revocation (which takes {@code FOR
   * UPDATE}) until the batch commits. A key-share lock does not conflict with the node's own
   * renewals (plain updates of other columns), so writing never waits for them. It also bounds
   * the rest of the transaction ({@link #STATEMENT_TIMEOUT_MS}, {@link #IDLE_TIMEOUT_MS}) and
   * names the session for as long as the transaction lasts ({@link #sessionName}).
   */
  static final String CHECK_LOCKED = "SELECT revoked_at, set_config('statement_timeout', '" + STATEMENT_TIMEOUT_MS
      + "', true), set_config('idle_in_transaction_session_timeout', '" + IDLE_TIMEOUT_MS + "', true), "
      + "set_config('application_name', ?, true) FROM berth_node_lease WHERE node = ? FOR KEY SHARE";
  /** The same, unlocked, where the insert cannot share the check's transaction. */
  static final String CHECK = "SELECT revoked_at FROM berth_node_lease WHERE node = ?";

  private static final AbstractExtensionId<JournalFence> ID = new AbstractExtensionId<>() {
    @Override
    public JournalFence createExtension(ExtendedActorSystem system) {
      return new JournalFence();
    }
  };

  private volatile String holder;

  private JournalFence() {}

  public static JournalFence get(ActorSystem system) {
    return ID.get(system);
  }

  /** From now on, every batch checks the lease row {@code node}, which must exist. */
  public void hold(String node) {
    this.holder = node;
  }

  /** The lease row checked, or null when there is none. */
  String holder() {
    return holder;
  }

  /**
   * Checks, on {@code connection}, that the lease {@code node} stands; with {@code lock}, in the
   * connection's transaction and holding a lock on the row that a revocation waits for until the
   * transaction ends.
   */
  static void check(Connection connection, String node, boolean lock) throws SQLException {
    try (PreparedStatement check = connection.prepareStatement(lock ? CHECK_LOCKED : CHECK)) {
      if (lock) {
        check.setString(1, sessionName(node));
        check.setString(2, node);
      } else {
        check.setString(1, node);
      }
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
   * The {@code application_name} of a session while it runs a fenced batch of the node holding
   * lease {@code node}: short enough for PostgreSQL's 63 bytes whatever the node's address, and
   * the same for every node that computes it.
   */
  public static String sessionName(String node) {
    try {
      byte[] digest = java.security.MessageDigest.getInstance("SHA-256")
          .digest(node.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return "berth-fenced-batch " + java.util.HexFormat.of().formatHex(digest, 0, 12);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /** A journal write refused: the node's lease was revoked. Not retryable on this node. */
  public static final class LeaseRevokedException extends SQLException {
    LeaseRevokedException(String message) {
      super(message, "BL001");
    }
  }
}
