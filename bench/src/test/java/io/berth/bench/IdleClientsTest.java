package io.berth.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.TestDatabase;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tls scenario's clients on real loopback connections: plaintext Berth against the raw-TCP
 * edge, TLS Berth against a node serving TLS with the run's certificates, MQTT over TLS against
 * Mosquitto (where it is installed), and a TLS client on a plaintext port.
 */
class IdleClientsTest {

  private static final byte[] SECRET = LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8);
  private static final Duration LIMIT = Duration.ofSeconds(30);
  private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

  @TempDir
  Path dir;

  @Test
  void welcomesEveryPlaintextDeviceAndHoldsItUntilClosed() throws Exception {
    try (RawEdge edge = RawEdge.start(SECRET, 0);
        IdleClients clients = new IdleClients(IdleClients.berthHello(SECRET, Duration.ofHours(1)), null)) {
      IdleDevices.Opening opening = clients.open(new InetSocketAddress("127.0.0.1", edge.port()), "plain", 40, 8,
          LIMIT, "plain", QUIET);

      assertThat(opening.opened()).isEqualTo(40);
      assertThat(opening.failed()).isZero();
      assertThat(opening.connectsPerSecond()).isPositive();
      assertThat(clients.dropped()).isZero();
      assertThat(clients.session()).isNull();
    }
  }

  @Test
  void welcomesEveryDeviceOverTlsOnANodeServingTheRunsCertificate() throws Exception {
    TlsMaterial tls = TlsMaterial.create(dir);
    DatabaseSettings db = TestDatabase.createScratchDatabase();
    try (LocalCluster node = new LocalCluster(db, 1, tls.clusterOverrides());
        IdleClients clients = new IdleClients(IdleClients.berthHello(SECRET, Duration.ofHours(1)),
            tls.clientContext())) {
      IdleDevices.Opening opening = clients.open(node.edges().get(0), "tls", 20, 8, LIMIT, "tls", QUIET);

      assertThat(opening.opened()).as("first failure: %s", opening.firstFailure()).isEqualTo(20);
      assertThat(opening.failed()).isZero();
      assertThat(clients.session()).startsWith("TLSv1.3 ");
    } finally {
      TestDatabase.dropDatabase(db);
    }
  }

  @Test
  void connectsMqttClientsOverTlsToMosquitto() throws Exception {
    assumeTrue(mosquittoInstalled(), "mosquitto is not installed");
    TlsMaterial tls = TlsMaterial.create(dir);
    try (Mosquitto broker = Mosquitto.startTls(dir, tls.chain(), tls.key());
        IdleClients clients = new IdleClients(IdleClients.mqttConnect(Duration.ofMinutes(10)),
            tls.clientContext())) {
      IdleDevices.Opening opening = clients.open(broker.address(), "mqtt", 20, 8, LIMIT, "mqtt", QUIET);

      assertThat(opening.opened()).as("first failure: %s", opening.firstFailure()).isEqualTo(20);
      assertThat(clients.session()).startsWith("TLSv1.3 ");
      assertThat(clients.dropped()).isZero();
    }
  }

  @Test
  void aTlsClientOnAPlaintextPortFailsWithItsReasonWithinTheLimit() throws Exception {
    TlsMaterial tls = TlsMaterial.create(dir);
    try (RawEdge edge = RawEdge.start(SECRET, 0);
        IdleClients clients = new IdleClients(IdleClients.berthHello(SECRET, Duration.ofHours(1)),
            tls.clientContext())) {
      long start = System.nanoTime();
      IdleDevices.Opening opening = clients.open(new InetSocketAddress("127.0.0.1", edge.port()), "wrong", 3, 3,
          LIMIT, "wrong", QUIET);

      assertThat(opening.opened()).isZero();
      assertThat(opening.failed()).isEqualTo(3);
      assertThat(opening.firstFailure()).isNotBlank();
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(LIMIT);
    }
  }

  @Test
  void mqttConnectIsTheSpecsBytes() {
    byte[] connect = IdleClients.mqttConnect("c1", 600);

    assertThat(connect).containsExactly(0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0x02, 0x58, 0, 2, 'c', '1');
  }

  @Test
  void aLongClientIdTakesATwoByteRemainingLength() {
    byte[] connect = IdleClients.mqttConnect("x".repeat(200), 60);

    // 10 bytes of variable header, 2 of id length, 200 of id: 212 = 0x54 + 1 * 128.
    assertThat(connect).hasSize(1 + 2 + 212);
    assertThat(connect[1] & 0xFF).isEqualTo(0x54 | 0x80);
    assertThat(connect[2]).isEqualTo((byte) 1);
  }

  @Test
  void aConnackThatRefusesIsAnErrorAndAPartialOneIsNotYetAnAnswer() throws IOException {
    IdleClients.Greeting mqtt = IdleClients.mqttConnect(Duration.ofMinutes(1));

    assertThat(mqtt.answered(ByteBuffer.allocate(8).put(new byte[] {0x20, 0x02}))).isFalse();
    assertThat(mqtt.answered(ByteBuffer.allocate(8).put(new byte[] {0x20, 0x02, 0, 0}))).isTrue();
    assertThatThrownBy(() -> mqtt.answered(ByteBuffer.allocate(8).put(new byte[] {0x20, 0x02, 0, 5})))
        .isInstanceOf(IOException.class).hasMessageContaining("return code 5");
    assertThatThrownBy(() -> mqtt.answered(ByteBuffer.allocate(8).put(new byte[] {0x30, 0x02, 0, 0})))
        .isInstanceOf(IOException.class).hasMessageContaining("expected CONNACK");
  }

  private static boolean mosquittoInstalled() {
    try {
      Mosquitto.locate();
      return true;
    } catch (IllegalStateException e) {
      return false;
    }
  }
}
