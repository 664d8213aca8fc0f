package io.berth.node.edge;

/**
 * Which of a node's listeners a device came through (docs/edges.md): a drain redirects a device
 * to another node's listener of the same kind.
 */
enum EdgeKind {
  /** The device protocol on the TCP byte stream. */
  DEVICE,
  /** The device protocol in WebSocket binary messages. */
  WEBSOCKET,
  /** MQTT 3.1.1 and 5, translated to and from the device protocol. */
  MQTT
}
