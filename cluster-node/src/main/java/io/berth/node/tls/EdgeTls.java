package io.berth.node.tls;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The edge's server-side TLS (docs/tls.md): the node's key and certificate, the CAs whose device
 * certificates it accepts, and the protocol settings, as a Netty {@link SslContext} from which each
 * connection gets its {@link SslHandler}. The files are read again when they change, without a
 * restart: a connection's handshake uses the context current at its start, so connections already
 * open keep theirs, and files that cannot be used leave the previous context in place.
 *
 * <p>Client-initiated renegotiation is refused. TLS 1.3 has none; BoringSSL never renegotiates as
 * a server; the JDK's TLS does unless {@value #REJECT_CLIENT_RENEGOTIATION} is true, which loading
 * this class sets when nothing set it before (docs/tls.md#renegotiation).
 */
public final class EdgeTls implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(EdgeTls.class);

  static final String REJECT_CLIENT_RENEGOTIATION = "jdk.tls.rejectClientInitiatedRenegotiation";

  static {
    rejectClientRenegotiation();
  }

  /**
   * Sets {@value #REJECT_CLIENT_RENEGOTIATION} unless something set it before. The JDK reads it
   * once, when its server handshake code first loads: so every class of this package that makes
   * a JDK server engine calls this before its first handshake (ClusterTls's, on Artery's port, can
   * come before the edge's).
   */
  static void rejectClientRenegotiation() {
    if (System.getProperty(REJECT_CLIENT_RENEGOTIATION) == null) {
      System.setProperty(REJECT_CLIENT_RENEGOTIATION, "true");
    }
  }

  /** A certificate this close to its end is warned about at each load. */
  static final Duration EXPIRY_WARNING = Duration.ofDays(30);

  /** What {@link #reloadIfChanged} did. */
  public enum Reload {
    /** The files are those in use. */
    UNCHANGED,
    /** New handshakes use the new files. */
    RELOADED,
    /**
     * The files differ from those in use but cannot be used: the context in use stays. The error is
     * logged the first time; files that stay broken fail quietly until they change again.
     */
    FAILED
  }

  private final EdgeTlsSettings settings;
  private final long handshakeTimeoutMillis;
  private final DenyList denyList;
  private final SslProvider sslProvider;
  private final FileWatch watch;
  /** The context new handshakes use; replaced whole by a reload. */
  private volatile Loaded current;
  /** The error last logged by a reload, so that files left broken are reported once. Guarded by this. */
  private String lastFailure;

  /** A context and what it was built from. */
  private record Loaded(SslContext context, KeyAndChain identity, byte[] digest) {}

  private EdgeTls(EdgeTlsSettings settings, Duration handshakeTimeout, DenyList denyList, SslProvider sslProvider) {
    if (handshakeTimeout.isNegative()) {
      throw new IllegalArgumentException("the TLS handshake timeout cannot be negative, got " + handshakeTimeout);
    }
    this.settings = settings;
    this.handshakeTimeoutMillis = handshakeTimeout.toMillis();
    this.denyList = denyList;
    this.sslProvider = sslProvider;
    this.current = load(Material.read(settings));
    this.watch = new FileWatch(settings.reloadCheckInterval(), "berth-edge-tls-reload", this::reloadIfChanged, log,
        "Edge TLS");
  }

  /**
   * Reads the files, checks them and builds the context; from then on, checks them every
   * {@code reload-check-interval}. Any problem is an {@link IllegalArgumentException} that names the
   * setting and the file.
   *
   * @param handshakeTimeout a connection that has not completed its TLS handshake within this time
   *     is closed ({@code berth.edge.handshake-timeout}); zero leaves the bound to the caller (an
   *     edge that times the PROXY header and the handshake together)
   * @param denyList certificates refused in the handshake although their CA is trusted
   */
  public static EdgeTls start(EdgeTlsSettings settings, Duration handshakeTimeout, DenyList denyList) {
    if (!settings.enabled()) {
      throw new IllegalArgumentException(EdgeTlsSettings.PREFIX + "enabled is off: the edge serves plain TCP");
    }
    EdgeTls tls = new EdgeTls(settings, handshakeTimeout, denyList, chooseProvider(settings.provider()));
    if (tls.sslProvider == SslProvider.JDK && !Boolean.getBoolean(REJECT_CLIENT_RENEGOTIATION)) {
      log.warn("Edge TLS: {} is not true, so the JDK's TLS accepts TLS 1.2 renegotiation a client asks for",
          REJECT_CLIENT_RENEGOTIATION);
    }
    log.info("Edge TLS with {}: protocols {}, client certificates {}{}, {}; {}",
        tls.providerDescription(), String.join(", ", settings.protocols()),
        EdgeTlsSettings.configValue(settings.clientAuth()),
        settings.clientAuth() == ClientAuth.NONE ? "" : " (device id from " + settings.identity().configValue() + ")",
        describe(tls.certificate()),
        settings.reloadCheckInterval().isZero() ? "files not checked for changes"
            : "files checked for changes every " + settings.reloadCheckInterval().toMillis() + " ms");
    return tls;
  }

  /** The TLS implementation in use: {@code openssl} (BoringSSL) or {@code jdk}. */
  public String provider() {
    return sslProvider == SslProvider.JDK ? "jdk" : "openssl";
  }

  public EdgeTlsSettings settings() {
    return settings;
  }

  /** The certificate new handshakes present. */
  public X509Certificate certificate() {
    return current.identity().certificate();
  }

  /**
   * A handler for one new connection, from the current context, with the handshake timeout set
   * (none when it is zero).
   */
  public SslHandler newHandler(ByteBufAllocator allocator) {
    SslHandler handler = current.context().newHandler(allocator);
    handler.setHandshakeTimeoutMillis(handshakeTimeoutMillis);
    return handler;
  }

  /**
   * Reads the files again and, if their content changed, builds a new context for the handshakes
   * to come. Called every {@code reload-check-interval} by a thread of its own; callable any time.
   */
  public synchronized Reload reloadIfChanged() {
    Material material;
    try {
      material = Material.read(settings);
    } catch (IllegalArgumentException e) {
      return failed(e.getMessage());
    }
    if (Arrays.equals(material.digest(), current.digest())) {
      lastFailure = null;
      return Reload.UNCHANGED;
    }
    Loaded next;
    try {
      next = load(material);
    } catch (IllegalArgumentException e) {
      return failed(e.getMessage());
    }
    current = next;
    lastFailure = null;
    log.info("Edge TLS reloaded: new handshakes present {}", describe(next.identity().certificate()));
    return Reload.RELOADED;
  }

  /** Stops checking the files; connections and their handlers are not affected. */
  @Override
  public void close() {
    watch.close();
  }

  private Reload failed(String message) {
    if (message.equals(lastFailure)) {
      return Reload.FAILED;
    }
    lastFailure = message;
    log.error("Edge TLS: the changed files cannot be used, new handshakes keep presenting {}: {}",
        describe(certificate()), message);
    return Reload.FAILED;
  }

  private Loaded load(Material material) {
    KeyAndChain identity = material.identity(settings);
    warnIfExpiring(identity.certificate());
    SslContextBuilder builder = SslContextBuilder.forServer(identity.privateKey(), identity.chain())
        .sslProvider(sslProvider)
        .protocols(settings.protocols())
        .clientAuth(settings.clientAuth());
    if (!settings.ciphers().isEmpty()) {
      builder.ciphers(settings.ciphers(), SupportedCipherSuiteFilter.INSTANCE);
    }
    if (settings.clientAuth() != ClientAuth.NONE) {
      Path trust = settings.trust().orElseThrow();
      List<X509Certificate> cas = Pem.certificates(material.trust(), EdgeTlsSettings.PREFIX + "trust " + trust);
      builder.trustManager(new DenyingTrustManager(cas, denyList));
    }
    SslContext context;
    try {
      context = builder.build();
    } catch (SSLException | RuntimeException e) {
      throw new IllegalArgumentException("cannot build the edge's TLS context with " + provider() + ": "
          + e.getMessage(), e);
    }
    requireCiphers(context);
    return new Loaded(context, identity, material.digest());
  }

  private void requireCiphers(SslContext context) {
    if (settings.ciphers().isEmpty()) {
      return;
    }
    List<String> unsupported = new ArrayList<>(settings.ciphers());
    unsupported.removeAll(context.cipherSuites());
    if (unsupported.size() == settings.ciphers().size()) {
      throw new IllegalArgumentException(EdgeTlsSettings.PREFIX + "ciphers: " + provider()
          + " supports none of " + settings.ciphers());
    }
    if (!unsupported.isEmpty()) {
      log.warn("Edge TLS: {} does not support ciphers {}; using {}", provider(), unsupported, context.cipherSuites());
    }
  }

  private static SslProvider chooseProvider(EdgeTlsSettings.Provider setting) {
    return switch (setting) {
      case JDK -> SslProvider.JDK;
      case AUTO -> OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK;
      case OPENSSL -> {
        if (!OpenSsl.isAvailable()) {
          throw new IllegalArgumentException(EdgeTlsSettings.PREFIX + "provider = openssl, but BoringSSL does not "
              + "load on this machine (" + OpenSsl.unavailabilityCause() + "); use auto or jdk");
        }
        yield SslProvider.OPENSSL;
      }
    };
  }

  private String providerDescription() {
    return sslProvider == SslProvider.JDK
        ? "the JDK's TLS (" + System.getProperty("java.vendor") + " " + System.getProperty("java.version") + ")"
        : OpenSsl.versionString() + " (openssl)";
  }

  private static void warnIfExpiring(X509Certificate certificate) {
    Instant end = certificate.getNotAfter().toInstant();
    if (end.isBefore(Instant.now())) {
      log.warn("Edge TLS: the node's certificate {} expired at {}: devices will refuse it", describe(certificate), end);
    } else if (end.isBefore(Instant.now().plus(EXPIRY_WARNING))) {
      log.warn("Edge TLS: the node's certificate {} expires at {}", describe(certificate), end);
    }
  }

  private static String describe(X509Certificate certificate) {
    return "certificate " + certificate.getSubjectX500Principal().getName() + " (serial "
        + CertificateIdentity.serial(certificate) + ", valid until " + certificate.getNotAfter().toInstant() + ")";
  }

  /**
   * The bytes of every file the context is built from, read once: what is hashed to notice a
   * change is what is parsed, even if a file is replaced in between.
   */
  private record Material(Map<String, byte[]> files, byte[] digest) {

    static Material read(EdgeTlsSettings settings) {
      Map<String, byte[]> files = new LinkedHashMap<>();
      settings.certificate().ifPresent(p -> files.put("certificate", Pem.read(p, EdgeTlsSettings.PREFIX + "certificate")));
      settings.privateKey().ifPresent(p -> files.put("private-key", Pem.read(p, EdgeTlsSettings.PREFIX + "private-key")));
      settings.keyStore().ifPresent(p -> files.put("key-store", Pem.read(p, EdgeTlsSettings.PREFIX + "key-store")));
      if (settings.clientAuth() != ClientAuth.NONE) {
        settings.trust().ifPresent(p -> files.put("trust", Pem.read(p, EdgeTlsSettings.PREFIX + "trust")));
      }
      return new Material(Collections.unmodifiableMap(files), digest(files));
    }

    byte[] trust() {
      return files.get("trust");
    }

    KeyAndChain identity(EdgeTlsSettings settings) {
      if (settings.keyStore().isPresent()) {
        return KeyAndChain.fromPkcs12(files.get("key-store"), settings.keyStorePassword().toCharArray(),
            EdgeTlsSettings.PREFIX + "key-store " + settings.keyStore().orElseThrow(),
            EdgeTlsSettings.PREFIX + "key-store-password");
      }
      return KeyAndChain.fromPem(files.get("certificate"), files.get("private-key"),
          EdgeTlsSettings.PREFIX + "certificate " + settings.certificate().orElseThrow(),
          EdgeTlsSettings.PREFIX + "private-key " + settings.privateKey().orElseThrow());
    }

    private static byte[] digest(Map<String, byte[]> files) {
      try {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (Map.Entry<String, byte[]> f : files.entrySet()) {
          sha.update(f.getKey().getBytes(StandardCharsets.US_ASCII));
          sha.update(ByteBuffer.allocate(Integer.BYTES).putInt(f.getValue().length).array());
          sha.update(f.getValue());
        }
        return sha.digest();
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
