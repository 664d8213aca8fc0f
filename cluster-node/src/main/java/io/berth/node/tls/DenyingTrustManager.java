package io.berth.node.tls;

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
    pkix.checkClientTrusted(chain, authType, engine);
    refuseDenied(chain);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    pkix.checkClientTrusted(chain, authType, socket);
    refuseDenied(chain);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    pkix.checkClientTrusted(chain, authType);
    refuseDenied(chain);
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

  private void refuseDenied(X509Certificate[] chain) throws CertificateException {
    var entry = denyList.match(chain[0]);
    if (entry.isPresent()) {
      throw new CertificateException("the client certificate " + chain[0].getSubjectX500Principal().getName()
          + " is denied (" + entry.get().kind().name().toLowerCase(Locale.ROOT) + " "
          + entry.get().value() + ")");
    }
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
