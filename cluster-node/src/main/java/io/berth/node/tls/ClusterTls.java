package io.berth.node.tls;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSession;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.remote.artery.tcp.SSLEngineProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;

/**
 * TLS between the nodes: Artery's {@code tls-tcp} transport with this class as its engine
 * provider (docs/cluster-tls.md). Both ends present a certificate and check the other's (mutual
 * authentication, TLS 1.3): a peer is a node when its chain leads to a CA in {@code
 * berth.cluster.tls.trust} and its certificate names it one, with a subject alternative name
 * {@code urn:berth:node:NAME} ({@link LocalCa#NODE_URI_PREFIX}). The second check is what keeps a
 * device's certificate, issued by the same CA for the device port, from being a way into the
 * cluster. A process without such a certificate cannot join, send to an actor or receive from one.
 *
 * <p>The files are read again every {@code reload-check-interval}; changed files serve new
 * connections (open ones keep theirs), so a node's certificate, or the CA (old and new listed
 * together in the trust file for a while), can be rotated node by node without a restart.
 *
 * <p>Pekko's own providers do not fit: {@code ConfigSSLEngineProvider} reads key stores once,
 * and {@code RotatingKeysSSLEngineProvider} reads only RSA keys (pekko-pki 1.2 loads PKCS#8 as
 * RSA), where Berth's local CA issues EC P-256 keys.
 */
