package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The reference client over real TLS on loopback, against a stand-in node ({@link TlsNode}) with
 * certificates from a test CA: what it accepts, what it refuses and how it says so, and that a
 * refused handshake is a failed connection attempt, retried with backoff until the give-up time.
 */
@Timeout(60)
class DeviceClientTlsTest {

  private static final byte[] SECRET = "a-secret-of-16-bytes-or-more".getBytes(StandardCharsets.UTF_8);
  private static final Duration GIVE_UP = Duration.ofMillis(1500);

  @TempDir
  static Path dir;
  private static TestPki ca;
  private static TestPki otherCa;
  private static TestPki.Issued node;

  private final List<String> failedAttempts = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void issueCertificates() throws Exception {
    ca = TestPki.create(dir, "berth-test-ca");
    otherCa = TestPki.create(dir, "other-ca");
    node = ca.node("node-1", "ip:127.0.0.1", "dns:localhost");
  }

  /** A client of {@code n} that gives up quickly and records every failed attempt's cause. */
  private DeviceClient.Builder client(TlsNode n, ClientTls tls) {
    return DeviceClient.builder()
        .address("127.0.0.1", n.port())
        .deviceId("tls-device")
        .tls(tls)
        .reconnectBackoff(Duration.ofMillis(100), Duration.ofMillis(400))
        .giveUpAfter(GIVE_UP)
        .listener(new DeviceListener() {
          @Override
          public void onConnectFailed(String address, String cause, int attempt) {
            failedAttempts.add(cause);
          }
        });
  }

  private DeviceException refused(DeviceClient.Builder builder) {
    return catchThrowableOfType(DeviceException.class, () -> builder.build().connect());
  }

  private static void sendOneFrame(DeviceClient c) throws InterruptedException {
    try {
      c.send("over tls".getBytes(StandardCharsets.UTF_8));
      assertThat(c.awaitAllAcked(Duration.ofSeconds(10))).isTrue();
    } finally {
      c.close();
    }
  }

