package io.berth.node.ops;

import com.typesafe.config.Config;

/**
 * {@code berth.cluster.bootstrap} in reference.conf (docs/cluster.md#bootstrap-on-kubernetes): a
 * node finds its cluster by Pekko Management's cluster bootstrap, from the contact points Pekko
 * Discovery lists, instead of joining seed nodes. The management port then answers the probes of
 * {@code GET /bootstrap/seed-nodes} without a key (docs/operator-access.md#the-gate).
 *
 * @param enabled whether the node bootstraps; with seed nodes set as well it does not start
 */
public record BootstrapSettings(boolean enabled) {

  static final String KEY = "berth.cluster.bootstrap.enabled";

  public static BootstrapSettings fromConfig(Config config) {
    BootstrapSettings settings = new BootstrapSettings(config.getBoolean(KEY));
    if (settings.enabled() && !config.getStringList("pekko.cluster.seed-nodes").isEmpty()) {
      throw new IllegalArgumentException("cluster bootstrap is on (" + KEY + ", BERTH_BOOTSTRAP) and seed nodes "
          + "are set too (pekko.cluster.seed-nodes, BERTH_SEED_NODES): a node either joins its seeds or "
          + "bootstraps, so unset one of them");
    }
    return settings;
  }
}
