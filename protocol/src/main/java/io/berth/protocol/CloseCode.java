package io.berth.protocol;

/** Codes carried by CLOSE frames (PROTOCOL.md#close-codes). */
public enum CloseCode {
  /** The sender ends the session: pending downlink frames are discarded. */
  NORMAL(1000, false),
  /** A newer connection of the same device opened this socket and took the session over. */
  REPLACED(1001, false),
  /** The node is shutting down or draining; the session is kept: reconnect to another node. */
  NODE_SHUTDOWN(1002, true),
  /** An operator closed the socket. */
  CLOSED_BY_OPERATOR(1003, false),
  /**
   * The socket's endpoint asked for the socket to be closed, or its link peer never came and the
   * mapping closes on that.
   */
  CLOSED_BY_ENDPOINT(1004, false);

  public final int wire;
  /** Whether the session survives, so that a client should reconnect and resume. */
  public final boolean resumable;

  CloseCode(int wire, boolean resumable) {
    this.wire = wire;
    this.resumable = resumable;
  }

  /** The code for a wire value, or {@code null} for a value this version does not define. */
  public static CloseCode fromWire(int wire) {
    for (CloseCode c : values()) {
      if (c.wire == wire) {
        return c;
      }
    }
    return null;
  }
}
