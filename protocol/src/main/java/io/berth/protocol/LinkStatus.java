package io.berth.protocol;

/** Status values of LINK frames (PROTOCOL.md#link). */
public enum LinkStatus {
  PENDING(1),
  LINKED(2),
  UNLINKED(3),
  TIMEOUT(4);

  public final int wire;

  LinkStatus(int wire) {
    this.wire = wire;
  }

  /** The status for a wire value, or {@code null} for a value this version does not define. */
  public static LinkStatus fromWire(int wire) {
    for (LinkStatus s : values()) {
      if (s.wire == wire) {
        return s;
      }
    }
    return null;
  }
}
