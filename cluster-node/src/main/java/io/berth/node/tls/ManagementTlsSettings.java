package io.berth.node.tls;

import com.typesafe.config.Config;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * HTTPS on the management port, {@code berth.management.tls.*} in reference.conf
 * (docs/operator-access.md#https): the node's certificate as PEM files or a PKCS#12 key store, as
 * on the device port. The files are required only when it is enabled.
 */
public record ManagementTlsSettings(
    boolean enabled,
    Optional<Path> certificate,
    Optional<Path> privateKey,
    Optional<Path> keyStore,
    String keyStorePassword,
    Duration reloadCheckInterval) {

  static final String PREFIX = "berth.management.tls.";

  public ManagementTlsSettings {
    if (reloadCheckInterval.isNegative()) {
      throw new IllegalArgumentException(PREFIX + "reload-check-interval cannot be negative (\"off\" turns it off)");
    }
    boolean pem = certificate.isPresent() || privateKey.isPresent();
    if (enabled && pem && keyStore.isPresent()) {
      throw new IllegalArgumentException(PREFIX + "key-store and " + PREFIX + "certificate/private-key are both set: "
          + "give the node's key and certificate one way, PEM files or a PKCS#12 key store");
    }
    if (enabled && !pem && keyStore.isEmpty()) {
      throw new IllegalArgumentException("HTTPS on the management port is on (" + PREFIX + "enabled) but the node has"
          + " no certificate for it: set " + PREFIX + "certificate and private-key (BERTH_MANAGEMENT_TLS_CERTIFICATE,"
          + " _PRIVATE_KEY) or key-store (BERTH_MANAGEMENT_TLS_KEY_STORE); io.berth.node.tls.CertCli init makes them"
          + " for a local CA. BERTH_MANAGEMENT_TLS=false serves plain HTTP, for a port that only a TLS-terminating"
          + " proxy reaches");
    }
    if (enabled && pem && (certificate.isEmpty() || privateKey.isEmpty())) {
      throw new IllegalArgumentException(PREFIX + "certificate and " + PREFIX + "private-key go together: "
          + (certificate.isEmpty() ? "certificate" : "private-key") + " is not set");
    }
  }

  /** Everything but the key store's password. */
  @Override
  public String toString() {
    return "ManagementTlsSettings[enabled=" + enabled + ", certificate=" + certificate + ", privateKey=" + privateKey
        + ", keyStore=" + keyStore + ", keyStorePassword=" + (keyStorePassword.isEmpty() ? "" : "***")
        + ", reloadCheckInterval=" + reloadCheckInterval + "]";
  }

  public static ManagementTlsSettings fromConfig(Config config) {
    Config t = config.getConfig("berth.management.tls");
    return new ManagementTlsSettings(
        t.getBoolean("enabled"),
        EdgeTlsSettings.path(t, "certificate"),
        EdgeTlsSettings.path(t, "private-key"),
        EdgeTlsSettings.path(t, "key-store"),
        t.getString("key-store-password"),
        EdgeTlsSettings.reloadCheckInterval(t));
  }
}
