package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.StreamSupport;
import org.apache.pekko.actor.Address;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.junit.jupiter.api.Test;

/**
 * Node leases in one JVM (docs/failover.md), with the split brain resolver made too slow to
 * matter (stable-after 5 minutes): a crashed node is downed by the others once its lease lapsed,
 * in seconds; a node downed by an operator while it still runs has its lease revoked, finds that
 * out and stops (one whose lease row is missing gets one, revoked); a revocation that cannot be
 * done before the member is removed goes on after, and the member's sessions start elsewhere only
 * once it is done.
 */
class NodeLeaseIT {

  private static final String SLOW_RESOLVER = "pekko.cluster.split-brain-resolver.stable-after = 300s";

  @Test
  void aCrashedNodeIsDownedOnceItsLeaseLapsedWithoutWaitingForTheResolver() throws Exception {
    // A crash: no leave, no handoff (TestNodes.crash).
    try (TestNodes nodes = new TestNodes(SLOW_RESOLVER
        + "\npekko.coordinated-shutdown.run-by-actor-system-terminate = off").start(3)) {
      TestNodes.Node victim = nodes.node(2);
      Address address = victim.address();
      await().atMost(Duration.ofSeconds(30)).until(() -> lease(address) != null);

      long crashedAt = System.nanoTime();
      nodes.crash(victim);
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() ->
          members(nodes.node(0)).noneMatch(a -> a.equals(address)));
      double removedAfter = (System.nanoTime() - crashedAt) / 1e9;

      // Its revoker is named by its own lease: address and incarnation.
      assertThat(lease(address).revokedBy().replaceFirst("#.*", "")).as("revoked by a surviving node")
          .isIn(nodes.node(0).address().toString(), nodes.node(1).address().toString());
      assertThat(removedAfter).as("removed after, s (the resolver would wait 300 s)").isLessThan(15);
      System.out.printf("FIGURE node lease: a crashed node removed %.1f s after the crash%n", removedAfter);
    }
  }

  @Test
  void aRunningNodeDownedByAnOperatorHasItsLeaseRevokedAndStops() throws Exception {
    try (TestNodes nodes = new TestNodes(SLOW_RESOLVER).start(3)) {
      TestNodes.Node downed = nodes.node(2);
      Address address = downed.address();
      await().atMost(Duration.ofSeconds(30)).until(() -> lease(address) != null);

      Cluster.get(nodes.node(0).system()).manager().tell(new Down(address));

      await().atMost(Duration.ofSeconds(30)).until(() -> lease(address).revokedBy() != null);
      assertThat(lease(address).why()).isEqualTo("downed");
      downed.system().getWhenTerminated().toCompletableFuture().get(60, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  @Test
  void aMemberDownedWithoutALeaseRowGetsOneRevokedAndStops() throws Exception {
    try (TestNodes nodes = new TestNodes(SLOW_RESOLVER).start(3)) {
      TestNodes.Node downed = nodes.node(2);
      Address address = downed.address();
      await().atMost(Duration.ofSeconds(30)).until(() -> lease(address) != null);
      // As for a member downed before it took its lease: no row to revoke.
      try (Connection c = SchemaInstaller.connect(TestDatabase.settings());
           PreparedStatement delete = c.prepareStatement("DELETE FROM berth_node_lease WHERE node LIKE ?")) {
        delete.setString(1, address + "#%");
        assertThat(delete.executeUpdate()).isEqualTo(1);
      }

      Cluster.get(nodes.node(0).system()).manager().tell(new Down(address));

      // A row revoked already, which its own take would find used, and its journal refused.
      await().atMost(Duration.ofSeconds(30)).until(() -> lease(address) != null && lease(address).revokedBy() != null);
      assertThat(lease(address).why()).isEqualTo("downed (before it took its lease)");
      downed.system().getWhenTerminated().toCompletableFuture().get(60, TimeUnit.SECONDS);
    }
  }

  @Test
  void aRevocationNotDoneByTheRemovalIsTriedUntilItIsAndTheMembersSessionsWaitForIt() throws Exception {
    // The allocation's wait for the fence made longer than the test holds the row.
    try (TestNodes nodes = new TestNodes(SLOW_RESOLVER + "\nberth.cluster.lease.fence-wait = 60s").start(3)) {
      TestNodes.Node downed = nodes.node(2);
      Address address = downed.address();
      await().atMost(Duration.ofSeconds(30)).until(() -> lease(address) != null);
      String socket = socketOn(nodes, downed);

      // The row held locked, as a member's own transaction would hold it: every revocation waits
      // out its lock timeout and fails (ending the member's sessions does not end this one).
      try (Connection holder = SchemaInstaller.connect(TestDatabase.settings())) {
        holder.setAutoCommit(false);
        try (PreparedStatement lock = holder.prepareStatement(
            "SELECT node FROM berth_node_lease WHERE node LIKE ? FOR UPDATE")) {
          lock.setString(1, address + "#%");
          lock.executeQuery().close();
        }
        Cluster.get(nodes.node(0).system()).manager().tell(new Down(address));
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() ->
            members(nodes.node(0)).noneMatch(a -> a.equals(address))
                && members(nodes.node(1)).noneMatch(a -> a.equals(address)));
        // Long enough for every attempt begun before the removal to have failed (a lock wait, the
        // member's sessions ended, a second lock wait): only one begun after it can succeed. And
        // far past the removal margin (100 ms): the member's socket session, which could still write
        // while its lease stands, does not start on another node meanwhile.
        await().during(Duration.ofSeconds(12)).atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(500))
            .until(() -> lease(address).revokedBy() == null && !answers(nodes.node(0), socket));
        holder.rollback();
      }

      await().atMost(Duration.ofSeconds(20)).until(() -> lease(address).revokedBy() != null);
      assertThat(lease(address).why()).isEqualTo("downed");
      // Revoked: the session starts elsewhere.
      await().atMost(Duration.ofSeconds(30)).until(() -> answers(nodes.node(0), socket));
      assertThat(nodes.entityNode(socket)).isNotEqualTo(address.toString());
    }
  }

  /** A socket whose session runs on {@code node}. */
  private static String socketOn(TestNodes nodes, TestNodes.Node node) {
    for (int i = 0; i < 60; i++) {
      String candidate = TestNodes.uniqueDevice("fence");
      if (nodes.entityNode(candidate).equals(node.address().toString())) {
        return candidate;
      }
    }
    throw new IllegalStateException("60 sockets in a row had their session elsewhere than " + node.address());
  }

  /** Whether the socket's session answers a status query through {@code node} within a second. */
  private static boolean answers(TestNodes.Node node, String socket) {
    try {
      Sockets.ref(node.system(), socket).ask(SocketCommand.GetStatus::new, Duration.ofSeconds(1))
          .toCompletableFuture().get(2, TimeUnit.SECONDS);
      return true;
    } catch (Exception e) {
      return false;
    }
  }

  private static java.util.stream.Stream<Address> members(TestNodes.Node node) {
    return StreamSupport.stream(Cluster.get(node.system()).state().getMembers().spliterator(), false)
        .filter(m -> m.status() != MemberStatus.removed())
        .map(org.apache.pekko.cluster.Member::address);
  }

  record Lease(String revokedBy, String why) {}

  /** The lease row of the latest incarnation at {@code address}, or null. */
  static Lease lease(Object address) throws Exception {
    try (Connection c = SchemaInstaller.connect(TestDatabase.settings());
         PreparedStatement s = c.prepareStatement("SELECT revoked_by, revoked_why FROM berth_node_lease "
             + "WHERE node LIKE ? ORDER BY started_at DESC LIMIT 1")) {
      s.setString(1, address + "#%");
      try (ResultSet r = s.executeQuery()) {
        return r.next() ? new Lease(r.getString(1), r.getString(2)) : null;
      }
    }
  }
}
