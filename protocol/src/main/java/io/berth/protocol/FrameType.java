package io.berth.protocol;

/** Frame types with their wire values (PROTOCOL.md#frame-types). */
public enum FrameType {
  HELLO(0x01),
  WELCOME(0x02),
  DATA(0x03),
  ACK(0x04),
  PING(0x05),
  PONG(0x06),
  LINK(0x07),
  REDIRECT(0x08),
  CLOSE(0x09),
  ERROR(0x0A);

  private static final FrameType[] BY_WIRE = new FrameType[256];

  static {
    for (FrameType t : values()) {
      BY_WIRE[t.wire] = t;
    }
  }

  public final int wire;

  FrameType(int wire) {
    this.wire = wire;
  }

  /** The type for a wire value, or {@code null} when the value names no frame type. */
  public static FrameType fromWire(int wire) {
    return wire >= 0 && wire < BY_WIRE.length ? BY_WIRE[wire] : null;
  }
}
