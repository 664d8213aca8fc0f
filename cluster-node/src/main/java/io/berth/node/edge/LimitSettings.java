package io.berth.node.edge;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueType;
import io.berth.node.mapping.Mapping;

/**
 * The edge's abuse protection, {@code berth.edge.limits.*} in reference.conf (docs/limits.md).
 *
 * @param socket how fast each connection may send, resolved (the node's limits, which a mapping's
 *     own override)
 * @param connectsPerSecond refill of each device's connect bucket; 0: no throttling of connects
 * @param connectBurst connects in a row a device may make before the rate applies
 * @param maxConnectionsPerDevice connections a device may hold on this node at once; 0: any
 * @param trackedDevices devices whose connect bucket is remembered at most
 */
public record LimitSettings(
    Mapping.Limits socket,
    double connectsPerSecond,
    int connectBurst,
    int maxConnectionsPerDevice,
    int trackedDevices) {

  public LimitSettings {
    if (!(connectsPerSecond >= 0) || connectBurst < 1 || maxConnectionsPerDevice < 0 || trackedDevices < 1) {
      throw new IllegalArgumentException("berth.edge.limits.device: connects-per-second must be 0 (off) or more, "
          + "connect-burst and tracked-devices at least 1, max-connections 0 (off) or more; got " + connectsPerSecond
          + ", " + connectBurst + ", " + trackedDevices + ", " + maxConnectionsPerDevice);
    }
  }

  public static LimitSettings fromConfig(Config config) {
    Config s = config.getConfig("berth.edge.limits.socket");
    Config d = config.getConfig("berth.edge.limits.device");
    return new LimitSettings(
        Mapping.Limits.resolved(limit(s, "frames-per-second", false), limit(s, "frames-burst", false),
            limit(s, "bytes-per-second", true), limit(s, "bytes-burst", true)),
        off(d, "connects-per-second") ? 0 : d.getDouble("connects-per-second"),
        d.getInt("connect-burst"),
        off(d, "max-connections") ? 0 : d.getInt("max-connections"),
        d.getInt("tracked-devices"));
  }

  /** A rate or burst: 0 or {@code off} for none, bytes in HOCON's sizes ({@code 64 KiB}). */
  private static long limit(Config c, String key, boolean bytes) {
    if (off(c, key)) {
      return 0;
    }
    long v = bytes ? c.getBytes(key) : c.getLong(key);
    if (v < 0 || v > Mapping.Limits.MAX) {
      throw new IllegalArgumentException("berth.edge.limits.socket." + key + " must be off or between 0 and "
          + Mapping.Limits.MAX + ", got " + v);
    }
    return v;
  }

  private static boolean off(Config c, String key) {
    if (c.getValue(key).valueType() != ConfigValueType.STRING) {
      return false;
    }
    String v = c.getString(key);
    return v.equals("off") || v.equals("none");
  }
}
