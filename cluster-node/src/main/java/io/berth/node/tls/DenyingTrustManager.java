package io.berth.node.tls;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.OpenSslCertificateException;
import io.netty.internal.tcnative.CertificateVerifier;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Locale;

/**
 * Checks a client certificate the JDK's way (PKIX: chain to a trusted CA, validity dates, the
 * clientAuth key usage), then refuses it if the deny list names it: a denied device fails the
 * handshake and never reaches the protocol.
 */
final class DenyingTrustManager extends CheckingTrustManager {

  private final DenyList denyList;

  DenyingTrustManager(List<X509Certificate> trustedCas, DenyList denyList) {
    super(trustedCas, EdgeTlsSettings.PREFIX + "trust");
    this.denyList = denyList;
  }

  @Override
  void checkClient(X509Certificate[] chain) throws CertificateException {
    var entry = denyList.match(chain[0]);
    if (entry.isPresent()) {
      throw new CertificateException("the client certificate "
          + chain[0].getSubjectX500Principal().getName() + " is denied ("
          + entry.get().kind().name().toLowerCase(Locale.ROOT) + " " + entry.get().value() + ")");
    }
  }

  /** The edge is the server: it checks no server. */
  @Override
  void checkServer(X509Certificate[] chain) {}

  @Override
  CertificateException clientFailure(CertificateException failure) {
    return withAlert(failure);
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
}
