package io.berth.node.tls;

import java.io.IOException;
import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The JDK's check of a peer's chain (PKIX: a trusted CA, validity dates, the key usage for its
 * side), then a check of this package's own: the deny list for a device ({@link
 * DenyingTrustManager}), a node's name for a node ({@link ClusterTls.NodeTrustManager}). The six
 * overloads of a trust manager all come down to these two steps.
 */
abstract class CheckingTrustManager extends X509ExtendedTrustManager {

  private final X509ExtendedTrustManager pkix;

  /** @param setting names the CAs in an error: {@code berth.edge.tls.trust}, say */
  CheckingTrustManager(List<X509Certificate> trustedCas, String setting) {
    this.pkix = pkix(trustedCas, setting);
  }

  /** After the JDK accepted a client's chain: refuse it by throwing. */
  abstract void checkClient(X509Certificate[] chain) throws CertificateException;

  /** After the JDK accepted a server's chain: refuse it by throwing. */
  abstract void checkServer(X509Certificate[] chain) throws CertificateException;

  /** What a refused client chain is thrown as, whichever step refused it. */
  CertificateException clientFailure(CertificateException failure) {
    return failure;
  }

  @Override
  public final void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    client(chain, () -> pkix.checkClientTrusted(chain, authType, engine));
  }

  @Override
  public final void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    client(chain, () -> pkix.checkClientTrusted(chain, authType, socket));
  }

  @Override
  public final void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    client(chain, () -> pkix.checkClientTrusted(chain, authType));
  }

  @Override
  public final void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    pkix.checkServerTrusted(chain, authType, engine);
    checkServer(chain);
  }

  @Override
  public final void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    pkix.checkServerTrusted(chain, authType, socket);
    checkServer(chain);
  }

  @Override
  public final void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    pkix.checkServerTrusted(chain, authType);
    checkServer(chain);
  }

  @Override
  public final X509Certificate[] getAcceptedIssuers() {
    return pkix.getAcceptedIssuers();
  }

  /** A JDK check of the chain, as each overload makes it. */
  private interface PkixCheck {
    void run() throws CertificateException;
  }

  private void client(X509Certificate[] chain, PkixCheck pkixCheck) throws CertificateException {
    try {
      pkixCheck.run();
      checkClient(chain);
    } catch (CertificateException e) {
      throw clientFailure(e);
    }
  }

  /** The JDK's PKIX trust manager of these CAs. */
  private static X509ExtendedTrustManager pkix(List<X509Certificate> trustedCas, String setting) {
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
      throw new IllegalArgumentException("cannot build a trust manager of the CAs in " + setting + ": "
          + e.getMessage(), e);
    }
  }
}