  @Test
  void trustingTheNodesCaTheClientConnectsAndItsFramesAreAcknowledged() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, null), false)) {
      sendOneFrame(client(n, ClientTls.trusting(ca.caPem())).secret(SECRET, Duration.ofMinutes(5)).build().connect());
      assertThat(n.hellos()).singleElement().satisfies(h -> assertThat(h.token()).isNotEmpty());
      assertThat(n.serverNames()).as("no server-name indication for an IP address").isEmpty();
    }
  }

  @Test
  void aDroppedTlsConnectionIsResumedOverANewOne() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, null), false)) {
      DeviceClient c = client(n, ClientTls.trusting(ca.caPem())).secret(SECRET, Duration.ofMinutes(5))
          .giveUpAfter(Duration.ofSeconds(10)).build().connect();
      try {
        c.send("before".getBytes(StandardCharsets.UTF_8));
        assertThat(c.awaitAllAcked(Duration.ofSeconds(10))).isTrue();
        c.dropConnection();
        c.send("after".getBytes(StandardCharsets.UTF_8));
        assertThat(c.awaitAllAcked(Duration.ofSeconds(10))).isTrue();
        assertThat(c.connectionCount()).isEqualTo(2);
      } finally {
        c.close();
      }
      assertThat(n.hellos()).hasSize(2);
      assertThat(n.hellos().get(1).resume()).isTrue();
    }
  }

  @Test
  void aHostNameIsSentAsTheServerNameAndCheckedAgainstTheCertificate() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, null), false)) {
      sendOneFrame(client(n, ClientTls.trusting(ca.caPem())).address("localhost", n.port())
          .secret(SECRET, Duration.ofMinutes(5)).build().connect());
      assertThat(n.serverNames()).containsExactly("localhost");
    }
  }

  @Test
  void byDefaultTheClientUsesTlsWithTheJdkTrustStoreWhichDoesNotHoldAPrivateCa() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, null), false)) {
      DeviceException e = refused(DeviceClient.builder().address("127.0.0.1", n.port()).deviceId("tls-device")
          .secret(SECRET, Duration.ofMinutes(5)).giveUpAfter(GIVE_UP));
      assertThat(e.getMessage()).contains("untrusted certificate").contains("the JDK's default trust store");
    }
  }

  @Test
  void aNodeCertificateFromAnotherCaIsRefusedAsUntrustedAndRetriedWithBackoff() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, null), false)) {
      DeviceException e = refused(client(n, ClientTls.trusting(otherCa.caPem())).secret(SECRET, Duration.ofMinutes(5)));
      assertThat(e.reason()).isEqualTo(DeviceException.Reason.UNREACHABLE);
      assertThat(e.getMessage()).contains("TLS handshake with 127.0.0.1:" + n.port() + " failed: untrusted "
          + "certificate").contains(otherCa.caPem().toString());
      // 1.5 s with pauses of 50-100, 100-200, then 200-400 ms: a few attempts, not a spin.
      assertThat(failedAttempts).hasSizeBetween(2, 15).allMatch(c -> c.contains("untrusted certificate"));
      assertThat(n.hellos()).isEmpty();
    }
  }

  @Test
  void aNodeCertificateForAnotherNameIsRefusedAsAHostnameMismatch() throws Exception {
    TestPki.Issued elsewhere = ca.node("node-elsewhere", "dns:node.elsewhere.example");
    try (TlsNode n = TlsNode.start(ca.serverContext(elsewhere, null), false)) {
      DeviceException e = refused(client(n, ClientTls.trusting(ca.caPem())).secret(SECRET, Duration.ofMinutes(5)));
      assertThat(e.getMessage()).contains("hostname mismatch: the node's certificate does not name 127.0.0.1");
      assertThat(n.hellos()).isEmpty();

      // Without the check, the same certificate passes: the CA is trusted.
      sendOneFrame(client(n, ClientTls.trusting(ca.caPem()).withHostnameVerification(false))
          .secret(SECRET, Duration.ofMinutes(5)).build().connect());
      assertThat(n.hellos()).hasSize(1);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"EC", "RSA"})
  void withAClientCertificateTheNodeSeesItsSubjectAndTheHelloCarriesAnEmptyToken(String keyAlgorithm)
      throws Exception {
    TestPki.Issued device = ca.device("device-" + keyAlgorithm, keyAlgorithm);
    try (TlsNode n = TlsNode.start(ca.serverContext(node, ca), true)) {
      sendOneFrame(client(n, ClientTls.trusting(ca.caPem()).withClientCertificate(device.certificatePem(),
          device.keyPem())).build().connect());
      assertThat(n.clientSubjects()).containsExactly("CN=device-" + keyAlgorithm);
      assertThat(n.hellos()).singleElement().satisfies(h -> {
        assertThat(h.token()).isEmpty();
        assertThat(h.deviceId()).isEqualTo("tls-device");
      });
    }
  }

  @Test
  void aNodeThatRequiresAClientCertificateRefusesAClientWithoutOne() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, ca), true)) {
      DeviceException e = refused(client(n, ClientTls.trusting(ca.caPem())).secret(SECRET, Duration.ofMinutes(5)));
      assertThat(e.getMessage()).contains("client certificate required");
      assertThat(n.hellos()).isEmpty();
    }
  }

  @Test
  void aNodeThatResetsTheConnectionAfterItsAlertIsStillUnderstood() throws Exception {
    // TLS 1.3: the client's handshake is complete before the node checks its (missing)
    // certificate, so the HELLO may meet the reset; the alert waits to be read behind it.
    try (TlsNode n = TlsNode.startResettingAfterFailure(ca.serverContext(node, ca), true)) {
      DeviceException e = refused(client(n, ClientTls.trusting(ca.caPem())).secret(SECRET, Duration.ofMinutes(5)));
      assertThat(e.getMessage()).contains("client certificate required");
      assertThat(failedAttempts).isNotEmpty().allMatch(c -> c.contains("client certificate required"));
    }
  }

  @Test
  void aClientCertificateFromACaTheNodeDoesNotTrustIsRefused() throws Exception {
    TestPki.Issued stranger = otherCa.device("stranger", "EC");
    try (TlsNode n = TlsNode.start(ca.serverContext(node, ca), true)) {
      DeviceException e = refused(client(n, ClientTls.trusting(ca.caPem())
          .withClientCertificate(stranger.certificatePem(), stranger.keyPem())));
      assertThat(e.getMessage()).contains("client certificate refused").contains(stranger.certificatePem().toString());
      assertThat(n.clientSubjects()).isEmpty();
    }
  }

  @Test
  void aPlaintextClientAtATlsNodeFailsQuicklyAndSaysTheEdgeRequiresTls() throws Exception {
    try (TlsNode n = TlsNode.start(ca.serverContext(node, null), false)) {
      long started = System.nanoTime();
      DeviceException e = refused(client(n, ClientTls.PLAINTEXT).secret(SECRET, Duration.ofMinutes(5)));
      assertThat(e.getMessage()).contains("requires TLS");
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(GIVE_UP.plusSeconds(5));
      assertThat(n.failures()).anyMatch(f -> f.contains("SSL"));
    }
  }

  @Test
  void aTlsClientAtAPlaintextEdgeSaysItDoesNotSpeakTls() throws Exception {
    try (ServerSocket plain = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread edge = new Thread(() -> answerWithAnError(plain));
      edge.setDaemon(true);
      edge.start();
      DeviceException e = refused(DeviceClient.builder().address("127.0.0.1", plain.getLocalPort())
          .deviceId("tls-device").secret(SECRET, Duration.ofMinutes(5)).tls(ClientTls.trusting(ca.caPem()))
          .giveUpAfter(GIVE_UP));
      assertThat(e.getMessage()).contains("not TLS");
    }
  }

  /** As a plaintext Berth edge answers a TLS ClientHello, whose first bytes make an absurd frame length. */
  private static void answerWithAnError(ServerSocket plain) {
    while (!plain.isClosed()) {
      try (Socket s = plain.accept()) {
        InputStream in = s.getInputStream();
        in.readNBytes(4);
        s.getOutputStream().write(FrameCodec.encode(new Frame.Error(ErrorCode.FRAME_TOO_LARGE.wire,
            "declared frame length exceeds the limit")));
        s.getOutputStream().flush();
      } catch (IOException e) {
        // Closed by the test: done.
      }
    }
  }

  @Test
  void aNodeThatNeverAnswersTheTlsHandshakeTimesOutWithinTheConnectTimeout() throws Exception {
    // The kernel accepts connections into the backlog; nobody ever reads them.
    try (ServerSocket silent = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      DeviceException e = refused(DeviceClient.builder().address("127.0.0.1", silent.getLocalPort())
          .deviceId("tls-device").secret(SECRET, Duration.ofMinutes(5)).tls(ClientTls.trusting(ca.caPem()))
          .connectTimeout(Duration.ofMillis(300)).giveUpAfter(GIVE_UP));
      assertThat(e.getMessage()).contains("no TLS handshake with 127.0.0.1:" + silent.getLocalPort()
          + " within 300 ms (connect timeout)");
    }
  }
}
