package io.berth.node.connection;

import com.typesafe.config.Config;
import java.time.Duration;

/** Settings of socket entities, {@code berth.connection.*} in reference.conf. */
public record ConnectionSettings(
    String defaultMapping,
    int maxOutboxFrames,
    long maxOutboxBytes,
    int downlinkWindow,
    int snapshotEvery,
    Duration askTimeout) {

  public static ConnectionSettings fromConfig(Config config) {
    Config c = config.getConfig("berth.connection");
    return new ConnectionSettings(
        c.getString("default-mapping"),
        c.getInt("max-outbox-frames"),
        c.getBytes("max-outbox-bytes"),
        c.getInt("downlink-window"),
        c.getInt("snapshot-every"),
        c.getDuration("ask-timeout"));
  }
}
