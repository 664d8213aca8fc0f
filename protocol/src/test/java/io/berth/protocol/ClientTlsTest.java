package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS settings that cannot work are refused when the client is built, with the file and the fix
 * named, rather than discovered as failed handshakes on every reconnect.
 */
class ClientTlsTest {

  @TempDir
  static Path dir;
  private static TestPki ca;
  private static TestPki.Issued ecDevice;
  private static TestPki.Issued rsaDevice;

  @BeforeAll
  static void issueCertificates() throws Exception {
    ca = TestPki.create(dir, "settings-ca");
    ecDevice = ca.device("ec-device", "EC");
    rsaDevice = ca.device("rsa-device", "RSA");
  }

  private static DeviceClient.Builder client(ClientTls tls) {
    return DeviceClient.builder().address("127.0.0.1", 7000).deviceId("d1").tls(tls);
  }

  @Test
  void aPkcs8KeyOfEitherAlgorithmIsReadAndReplacesTheToken() {
    assertThatCode(() -> client(ClientTls.trusting(ca.caPem())
        .withClientCertificate(ecDevice.certificatePem(), ecDevice.keyPem())).build()).doesNotThrowAnyException();
    assertThatCode(() -> client(ClientTls.trusting(ca.caPem())
        .withClientCertificate(rsaDevice.certificatePem(), rsaDevice.keyPem())).build()).doesNotThrowAnyException();
  }

  @Test
  void aKeyInTheTraditionalOpenSslFormatIsRefusedWithTheCommandThatConvertsIt() throws Exception {
    Path traditional = dir.resolve("traditional-key.pem");
    TestPki.writePem(traditional, ecDevice.key());
    assertThat(Files.readString(traditional)).contains("BEGIN EC PRIVATE KEY");
    assertThatThrownBy(() -> client(ClientTls.jdkTrust().withClientCertificate(ecDevice.certificatePem(), traditional))
        .build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(traditional.toString())
        .hasMessageContaining("not PKCS#8")
        .hasMessageContaining("openssl pkcs8 -topk8 -nocrypt");
  }

  @Test
  void aKeyThatIsNotTheCertificatesIsRefused() {
    assertThatThrownBy(() -> client(ClientTls.jdkTrust()
        .withClientCertificate(ecDevice.certificatePem(), rsaDevice.keyPem())).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("the key in " + rsaDevice.keyPem() + " does not belong to the certificate in "
            + ecDevice.certificatePem());
  }

  @Test
  void aMissingOrForeignCaFileIsRefusedNamingIt() throws Exception {
    Path missing = dir.resolve("missing.pem");
    assertThatThrownBy(() -> client(ClientTls.trusting(missing)).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("cannot read the CA file " + missing);
    assertThatThrownBy(() -> client(ClientTls.trusting(ecDevice.keyPem())).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("the CA file " + ecDevice.keyPem());
  }

  @Test
  void withoutTokenSecretOrClientCertificateTheClientCannotBeBuilt() {
    assertThatThrownBy(() -> client(ClientTls.PLAINTEXT).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a token, a secret or a client certificate is required");
  }

  @Test
  void settingsThatContradictEachOtherAreRefused() {
    assertThatThrownBy(() -> ClientTls.PLAINTEXT.withClientCertificate(ecDevice.certificatePem(), ecDevice.keyPem()))
        .hasMessageContaining("needs TLS");
    assertThatThrownBy(() -> new ClientTls(true, List.of(), ecDevice.certificatePem(), null, List.of("TLSv1.3"), true))
        .hasMessageContaining("needs its private key");
    assertThatThrownBy(() -> ClientTls.jdkTrust().withProtocols(List.of("TLSv1.1")))
        .hasMessageContaining("unsupported TLS version 'TLSv1.1'");
  }
}
