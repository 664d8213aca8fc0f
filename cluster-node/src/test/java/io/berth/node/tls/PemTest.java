package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPrivateKey;
import java.util.List;
import org.junit.jupiter.api.Test;

/** PEM as openssl writes it (the fixtures in tls/ were made with openssl 3), not only as Berth does. */
class PemTest {

  @Test
  void readsOpensslKeysInPkcs8AndInTheEcForm() throws Exception {
    X509Certificate certificate = Pem.certificates(fixture("openssl-spiffe.pem"), "certificate").get(0);
    PrivateKey pkcs8 = Pem.privateKey(fixture("openssl-spiffe-key-pkcs8.pem"), "pkcs8");
    PrivateKey sec1 = Pem.privateKey(fixture("openssl-spiffe-key-sec1.pem"), "sec1");

    // The EC form carries the curve twice, so the encodings differ; the secret is the same.
    assertThat(((ECPrivateKey) sec1).getS()).isEqualTo(((ECPrivateKey) pkcs8).getS());
    assertThat(new KeyAndChain(sec1, List.of(certificate)).certificate()).isEqualTo(certificate);
  }

  @Test
  void refusesAnEncryptedKeyAndWhatIsNoKeyOrCertificate() throws Exception {
    assertThatThrownBy(() -> Pem.privateKey(fixture("openssl-spiffe-key-encrypted.pem"), "node-key.pem"))
        .hasMessageStartingWith("node-key.pem holds an encrypted private key");
    assertThatThrownBy(() -> Pem.privateKey(fixture("openssl-spiffe.pem"), "node-key.pem"))
        .hasMessage("node-key.pem holds a X509CertificateHolder where a private key (BEGIN PRIVATE KEY) is expected");
    assertThatThrownBy(() -> Pem.certificates(fixture("openssl-spiffe-key-pkcs8.pem"), "node.pem"))
        .hasMessageContaining("node.pem holds a PrivateKeyInfo where only certificates");
    assertThatThrownBy(() -> Pem.certificates("no PEM here".getBytes(StandardCharsets.US_ASCII), "node.pem"))
        .hasMessage("node.pem holds no certificate (BEGIN CERTIFICATE)");
  }

  private static byte[] fixture(String name) throws IOException {
    try (InputStream in = PemTest.class.getResourceAsStream("/tls/" + name)) {
      return in.readAllBytes();
    }
  }
}
