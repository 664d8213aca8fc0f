package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.berth.node.tls.CertificateIdentity.Identified;
import io.berth.node.tls.CertificateIdentity.Refused;
import io.berth.node.tls.CertificateIdentity.Source;
import java.io.InputStream;
import java.security.cert.X509Certificate;
import java.util.List;
import org.junit.jupiter.api.Test;

class CertificateIdentityTest {

  /**
   * Made by openssl, not by Berth: {@code openssl req -x509 -newkey ec -subj "/O=Fleet/CN=not a
   * device id!" -addext "subjectAltName=DNS:dev-9.fleet.example,URI:spiffe://fleet.example/device/dev-9"}.
   * Its fingerprint and serial are as {@code openssl x509 -fingerprint -sha256 -serial} printed them.
   */
  private static final String OPENSSL_FINGERPRINT =
      "CA:62:1C:B8:B2:1E:64:FF:8F:9F:FC:7F:BE:10:15:30:3A:04:20:F1:D8:EB:25:E0:0E:D5:8A:DF:CC:DD:15:B2";
  private static final String OPENSSL_SERIAL = "9164F3041C6183D6ECA640FFBDC78E4B1F5C79";

  @Test
  void fingerprintAndSerialAreOpensslsInLowercaseWithoutColons() throws Exception {
    X509Certificate certificate = opensslCertificate();

    assertThat(CertificateIdentity.fingerprint(certificate))
        .isEqualTo(OPENSSL_FINGERPRINT.replace(":", "").toLowerCase())
        .hasSize(64);
    assertThat(CertificateIdentity.serial(certificate)).isEqualTo(OPENSSL_SERIAL.toLowerCase());
  }

  @Test
  void readsTheDeviceIdWhereTheSettingSays() throws Exception {
    X509Certificate local = LocalCa.create("Berth test CA").issueDevice("sensor-7").certificate();
    X509Certificate openssl = opensslCertificate();

    for (Source source : Source.values()) {
      assertThat(CertificateIdentity.of(local, source)).isEqualTo(new Identified("sensor-7",
          CertificateIdentity.fingerprint(local), CertificateIdentity.serial(local)));
    }
    assertThat(CertificateIdentity.of(openssl, Source.SAN_URI))
        .isInstanceOfSatisfying(Identified.class, id -> assertThat(id.deviceId()).isEqualTo("dev-9"));
    assertThat(CertificateIdentity.of(openssl, Source.SAN_DNS))
        .isInstanceOfSatisfying(Identified.class, id -> assertThat(id.deviceId()).isEqualTo("dev-9.fleet.example"));
  }

  @Test
  void refusesANameThatIsNoDeviceIdOrIsMissing() throws Exception {
    assertThat(CertificateIdentity.of(opensslCertificate(), Source.CN)).isEqualTo(new Refused(
        "the client certificate's cn 'not a device id!' is not a valid device id (1 to 64 characters of A-Z a-z 0-9 . _ -)"));

    // An id with "_" is no host name: a device certificate of Berth's CA then has no DNS name.
    X509Certificate underscore = LocalCa.create("Berth test CA").issueDevice("meter_12").certificate();
    assertThat(CertificateIdentity.of(underscore, Source.SAN_DNS))
        .isEqualTo(new Refused("the client certificate has no DNS subject alternative name"));

    // A node's certificate of the same CA is no device's, wherever the id is read from.
    X509Certificate node = LocalCa.create("Berth test CA").issueNode("node-1", List.of("localhost")).certificate();
    for (Source source : Source.values()) {
      assertThat(CertificateIdentity.of(node, source))
          .isEqualTo(new Refused("the client certificate is node node-1's, not a device's"));
    }
  }

  @Test
  void aUrisDeviceIdIsItsLastSegment() {
    assertThat(CertificateIdentity.lastSegment("urn:berth:device:d-1")).isEqualTo("d-1");
    assertThat(CertificateIdentity.lastSegment("spiffe://fleet.example/device/d-1")).isEqualTo("d-1");
    assertThat(CertificateIdentity.lastSegment("spiffe://fleet.example/device/")).isEmpty();
    assertThat(CertificateIdentity.lastSegment("d-1")).isEqualTo("d-1");
  }

  @Test
  void sourceComesFromItsConfigValue() {
    assertThat(Source.fromConfig("san-uri", "k")).isEqualTo(Source.SAN_URI);
    assertThatThrownBy(() -> Source.fromConfig("subject", "berth.edge.tls.identity"))
        .hasMessage("berth.edge.tls.identity must be cn, san-dns or san-uri, got 'subject'");
  }

  private static X509Certificate opensslCertificate() throws Exception {
    try (InputStream in = CertificateIdentityTest.class.getResourceAsStream("/tls/openssl-spiffe.pem")) {
      return Pem.certificates(in.readAllBytes(), "openssl-spiffe.pem").get(0);
    }
  }
}
