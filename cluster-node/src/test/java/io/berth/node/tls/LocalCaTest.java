package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalCaTest {

  private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
  private static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
  private static final int SAN_DNS = 2;
  private static final int SAN_URI = 6;
  private static final int SAN_IP = 7;

  @TempDir
  Path dir;

  @Test
  void caIsASelfSignedCaForTenYearsThatOnlySignsCertificatesAndCrls() throws Exception {
    X509Certificate ca = LocalCa.create("Berth test CA").certificate();

    ca.verify(ca.getPublicKey());
    assertThat(ca.getSubjectX500Principal().getName()).isEqualTo("CN=Berth test CA");
    assertThat(ca.getBasicConstraints()).isGreaterThanOrEqualTo(0);
    boolean[] usage = ca.getKeyUsage();
    assertThat(usage[5]).as("keyCertSign").isTrue();
    assertThat(usage[6]).as("cRLSign").isTrue();
    assertThat(usage[0]).as("digitalSignature").isFalse();
    assertThat(ca.getPublicKey().getAlgorithm()).isEqualTo("EC");
    assertThat(Duration.between(Instant.now(), ca.getNotAfter().toInstant())).isGreaterThan(Duration.ofDays(3649));
  }

  @Test
  void nodeCertificateChainsToTheCaNamesItsHostsAndServesBothSides() throws Exception {
    LocalCa ca = LocalCa.create("Berth test CA");
    KeyAndChain node = ca.issueNode("node-1", List.of("localhost", "127.0.0.1", "node-1.berth.example", "::1"));
    X509Certificate leaf = node.certificate();

    assertThat(node.chain()).containsExactly(leaf, ca.certificate());
    assertValidPath(leaf, ca.certificate());
    assertThat(leaf.getSubjectX500Principal().getName()).isEqualTo("CN=node-1");
    assertThat(leaf.getSubjectAlternativeNames()).containsExactlyInAnyOrder(
        List.of(SAN_URI, "urn:berth:node:node-1"),
        List.of(SAN_DNS, "localhost"), List.of(SAN_IP, "127.0.0.1"), List.of(SAN_DNS, "node-1.berth.example"),
        List.of(SAN_IP, "0:0:0:0:0:0:0:1"));
    assertThat(leaf.getExtendedKeyUsage()).containsExactlyInAnyOrder(SERVER_AUTH, CLIENT_AUTH);
    assertThat(leaf.getBasicConstraints()).isEqualTo(-1);
    assertThat(leaf.getKeyUsage()[0]).as("digitalSignature").isTrue();
    assertThat(leaf.getPublicKey().getAlgorithm()).isEqualTo("EC");
    assertThat(Duration.between(Instant.now(), leaf.getNotAfter().toInstant()))
        .isBetween(Duration.ofDays(729), Duration.ofDays(730));
  }

  @Test
  void deviceCertificateNamesTheDeviceForClientAuthenticationOnly() throws Exception {
    LocalCa ca = LocalCa.create("Berth test CA");
    X509Certificate leaf = ca.issueDevice("sensor-7").certificate();

    assertValidPath(leaf, ca.certificate());
    assertThat(leaf.getSubjectX500Principal().getName()).isEqualTo("CN=sensor-7");
    assertThat(leaf.getSubjectAlternativeNames()).containsExactlyInAnyOrder(
        List.of(SAN_URI, "urn:berth:device:sensor-7"), List.of(SAN_DNS, "sensor-7"));
    assertThat(leaf.getExtendedKeyUsage()).containsExactly(CLIENT_AUTH);
  }

  @Test
  void deviceIdThatIsNoHostNameGetsNoDnsName() throws Exception {
    X509Certificate leaf = LocalCa.create("Berth test CA").issueDevice("meter_12").certificate();

    assertThat(leaf.getSubjectAlternativeNames()).containsExactly(List.of(SAN_URI, "urn:berth:device:meter_12"));
  }

  @Test
  void refusesInvalidDeviceIdsAndHosts() {
    LocalCa ca = LocalCa.create("Berth test CA");

    assertThatThrownBy(() -> ca.issueDevice("has space")).hasMessageContaining("not a valid device id");
    assertThatThrownBy(() -> ca.issueDevice("x".repeat(65))).hasMessageContaining("not a valid device id");
    assertThatThrownBy(() -> ca.issueNode("node-1", List.of("bad_host!"))).hasMessageContaining("bad_host!");
    assertThatThrownBy(() -> ca.issueNode("node-1", List.of())).hasMessageContaining("at least one host");
  }

  @Test
  void caLoadedFromItsFilesIssuesCertificatesTheOriginalVerifies() throws Exception {
    LocalCa original = LocalCa.create("Berth test CA");
    original.write(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));

    LocalCa loaded = LocalCa.load(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));

    assertThat(loaded.certificate()).isEqualTo(original.certificate());
    assertValidPath(loaded.issueDevice("sensor-7").certificate(), original.certificate());
  }

  @Test
  void writesTheChainLeafFirstAndAnOwnerOnlyPkcs8Key() throws Exception {
    LocalCa ca = LocalCa.create("Berth test CA");
    KeyAndChain node = ca.issueNode("node-1", List.of("localhost"));
    Path chainFile = dir.resolve("node-1.pem");
    Path keyFile = dir.resolve("node-1-key.pem");

    node.writePem(chainFile, keyFile);

    // Read back with the JDK's own parser, not the one that wrote them.
    List<Certificate> chain;
    try (var in = Files.newInputStream(chainFile)) {
      chain = List.copyOf(CertificateFactory.getInstance("X.509").generateCertificates(in));
    }
    assertThat(chain).containsExactly(node.certificate(), ca.certificate());
    String keyText = Files.readString(keyFile, StandardCharsets.US_ASCII);
    assertThat(keyText).startsWith("-----BEGIN PRIVATE KEY-----");
    PrivateKey key = Pem.privateKey(keyText.getBytes(StandardCharsets.US_ASCII), "key");
    assertThat(key.getEncoded()).isEqualTo(node.privateKey().getEncoded());
    if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
      assertThat(Files.getPosixFilePermissions(keyFile)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
      assertThat(Files.getPosixFilePermissions(chainFile)).isEqualTo(PosixFilePermissions.fromString("rw-r--r--"));
    }
    try (var files = Files.list(dir)) {
      assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("node-1.pem", "node-1-key.pem");
    }
  }

  @Test
  void writesAPkcs12KeyStoreOfTheKeyAndChain() throws Exception {
    KeyAndChain node = LocalCa.create("Berth test CA").issueNode("node-1", List.of("localhost"));
    Path file = dir.resolve("node-1.p12");

    node.writePkcs12(file, "store-secret".toCharArray(), "node-1");

    KeyStore store = KeyStore.getInstance("PKCS12");
    try (var in = Files.newInputStream(file)) {
      store.load(in, "store-secret".toCharArray());
    }
    assertThat(store.getKey("node-1", "store-secret".toCharArray()).getEncoded())
        .isEqualTo(node.privateKey().getEncoded());
    assertThat(store.getCertificateChain("node-1")).containsExactly(node.chain().toArray(Certificate[]::new));
  }

  @Test
  void printedKeyAndChainNamesTheCertificatesOnly() {
    KeyAndChain node = LocalCa.create("Berth test CA").issueNode("node-1", List.of("localhost"));

    assertThat(node).hasToString("KeyAndChain[CN=node-1, CN=Berth test CA]");
  }

  @Test
  void refusesAKeyThatIsNotTheCertificates() {
    LocalCa ca = LocalCa.create("Berth test CA");
    KeyAndChain a = ca.issueDevice("a");
    KeyAndChain b = ca.issueDevice("b");

    assertThatThrownBy(() -> new KeyAndChain(a.privateKey(), b.chain()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("does not belong to the certificate CN=b");
  }

  @Test
  void loadRefusesACertificateThatIsNoCaAndAKeyOfAnotherCa() {
    LocalCa ca = LocalCa.create("Berth test CA");
    ca.issueNode("node-1", List.of("localhost")).writePem(dir.resolve("node.pem"), dir.resolve("node-key.pem"));
    ca.write(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));
    LocalCa.create("Another CA").write(dir.resolve("other.pem"), dir.resolve("other-key.pem"));

    assertThatThrownBy(() -> LocalCa.load(dir.resolve("node.pem"), dir.resolve("node-key.pem")))
        .hasMessageContaining("is not a CA certificate");
    assertThatThrownBy(() -> LocalCa.load(dir.resolve("ca.pem"), dir.resolve("other-key.pem")))
        .hasMessageContaining("does not belong");
    assertThatThrownBy(() -> LocalCa.load(dir.resolve("missing.pem"), dir.resolve("ca-key.pem")))
        .hasMessageContaining("does not exist");
  }

  /** The JDK's PKIX validation, as a TLS peer would run it (without revocation lists). */
  private static void assertValidPath(X509Certificate leaf, X509Certificate ca) throws Exception {
    PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(ca, null)));
    parameters.setRevocationEnabled(false);
    CertPathValidator.getInstance("PKIX")
        .validate(CertificateFactory.getInstance("X.509").generateCertPath(List.of(leaf)), parameters);
  }
}
