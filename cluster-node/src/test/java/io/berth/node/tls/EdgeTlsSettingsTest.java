package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.handler.ssl.ClientAuth;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The settings' defaults, and the start-up errors an operator sees for a wrong setup. */
class EdgeTlsSettingsTest {

  private static final Duration TIMEOUT = Duration.ofSeconds(5);

  @TempDir
  Path dir;

  @Test
  void referenceConfAsksForTlsWithSafeProtocolDefaults() {
    // On by default: a node given no certificate does not start, saying what to set.
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of()))
        .hasMessageContaining("TLS is enabled (berth.edge.tls.enabled) but the node has no certificate");
    EdgeTlsSettings s = TlsFixture.edgeSettings(Map.of("enabled", "off"));

    assertThat(s.enabled()).isFalse();
    assertThat(s.certificate()).isEmpty();
    assertThat(s.clientAuth()).isEqualTo(ClientAuth.NONE);
    assertThat(s.identity()).isEqualTo(CertificateIdentity.Source.CN);
    assertThat(s.protocols()).containsExactly("TLSv1.3", "TLSv1.2");
    assertThat(s.ciphers()).isEmpty();
    assertThat(s.provider()).isEqualTo(EdgeTlsSettings.Provider.AUTO);
    assertThat(s.reloadCheckInterval()).isEqualTo(Duration.ofSeconds(10));
    assertThatThrownBy(() -> EdgeTls.start(s, TIMEOUT, new DenyList())).hasMessageContaining("enabled is off");
  }

  @Test
  void refusesContradictoryOrIncompleteFiles() {
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "on")))
        .hasMessageContaining("the node has no certificate");
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "on", "certificate", "a.pem")))
        .hasMessageContaining("private-key is not set");
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "on", "certificate", "a.pem",
        "private-key", "a-key.pem", "key-store", "a.p12")))
        .hasMessageContaining("key-store and berth.edge.tls.certificate/private-key are both set");
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "on", "key-store", "a.p12",
        "client-auth", "required")))
        .hasMessageContaining("client-auth = required needs berth.edge.tls.trust");
  }

  @Test
  void refusesUnknownValuesAndOldProtocols() {
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "off", "protocols", List.of("TLSv1.3", "TLSv1.1"))))
        .hasMessageContaining("TLSv1.3 and TLSv1.2 only, got 'TLSv1.1'");
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "off", "client-auth", "yes")))
        .hasMessageContaining("client-auth must be none, optional or required, got 'yes'");
    assertThatThrownBy(() -> TlsFixture.edgeSettings(Map.of("enabled", "off", "provider", "boring")))
        .hasMessageContaining("provider must be auto, openssl or jdk");
    assertThat(TlsFixture.edgeSettings(Map.of("enabled", "off", "reload-check-interval", "off")).reloadCheckInterval()).isZero();
  }

  @Test
  void startNamesAMissingFile() {
    TlsFixture fixture = new TlsFixture(dir);
    Map<String, Object> settings = fixture.settings("auto");
    settings.put("private-key", dir.resolve("nowhere-key.pem").toString());

    assertThatThrownBy(() -> start(settings))
        .hasMessage("berth.edge.tls.private-key: file " + dir.resolve("nowhere-key.pem") + " does not exist");
  }

  @Test
  void startRefusesAKeyThatIsNotTheCertificatesAndAChainInTheWrongOrder() throws Exception {
    TlsFixture fixture = new TlsFixture(dir);
    Map<String, Object> settings = fixture.settings("auto");
    Files.writeString(fixture.privateKey, Pem.text(fixture.ca.issueNode("node-2", List.of("localhost")).privateKey()));

    assertThatThrownBy(() -> start(settings)).hasMessageContaining("does not belong to the certificate CN=node-1");

    fixture.node.writePem(fixture.certificate, fixture.privateKey);
    Files.writeString(fixture.certificate, Pem.text(List.of(fixture.ca.certificate(), fixture.node.certificate())));
    assertThatThrownBy(() -> start(settings))
        .hasMessageContaining("does not belong to the certificate CN=Berth test CA")
        .hasMessageContaining("the node's own certificate comes first");
  }

  @Test
  void startRefusesATrustFileWithoutCertificates() throws Exception {
    TlsFixture fixture = new TlsFixture(dir);
    Map<String, Object> settings = fixture.requiringClientCertificates("auto");
    Files.writeString(fixture.caFile, "");

    assertThatThrownBy(() -> start(settings)).hasMessageContaining("holds no certificate");
  }

  @Test
  void startRefusesAKeyStoreWithTheWrongPassword() {
    Map<String, Object> settings = new TlsFixture(dir).keyStoreSettings("right", "wrong");

    assertThatThrownBy(() -> start(settings)).hasMessageContaining("cannot be read as PKCS#12");
  }

  @Test
  void startRefusesCiphersTheProviderDoesNotHave() {
    TlsFixture fixture = new TlsFixture(dir);
    Map<String, Object> settings = fixture.settings("jdk");
    settings.put("ciphers", List.of("TLS_MADE_UP_WITH_NOTHING"));

    assertThatThrownBy(() -> start(settings)).hasMessageContaining("supports none of [TLS_MADE_UP_WITH_NOTHING]");
  }

  @Test
  void printedSettingsHideTheKeyStorePassword() {
    EdgeTlsSettings s = TlsFixture.edgeSettings(new TlsFixture(dir).keyStoreSettings("store-secret", "store-secret"));

    assertThat(s.toString()).contains("keyStorePassword=***").doesNotContain("store-secret");
  }

  @Test
  void startRefusesANegativeHandshakeTimeout() {
    TlsFixture fixture = new TlsFixture(dir);

    assertThatThrownBy(() -> EdgeTls.start(TlsFixture.edgeSettings(fixture.settings("auto")), Duration.ofSeconds(-1),
        new DenyList())).hasMessageContaining("handshake timeout cannot be negative");
  }

  private static void start(Map<String, Object> settings) {
    EdgeTls.start(TlsFixture.edgeSettings(settings), TIMEOUT, new DenyList()).close();
  }
}
