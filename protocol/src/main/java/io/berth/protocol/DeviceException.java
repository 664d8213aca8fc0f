package io.berth.protocol;

/**
 * The client stopped for good: a fatal ERROR, a final CLOSE, or a condition the client found
 * itself. {@link #reason} says which; {@link #code} is the node's code only when the node sent one.
 */
public final class DeviceException extends RuntimeException {

  /** Why the client stopped. Only the first two carry a code from the node. */
  public enum Reason {
    /** The node answered a non-retryable ERROR; {@link #code} is its error code. */
    NODE_ERROR,
    /** The node ended the session with a final CLOSE; {@link #code} is its close code. */
    NODE_CLOSE,
    /** No address accepted a connection within the give-up time. */
    UNREACHABLE,
    /** An address answered with something that is not the Berth protocol (an HTTP server, say). */
    NOT_A_NODE,
    /**
     * The node accepted uplink frames this client never sent: another client uses the socket, or
     * this client's state is stale (PROTOCOL.md#resuming).
     */
    SESSION_CONFLICT,
    /** A listener callback threw. */
    LISTENER_FAILED,
    /** The client was closed by its owner. */
    CLOSED
  }

  private final Reason reason;
  private final int code;

  /** A stop by the node: {@code reason} is {@link Reason#NODE_ERROR} or {@link Reason#NODE_CLOSE}. */
  public DeviceException(Reason reason, int code, String message) {
    super(message);
    this.reason = reason;
    this.code = code;
  }

  /** A stop the client decided; no code from the node. */
  public DeviceException(Reason reason, String message) {
    this(reason, 0, message);
  }

  public DeviceException(Reason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
    this.code = 0;
  }

  public Reason reason() {
    return reason;
  }

  /**
   * The ERROR code ({@link Reason#NODE_ERROR}) or CLOSE code ({@link Reason#NODE_CLOSE}) the node
   * sent; 0 for every other reason.
   */
  public int code() {
    return code;
  }
}
