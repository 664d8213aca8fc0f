package io.berth.node.tls;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * HTTPS on the management port (docs/operator-access.md#https): the JDK's TLS (operator calls are
 * few; BoringSSL's speed is for the device port), TLS 1.3 and 1.2, server authentication only
 * (operators authenticate with keys). The files are read again every {@code
 * reload-check-interval}; changed files serve new connections, open ones keep theirs, and files
 * that cannot be used are logged once while the previous ones keep serving.
 */
public final class ManagementTls implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ManagementTls.class);
  private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};
  private static final char[] NO_PASSWORD = new char[0];

  private final ManagementTlsSettings settings;
  private final FileWatch watch;
  private volatile Loaded current;
  /** Guarded by this. */
  private String lastFailure;

  private record Loaded(SSLContext context, X509Certificate certificate, byte[] digest) {}

  private record Material(byte[] first, byte[] second, byte[] digest) {}

  public ManagementTls(ManagementTlsSettings settings) {
    if (!settings.enabled()) {
      throw new IllegalArgumentException(ManagementTlsSettings.PREFIX + "enabled is off");
    }
    this.settings = settings;
    this.current = load(read());
    log.info("Management port TLS: presenting {}", describe(current.certificate()));
    this.watch = new FileWatch(settings.reloadCheckInterval(), "berth-management-tls-reload", this::reloadIfChanged,
        log, "Management port TLS");
  }

  /** A server engine of the context in use now: Pekko HTTP asks for one per connection. */
  public SSLEngine newEngine() {
    SSLEngine engine = current.context().createSSLEngine();
    engine.setUseClientMode(false);
    engine.setEnabledProtocols(PROTOCOLS);
    return engine;
  }

  public X509Certificate certificate() {
    return current.certificate();
  }

  /** Reads the files again and, if they changed, serves new connections from them. */
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
        log.error("Management port TLS: the changed files cannot be used, new connections keep {}: {}",
            describe(current.certificate()), e.getMessage());
      }
      return false;
    }
    current = next;
    lastFailure = null;
    log.info("Management port TLS reloaded: new connections get {}", describe(next.certificate()));
    return true;
  }

  @Override
  public void close() {
    watch.close();
  }

  private Material read() {
    String prefix = ManagementTlsSettings.PREFIX;
    byte[] first;
    byte[] second;
    if (settings.keyStore().isPresent()) {
      first = Pem.read(settings.keyStore().get(), prefix + "key-store");
      second = new byte[0];
    } else {
      first = Pem.read(settings.certificate().orElseThrow(), prefix + "certificate");
      second = Pem.read(settings.privateKey().orElseThrow(), prefix + "private-key");
    }
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(first);
      sha.update((byte) 0);
      sha.update(second);
      return new Material(first, second, sha.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private Loaded load(Material material) {
    String prefix = ManagementTlsSettings.PREFIX;
    KeyAndChain identity = settings.keyStore().isPresent()
        ? KeyAndChain.fromPkcs12(material.first(), settings.keyStorePassword().toCharArray(),
            prefix + "key-store " + settings.keyStore().get(), prefix + "key-store-password")
        : KeyAndChain.fromPem(material.first(), material.second(),
            prefix + "certificate " + settings.certificate().get(), prefix + "private-key " + settings.privateKey().get());
    try {
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      keys.setKeyEntry("management", identity.privateKey(), NO_PASSWORD,
          identity.chain().toArray(X509Certificate[]::new));
      KeyManagerFactory keyManagers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      keyManagers.init(keys, NO_PASSWORD);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(keyManagers.getKeyManagers(), null, new SecureRandom());
      return new Loaded(context, identity.certificate(), material.digest());
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("cannot build the management port's TLS context: " + e.getMessage(), e);
    }
  }

  private static String describe(X509Certificate certificate) {
    return certificate.getSubjectX500Principal().getName() + " (valid until " + certificate.getNotAfter().toInstant()
        + ")";
  }
}
