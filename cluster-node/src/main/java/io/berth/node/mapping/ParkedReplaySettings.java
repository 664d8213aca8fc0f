package io.berth.node.mapping;

import com.typesafe.config.Config;
import java.time.Duration;

/** Settings of operator replays of parked batches, {@code berth.parked.*} in reference.conf. */
public record ParkedReplaySettings(Duration replyTimeout) {

  public static ParkedReplaySettings fromConfig(Config config) {
    Config c = config.getConfig("berth.parked");
    return new ParkedReplaySettings(c.getDuration("reply-timeout"));
  }
}
