package io.berth.node.lease;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * {@code berth.cluster.lease} in reference.conf (docs/failover.md).
 *
 * @param ttl how long a renewal keeps the lease valid
 * @param renewInterval how often the node renews; well under {@code ttl}, so that one slow
 *     renewal does not let it lapse
 * @param checkInterval how often the lease of each unreachable member is looked at
 * @param fenceWait how long a shard's allocation waits for a downed member's lease to be revoked
 *     before it goes on without ({@link FencedAllocation})
 */
public record LeaseSettings(boolean enabled, Duration ttl, Duration renewInterval, Duration checkInterval,
                            Duration fenceWait) {

  public LeaseSettings {
    if (enabled && renewInterval.multipliedBy(2).compareTo(ttl) > 0) {
      throw new IllegalArgumentException("berth.cluster.lease.renew-interval (" + renewInterval + ") must be at most "
          + "half of berth.cluster.lease.ttl (" + ttl + "): a lease renewed less often lapses on one slow renewal");
    }
    if (enabled && (checkInterval.isZero() || checkInterval.isNegative())) {
      throw new IllegalArgumentException("berth.cluster.lease.check-interval must be positive");
    }
    if (enabled && (fenceWait.isZero() || fenceWait.isNegative())) {
      throw new IllegalArgumentException("berth.cluster.lease.fence-wait must be positive");
    }
  }

  public static LeaseSettings fromConfig(Config config) {
    Config c = config.getConfig("berth.cluster.lease");
    return new LeaseSettings(c.getBoolean("enabled"), c.getDuration("ttl"), c.getDuration("renew-interval"),
        c.getDuration("check-interval"), c.getDuration("fence-wait"));
  }
}
