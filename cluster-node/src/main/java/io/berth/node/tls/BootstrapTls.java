package io.berth.node.tls;

import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;

/**
 * The TLS of cluster bootstrap's probes (docs/cluster.md#bootstrap-on-kubernetes): a node asks
 * the other nodes' management ports, over HTTPS, which cluster they are in, and joins what they
 * answer. The answer decides which cluster a node joins, or whether it forms a new one, so it is
 * taken only from a peer that shows a node certificate of this cluster: a chain to a CA of {@code
 * berth.cluster.tls.trust} naming a node ({@code urn:berth:node:NAME}), the check Artery's TLS
 * makes ({@link ClusterTls}). Host names are not checked: contact points are pods' addresses,
 * which no certificate names, and the node name is what identifies a member.
 *
 * <p>The trust file is read for every connection (probes run once a second per contact point,
 * and only until the node has joined), so a rotated CA applies to the next probe.
 */
public final class BootstrapTls {

  private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

  private final Path trust;

  private BootstrapTls(Path trust) {
    this.trust = trust;
  }

  /**
   * The probes' TLS, trusting the CAs of {@code berth.cluster.tls.trust}; fails, saying what to set,
   * when that file is not set or holds no certificate.
   */
  public static BootstrapTls fromSettings(ClusterTlsSettings settings) {
    Path trust = settings.trust().orElseThrow(() -> new IllegalArgumentException("cluster bootstrap probes the "
        + "other nodes' management ports over HTTPS and trusts only node certificates of the CA in "
        + ClusterTlsSettings.PREFIX + "trust, which is not set: set BERTH_CLUSTER_TLS_TRUST (the nodes' CA), "
        + "or serve the management port over plain HTTP (BERTH_MANAGEMENT_TLS=false)"));
    BootstrapTls tls = new BootstrapTls(trust);
    tls.context(); // a file that cannot be read stops the node at start, not at its first probe
    return tls;
  }

  /** A client engine for a probe of {@code host:port}. */
  public SSLEngine newEngine(String host, int port) {
    SSLEngine engine = context().createSSLEngine(host, port);
    engine.setUseClientMode(true);
    engine.setEnabledProtocols(PROTOCOLS);
    return engine;
  }

  private SSLContext context() {
    String setting = ClusterTlsSettings.PREFIX + "trust " + trust;
    List<X509Certificate> cas = Pem.certificates(Pem.read(trust, ClusterTlsSettings.PREFIX + "trust"), setting);
    try {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, new TrustManager[] {new ClusterTls.NodeTrustManager(cas)}, new SecureRandom());
      return context;
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("cannot build the TLS context of bootstrap probes: " + e.getMessage(), e);
    }
  }
}
