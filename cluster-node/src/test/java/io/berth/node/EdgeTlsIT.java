package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.berth.node.edge.EdgeState;
import io.berth.node.tls.KeyAndChain;
import io.berth.node.tls.LocalCa;
import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The device port on TLS, on a real node: devices with a token or a client certificate get their
 * sessions; bad input on the TLS layer (a plaintext client, a handshake that never completes,
 * an expired or untrusted certificate, a renegotiation) is closed and counted by outcome while a
 * well-behaved device on the same node keeps streaming.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeTlsIT {

  private static final Duration BOUND = Duration.ofSeconds(15);

  private Path dir;
  private LocalCa ca;
  private TestNodes nodes;
  private EchoStreamer bystander;
  private int echoedBefore;

  @BeforeAll
  void startNode() throws Exception {
    dir = Files.createTempDirectory("berth-tls-it");
    ca = LocalCa.create("Berth test CA");
    ca.write(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));
    ca.issueNode("node-1", List.of("localhost", "127.0.0.1")).writePem(dir.resolve("node.pem"),
        dir.resolve("node-key.pem"));
    nodes = new TestNodes("""
        berth.edge.handshake-timeout = 2s
        berth.edge.websocket.enabled = on
        berth.edge.tls {
          enabled = on
          certificate = "%s"
          private-key = "%s"
          trust = "%s"
          client-auth = optional
        }
        """.formatted(dir.resolve("node.pem"), dir.resolve("node-key.pem"), dir.resolve("ca.pem"))).start(1);
    bystander = new EchoStreamer(tlsDevice(TestNodes.uniqueDevice("bystander")), 1_000_000, Duration.ofMillis(2))
        .start();
  }

  @AfterAll
  void stopNode() {
    if (bystander != null) {
      bystander.close();
    }
    if (nodes != null) {
      nodes.close();
    }
  }

  @BeforeEach
  void noteBystander() {
    echoedBefore = bystander.distinctEchoed();
  }

  @AfterEach
  void bystanderKeptStreaming() {
    await().atMost(Duration.ofSeconds(10)).until(() -> bystander.distinctEchoed() > echoedBefore + 50);
    assertThat(bystander.duplicateEchoes()).isZero();
    assertThat(bystander.failure()).isNull();
  }

  private DeviceClient.Builder tlsDevice(String deviceId) {
    return TestNodes.device(deviceId, nodes.node(0).edge()).tls(ClientTls.trusting(dir.resolve("ca.pem")));
  }

  private long refusals(String outcome) {
    Map<String, Long> all = EdgeState.get(nodes.node(0).system()).refusals();
    assertThat(all).containsKey(outcome);
    return all.get(outcome);
  }

  /** Waits until the node has counted one more refusal of this kind. */
  private void awaitRefusal(String outcome, long before) {
    await().atMost(BOUND).until(() -> refusals(outcome) > before);
  }

  /** Writes a device certificate and key from {@code issuer} and returns their paths. */
  private Path[] deviceFiles(LocalCa issuer, String deviceId, LocalCa.Validity validity) throws IOException {
    KeyAndChain device = validity == null ? issuer.issueDevice(deviceId) : issuer.issueDevice(deviceId, validity);
    Path cert = dir.resolve(deviceId + "-" + System.nanoTime() + ".pem");
    Path key = dir.resolve(deviceId + "-" + System.nanoTime() + "-key.pem");
    device.writePem(cert, key);
    return new Path[] {cert, key};
  }

  /** A TLS socket to the node, presenting {@code device} (or nothing), trusting the node's CA. */
  private SSLSocket tlsSocket(KeyAndChain device, String... protocols) throws Exception {
    SSLSocket socket = (SSLSocket) sslContext(device).getSocketFactory().createSocket("127.0.0.1",
        nodes.node(0).edgePort());
    socket.setSoTimeout((int) BOUND.toMillis());
    if (protocols.length > 0) {
      socket.setEnabledProtocols(protocols);
    }
    return socket;
  }

  /** TLS presenting {@code device} (or nothing), trusting the node's CA. */
  private SSLContext sslContext(KeyAndChain device) throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("ca", ca.certificate());
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    KeyManagerFactory kmf = null;
    if (device != null) {
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      keys.setKeyEntry("device", device.privateKey(), new char[0], device.chain().toArray(X509Certificate[]::new));
      kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, new char[0]);
    }
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
    return context;
  }

  /** True once the node ended the connection: end of stream, a reset or a TLS alert. */
  private static boolean closedByNode(InputStream in) {
    try {
      while (in.read() >= 0) {
        // whatever the node still sends before it closes
      }
      return true;
    } catch (java.net.SocketTimeoutException e) {
      return false;
    } catch (IOException e) {
      return true;
    }
  }

  @Test
  void aDeviceWithATokenGetsItsSessionOverTls() throws Exception {
    List<String> received = new CopyOnWriteArrayList<>();
    try (DeviceClient device = tlsDevice(TestNodes.uniqueDevice("token")).mapping("echo")
        .listener(TestNodes.collecting(received)).build().connect()) {
      device.send("over tls".getBytes());
      device.awaitAllAcked(BOUND);
      await().atMost(BOUND).until(() -> received.contains("over tls"));
    }
  }

  @Test
  void aClientCertificateStandsForTheTokenAndNamesTheOnlyDeviceItOpens() throws Exception {
    String id = TestNodes.uniqueDevice("cert");
    Path[] files = deviceFiles(ca, id, null);
    List<String> received = new CopyOnWriteArrayList<>();
    try (DeviceClient device = DeviceClient.builder().addresses(List.of(nodes.node(0).edge())).deviceId(id)
        .tls(ClientTls.trusting(dir.resolve("ca.pem")).withClientCertificate(files[0], files[1]))
        .mapping("echo").listener(TestNodes.collecting(received)).giveUpAfter(BOUND).build().connect()) {
      device.send("with a certificate".getBytes());
      device.awaitAllAcked(BOUND);
      await().atMost(BOUND).until(() -> received.contains("with a certificate"));
    }

    // The same certificate, a HELLO naming another device, no token: ERROR 200.
    try (SSLSocket socket = tlsSocket(ca.issueDevice(id))) {
      socket.getOutputStream().write(FrameCodec.encode(
          new Frame.Hello(FrameCodec.VERSION, false, 0, "someone-else", "", "", "echo")));
      Frame answer = ((io.berth.protocol.Decoded.Ok) new io.berth.protocol.FrameReader(socket.getInputStream(),
          64 * 1024).next()).frame();
      assertThat(answer).isInstanceOf(Frame.Error.class);
      assertThat(((Frame.Error) answer).code()).isEqualTo(ErrorCode.AUTH_FAILED.wire);
      assertThat(((Frame.Error) answer).message()).contains("certificate is for device " + id);
    }
  }

  @Test
  void theWebSocketPortServesWssAndTakesAClientCertificateForTheToken() throws Exception {
    String id = TestNodes.uniqueDevice("wss-cert");
    URI wss = URI.create("wss://127.0.0.1:" + nodes.node(0).websocketPort() + "/devices");
    HttpClient http = HttpClient.newBuilder().sslContext(sslContext(ca.issueDevice(id)))
        .build();
    try (WebSocketEdgeIT.Client client = WebSocketEdgeIT.Client.connect(wss, http)) {
      client.send(FrameCodec.encode(new Frame.Hello(FrameCodec.VERSION, false, 0, id, "", "", "echo")));
      assertThat(client.expect(Frame.Welcome.class).socketId()).isEqualTo(id);
      client.send(FrameCodec.encode(new Frame.Data(1, "over wss".getBytes(StandardCharsets.UTF_8))));
      Frame.Data echoed = client.expect(Frame.Data.class);
      assertThat(new String(echoed.payload(), StandardCharsets.UTF_8)).isEqualTo("over wss");
    }
    // Without a certificate, the HELLO needs its token.
    HttpClient anonymous = HttpClient.newBuilder().sslContext(sslContext(null)).build();
    try (WebSocketEdgeIT.Client client = WebSocketEdgeIT.Client.connect(wss, anonymous)) {
      client.send(FrameCodec.encode(new Frame.Hello(FrameCodec.VERSION, false, 0, id, "", "", "echo")));
      assertThat(client.expect(Frame.Error.class).code()).isEqualTo(ErrorCode.AUTH_FAILED.wire);
    }
  }

  @Test
  void aPlaintextClientOnTheTlsPortIsClosedAndCounted() throws Exception {
    long before = refusals("tls-not-tls");
    try (Socket plain = new Socket("127.0.0.1", nodes.node(0).edgePort())) {
      plain.setSoTimeout((int) BOUND.toMillis());
      plain.getOutputStream().write(FrameCodec.encode(
          new Frame.Hello(FrameCodec.VERSION, false, 0, "plain", "token", "", "echo")));
      assertThat(closedByNode(plain.getInputStream())).isTrue();
    }
    awaitRefusal("tls-not-tls", before);
  }

  @Test
  void aHandshakeThatNeverCompletesIsClosedAfterTheHandshakeTimeout() throws Exception {
    long before = refusals("setup-timeout");
    Instant started = Instant.now();
    try (Socket silent = new Socket("127.0.0.1", nodes.node(0).edgePort())) {
      silent.setSoTimeout((int) BOUND.toMillis());
      // Half a ClientHello's record header, then nothing.
      silent.getOutputStream().write(new byte[] {0x16, 0x03});
      assertThat(closedByNode(silent.getInputStream())).isTrue();
    }
    assertThat(Duration.between(started, Instant.now())).isGreaterThanOrEqualTo(Duration.ofMillis(1_900));
    awaitRefusal("setup-timeout", before);
  }

  @Test
  void anExpiredClientCertificateIsRefusedAndCounted() throws Exception {
    long before = refusals("tls-cert-expired");
    Instant past = Instant.now().minus(Duration.ofDays(30));
    KeyAndChain expired = ca.issueDevice("expired", new LocalCa.Validity(past.minus(Duration.ofDays(30)), past));
    try (SSLSocket socket = tlsSocket(expired)) {
      assertThat(handshakeThenClosed(socket)).isTrue();
    }
    awaitRefusal("tls-cert-expired", before);
  }

  @Test
  void aClientCertificateFromAnotherCaIsRefusedAndCounted() throws Exception {
    long before = refusals("tls-cert-untrusted");
    // The reference client presents its certificate whatever CAs the node names (a JDK socket
    // with a key manager would offer none that another CA issued, and go in without one).
    Path[] stranger = deviceFiles(LocalCa.create("Another CA"), "stranger", null);
    DeviceClient device = DeviceClient.builder().addresses(List.of(nodes.node(0).edge())).deviceId("stranger")
        .tls(ClientTls.trusting(dir.resolve("ca.pem")).withClientCertificate(stranger[0], stranger[1]))
        .mapping("echo").giveUpAfter(Duration.ofSeconds(2)).build();
    assertThatThrownBy(device::connect).hasMessageContaining("certificate");
    device.close();
    awaitRefusal("tls-cert-untrusted", before);
  }

  @Test
  void aRenegotiationIsRefusedAndCounted() throws Exception {
    long before = refusals("tls-renegotiation");
    try (SSLSocket socket = tlsSocket(null, "TLSv1.2")) {
      socket.startHandshake();
      socket.getOutputStream().write(FrameCodec.encode(new Frame.Ping(1)));
      socket.getOutputStream().flush();
      try {
        socket.startHandshake(); // a client-initiated renegotiation
        socket.getOutputStream().write(FrameCodec.encode(new Frame.Ping(2)));
        socket.getOutputStream().flush();
      } catch (IOException e) {
        // refused at once: what the node should do
      }
      assertThat(closedByNode(socket.getInputStream())).isTrue();
    }
    awaitRefusal("tls-renegotiation", before);
  }

  /**
   * The handshake, then a frame, then reading: TLS 1.3 refuses a client certificate after the
   * client's side of the handshake, so the refusal shows at the first read. True when refused.
   */
  private static boolean handshakeThenClosed(SSLSocket socket) {
    try {
      socket.startHandshake();
      socket.getOutputStream().write(FrameCodec.encode(new Frame.Ping(1)));
      socket.getOutputStream().flush();
    } catch (IOException e) {
      return true;
    }
    return closedByNode(socketInput(socket));
  }

  private static InputStream socketInput(SSLSocket socket) {
    try {
      return socket.getInputStream();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
