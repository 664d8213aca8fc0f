package io.berth.node.tls;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** A local CA and a node's PEM files in a directory, and edge TLS settings that point at them. */
final class TlsFixture {

  final Path dir;
  final LocalCa ca;
  final Path caFile;
  final Path certificate;
  final Path privateKey;
  final KeyAndChain node;

  TlsFixture(Path dir) {
    this.dir = dir;
    this.ca = LocalCa.create("Berth test CA");
    this.caFile = dir.resolve("ca.pem");
    ca.write(caFile, dir.resolve("ca-key.pem"));
    this.certificate = dir.resolve("node-1.pem");
    this.privateKey = dir.resolve("node-1-key.pem");
    this.node = ca.issueNode("node-1", List.of("localhost", "127.0.0.1"));
    node.writePem(certificate, privateKey);
  }

  /** TLS on, this node's PEM files, the given provider, no automatic reload. */
  Map<String, Object> settings(String provider) {
    Map<String, Object> s = new HashMap<>();
    s.put("enabled", "on");
    s.put("certificate", certificate.toString());
    s.put("private-key", privateKey.toString());
    s.put("provider", provider);
    s.put("reload-check-interval", "off");
    return s;
  }

  /**
   * This node's key and chain in a PKCS#12 key store written with {@code storePassword}, read
   * with {@code configuredPassword}, instead of the PEM files.
   */
  Map<String, Object> keyStoreSettings(String storePassword, String configuredPassword) {
    Path keyStore = dir.resolve("node-1.p12");
    node.writePkcs12(keyStore, storePassword.toCharArray(), "node-1");
    Map<String, Object> s = settings("auto");
    s.remove("certificate");
    s.remove("private-key");
    s.put("key-store", keyStore.toString());
    s.put("key-store-password", configuredPassword);
    return s;
  }

  /** Client certificates required, issued by this CA. */
  Map<String, Object> requiringClientCertificates(String provider) {
    Map<String, Object> s = settings(provider);
    s.put("client-auth", "required");
    s.put("trust", caFile.toString());
    return s;
  }

  /** The keys under berth.edge.tls, over reference.conf. */
  static Config config(Map<String, Object> tls) {
    Map<String, Object> prefixed = new HashMap<>();
    tls.forEach((k, v) -> prefixed.put("berth.edge.tls." + k, v));
    return ConfigFactory.parseMap(prefixed).withFallback(ConfigFactory.defaultReference()).resolve();
  }

  static EdgeTlsSettings edgeSettings(Map<String, Object> tls) {
    return EdgeTlsSettings.fromConfig(config(tls));
  }
}
