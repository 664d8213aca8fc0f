package io.berth.node.tls;

import com.typesafe.config.Config;
import io.netty.handler.ssl.ClientAuth;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Settings of the edge's TLS, {@code berth.edge.tls.*} in reference.conf (docs/tls.md). The
 * combination of files is checked only when TLS is enabled, so a disabled section may be left
 * half filled in.
 */
public record EdgeTlsSettings(
    boolean enabled,
    Optional<Path> certificate,
    Optional<Path> privateKey,
    Optional<Path> keyStore,
    String keyStorePassword,
    Optional<Path> trust,
    ClientAuth clientAuth,
    CertificateIdentity.Source identity,
    List<String> protocols,
    List<String> ciphers,
    Provider provider,
    Duration reloadCheckInterval) {

  static final String PREFIX = "berth.edge.tls.";
  /** Older protocols have known weaknesses; no device built today needs them. */
  static final Set<String> SUPPORTED_PROTOCOLS = Set.of("TLSv1.3", "TLSv1.2");

  /** Which TLS implementation serves the edge. */
  public enum Provider {
    /** BoringSSL when its native library loads on this machine, the JDK's otherwise. */
    AUTO,
    /** BoringSSL, or the node does not start. */
    OPENSSL,
    /** The JDK's own TLS. */
    JDK
  }

  public EdgeTlsSettings {
    protocols = List.copyOf(protocols);
    ciphers = List.copyOf(ciphers);
    if (protocols.isEmpty()) {
      throw new IllegalArgumentException(PREFIX + "protocols cannot be empty: give TLSv1.3, TLSv1.2 or both");
    }
    for (String p : protocols) {
      if (!SUPPORTED_PROTOCOLS.contains(p)) {
        throw new IllegalArgumentException(PREFIX + "protocols may hold TLSv1.3 and TLSv1.2 only, got '" + p + "'");
      }
    }
    if (reloadCheckInterval.isNegative()) {
      throw new IllegalArgumentException(PREFIX + "reload-check-interval cannot be negative (\"off\" turns it off)");
    }
    if (enabled) {
      requireConsistentFiles(certificate, privateKey, keyStore, trust, clientAuth);
    }
  }

  /** Everything but the key store's password. */
  @Override
  public String toString() {
    return "EdgeTlsSettings[enabled=" + enabled + ", certificate=" + certificate + ", privateKey=" + privateKey
        + ", keyStore=" + keyStore + ", keyStorePassword=" + (keyStorePassword.isEmpty() ? "" : "***")
        + ", trust=" + trust + ", clientAuth=" + clientAuth + ", identity=" + identity + ", protocols=" + protocols
        + ", ciphers=" + ciphers + ", provider=" + provider + ", reloadCheckInterval=" + reloadCheckInterval + "]";
  }

  public static EdgeTlsSettings fromConfig(Config config) {
    Config t = config.getConfig("berth.edge.tls");
    return new EdgeTlsSettings(
        t.getBoolean("enabled"),
        path(t, "certificate"),
        path(t, "private-key"),
        path(t, "key-store"),
        t.getString("key-store-password"),
        path(t, "trust"),
        clientAuth(t.getString("client-auth")),
        CertificateIdentity.Source.fromConfig(t.getString("identity"), PREFIX + "identity"),
        t.getStringList("protocols"),
        t.getStringList("ciphers"),
        provider(t.getString("provider")),
        reloadCheckInterval(t));
  }

  /** {@code reload-check-interval} of a TLS section: a duration, or "off" (zero: never). */
  static Duration reloadCheckInterval(Config t) {
    return t.getString("reload-check-interval").equals("off") ? Duration.ZERO : t.getDuration("reload-check-interval");
  }

  /** The files that hold the node's key and chain and the trusted CAs: what a reload watches. */
  List<Path> files() {
    return Stream.of(certificate, privateKey, keyStore, trust)
        .flatMap(Optional::stream).toList();
  }

  private static void requireConsistentFiles(Optional<Path> certificate, Optional<Path> privateKey,
      Optional<Path> keyStore, Optional<Path> trust, ClientAuth clientAuth) {
    boolean pem = certificate.isPresent() || privateKey.isPresent();
    if (pem && keyStore.isPresent()) {
      throw new IllegalArgumentException(PREFIX + "key-store and " + PREFIX + "certificate/private-key are both "
          + "set: give the node's key and certificate one way, PEM files or a PKCS#12 key store");
    }
    if (!pem && keyStore.isEmpty()) {
      throw new IllegalArgumentException("TLS is enabled (" + PREFIX + "enabled) but the node has no certificate: "
          + "set " + PREFIX + "certificate and private-key (PEM) or " + PREFIX + "key-store (PKCS#12); "
          + "io.berth.node.tls.CertCli makes them for a local CA");
    }
    if (pem && (certificate.isEmpty() || privateKey.isEmpty())) {
      throw new IllegalArgumentException(PREFIX + "certificate and " + PREFIX + "private-key go together: "
          + (certificate.isEmpty() ? "certificate" : "private-key") + " is not set");
    }
    if (clientAuth != ClientAuth.NONE && trust.isEmpty()) {
      throw new IllegalArgumentException(PREFIX + "client-auth = " + configValue(clientAuth) + " needs "
          + PREFIX + "trust: the PEM file of the CAs that issue device certificates");
    }
  }

  static String configValue(ClientAuth clientAuth) {
    return switch (clientAuth) {
      case NONE -> "none";
      case OPTIONAL -> "optional";
      case REQUIRE -> "required";
    };
  }

  private static ClientAuth clientAuth(String value) {
    return switch (value) {
      case "none" -> ClientAuth.NONE;
      case "optional" -> ClientAuth.OPTIONAL;
      case "required" -> ClientAuth.REQUIRE;
      default -> throw new IllegalArgumentException(PREFIX + "client-auth must be none, optional or required, got '"
          + value + "'");
    };
  }

  private static Provider provider(String value) {
    return switch (value) {
      case "auto" -> Provider.AUTO;
      case "openssl" -> Provider.OPENSSL;
      case "jdk" -> Provider.JDK;
      default -> throw new IllegalArgumentException(PREFIX + "provider must be auto, openssl or jdk, got '"
          + value + "'");
    };
  }

  /** A file setting of a TLS section: empty when blank. */
  static Optional<Path> path(Config t, String key) {
    String value = t.getString(key).strip();
    return value.isEmpty() ? Optional.empty() : Optional.of(Path.of(value));
  }
}