public final class ClusterTls implements SSLEngineProvider, AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ClusterTls.class);
  /** Both ends are Berth nodes: nothing older is needed. */
  private static final String[] PROTOCOLS = {"TLSv1.3"};
  private static final char[] NO_PASSWORD = new char[0];
  /** The subject alternative name type of a URI. */
  private static final int URI = 6;

  static {
    // The nodes speak TLS 1.3, which has no renegotiation, but the JDK reads this setting once
    // for every server engine of the process: the edge's, on TLS 1.2, made later, relies on it.
    EdgeTls.rejectClientRenegotiation();
  }

  private final ClusterTlsSettings settings;
  private final FileWatch watch;
  /** The context new connections use; replaced whole by a reload. */
  private volatile Loaded current;
  /** The error last logged by a reload, so that files left broken are reported once. Guarded by this. */
  private String lastFailure;

  private record Loaded(SSLContext context, X509Certificate certificate, byte[] digest) {}

  /** Made by Artery ({@code pekko.remote.artery.ssl.ssl-engine-provider}) when the node starts. */
  public ClusterTls(ActorSystem system) {
    this(ClusterTlsSettings.fromConfig(system.settings().config()));
    system.registerOnTermination(this::close);
  }

  ClusterTls(ClusterTlsSettings settings) {
    if (!settings.enabled()) {
      throw new IllegalArgumentException(ClusterTlsSettings.PREFIX + "enabled is off: the nodes talk plain TCP");
    }
    this.settings = settings;
    this.current = load(read());
    log.info("Cluster TLS: this node presents {}; peers must be nodes of the CAs in {}",
        describe(current.certificate()), settings.trust().orElseThrow());
    this.watch = new FileWatch(settings.reloadCheckInterval(), "berth-cluster-tls-reload", this::reloadIfChanged, log,
        "Cluster TLS");
  }

  @Override
  public SSLEngine createServerSSLEngine(String hostname, int port) {
    SSLEngine engine = current.context().createSSLEngine();
    engine.setUseClientMode(false);
    engine.setNeedClientAuth(true);
    engine.setEnabledProtocols(PROTOCOLS);
    return engine;
  }

  @Override
  public SSLEngine createClientSSLEngine(String hostname, int port) {
    SSLEngine engine = current.context().createSSLEngine(hostname, port);
    engine.setUseClientMode(true);
    engine.setEnabledProtocols(PROTOCOLS);
    return engine;
  }

  /** The trust manager checked the peer during the handshake ({@link NodeTrustManager}). */
  @Override
  public Option<Throwable> verifyClientSession(String hostname, SSLSession session) {
    return Option.empty();
  }

  @Override
  public Option<Throwable> verifyServerSession(String hostname, SSLSession session) {
    return Option.empty();
  }

  /** The certificate this node presents to new connections. */
  public X509Certificate certificate() {
    return current.certificate();
  }

  /**
   * Reads the files again and, if their content changed, builds a new context for the connections
   * to come. Called every {@code reload-check-interval}; callable any time.
   *
   * @return whether a new context is in use
   */
  public synchronized boolean reloadIfChanged() {
    Loaded next;
    try {
      Material material = read();
      if (Arrays.equals(material.digest(), current.digest())) {
        lastFailure = null;
        return false;
      }
      next = load(material);
    } catch (IllegalArgumentException e) {
      if (!e.getMessage().equals(lastFailure)) {
        lastFailure = e.getMessage();
        log.error("Cluster TLS: the changed files cannot be used, new connections keep presenting {}: {}",
            describe(current.certificate()), e.getMessage());
      }
      return false;
    }
    current = next;
    lastFailure = null;
    log.info("Cluster TLS reloaded: new connections present {}", describe(next.certificate()));
    return true;
  }

  @Override
  public void close() {
    watch.close();
  }

  /** The three files' content, and a digest that tells whether any changed. */
  private record Material(byte[] certificate, byte[] privateKey, byte[] trust, byte[] digest) {}

  private Material read() {
    List<Path> files = settings.files();
    byte[] certificate = Pem.read(files.get(0), ClusterTlsSettings.PREFIX + "certificate");
    byte[] key = Pem.read(files.get(1), ClusterTlsSettings.PREFIX + "private-key");
    byte[] trust = Pem.read(files.get(2), ClusterTlsSettings.PREFIX + "trust");
    return new Material(certificate, key, trust, digest(certificate, key, trust));
  }

  private Loaded load(Material material) {
    String certificateFile = ClusterTlsSettings.PREFIX + "certificate " + settings.certificate().orElseThrow();
    String keyFile = ClusterTlsSettings.PREFIX + "private-key " + settings.privateKey().orElseThrow();
    List<X509Certificate> chain = Pem.certificates(material.certificate(), certificateFile);
    PrivateKey key = Pem.privateKey(material.privateKey(), keyFile);
    KeyAndChain identity;
    try {
      identity = new KeyAndChain(key, chain);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(keyFile + ": " + e.getMessage(), e);
    }
    if (nodeName(identity.certificate()).isEmpty()) {
      throw new IllegalArgumentException(certificateFile + ": " + describe(identity.certificate())
          + " does not name a node (no subject alternative name " + LocalCa.NODE_URI_PREFIX + "NAME), so the other "
          + "nodes would refuse it; issue it with io.berth.node.tls.CertCli init, or add that name");
    }
    List<X509Certificate> cas = Pem.certificates(material.trust(),
        ClusterTlsSettings.PREFIX + "trust " + settings.trust().orElseThrow());
    try {
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      keys.setKeyEntry("node", identity.privateKey(), NO_PASSWORD, chain.toArray(X509Certificate[]::new));
      KeyManagerFactory keyManagers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      keyManagers.init(keys, NO_PASSWORD);
      SSLContext context = SSLContext.getInstance("TLSv1.3");
      context.init(keyManagers.getKeyManagers(), new NodeTrustManager[] {new NodeTrustManager(cas)},
          new SecureRandom());
      return new Loaded(context, identity.certificate(), material.digest());
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("cannot build the TLS context between the nodes: " + e.getMessage(), e);
    }
  }

  /** The node a certificate names ({@code urn:berth:node:NAME}), if it names one. */
  static Optional<String> nodeName(X509Certificate certificate) {
    return CertificateIdentity.alternativeNames(certificate, URI).stream()
        .filter(uri -> uri.startsWith(LocalCa.NODE_URI_PREFIX) && uri.length() > LocalCa.NODE_URI_PREFIX.length())
        .map(uri -> uri.substring(LocalCa.NODE_URI_PREFIX.length()))
        .findFirst();
  }

  private static String describe(X509Certificate certificate) {
    return "'" + certificate.getSubjectX500Principal().getName() + "' (valid until " + certificate.getNotAfter()
        .toInstant() + ")";
  }

  private static byte[] digest(byte[]... files) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      for (byte[] f : files) {
        sha.update(ByteBuffer.allocate(Integer.BYTES).putInt(f.length).array());
        sha.update(f);
      }
      return sha.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The JDK's check of the peer's chain, then that its certificate names a node. */
  static final class NodeTrustManager extends CheckingTrustManager {

    NodeTrustManager(List<X509Certificate> trustedCas) {
      super(trustedCas, ClusterTlsSettings.PREFIX + "trust");
    }

    @Override
    void checkClient(X509Certificate[] chain) throws CertificateException {
      requireNode(chain);
    }

    @Override
    void checkServer(X509Certificate[] chain) throws CertificateException {
      requireNode(chain);
    }

    private static void requireNode(X509Certificate[] chain) throws CertificateException {
      if (nodeName(chain[0]).isEmpty()) {
        throw new CertificateException("the peer's certificate '" + chain[0].getSubjectX500Principal().getName()
            + "' is trusted but names no node (" + LocalCa.NODE_URI_PREFIX + "NAME): not a member of this cluster");
      }
    }
  }
}
