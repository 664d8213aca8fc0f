package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.berth.node.tls.CertificateIdentity.Identified;
import io.berth.node.tls.TlsEchoServer.Accepted;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The edge's TLS over real loopback connections: a Netty server with {@link EdgeTls}'s handler,
 * the JDK's {@link SSLSocket} as the device. Each case runs with both providers.
 */
class EdgeTlsTest {

  private static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(5);

  @TempDir
  Path dir;

  private TlsFixture fixture;
  private EdgeTls tls;
  private TlsEchoServer server;

  @BeforeEach
  void makeCa() {
    fixture = new TlsFixture(dir);
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
    if (tls != null) {
      tls.close();
    }
  }

  @ParameterizedTest(name = "{0} with {1}")
  @CsvSource({"TLSv1.3, jdk", "TLSv1.2, jdk", "TLSv1.3, openssl", "TLSv1.2, openssl"})
  void completesHandshakeAndCarriesDataWithEitherProtocolAndProvider(String protocol, String provider)
      throws Exception {
    start(fixture.settings(provider), HANDSHAKE_TIMEOUT);
    assertThat(tls.provider()).isEqualTo(provider);

    try (SSLSocket socket = TlsClient.connect(server.port(), protocol, fixture.ca.certificate(), null)) {
      assertThat(socket.getSession().getProtocol()).isEqualTo(protocol);
      assertThat(TlsClient.echo(socket, "hello over tls")).isEqualTo("hello over tls");
      assertThat(serial(socket)).isEqualTo(CertificateIdentity.serial(fixture.node.certificate()));
    }
    assertThat(server.next().handshakeSucceeds()).isTrue();
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void configuredCipherIsTheOneNegotiated(String provider) throws Exception {
    String cipher = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
    Map<String, Object> settings = fixture.settings(provider);
    settings.put("protocols", List.of("TLSv1.2"));
    settings.put("ciphers", List.of(cipher));
    start(settings, HANDSHAKE_TIMEOUT);

    try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.2", fixture.ca.certificate(), null)) {
      assertThat(socket.getSession().getCipherSuite()).isEqualTo(cipher);
    }
    assertThatThrownBy(() -> TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), null).close())
        .as("TLS 1.3 is not among the protocols").isInstanceOf(IOException.class);
  }

  @Test
  void autoChoosesBoringSslWhereItLoads() throws Exception {
    Map<String, Object> settings = fixture.settings("auto");
    tls = EdgeTls.start(TlsFixture.edgeSettings(settings), HANDSHAKE_TIMEOUT, new DenyList());
    assertThat(tls.provider()).isEqualTo(OpenSsl.isAvailable() ? "openssl" : "jdk");
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void requiredClientCertificateNamesTheDevice(String provider) throws Exception {
    start(fixture.requiringClientCertificates(provider), HANDSHAKE_TIMEOUT);
    KeyAndChain device = fixture.ca.issueDevice("sensor-7");

    try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), device)) {
      assertThat(TlsClient.echo(socket, "ping")).isEqualTo("ping");
    }
    Accepted accepted = server.next();
    assertThat(accepted.handshakeSucceeds()).isTrue();
    X509Certificate peer = CertificateIdentity.peerCertificate(accepted.ssl().engine().getSession()).orElseThrow();
    assertThat(CertificateIdentity.of(peer, tls.settings().identity()))
        .isEqualTo(new Identified("sensor-7", CertificateIdentity.fingerprint(device.certificate()),
            CertificateIdentity.serial(device.certificate())));
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void requiredClientCertificateRefusesADeviceWithout(String provider) throws Exception {
    start(fixture.requiringClientCertificates(provider), HANDSHAKE_TIMEOUT);
    assertRefused(null);
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void requiredClientCertificateRefusesAnotherCasCertificate(String provider) throws Exception {
    start(fixture.requiringClientCertificates(provider), HANDSHAKE_TIMEOUT);
    assertRefused(LocalCa.create("Some other CA").issueDevice("sensor-7"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void requiredClientCertificateRefusesAnExpiredCertificate(String provider) throws Exception {
    start(fixture.requiringClientCertificates(provider), HANDSHAKE_TIMEOUT);
    Instant now = Instant.now();
    assertRefused(fixture.ca.issueDevice("sensor-7",
        new LocalCa.Validity(now.minus(Duration.ofDays(30)), now.minus(Duration.ofDays(1)))));
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void deniedCertificateIsRefusedUntilItIsAllowedAgain(String provider) throws Exception {
    DenyList denyList = new DenyList();
    start(fixture.requiringClientCertificates(provider), HANDSHAKE_TIMEOUT, denyList);
    KeyAndChain device = fixture.ca.issueDevice("sensor-7");
    DenyList.Entry entry = DenyList.Entry.of(DenyList.Kind.FINGERPRINT, device.certificate());

    denyList.add(entry);
    assertRefused(device);

    denyList.remove(entry);
    try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.2", fixture.ca.certificate(), device)) {
      assertThat(TlsClient.echo(socket, "back")).isEqualTo("back");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void optionalClientCertificateLetsADeviceWithoutOneIn(String provider) throws Exception {
    Map<String, Object> settings = fixture.requiringClientCertificates(provider);
    settings.put("client-auth", "optional");
    start(settings, HANDSHAKE_TIMEOUT);

    try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), null)) {
      assertThat(TlsClient.echo(socket, "anonymous")).isEqualTo("anonymous");
    }
    Accepted accepted = server.next();
    assertThat(accepted.handshakeSucceeds()).isTrue();
    assertThat(CertificateIdentity.peerCertificate(accepted.ssl().engine().getSession())).isEmpty();
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void reloadedCertificateServesNewHandshakesWhileOpenConnectionsKeepTheirs(String provider) throws Exception {
    start(fixture.settings(provider), HANDSHAKE_TIMEOUT);
    String first = CertificateIdentity.serial(fixture.node.certificate());
    try (SSLSocket before = TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), null)) {
      assertThat(TlsClient.echo(before, "one")).isEqualTo("one");

      KeyAndChain renewed = fixture.ca.issueNode("node-1", List.of("localhost", "127.0.0.1"));
      renewed.writePem(fixture.certificate, fixture.privateKey);
      assertThat(tls.reloadIfChanged()).isEqualTo(EdgeTls.Reload.RELOADED);
      assertThat(tls.reloadIfChanged()).isEqualTo(EdgeTls.Reload.UNCHANGED);

      String second = CertificateIdentity.serial(renewed.certificate());
      try (SSLSocket after = TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), null)) {
        assertThat(serial(after)).isEqualTo(second);
        assertThat(TlsClient.echo(after, "two")).isEqualTo("two");
      }
      assertThat(TlsClient.echo(before, "still one")).isEqualTo("still one");
      assertThat(serial(before)).isEqualTo(first);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void unusableReplacementKeepsTheCertificateInUse(String provider) throws Exception {
    start(fixture.settings(provider), HANDSHAKE_TIMEOUT);
    String inUse = CertificateIdentity.serial(fixture.node.certificate());

    Files.writeString(fixture.certificate, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    assertThat(tls.reloadIfChanged()).isEqualTo(EdgeTls.Reload.FAILED);
    assertServes(inUse);

    // A valid certificate whose key is not the one beside it: a rotation half done.
    KeyAndChain other = fixture.ca.issueNode("node-1", List.of("localhost", "127.0.0.1"));
    Files.writeString(fixture.certificate, Pem.text(other.chain()));
    assertThat(tls.reloadIfChanged()).isEqualTo(EdgeTls.Reload.FAILED);
    assertThat(tls.reloadIfChanged()).isEqualTo(EdgeTls.Reload.FAILED);
    assertServes(inUse);

    // The rotation completes.
    Files.writeString(fixture.privateKey, Pem.text(other.privateKey()));
    assertThat(tls.reloadIfChanged()).isEqualTo(EdgeTls.Reload.RELOADED);
    assertServes(CertificateIdentity.serial(other.certificate()));
  }

  @Test
  void checksTheFilesOnItsOwnEveryInterval() throws Exception {
    Map<String, Object> settings = fixture.settings("auto");
    settings.put("reload-check-interval", "100ms");
    start(settings, HANDSHAKE_TIMEOUT);

    KeyAndChain renewed = fixture.ca.issueNode("node-1", List.of("localhost", "127.0.0.1"));
    renewed.writePem(fixture.certificate, fixture.privateKey);
    String second = CertificateIdentity.serial(renewed.certificate());
    await().atMost(Duration.ofSeconds(5))
        .until(() -> CertificateIdentity.serial(tls.certificate()).equals(second));
    assertServes(second);
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void plaintextOnTheTlsPortIsRefusedAndClosed(String provider) throws Exception {
    start(fixture.settings(provider), HANDSHAKE_TIMEOUT);
    try (Socket plain = new Socket(InetAddress.getLoopbackAddress(), server.port())) {
      plain.setSoTimeout(5000);
      OutputStream out = plain.getOutputStream();
      out.write("HELLO this is not TLS\n".getBytes(StandardCharsets.US_ASCII));
      out.flush();

      Accepted accepted = server.next();
      assertThat(accepted.closes()).as("the server closed the connection").isTrue();
      assertThat(accepted.handshakeSucceeds()).isFalse();
      // Netty wraps it, and closes the connection before the pipeline hears of it: the edge's
      // exceptionCaught sees a DecoderException caused by it, after the close.
      await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(accepted.errors())
          .anySatisfy(e -> assertThat(e).hasCauseInstanceOf(NotSslRecordException.class)));
      assertThat(TlsClient.closedByPeer(plain)).isTrue();
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void silentConnectionIsClosedAtTheHandshakeTimeout(String provider) throws Exception {
    start(fixture.settings(provider), Duration.ofMillis(300));
    try (Socket silent = new Socket(InetAddress.getLoopbackAddress(), server.port())) {
      silent.setSoTimeout(5000);
      Accepted accepted = server.next();
      assertThat(accepted.closes()).as("the server closed the connection").isTrue();
      assertThat(accepted.ssl().handshakeFuture().cause()).isInstanceOf(SslHandshakeTimeoutException.class);
      assertThat(TlsClient.closedByPeer(silent)).isTrue();
    }
  }

  @Test
  void zeroHandshakeTimeoutLeavesTheBoundToTheCaller() throws Exception {
    start(fixture.settings("auto"), Duration.ZERO);
    try (Socket silent = new Socket(InetAddress.getLoopbackAddress(), server.port())) {
      Accepted accepted = server.next();
      assertThat(accepted.ssl().getHandshakeTimeoutMillis()).isZero();
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"jdk", "openssl"})
  void clientInitiatedRenegotiationIsRefused(String provider) throws Exception {
    start(fixture.settings(provider), HANDSHAKE_TIMEOUT);
    try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.2", fixture.ca.certificate(), null)) {
      assertThat(TlsClient.echo(socket, "before")).isEqualTo("before");
      Accepted accepted = server.next();

      socket.startHandshake(); // on an established TLS 1.2 connection: a renegotiation
      assertThatThrownBy(() -> TlsClient.echo(socket, "after")).isInstanceOf(IOException.class);
      assertThat(accepted.closes()).as("the server closed the connection").isTrue();
    }
  }

  @Test
  void servesAKeyAndChainFromAPkcs12KeyStore() throws Exception {
    start(fixture.keyStoreSettings("store-secret", "store-secret"), HANDSHAKE_TIMEOUT);

    assertServes(CertificateIdentity.serial(fixture.node.certificate()));
  }

  private void start(Map<String, Object> settings, Duration handshakeTimeout) throws InterruptedException {
    start(settings, handshakeTimeout, new DenyList());
  }

  private void start(Map<String, Object> settings, Duration handshakeTimeout, DenyList denyList)
      throws InterruptedException {
    String provider = (String) settings.get("provider");
    assumeTrue(!provider.equals("openssl") || OpenSsl.isAvailable(), "BoringSSL does not load on this machine");
    tls = EdgeTls.start(TlsFixture.edgeSettings(settings), handshakeTimeout, denyList);
    server = new TlsEchoServer(tls);
  }

  /** A device offering {@code identity} (none when null) does not get through, and the server closes. */
  private void assertRefused(KeyAndChain identity) throws Exception {
    // TLS 1.3 lets the client finish before the server has checked its certificate: the refusal
    // may come at the handshake or at the first read.
    assertThatThrownBy(() -> {
      try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), identity)) {
        TlsClient.echo(socket, "let me in");
      }
    }).isInstanceOf(IOException.class);
    Accepted accepted = server.next();
    assertThat(accepted.handshakeSucceeds()).isFalse();
    assertThat(accepted.closes()).as("the server closed the connection").isTrue();
  }

  /** A new handshake sees the node's certificate with this serial. */
  private void assertServes(String serial) throws Exception {
    try (SSLSocket socket = TlsClient.connect(server.port(), "TLSv1.3", fixture.ca.certificate(), null)) {
      assertThat(serial(socket)).isEqualTo(serial);
    }
  }

  private static String serial(SSLSocket socket) throws IOException {
    return CertificateIdentity.serial((X509Certificate) socket.getSession().getPeerCertificates()[0]);
  }
}
