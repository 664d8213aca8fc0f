package io.berth.node.connection;

import com.typesafe.config.Config;
import java.time.Duration;

/** Settings of socket entities, {@code berth.connection.*} in reference.conf. */
public record ConnectionSettings(
    String defaultMapping,
    int maxOutboxFrames,
    long maxOutboxBytes,
    int downlinkWindow,
    long maxPushBytes,
    Duration downlinkRetry,
    int snapshotEvery,
    Duration askTimeout,
    Duration sleepAfter) {

  public ConnectionSettings {
    if (maxPushBytes > 192 * 1024) {
      throw new IllegalArgumentException("berth.connection.max-push-bytes must be at most 192 KiB: a Push "
          + "crosses the network in one Artery message");
    }
  }

  /** Whether quiet attached sockets sleep ({@code sleep-after} is not {@code off}). */
  public boolean sleeps() {
    return !sleepAfter.isZero();
  }

  public static ConnectionSettings fromConfig(Config config) {
    Config c = config.getConfig("berth.connection");
    return new ConnectionSettings(
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
