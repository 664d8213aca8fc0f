package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.tls.LocalCa;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * HTTPS on the management port (docs/operator-access.md#https), on a node with PostgreSQL: a
 * client trusting the node's CA is served, with a key; plain HTTP is not; a certificate replaced
 * on disk serves the next connections without a restart.
 */
class ManagementHttpsIT {

  @TempDir
  Path dir;

  @Test
  void operatorsReachTheNodeOverHttpsOnlyAndARotatedCertificateServesNewConnections() throws Exception {
    LocalCa ca = LocalCa.create("Berth management test CA");
    ca.write(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));
    ca.issueNode("management-1", List.of("localhost", "127.0.0.1")).writePem(dir.resolve("node.pem"),
        dir.resolve("node-key.pem"));
    try (TestNodes nodes = new TestNodes()) {
      TestNodes.Node node = nodes.startNode("""
          berth.management.tls {
            enabled = on
            certificate = "%s"
            private-key = "%s"
            reload-check-interval = 1s
          }
          """.formatted(dir.resolve("node.pem"), dir.resolve("node-key.pem")));
      String https = "https://127.0.0.1:" + node.managementPort();
      HttpClient client = trusting(ca.certificate());
      HttpProbe probe = HttpProbe.trusting(dir.resolve("ca.pem"), TestNodes.ADMIN_KEY);
      await().atMost(Duration.ofSeconds(60)).until(() -> probe.fetch(https + "/ready").status() == 200);

      assertThat(probe.fetch(https + "/api/nodes").status()).isEqualTo(200);
      assertThat(HttpProbe.trusting(dir.resolve("ca.pem"), null).fetch(https + "/api/nodes").status())
          .as("without a key").isEqualTo(401);
      assertThat(HttpProbe.get("http://127.0.0.1:" + node.managementPort() + "/ready").status())
          .as("plain HTTP").isNotEqualTo(200);
      assertThat(served(client, https)).isEqualTo("CN=management-1");

      ca.issueNode("management-1-rotated", List.of("localhost", "127.0.0.1")).writePem(dir.resolve("node.pem"),
          dir.resolve("node-key.pem"));
      await().atMost(Duration.ofSeconds(30)).until(() -> served(trusting(ca.certificate()), https)
          .equals("CN=management-1-rotated"));
    }
  }

  /** The subject of the certificate a new connection is served. */
  private static String served(HttpClient client, String https) throws Exception {
    HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(https + "/alive")).build(),
        HttpResponse.BodyHandlers.ofString());
    X509Certificate peer = (X509Certificate) r.sslSession().orElseThrow().getPeerCertificates()[0];
    return peer.getSubjectX500Principal().getName();
  }

  /** A client of its own, so that each call of {@link #served} may open a new connection. */
  private static HttpClient trusting(X509Certificate ca) throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("ca", ca);
    TrustManagerFactory managers = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    managers.init(trust);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, managers.getTrustManagers(), null);
    return HttpClient.newBuilder().sslContext(context).connectTimeout(Duration.ofSeconds(5)).build();
  }
}
