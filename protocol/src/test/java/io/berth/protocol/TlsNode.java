package io.berth.protocol;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.ExtendedSSLSession;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

/**
 * A stand-in node on a real loopback socket with TLS: it completes the TLS handshake,
 * answers the HELLO with a WELCOME, acknowledges every DATA and confirms a CLOSE. It records what
 * it saw: the HELLOs, the server names asked for, the subject of each client certificate, and
 * each connection's failure.
 */
public final class TlsNode implements AutoCloseable {

  private final ServerSocket server;
  private final SSLSocketFactory tls;
  private final boolean needClientAuth;
  private final boolean drainAfterFailure;
  /** Closed with the node, so that a client still connected sees its connection end. */
  private final List<Socket> accepted = new CopyOnWriteArrayList<>();
  private final List<Frame.Hello> hellos = new CopyOnWriteArrayList<>();
  private final List<String> clientSubjects = new CopyOnWriteArrayList<>();
  private final List<String> serverNames = new CopyOnWriteArrayList<>();
  private final List<String> failures = new CopyOnWriteArrayList<>();

  private TlsNode(ServerSocket server, SSLSocketFactory tls, boolean needClientAuth, boolean drainAfterFailure) {
    this.server = server;
    this.tls = tls;
    this.needClientAuth = needClientAuth;
    this.drainAfterFailure = drainAfterFailure;
  }

  /** Listens on a free loopback port; with {@code needClientAuth}, a client certificate is required. */
  public static TlsNode start(SSLContext context, boolean needClientAuth) throws IOException {
    return start(context, needClientAuth, true);
  }

  /**
   * As {@link #start}, but a failed handshake closes the connection at once, with what the client
   * sent after its handshake unread: the kernel then resets the connection, as the JDK's own TLS
   * server sockets do.
   */
  public static TlsNode startResettingAfterFailure(SSLContext context, boolean needClientAuth) throws IOException {
    return start(context, needClientAuth, false);
  }

  private static TlsNode start(SSLContext context, boolean needClientAuth, boolean drainAfterFailure)
      throws IOException {
    TlsNode node = new TlsNode(new ServerSocket(0, 50, InetAddress.getLoopbackAddress()), context.getSocketFactory(),
        needClientAuth, drainAfterFailure);
    Thread acceptor = new Thread(node::acceptLoop, "tls-node-accept");
    acceptor.setDaemon(true);
    acceptor.start();
    return node;
  }

  public int port() {
    return server.getLocalPort();
  }

  public String address() {
    return "127.0.0.1:" + port();
  }

  public List<Frame.Hello> hellos() {
    return hellos;
  }

  public List<String> clientSubjects() {
    return clientSubjects;
  }

  /** The host names clients asked for with server-name indication, one entry per connection that sent one. */
  public List<String> serverNames() {
    return serverNames;
  }

  public List<String> failures() {
    return failures;
  }

  private void acceptLoop() {
    while (!server.isClosed()) {
      try {
        Socket s = server.accept();
        accepted.add(s);
        Thread t = new Thread(() -> serve(s), "tls-node-connection");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        // Closed by the test.
      }
    }
  }

  /**
   * One connection. TLS is layered over the TCP socket without owning it, so that after a failed
   * handshake the node reads what the client still sends before it closes, as a server reading
   * eagerly (Netty's) does: closing with unread data would reset the connection, and the client
   * might meet the reset before it reads the alert that says what went wrong.
   */
  private void serve(Socket tcp) {
    try (tcp) {
      tcp.setSoTimeout(10_000);
      SSLSocket s = (SSLSocket) tls.createSocket(tcp, null, false);
      s.setNeedClientAuth(needClientAuth);
      try {
        s.startHandshake();
      } catch (IOException e) {
        failures.add(e.toString());
        if (drainAfterFailure) {
          tcp.getInputStream().readAllBytes();
        }
        return;
      }
      for (SNIServerName name : ((ExtendedSSLSession) s.getSession()).getRequestedServerNames()) {
        if (name instanceof SNIHostName host) {
          serverNames.add(host.getAsciiName());
        }
      }
      if (needClientAuth) {
        X509Certificate client = (X509Certificate) s.getSession().getPeerCertificates()[0];
        clientSubjects.add(client.getSubjectX500Principal().getName());
      }
      FrameReader in = new FrameReader(new BufferedInputStream(s.getInputStream()), FrameCodec.DEFAULT_MAX_FRAME_SIZE);
      Frame.Hello hello = (Frame.Hello) ((Decoded.Ok) in.next()).frame();
      hellos.add(hello);
      OutputStream out = s.getOutputStream();
      write(out, new Frame.Welcome(FrameCodec.VERSION, hello.deviceId(), "tls-node", 0, 0, 65_536, 256, 1 << 20, 60));
      while (true) {
        Frame f = ((Decoded.Ok) in.next()).frame();
        if (f instanceof Frame.Data d) {
          write(out, new Frame.Ack(d.seq()));
        } else if (f instanceof Frame.Close) {
          write(out, new Frame.Close(CloseCode.NORMAL.wire, "closed"));
          return;
        }
      }
    } catch (IOException | RuntimeException e) {
      failures.add(e.toString());
    }
  }

  private static void write(OutputStream out, Frame frame) throws IOException {
    out.write(FrameCodec.encode(frame));
    out.flush();
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (Socket s : accepted) {
      s.close();
    }
  }
}
