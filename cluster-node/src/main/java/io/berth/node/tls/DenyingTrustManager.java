package io.berth.node.tls;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.OpenSslCertificateException;
import io.netty.internal.tcnative.CertificateVerifier;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;

import java.io.IOException;
import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Locale;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Checks a client certificate the JDK's way (PKIX: chain to a trusted CA, validity dates, the
 * clientAuth key usage), then refuses it if the deny list names it: a denied device fails the
 * handshake and never reaches the protocol.
 */
final class DenyingTrustManager extends X509ExtendedTrustManager {

  private final X509ExtendedTrustManager pkix;
  private final DenyList denyList;

  DenyingTrustManager(List<X509Certificate> trustedCas, DenyList denyList) {
    this.pkix = pkix(trustedCas);
    this.denyList = denyList;
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    checkClient(chain, () -> pkix.checkClientTrusted(chain, authType, engine));
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    checkClient(chain, () -> pkix.checkClientTrusted(chain, authType, socket));
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkClient(chain, () -> pkix.checkClientTrusted(chain, authType));
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    pkix.checkServerTrusted(chain, authType, engine);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    pkix.checkServerTrusted(chain, authType, socket);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    pkix.checkServerTrusted(chain, authType);
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return pkix.getAcceptedIssuers();
  }

  /** A JDK check of the chain, as each of the three overloads makes it. */
  private interface PkixCheck {
    void run() throws CertificateException;
  }

  /** The JDK's check, its failure given the alert that says why, then the deny list. */
  private void checkClient(X509Certificate[] chain, PkixCheck pkixCheck) throws CertificateException {
    try {
      pkixCheck.run();
    } catch (CertificateException e) {
      throw withAlert(e);
    }
    refuseDenied(chain);
  }

  private void refuseDenied(X509Certificate[] chain) throws CertificateException {
    var entry = denyList.match(chain[0]);
    if (entry.isPresent()) {
      throw withAlert(new CertificateException("the client certificate "
          + chain[0].getSubjectX500Principal().getName() + " is denied ("
          + entry.get().kind().name().toLowerCase(Locale.ROOT) + " " + entry.get().value() + ")"));
    }
  }

  /**
   * With BoringSSL, a trust manager's plain exception becomes an {@code internal_error} alert,
   * which tells a device nothing; the verification error a failure stands for makes the alert
   * say what went wrong: {@code unknown_ca}, {@code certificate_expired}, {@code
   * certificate_revoked} (a denied certificate). The JDK's TLS picks its alerts itself.
   */
  private static CertificateException withAlert(CertificateException failure) {
    if (!OpenSsl.isAvailable()) {
      return failure;
    }
    int error = CertificateVerifier.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof CertificateExpiredException) {
        error = CertificateVerifier.X509_V_ERR_CERT_HAS_EXPIRED;
      } else if (t instanceof CertificateNotYetValidException) {
        error = CertificateVerifier.X509_V_ERR_CERT_NOT_YET_VALID;
      }
    }
    if (failure.getMessage() != null && failure.getMessage().contains(" is denied (")) {
      error = CertificateVerifier.X509_V_ERR_CERT_REVOKED;
    }
    return new OpenSslCertificateException(failure.getMessage(), failure, error);
  }

  private static X509ExtendedTrustManager pkix(List<X509Certificate> trustedCas) {
    try {
      KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
      store.load(null, null);
      int i = 0;
      for (X509Certificate ca : trustedCas) {
        store.setCertificateEntry("ca-" + i++, ca);
      }
      TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      factory.init(store);
      for (TrustManager tm : factory.getTrustManagers()) {
        if (tm instanceof X509ExtendedTrustManager x509) {
          return x509;
        }
      }
      throw new IllegalStateException("the JDK offers no X509ExtendedTrustManager");
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("cannot build a trust manager of the CAs in berth.edge.tls.trust: "
          + e.getMessage(), e);
    }
  }
}
