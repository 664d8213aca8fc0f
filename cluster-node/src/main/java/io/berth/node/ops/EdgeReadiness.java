package io.berth.node.ops;

import io.berth.node.edge.EdgeState;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;

/**
 * Readiness check ({@code /ready}): the edge is listening, the node is not shutting down and not
 * being drained (a load balancer must stop sending devices to it).
 */
public final class EdgeReadiness implements Supplier<CompletionStage<Boolean>> {

  private final EdgeState edge;

  public EdgeReadiness(ActorSystem system) {
    this.edge = EdgeState.get(Adapter.toTyped(system));
  }

  @Override
  public CompletionStage<Boolean> get() {
    return CompletableFuture.completedFuture(edge.accepting() && !edge.draining());
  }
}
