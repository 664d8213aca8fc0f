package io.berth.node.edge.api;

/**
 * What load balancing reads of this node's edge and tells it. The edge provides it ({@code
 * EdgeServer.control}) and the node hands it to balancing, so that balancing does not depend on
 * the edge, which reads the cluster's load to choose where drained devices go.
 */
public interface EdgeControl {

  /** Device connections the edge holds now: part of the load the node publishes. */
  int connections();

  /**
   * This node's drain mark appeared (true) or was cleared. Draining, the edge redirects every
   * device it holds, and every new one, to other nodes (PROTOCOL.md#redirect); readiness reports
   * the mark at once.
   */
  void setDraining(boolean draining);
}
