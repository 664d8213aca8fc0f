package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingRegistry;
import io.berth.node.secrets.TestKeys;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.TestDatabase;
import io.berth.protocol.DeviceClient;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Mapping secrets at rest (docs/secrets.md), in PostgreSQL as the nodes write them: sealed in
 * berth_mapping, in the journal's Opened events and in snapshots; still signing webhook calls;
 * plaintext rows from before sealed at start; rows resealed when a node starts with a new key first.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SecretsIT {

  private static final String SECRET = "endpoint-secret-of-secrets-it";
  private final DatabaseSettings db = TestDatabase.settings();
  private final String legacy = TestNodes.uniqueDevice("legacy");
  private TestNodes nodes;
  private String api;

  @BeforeAll
  void start() throws SQLException {
    nodes = new TestNodes("berth.socket.snapshot-every = 2");
    // A row as releases before this one wrote it: the secret in plaintext.
    try (Connection c = connect(); PreparedStatement s = c.prepareStatement(
        "INSERT INTO berth_mapping (name, version, definition, deleted, updated_at) VALUES (?, 1, ?, FALSE, ?)")) {
      s.setString(1, legacy);
      s.setString(2, "{\"endpoint\":\"http://127.0.0.1:9/hook\",\"events\":[\"data\"],\"secret\":\"" + SECRET + "\"}");
      s.setTimestamp(3, Timestamp.from(Instant.now()));
      s.executeUpdate();
    }
    nodes.start(1);
    api = nodes.node(0).managementUrl() + "/api";
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  private Connection connect() throws SQLException {
    return DriverManager.getConnection(db.url(), db.user(), db.password());
  }

  private String storedDefinition(String name) throws SQLException {
    try (Connection c = connect();
         PreparedStatement s = c.prepareStatement("SELECT definition FROM berth_mapping WHERE name = ?")) {
      s.setString(1, name);
      try (ResultSet rs = s.executeQuery()) {
        assertThat(rs.next()).as("mapping %s is stored", name).isTrue();
        return rs.getString(1);
      }
    }
  }

  private List<byte[]> payloads(String sql, String persistenceId) throws SQLException {
    List<byte[]> out = new ArrayList<>();
    try (Connection c = connect(); PreparedStatement s = c.prepareStatement(sql)) {
      s.setString(1, persistenceId);
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          out.add(rs.getBytes(1));
        }
      }
    }
    return out;
  }

  private static boolean contains(byte[] bytes, String text) {
    return new String(bytes, StandardCharsets.ISO_8859_1).contains(text);
  }

  private static Optional<Mapping> find(TestNodes.Node node, String name) throws Exception {
    return MappingRegistry.get(node.system()).find(name).toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  @Test
  void aSavedSecretIsStoredSealedNeverShownAndStillSignsTheCalls() throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(SECRET)) {
      String name = TestNodes.uniqueDevice("sealed");
      HttpProbe.Response saved = HttpProbe.send("PUT", api + "/mappings/" + name,
          "{\"endpoint\":\"" + endpoint.url() + "\",\"secret\":\"" + SECRET + "\"}");
      assertThat(saved.status()).as(saved.body()).isEqualTo(200);
      assertThat(saved.body()).contains("\"hasSecret\":true").doesNotContain(SECRET);
      assertThat(HttpProbe.get(api + "/mappings/" + name).body()).doesNotContain(SECRET);

      String stored = storedDefinition(name);
      assertThat(stored).doesNotContain(SECRET).contains("\"secret\":\"enc:v1:test:");

      String device = TestNodes.uniqueDevice("signed");
      DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).mapping(name)
          .listener(TestNodes.ignore()).build().connect();
      for (int i = 0; i < 5; i++) {
        client.send(("frame-" + i).getBytes(StandardCharsets.UTF_8));
      }
      assertThat(client.awaitAllAcked(Duration.ofSeconds(20))).isTrue();
      client.close(Duration.ofSeconds(20));
      await().atMost(Duration.ofSeconds(20)).until(() -> !endpoint.calls("close").isEmpty());
      assertThat(endpoint.calls()).isNotEmpty().allMatch(TestEndpoint.Call::signatureValid);

      // The journal's Opened event and the snapshots hold the mapping: sealed there too.
      List<byte[]> events = payloads("SELECT event_payload FROM event_journal WHERE persistence_id = ?",
          "socket|" + device);
      List<byte[]> snapshots = payloads("SELECT snapshot_payload FROM snapshot WHERE persistence_id = ?",
          "socket|" + device);
      assertThat(events).isNotEmpty().noneMatch(e -> contains(e, SECRET));
      assertThat(events).anyMatch(e -> contains(e, "enc:v1:test:"));
      assertThat(snapshots).as("snapshots every 2 events").isNotEmpty().noneMatch(p -> contains(p, SECRET));
    }
  }

  @Test
  void aSecretGivenInTheSealedFormIsRefused() {
    HttpProbe.Response r = HttpProbe.send("PUT", api + "/mappings/" + TestNodes.uniqueDevice("forged"),
        "{\"endpoint\":\"builtin:echo\",\"secret\":\"enc:v1:test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}");
    assertThat(r.status()).isEqualTo(400);
    assertThat(r.body()).contains("secret: must not start with");
  }

  /**
   * The plaintext row written before the node started is sealed by its start; a node started with
   * a new key first reseals it with that key, and the nodes holding both keys read it.
   */
  @Test
  void plaintextRowsAreSealedAtStartAndResealedWhenANewKeyComesFirst() throws Exception {
    await().atMost(Duration.ofSeconds(20)).untilAsserted(() ->
        assertThat(storedDefinition(legacy)).doesNotContain(SECRET).contains("\"secret\":\"enc:v1:test:"));
    assertThat(find(nodes.node(0), legacy).orElseThrow().secret()).isEqualTo(SECRET);

    TestNodes.Node rotated = nodes.startNode("berth.secrets.keys = \"" + TestKeys.ROTATED + "\"");
    nodes.awaitUp(2);
    await().atMost(Duration.ofSeconds(20)).untilAsserted(() ->
        assertThat(storedDefinition(legacy)).contains("\"secret\":\"enc:v1:newer:"));
    assertThat(find(rotated, legacy).orElseThrow().secret()).isEqualTo(SECRET);
    assertThat(MappingRegistry.get(nodes.node(0).system()).list().toCompletableFuture().get(20, TimeUnit.SECONDS))
        .filteredOn(m -> m.name().equals(legacy)).extracting(Mapping::secret).containsExactly(SECRET);
    // Again with the same keys: nothing left to reseal.
    assertThat(MappingRegistry.get(rotated.system()).sealStoredSecrets().toCompletableFuture()
        .get(20, TimeUnit.SECONDS)).isZero();
  }
}
