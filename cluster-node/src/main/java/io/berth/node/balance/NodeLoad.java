package io.berth.node.balance;

import io.berth.persistence.CborSerializable;
import java.util.List;
import java.util.Map;

/**
 * What one node publishes about itself every check interval (Distributed Data, local writes):
 * its throughput, its hot sockets, and where devices can reach its edge.
 */
public record NodeLoad(
    String node,
    double capacity,
    double framesPerSecond,
    double bytesPerSecond,
    int sockets,
    int connections,
    int shards,
    String edgeHost,
    int edgePort,
    /** The WebSocket port on the same host; 0 when the node has none (docs/edges.md). */
    int websocketPort,
    /** The MQTT port on the same host; 0 when the node has none. */
    int mqttPort,
    boolean draining,
    Map<String, Double> shardFramesPerSecond,
    List<HotSocket> hot,
    long at)
    implements CborSerializable {

  /** A socket above the threshold: since when (epoch millis), at which rate. */
  public record HotSocket(String socketId, String shardId, double framesPerSecond, double bytesPerSecond,
                          long hotSinceMillis) implements CborSerializable {}

  public double headroom() {
    return capacity - framesPerSecond;
  }
}
