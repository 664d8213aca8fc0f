package io.berth.node.balance;

import com.typesafe.config.Config;
import java.time.Duration;

/** Settings of load measurement and migration, {@code berth.migration.*} in reference.conf. */
public record MigrationSettings(
    boolean enabled,
    double thresholdFramesPerSecond,
    double thresholdBytesPerSecond,
    Duration rateWindow,
    Duration sustain,
    Duration cooldown,
    double nodeCapacity,
    Duration checkInterval,
    Duration decisionInterval,
    double minGain,
    int maxMovesPerCheck,
    Duration idleGrace) {

  public MigrationSettings {
    if (minGain < 0 || minGain >= 1) {
      throw new IllegalArgumentException("berth.migration.min-gain must be in [0, 1)");
    }
    if (nodeCapacity <= 0) {
      throw new IllegalArgumentException("berth.migration.node-capacity must be positive");
    }
  }

  public static MigrationSettings fromConfig(Config config) {
    Config m = config.getConfig("berth.migration");
    return new MigrationSettings(
        m.getBoolean("enabled"),
        m.getDouble("socket-threshold.frames-per-second"),
        m.getBytes("socket-threshold.bytes-per-second"),
        m.getDuration("rate-window"),
        m.getDuration("sustain"),
        m.getDuration("cooldown"),
        m.getDouble("node-capacity"),
        m.getDuration("check-interval"),
        m.getDuration("decision-interval"),
        m.getDouble("min-gain"),
        m.getInt("max-moves-per-check"),
        m.getDuration("idle-grace"));
  }

  boolean isHot(double framesPerSecond, double bytesPerSecond) {
    return framesPerSecond > thresholdFramesPerSecond || bytesPerSecond > thresholdBytesPerSecond;
  }
}
