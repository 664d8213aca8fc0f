package io.berth.node.tls;

import com.typesafe.config.Config;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Settings of TLS between the nodes, {@code berth.cluster.tls.*} in reference.conf
 * (docs/cluster-tls.md). The files are required only when it is enabled.
 */
public record ClusterTlsSettings(
    boolean enabled,
    Optional<Path> certificate,
    Optional<Path> privateKey,
    Optional<Path> trust,
    Duration reloadCheckInterval) {

  static final String PREFIX = "berth.cluster.tls.";

  public ClusterTlsSettings {
    if (reloadCheckInterval.isNegative()) {
      throw new IllegalArgumentException(PREFIX + "reload-check-interval cannot be negative (\"off\" turns it off)");
    }
    if (enabled && (certificate.isEmpty() || privateKey.isEmpty() || trust.isEmpty())) {
      throw new IllegalArgumentException("TLS between the nodes is on (" + PREFIX + "enabled) but "
          + PREFIX + (certificate.isEmpty() ? "certificate" : privateKey.isEmpty() ? "private-key" : "trust")
          + " is not set: give each node its certificate, its key and the CA that issues the nodes' certificates "
          + "(BERTH_CLUSTER_TLS_CERTIFICATE, _PRIVATE_KEY, _TRUST; io.berth.node.tls.CertCli init makes them "
          + "for a local CA), or set BERTH_CLUSTER_TLS=false where nothing but the nodes can reach their "
          + "remoting port");
    }
  }

  public static ClusterTlsSettings fromConfig(Config config) {
    Config t = config.getConfig("berth.cluster.tls");
    return new ClusterTlsSettings(
        t.getBoolean("enabled"),
        EdgeTlsSettings.path(t, "certificate"),
        EdgeTlsSettings.path(t, "private-key"),
        EdgeTlsSettings.path(t, "trust"),
        EdgeTlsSettings.reloadCheckInterval(t));
  }

  /** The files a reload watches. */
  List<Path> files() {
    return List.of(certificate.orElseThrow(), privateKey.orElseThrow(), trust.orElseThrow());
  }
}
