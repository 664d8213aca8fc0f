package io.berth.node.ops;

import io.berth.node.edge.EdgeState;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.javadsl.Adapter;

/**
 * Readiness ({@code /ready}): the edge is listening, the node is not shutting down and not being
 * drained (a load balancer must stop sending devices to it).
 */
public final class EdgeReadiness extends BerthHealthCheck {

  private final ActorSystem system;
  private final EdgeState edge;

  public EdgeReadiness(ActorSystem system) {
    this.system = system;
    this.edge = EdgeState.get(Adapter.toTyped(system));
  }

  @Override
  protected CompletionStage<Optional<String>> problem() {
    if (CoordinatedShutdown.get(system).getShutdownReason().isPresent()) {
      return now(Optional.of("node is shutting down"));
    }
    if (!edge.accepting()) {
      return now(Optional.of("edge is not listening for devices yet"));
    }
    if (edge.draining()) {
      return now(Optional.of("node is draining: its devices are redirected and its shards move to other nodes"
          + " (DELETE /api/nodes/{node}/drain ends it)"));
    }
    return now(Optional.empty());
  }
}
