package io.berth.node.tls;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;

/** A device's side of TLS: the JDK's {@link SSLSocket}, checking the node's name like a careful client. */
final class TlsClient {

  private TlsClient() {}

  /**
   * Connects to localhost and completes the handshake. With {@code identity}, that key and chain
   * are always offered when the server asks, whatever CAs it names: so a certificate the server
   * must refuse reaches its checks instead of being withheld by the client.
   */
  static SSLSocket connect(int port, String protocol, X509Certificate trustedCa, KeyAndChain identity)
      throws IOException, GeneralSecurityException {
    KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
    trust.load(null, null);
    trust.setCertificateEntry("ca", trustedCa);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(identity == null ? null : new KeyManager[] {new OneKey(identity)}, tmf.getTrustManagers(), null);
    SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), port);
    socket.setSoTimeout(5000);
    socket.setEnabledProtocols(new String[] {protocol});
    SSLParameters parameters = socket.getSSLParameters();
    parameters.setEndpointIdentificationAlgorithm("HTTPS");
    parameters.setServerNames(List.of(new SNIHostName("localhost")));
    socket.setSSLParameters(parameters);
    socket.startHandshake();
    return socket;
  }

  /** Sends the text and reads back as many bytes. */
  static String echo(Socket socket, String text) throws IOException {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    socket.getOutputStream().write(bytes);
    socket.getOutputStream().flush();
    byte[] back = socket.getInputStream().readNBytes(bytes.length);
    if (back.length < bytes.length) {
      throw new EOFException("the server closed the connection after " + back.length + " bytes");
    }
    return new String(back, StandardCharsets.UTF_8);
  }

  /** True when the peer closed the connection: end of stream or a reset, within the read timeout. */
  static boolean closedByPeer(Socket socket) {
    try {
      InputStream in = socket.getInputStream();
      return in.read() == -1;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (IOException e) {
      return true;
    }
  }

  /**
   * Offers one key and chain whatever CAs the server names, unlike the JDK's key managers, which
   * withhold a certificate of a CA the server did not list. An SSLSocket asks only
   * {@link #chooseClientAlias}; nothing here serves.
   */
  private static final class OneKey extends X509ExtendedKeyManager {

    private final KeyAndChain identity;

    OneKey(KeyAndChain identity) {
      this.identity = identity;
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
      return "device";
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
      return identity.chain().toArray(X509Certificate[]::new);
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
      return identity.privateKey();
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
      return new String[] {"device"};
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      throw new UnsupportedOperationException("a device does not serve");
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      throw new UnsupportedOperationException("a device does not serve");
    }
  }
}
