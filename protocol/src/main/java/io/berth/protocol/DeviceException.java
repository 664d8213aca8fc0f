package io.berth.protocol;

/** The client stopped for good: a fatal ERROR, a final CLOSE, or reconnects exhausted. */
public final class DeviceException extends RuntimeException {

  private final int code;

  public DeviceException(int code, String message) {
    super(message);
    this.code = code;
  }

  public DeviceException(String message, Throwable cause) {
    super(message, cause);
    this.code = 0;
  }

  /** The ERROR or CLOSE code that ended the client, 0 when none was received. */
  public int code() {
    return code;
  }
}
