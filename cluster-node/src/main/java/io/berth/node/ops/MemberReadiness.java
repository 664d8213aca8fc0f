package io.berth.node.ops;

import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.MemberStatus;

/**
 * Readiness: this node is an Up (or WeaklyUp) member of the cluster. Replaces Management's
 * {@code cluster-membership} check, which answers only "not ok".
 */
public final class MemberReadiness extends BerthHealthCheck {

  private final Cluster cluster;

  public MemberReadiness(ActorSystem system) {
    this.cluster = Cluster.get(system);
  }

  @Override
  protected CompletionStage<Optional<String>> problem() {
    MemberStatus status = cluster.selfMember().status();
    if (status == MemberStatus.up() || status == MemberStatus.weaklyUp()) {
      return now(Optional.empty());
    }
    String why;
    if (status == MemberStatus.joining()) {
      why = "joining, waiting for the leader to accept it";
    } else if (status == MemberStatus.removed() && !cluster.state().getMembers().iterator().hasNext()) {
      why = "it has not joined a cluster yet (are the seed nodes reachable? see the log)";
    } else if (status == MemberStatus.down()) {
      why = "the cluster downed it (unreachable too long, or split brain resolution); it will stop";
    } else {
      why = "it is leaving the cluster";
    }
    return now(Optional.of("cluster member status is " + status + ", not Up: " + why));
  }
}
