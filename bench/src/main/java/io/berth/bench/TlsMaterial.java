package io.berth.bench;

import com.typesafe.config.ConfigUtil;
import io.berth.node.tls.LocalCa;
import io.berth.protocol.ClientTls;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.net.ssl.SSLException;

/**
 * The tls scenario's certificates, and the TLS provider of every end it sets up. The files come
 * from a {@link LocalCa} made for the run and are named as {@code CertCli init --nodes 1} names
 * them: {@code ca.pem}, {@code node-1.pem} (the node's certificate, then the CA's) and {@code
 * node-1-key.pem}; the node's certificate names localhost and 127.0.0.1, so one file serves every
 * server of the run, Mosquitto included.
 *
 * <p>The provider is {@code BERTH_BENCH_TLS_PROVIDER} ({@code openssl} or {@code jdk}), by default
 * what a node's {@code auto} picks: BoringSSL where its native library loads. It is set by name on
 * every node (so a node that cannot have it does not start) and used by the harness's own TLS
 * clients; the reference client, {@code DeviceClient}, always uses the JDK's.
 *
 * @param ca the CA's certificate, what the reference client trusts
 * @param chain the node's certificate chain
 * @param key the node's private key (PKCS#8, readable by its owner only)
 * @param provider BoringSSL ({@link SslProvider#OPENSSL}) or the JDK's
 */
record TlsMaterial(Path ca, Path chain, Path key, SslProvider provider) {

  /** Writes a fresh CA and node certificate into {@code dir} and picks the provider. */
  static TlsMaterial create(Path dir) throws IOException {
    SslProvider provider = chooseProvider(BenchMain.env("BERTH_BENCH_TLS_PROVIDER", "auto"));
    Files.createDirectories(dir);
    LocalCa ca = LocalCa.create("Berth bench CA");
    TlsMaterial material = new TlsMaterial(dir.resolve("ca.pem"), dir.resolve("node-1.pem"),
        dir.resolve("node-1-key.pem"), provider);
    ca.write(material.ca(), dir.resolve("ca-key.pem"));
    ca.issueNode("node-1", List.of("localhost", "127.0.0.1")).writePem(material.chain(), material.key());
    return material;
  }

  static SslProvider chooseProvider(String setting) {
    return switch (setting.toLowerCase(Locale.ROOT)) {
      case "auto" -> OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK;
      case "jdk" -> SslProvider.JDK;
      case "openssl" -> {
        if (!OpenSsl.isAvailable()) {
          throw new IllegalStateException("BERTH_BENCH_TLS_PROVIDER=openssl, but BoringSSL does not load here: "
              + OpenSsl.unavailabilityCause());
        }
        yield SslProvider.OPENSSL;
      }
      default -> throw new IllegalArgumentException("BERTH_BENCH_TLS_PROVIDER must be auto, openssl or jdk, got '"
          + setting + "'");
    };
  }

  /** The provider as the node's {@code berth.edge.tls.provider} names it: openssl or jdk. */
  String providerName() {
    return provider == SslProvider.JDK ? "jdk" : "openssl";
  }

  /** Settings that turn an in-process node's edge ({@link LocalCluster}) to TLS with these files. */
  String clusterOverrides() {
    return "berth.edge.tls.enabled = on\n"
        + "berth.edge.tls.certificate = " + ConfigUtil.quoteString(chain.toString()) + "\n"
        + "berth.edge.tls.private-key = " + ConfigUtil.quoteString(key.toString()) + "\n"
        + "berth.edge.tls.provider = " + providerName() + "\n";
  }

  /** The same for a node in a JVM of its own ({@link NodeProcess}), through its environment. */
  Map<String, String> nodeEnvironment() {
    return Map.of("BERTH_EDGE_TLS", "true", "BERTH_EDGE_TLS_CERTIFICATE", chain.toString(),
        "BERTH_EDGE_TLS_PRIVATE_KEY", key.toString(), "BERTH_EDGE_TLS_PROVIDER", providerName());
  }

  /**
   * The harness's own TLS clients ({@link IdleClients}), TLS 1.3 and 1.2 as a node serves them.
   * They take the server's certificate without checking it. A device checks it, but that is the
   * device's work, not the server's, which is what these clients measure: with BoringSSL the check
   * is the JDK's (the chain's ECDSA signatures verified in Java), and it cost the harness about 1
   * ms per handshake, twice what Mosquitto spends on a whole connect, so on two cores the clients
   * would set the pace. The handshake is the same for the server either way.
   */
  SslContext clientContext() throws SSLException {
    return SslContextBuilder.forClient().sslProvider(provider).trustManager(InsecureTrustManagerFactory.INSTANCE)
        .protocols("TLSv1.3", "TLSv1.2").endpointIdentificationAlgorithm(null).build();
  }

  /** The reference client's TLS: the JDK's, trusting the CA and checking the node's name. */
  ClientTls deviceClientTls() {
    return ClientTls.trusting(ca);
  }
}
