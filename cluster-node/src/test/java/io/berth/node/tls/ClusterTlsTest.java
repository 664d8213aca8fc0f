package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS between the nodes: who gets a handshake with whom. Engines from two {@link ClusterTls}
 * instances shake hands in memory, as Artery's would over TCP.
 */
class ClusterTlsTest {

  @TempDir
  Path dir;

  private final LocalCa ca = LocalCa.create("Berth cluster test CA");

  @Test
  void twoNodesOfTheCaShakeHandsEachCheckingTheOther() throws Exception {
    try (ClusterTls a = node("a", ca.issueNode("node-1", List.of("127.0.0.1")));
         ClusterTls b = node("b", ca.issueNode("node-2", List.of("127.0.0.1")))) {
      SSLEngine client = a.createClientSSLEngine("127.0.0.1", 2552);
      SSLEngine server = b.createServerSSLEngine("127.0.0.1", 2552);
      handshake(client, server);
      assertThat(((X509Certificate) server.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName())
          .isEqualTo("CN=node-1");
      assertThat(((X509Certificate) client.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName())
          .isEqualTo("CN=node-2");
      assertThat(client.getSession().getProtocol()).isEqualTo("TLSv1.3");
    }
  }

  @Test
  void aNodeOfAnotherCaIsRefusedBothWays() throws Exception {
    LocalCa other = LocalCa.create("Someone else's CA");
    try (ClusterTls member = node("m", ca.issueNode("node-1", List.of("127.0.0.1")));
         ClusterTls stranger = nodeTrusting("s", other.issueNode("node-9", List.of("127.0.0.1")), ca)) {
      assertThatThrownBy(() -> handshake(stranger.createClientSSLEngine("127.0.0.1", 2551),
          member.createServerSSLEngine("127.0.0.1", 2551))).isInstanceOf(SSLException.class);
      assertThatThrownBy(() -> handshake(member.createClientSSLEngine("127.0.0.1", 2559),
          stranger.createServerSSLEngine("127.0.0.1", 2559))).isInstanceOf(SSLException.class);
    }
  }

  /** A device's certificate from the cluster's own CA is trusted for the device port, not here. */
  @Test
  void aDevicesCertificateOfTheSameCaIsNotANodes() throws Exception {
    X509Certificate[] device = ca.issueDevice("sensor-7").chain().toArray(X509Certificate[]::new);
    X509Certificate[] node = ca.issueNode("node-1", List.of("127.0.0.1")).chain().toArray(X509Certificate[]::new);
    ClusterTls.NodeTrustManager trust = new ClusterTls.NodeTrustManager(List.of(ca.certificate()));

    trust.checkClientTrusted(node, "UNKNOWN");
    trust.checkServerTrusted(node, "ECDHE_ECDSA");
    assertThatThrownBy(() -> trust.checkClientTrusted(device, "UNKNOWN"))
        .isInstanceOf(CertificateException.class).hasMessageContaining("names no node");
    assertThat(ClusterTls.nodeName(node[0])).contains("node-1");
    assertThat(ClusterTls.nodeName(device[0])).isEmpty();
  }

  @Test
  void aNodeWhoseOwnCertificateNamesNoNodeDoesNotStart() throws Exception {
    assertThatThrownBy(() -> node("d", ca.issueDevice("sensor-7")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("does not name a node").hasMessageContaining("berth.cluster.tls.certificate");
  }

  @Test
  void settingsWithoutFilesSayWhatToSetAndOffNeedsNone() {
    assertThatThrownBy(() -> new ClusterTlsSettings(true, Optional.empty(), Optional.empty(), Optional.empty(),
        Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("berth.cluster.tls.certificate is not set")
        .hasMessageContaining("BERTH_CLUSTER_TLS=false");
    assertThat(new ClusterTlsSettings(false, Optional.empty(), Optional.empty(), Optional.empty(), Duration.ZERO)
        .enabled()).isFalse();
  }

  /** A rotated certificate serves new connections without a restart; unusable files change nothing. */
  @Test
  void changedFilesServeNewConnectionsAndBrokenOnesKeepThePrevious() throws Exception {
    try (ClusterTls a = node("a", ca.issueNode("node-1", List.of("127.0.0.1")));
         ClusterTls b = node("b", ca.issueNode("node-2", List.of("127.0.0.1")))) {
      ca.issueNode("node-1-rotated", List.of("127.0.0.1")).writePem(dir.resolve("a.pem"), dir.resolve("a-key.pem"));
      assertThat(a.reloadIfChanged()).isTrue();
      assertThat(a.certificate().getSubjectX500Principal().getName()).isEqualTo("CN=node-1-rotated");
      SSLEngine server = b.createServerSSLEngine("127.0.0.1", 2552);
      handshake(a.createClientSSLEngine("127.0.0.1", 2552), server);
      assertThat(((X509Certificate) server.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName())
          .isEqualTo("CN=node-1-rotated");

      Files.writeString(dir.resolve("a-key.pem"), "not a key");
      assertThat(a.reloadIfChanged()).isFalse();
      assertThat(a.certificate().getSubjectX500Principal().getName()).isEqualTo("CN=node-1-rotated");
    }
  }

  private ClusterTls node(String name, KeyAndChain identity) {
    return nodeTrusting(name, identity, ca);
  }

  private ClusterTls nodeTrusting(String name, KeyAndChain identity, LocalCa trusted) {
    Path certificate = dir.resolve(name + ".pem");
    Path key = dir.resolve(name + "-key.pem");
    Path trust = dir.resolve(name + "-trust.pem");
    identity.writePem(certificate, key);
    trusted.write(trust, dir.resolve(name + "-ca-key.pem"));
    return new ClusterTls(new ClusterTlsSettings(true, Optional.of(certificate), Optional.of(key), Optional.of(trust),
        Duration.ZERO));
  }

  /** Runs both engines' handshake to its end, in memory; a refusal is the SSLException either throws. */
  private static void handshake(SSLEngine client, SSLEngine server) throws SSLException {
    int size = Math.max(client.getSession().getPacketBufferSize(), server.getSession().getPacketBufferSize());
    ByteBuffer toServer = ByteBuffer.allocate(size * 4);
    ByteBuffer toClient = ByteBuffer.allocate(size * 4);
    ByteBuffer sink = ByteBuffer.allocate(client.getSession().getApplicationBufferSize() * 4);
    ByteBuffer empty = ByteBuffer.allocate(0);
    client.beginHandshake();
    server.beginHandshake();
    for (int step = 0; step < 200; step++) {
      boolean clientDone = done(client);
      boolean serverDone = done(server);
      if (clientDone && serverDone) {
        return;
      }
      advance(client, empty, toServer, toClient, sink);
      advance(server, empty, toClient, toServer, sink);
    }
    throw new AssertionError("the handshake did not finish in 200 steps");
  }

  private static boolean done(SSLEngine engine) {
    HandshakeStatus s = engine.getHandshakeStatus();
    return s == HandshakeStatus.NOT_HANDSHAKING || s == HandshakeStatus.FINISHED;
  }

  private static void advance(SSLEngine engine, ByteBuffer empty, ByteBuffer out, ByteBuffer in, ByteBuffer sink)
      throws SSLException {
    switch (engine.getHandshakeStatus()) {
      case NEED_WRAP -> engine.wrap(empty, out);
      case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
        in.flip();
        SSLEngineResult r = engine.unwrap(in, sink);
        in.compact();
        sink.clear();
        if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
          throw new SSLException("the peer closed the handshake");
        }
      }
      case NEED_TASK -> {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
          task.run();
        }
      }
      default -> { }
    }
  }
}
