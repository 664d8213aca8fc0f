package io.berth.node.socket;

import com.typesafe.config.Config;
import java.time.Duration;

/** Settings of socket entities, {@code berth.socket.*} in reference.conf. */
public record SocketSettings(
    String defaultMapping,
    int maxOutboxFrames,
    long maxOutboxBytes,
    int downlinkWindow,
    long maxPushBytes,
    Duration downlinkRetry,
    int snapshotEvery,
    Duration askTimeout,
    Duration sleepAfter) {

  public SocketSettings {
    if (maxPushBytes > 192 * 1024) {
      throw new IllegalArgumentException("berth.socket.max-push-bytes must be at most 192 KiB: a Push "
          + "crosses the network in one Artery message");
    }
  }

  /** Whether quiet attached sockets sleep ({@code sleep-after} is not {@code off}). */
  public boolean sleeps() {
    return !sleepAfter.isZero();
  }

  public static SocketSettings fromConfig(Config config) {
    Config c = config.getConfig("berth.socket");
    if (config.hasPath("berth.connection")) {
      // The section's former name (docs/packages.md#vocabulary): what a deployment set there still counts.
      c = config.getConfig("berth.connection").withFallback(c);
    }
    return new SocketSettings(
        c.getString("default-mapping"),
        c.getInt("max-outbox-frames"),
        c.getBytes("max-outbox-bytes"),
        c.getInt("downlink-window"),
        c.getBytes("max-push-bytes"),
        c.getDuration("downlink-retry"),
        c.getInt("snapshot-every"),
        c.getDuration("ask-timeout"),
        c.getString("sleep-after").equals("off") ? Duration.ZERO : c.getDuration("sleep-after"));
  }
}
