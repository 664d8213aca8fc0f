package io.berth.protocol;

/**
 * Codes carried by ERROR frames (PROTOCOL.md#error-codes). After an ERROR the node closes the
 * connection. {@link #retryable} tells a client whether reconnecting can help.
 */
public enum ErrorCode {
  MALFORMED_FRAME(100, false),
  FRAME_TOO_LARGE(101, false),
  UNKNOWN_FRAME_TYPE(102, false),
  UNEXPECTED_FRAME(103, false),
  UNSUPPORTED_VERSION(104, false),
  BAD_SEQUENCE(105, false),
  AUTH_FAILED(200, false),
  TOKEN_EXPIRED(201, false),
  INVALID_ID(202, false),
  UNKNOWN_MAPPING(203, false),
  /**
   * DATA arrived that nothing would take: the socket's mapping takes no data (an HTTP mapping
   * without the {@code data} event, {@code pair}) and the socket is not linked or waiting for a
   * link. Nothing after the last ACK was delivered.
   */
  NO_DESTINATION(204, false),
  HANDSHAKE_TIMEOUT(300, true),
  IDLE_TIMEOUT(301, true),
  SLOW_CONSUMER(302, true),
  /**
   * The device connects too often (a token bucket per device id on the node): its HELLO is
   * refused before its socket is opened. The message starts with the wait the node asks for
   * ({@link RetryAfter}).
   */
  THROTTLED(303, true),
  /**
   * The device already holds as many connections on this node as it may (each connection opens a
   * socket): one of them must end first.
   */
  TOO_MANY_CONNECTIONS(304, true),
  UNAVAILABLE(500, true),
  INTERNAL(501, true);

  public final int wire;
  public final boolean retryable;

  ErrorCode(int wire, boolean retryable) {
    this.wire = wire;
    this.retryable = retryable;
  }

  /** The code for a wire value, or {@code null} for a value this version does not define. */
  public static ErrorCode fromWire(int wire) {
    for (ErrorCode c : values()) {
      if (c.wire == wire) {
        return c;
      }
    }
    return null;
  }
}
