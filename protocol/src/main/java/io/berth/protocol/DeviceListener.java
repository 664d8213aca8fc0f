package io.berth.protocol;

/**
 * Callbacks of a {@link DeviceClient}, invoked on the client's reader thread: keep them short and
 * never block in them.
 */
public interface DeviceListener {

  /** A downlink DATA frame, delivered once per sequence number even across reconnects. */
  default void onData(long seq, byte[] payload) {}

  /** The peer-link status of the socket changed (PROTOCOL.md#link). */
  default void onLink(LinkStatus status, String peer, String reason) {}

  /** A connection completed its handshake (first connect, reconnect or redirect). */
  default void onConnected(Frame.Welcome welcome, String address) {}

  /** A connection that had completed its handshake dropped; the client reconnects unless the cause is final. */
  default void onDisconnected(String address, String cause) {}

  /**
   * An attempt to connect failed before the handshake completed ({@code address} as {@code
   * host:port}); {@code attempt} counts the failures since the last connection that was up. The
   * client tries again until its give-up time.
   */
  default void onConnectFailed(String address, String cause, int attempt) {}

  /** The client stopped for good: closed, replaced, or a fatal error. */
  default void onTerminated(String cause) {}
}
