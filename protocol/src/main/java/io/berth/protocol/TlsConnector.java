package io.berth.protocol;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * The TLS side of a {@link DeviceClient}'s connections, built once from its {@link ClientTls}: one
 * {@link SSLContext} for every connection, so that reconnects can resume the TLS session.
 * {@link #handshake} wraps a connected TCP socket; {@link #describe} turns a TLS failure into the
 * cause a person can act on (untrusted certificate, hostname mismatch, ...).
 */
final class TlsConnector {

  /** What the JDK says when the other side does not speak TLS; there is no exception type for it. */
  private static final String NOT_TLS = "Unsupported or unrecognized SSL message";
  private static final String ALERT = "Received fatal alert: ";
  /** The JDK's hostname check failing: "No subject alternative DNS name matching x found." and the like. */
  private static final Pattern NAME_MISMATCH = Pattern.compile("^No (subject alternative|name matching)");
  private static final Pattern IP_LITERAL = Pattern.compile("^[0-9.]+$|:");
  private static final Set<String> CERTIFICATE_ALERTS = Set.of("bad_certificate", "unsupported_certificate",
      "certificate_revoked", "certificate_expired", "certificate_unknown", "unknown_ca", "access_denied");
  private static final Set<String> NEGOTIATION_ALERTS = Set.of("handshake_failure", "protocol_version",
      "insufficient_security");

  private final ClientTls config;
  private final SSLContext context;

  private TlsConnector(ClientTls config, SSLContext context) {
    this.config = config;
    this.context = context;
  }

  /**
   * Reads the CA files, the client certificate and its key.
   *
   * @throws IllegalArgumentException naming the file when one cannot be read or used
   */
  static TlsConnector of(ClientTls config) {
    if (!config.enabled()) {
      return new TlsConnector(config, null);
    }
    try {
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(keyManagers(config), trustManagers(config), null);
      return new TlsConnector(config, context);
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("the JDK cannot set up TLS: " + e, e);
    }
  }

  ClientTls config() {
    return config;
  }

  private static TrustManager[] trustManagers(ClientTls config) throws GeneralSecurityException, IOException {
    if (config.trustedCas().isEmpty()) {
      return null;
    }
    KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
    store.load(null, null);
    int n = 0;
    for (Path file : config.trustedCas()) {
      for (X509Certificate ca : PemFiles.certificates(file, "CA")) {
        store.setCertificateEntry("ca-" + n++, ca);
      }
    }
    TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    factory.init(store);
    return factory.getTrustManagers();
  }

  private static KeyManager[] keyManagers(ClientTls config) {
    if (!config.presentsCertificate()) {
      return null;
    }
    List<X509Certificate> chain = PemFiles.certificates(config.certificateChain(), "client certificate");
    PrivateKey key = PemFiles.privateKey(config.privateKey());
    PemFiles.requireKeyPair(chain.get(0), key, config.certificateChain(), config.privateKey());
    return new KeyManager[] {new OneCertificate(chain.toArray(X509Certificate[]::new), key)};
  }

  /**
   * Wraps {@code tcp}, connected to {@code target}, in TLS and completes the handshake before
   * {@code deadlineNanos} (the connect timeout covers TCP and TLS together); plaintext settings
   * return {@code tcp} itself. Closing the returned socket closes {@code tcp}.
   *
   * @throws SSLException when the handshake fails: {@link #describe} says why
   * @throws DeviceConnection.Retry when the node does not complete the handshake in time
   */
  Socket handshake(Socket tcp, InetSocketAddress target, long deadlineNanos, Duration connectTimeout)
      throws IOException {
    if (context == null) {
      return tcp;
    }
    String host = target.getHostString();
    SSLSocket ssl = (SSLSocket) context.getSocketFactory().createSocket(tcp, host, target.getPort(), true);
    SSLParameters parameters = ssl.getSSLParameters();
    parameters.setProtocols(config.protocols().toArray(String[]::new));
    if (config.verifyHostname()) {
      parameters.setEndpointIdentificationAlgorithm("HTTPS");
    }
    SNIHostName serverName = serverName(host);
    if (serverName != null) {
      parameters.setServerNames(List.of(serverName));
    }
    ssl.setSSLParameters(parameters);
    long left = TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
    String timedOut = "no TLS handshake with " + DeviceConnection.address(target) + " within "
        + DurationText.of(connectTimeout) + " (connect timeout)";
    if (left <= 0) {
      throw new DeviceConnection.Retry(timedOut);
    }
    ssl.setSoTimeout((int) left);
    try {
      ssl.startHandshake();
    } catch (SocketTimeoutException e) {
      throw new DeviceConnection.Retry(timedOut);
    } catch (SocketException e) {
      // The JDK passes a reset or broken pipe on as it is; it is a TLS failure all the same.
      SSLHandshakeException closed = new SSLHandshakeException(e.getMessage());
      closed.initCause(e);
      throw closed;
    }
    return ssl;
  }

  /**
   * The name sent in the server-name indication: the host as given, unless it is an IP address,
   * which SNI cannot carry (RFC 6066 §3); the node then picks its certificate without it.
   */
  private static SNIHostName serverName(String host) {
    if (IP_LITERAL.matcher(host).find()) {
      return null;
    }
    try {
      return new SNIHostName(host.endsWith(".") ? host.substring(0, host.length() - 1) : host);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  // ------------------------------------------------------------------ failures in words

  /**
   * Why the TLS handshake with {@code at} failed, starting with the kind of problem: {@code
   * untrusted certificate}, {@code hostname mismatch}, {@code expired certificate}, {@code client
   * certificate required}, {@code client certificate refused}, {@code no common TLS version}, or
   * {@code not TLS}.
   */
  static String describe(SSLException e, InetSocketAddress target, ClientTls config) {
    return "TLS handshake with " + DeviceConnection.address(target) + " failed: " + cause(e, target, config);
  }

  private static String cause(SSLException e, InetSocketAddress target, ClientTls config) {
    String message = String.valueOf(e.getMessage());
    if (find(e, CertificateExpiredException.class) != null) {
      return "expired certificate: the node's certificate, or a CA above it, has expired ("
          + find(e, CertificateExpiredException.class).getMessage() + ")";
    }
    if (find(e, CertificateNotYetValidException.class) != null) {
      return "certificate not yet valid: the node's certificate, or a CA above it, is not valid yet "
          + "(is this machine's clock right?)";
    }
    if (find(e, CertPathBuilderException.class) != null || find(e, CertPathValidatorException.class) != null) {
      return "untrusted certificate: the node's certificate does not chain to a CA this client trusts ("
          + config.trustInWords() + ")";
    }
    CertificateException c = find(e, CertificateException.class);
    if (c != null && c.getMessage() != null && NAME_MISMATCH.matcher(c.getMessage()).find()) {
      return "hostname mismatch: the node's certificate does not name " + target.getHostString() + " ("
          + c.getMessage() + ")";
    }
    if (message.startsWith(ALERT)) {
      return alert(message.substring(ALERT.length()).strip(), config);
    }
    if (message.contains(NOT_TLS)) {
      return "not TLS: the other side does not answer with TLS (a plaintext edge?)";
    }
    if (find(e, EOFException.class) != null || find(e, SocketException.class) != null
        || message.contains("Remote host terminated the handshake")) {
      return "the node closed the connection during the handshake"
          + (config.presentsCertificate() ? " (as a node refusing the client certificate may do)" : "");
    }
    return message;
  }

  private static String alert(String alert, ClientTls config) {
    if (!config.presentsCertificate() && (alert.equals("certificate_required") || alert.equals("bad_certificate"))) {
      return "client certificate required: the node asks for a client certificate and this client has none ("
          + alert + ")";
    }
    if (CERTIFICATE_ALERTS.contains(alert) || alert.equals("certificate_required")) {
      return "client certificate refused: the node does not accept the certificate in "
          + config.certificateChain() + " (" + alert + ")";
    }
    if (NEGOTIATION_ALERTS.contains(alert)) {
      return "no common TLS version or cipher suite with the node: this client offers "
          + String.join(", ", config.protocols()) + " (" + alert + ")";
    }
    return "the node ended the handshake (" + alert + ")";
  }

  private static <T extends Throwable> T find(Throwable e, Class<T> type) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (type.isInstance(t)) {
        return type.cast(t);
      }
    }
    return null;
  }

  /**
   * Presents the one client certificate whenever the node asks, whichever CAs its request names:
   * the node then says whether it accepts it, which is clearer than the JDK's key manager quietly
   * sending no certificate when the request names other CAs.
   */
  private static final class OneCertificate extends X509ExtendedKeyManager {
    private static final String ALIAS = "device";
    private final X509Certificate[] chain;
    private final PrivateKey key;

    OneCertificate(X509Certificate[] chain, PrivateKey key) {
      this.chain = chain;
      this.key = key;
    }

    private String aliasFor(String... keyTypes) {
      return keyTypes != null && Arrays.asList(keyTypes).contains(key.getAlgorithm()) ? ALIAS : null;
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
      return aliasFor(keyTypes);
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
      return aliasFor(keyTypes);
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
      return aliasFor(keyType) == null ? null : new String[] {ALIAS};
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
      return ALIAS.equals(alias) ? chain.clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
      return ALIAS.equals(alias) ? key : null;
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      return null;
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      return null;
    }
  }
}
