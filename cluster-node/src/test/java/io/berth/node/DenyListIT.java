package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.berth.node.tls.CertificateIdentity;
import io.berth.node.tls.DenyList;
import io.berth.node.tls.DenyListStore;
import io.berth.node.tls.KeyAndChain;
import io.berth.node.tls.LocalCa;
import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceException;
import io.berth.protocol.DeviceListener;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The deny list (certificates, and devices by id) across a cluster, over the operator API on real
 * HTTP and PostgreSQL:
 * a change made through one node reaches every node's {@link DenyList}, and with it every node's
 * TLS edge (a device's open connection is closed, its handshakes refused, on real loopback TLS);
 * a node started again reads the list from the table; requests that name no certificate are
 * refused saying why.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DenyListIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  /** Well above berth.edge.tls.deny-list-poll-interval (2 s): a read, and a busy machine. */
  private static final Duration SPREAD = Duration.ofSeconds(15);

  private final LocalCa ca = LocalCa.create("Berth deny list test CA");
  private Path dir;
  private TestNodes nodes;

  /** Two nodes serving TLS with one certificate of {@link #ca}'s, asking devices for theirs. */
  @BeforeAll
  void start() throws Exception {
    dir = Files.createTempDirectory("berth-deny-it");
    ca.write(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));
    ca.issueNode("node", List.of("localhost", "127.0.0.1")).writePem(dir.resolve("node.pem"),
        dir.resolve("node-key.pem"));
    nodes = new TestNodes("""
        berth.edge.tls {
          enabled = on
          certificate = "%s"
          private-key = "%s"
          trust = "%s"
          client-auth = optional
        }
        """.formatted(dir.resolve("node.pem"), dir.resolve("node-key.pem"), dir.resolve("ca.pem"))).start(2);
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  @Test
  void aCertificateDeniedThroughOneNodeIsDeniedOnEveryNodeUntilAnOperatorRemovesIt() throws Exception {
    TestNodes.Node a = nodes.node(0);
    TestNodes.Node b = nodes.node(1);
    X509Certificate leaked = ca.issueDevice(TestNodes.uniqueDevice("leaked")).certificate();
    String serial = CertificateIdentity.serial(leaked);

    HttpProbe.Response created = HttpProbe.send("POST", api(a),
        "{\"serial\": \"" + opensslStyle(serial) + "\", \"reason\": \"key leaked\"}");
    assertThat(created.status()).as(created.body()).isEqualTo(201);
    JsonNode entry = JSON.readTree(created.body());
    assertThat(entry.get("kind").asText()).isEqualTo("serial");
    assertThat(entry.get("value").asText()).as("canonical: lowercase, no colons").isEqualTo(serial);
    assertThat(entry.get("reason").asText()).isEqualTo("key leaked");
    assertThat(denyList(a).denies(leaked)).as("the node asked refuses it at once").isTrue();
    await().atMost(SPREAD).until(() -> denyList(b).denies(leaked));

    HttpProbe.Response again = HttpProbe.send("POST", api(b), "{\"serial\": \"" + serial + "\"}");
    assertThat(again.status()).as(again.body()).isEqualTo(200);
    assertThat(JSON.readTree(again.body())).as("the entry as first stored").isEqualTo(entry);
    assertThat(listed(b, serial)).isEqualTo(entry);

    // And the other way: a fingerprint denied through b.
    X509Certificate retired = ca.issueDevice(TestNodes.uniqueDevice("retired")).certificate();
    String fingerprint = CertificateIdentity.fingerprint(retired);
    HttpProbe.Response byFingerprint = HttpProbe.send("POST", api(b), "{\"fingerprint\": \""
        + opensslStyle(fingerprint) + "\"}");
    assertThat(byFingerprint.status()).as(byFingerprint.body()).isEqualTo(201);
    await().atMost(SPREAD).until(() -> denyList(a).denies(retired));

    HttpProbe.Response removed = HttpProbe.send("DELETE", api(b) + "/serial/" + opensslStyle(serial), null);
    assertThat(removed.status()).as(removed.body()).isEqualTo(204);
    assertThat(denyList(b).denies(leaked)).as("the node asked accepts it again at once").isFalse();
    await().atMost(SPREAD).until(() -> !denyList(a).denies(leaked));
    assertThat(listed(a, serial)).isNull();
    assertThat(denyList(a).denies(retired)).as("the other entry stays").isTrue();

    HttpProbe.Response absent = HttpProbe.send("DELETE", api(a) + "/serial/" + serial, null);
    assertThat(absent.status()).as(absent.body()).isEqualTo(404);
    assertThat(absent.body()).contains("no deny list entry serial '" + serial + "'");

    assertThat(HttpProbe.send("DELETE", api(a) + "/fingerprint/" + fingerprint, null).status()).isEqualTo(204);
    await().atMost(SPREAD).until(() -> !denyList(b).denies(retired));
  }

  @Test
  void aDeviceDeniedThroughOneNodeIsClosedOnTheOtherAndRefusedByBothUntilItIsRemoved() throws Exception {
    TestNodes.Node a = nodes.node(0);
    TestNodes.Node b = nodes.node(1);
    String id = TestNodes.uniqueDevice("revoked");
    Path certificate = dir.resolve(id + ".pem");
    Path key = dir.resolve(id + "-key.pem");
    KeyAndChain issued = ca.issueDevice(id);
    issued.writePem(certificate, key);
    String fingerprint = CertificateIdentity.fingerprint(issued.certificate());
    Denied denied = connectThenDeny(device(id, certificate, key, b), a, "{\"fingerprint\": \"" + fingerprint + "\"}");
    assertThat(denied.cause()).contains("revoked");
    assertThatThrownBy(() -> device(id, certificate, key, a).build().connect().close())
        .as("the node asked refuses its handshake at once").isInstanceOf(DeviceException.class);
    assertThatThrownBy(() -> device(id, certificate, key, b).build().connect().close())
        .isInstanceOf(DeviceException.class);

    assertThat(HttpProbe.send("DELETE", api(b) + "/fingerprint/" + fingerprint, null).status()).isEqualTo(204);
    device(id, certificate, key, b).build().connect().close();
    await().atMost(SPREAD).ignoreExceptions().until(() -> {
      device(id, certificate, key, a).build().connect().close();
      return true;
    });
  }

  /**
   * A device denied by its id (its token leaked, say): whatever it presents, its open connection
   * on another node ends with ERROR 200 and every node refuses its HELLO, until the entry goes.
   */
  @Test
  void aDeviceDeniedByItsIdIsClosedAndRefusedWithItsTokenUntilItIsRemoved() throws Exception {
    TestNodes.Node a = nodes.node(0);
    TestNodes.Node b = nodes.node(1);
    String id = TestNodes.uniqueDevice("token-leaked");
    Denied denied = connectThenDeny(tokenDevice(id, b), a, "{\"device\": \"" + id + "\", \"reason\": \"token leaked\"}");
    assertThat(denied.entry().get("kind").asText()).isEqualTo("device");
    assertThat(denied.entry().get("value").asText()).isEqualTo(id);
    assertThat(denied.cause()).contains("200").contains("denied by an operator");
    assertThatThrownBy(() -> tokenDevice(id, a).build().connect().close())
        .as("the node asked refuses its HELLO at once").isInstanceOf(DeviceException.class)
        .hasMessageContaining("denied by an operator");
    assertThatThrownBy(() -> tokenDevice(id, b).build().connect().close())
        .isInstanceOf(DeviceException.class);
    String other = TestNodes.uniqueDevice("neighbour");
    tokenDevice(other, a).build().connect().close();

    assertThat(HttpProbe.send("DELETE", api(a) + "/device/" + id, null).status()).isEqualTo(204);
    tokenDevice(id, a).build().connect().close();
    await().atMost(SPREAD).ignoreExceptions().until(() -> {
      tokenDevice(id, b).build().connect().close();
      return true;
    });
  }

  /** The entry a denial made, and why the device's open connection ended. */
  private record Denied(JsonNode entry, String cause) {}

  /** Connects the device, sees a frame acknowledged, then posts {@code denial} to {@code node}. */
  private Denied connectThenDeny(DeviceClient.Builder device, TestNodes.Node node, String denial) throws Exception {
    AtomicReference<String> ended = new AtomicReference<>();
    try (DeviceClient client = device.listener(new DeviceListener() {
      @Override
      public void onTerminated(String cause) {
        ended.set(cause);
      }
    }).build().connect()) {
      client.send("before".getBytes(StandardCharsets.UTF_8));
      client.awaitAllAcked(SPREAD);
      HttpProbe.Response denied = HttpProbe.send("POST", api(node), denial);
      assertThat(denied.status()).as(denied.body()).isEqualTo(201);
      await().atMost(SPREAD).until(() -> ended.get() != null);
      return new Denied(JSON.readTree(denied.body()), ended.get());
    }
  }

  /** A device with a token, over TLS, to one node; it gives up after 3 s. */
  private DeviceClient.Builder tokenDevice(String id, TestNodes.Node node) {
    return TestNodes.device(id, node.edge()).mapping("echo").tls(ClientTls.trusting(dir.resolve("ca.pem")))
        .reconnectBackoff(Duration.ofMillis(100), Duration.ofMillis(500)).giveUpAfter(Duration.ofSeconds(3));
  }

  /** A device presenting its certificate, and no token, to one node; it gives up after 3 s. */
  private DeviceClient.Builder device(String id, Path certificate, Path key, TestNodes.Node node) {
    return DeviceClient.builder().addresses(List.of(node.edge())).deviceId(id).mapping("echo")
        .tls(ClientTls.trusting(dir.resolve("ca.pem")).withClientCertificate(certificate, key))
        .reconnectBackoff(Duration.ofMillis(100), Duration.ofMillis(500)).giveUpAfter(Duration.ofSeconds(3));
  }

  @Test
  void aNodeStartedAgainReadsTheListFromTheTable() throws Exception {
    X509Certificate denied = ca.issueDevice(TestNodes.uniqueDevice("restart")).certificate();
    String fingerprint = CertificateIdentity.fingerprint(denied);
    try (TestNodes single = new TestNodes()) {
      TestNodes.Node node = single.startNode("");
      HttpProbe.Response created = HttpProbe.send("POST", api(node), "{\"fingerprint\": \"" + fingerprint + "\"}");
      assertThat(created.status()).as(created.body()).isEqualTo(201);
      single.crash(node);
    }
    try (TestNodes restarted = new TestNodes()) {
      TestNodes.Node node = restarted.startNode("");
      DenyListStore store = DenyListStore.get(node.system());
      store.loaded().toCompletableFuture().get(30, TimeUnit.SECONDS);
      assertThat(store.denyList().denies(denied)).isTrue();
      assertThat(HttpProbe.send("DELETE", api(node) + "/fingerprint/" + fingerprint, null).status())
          .isEqualTo(204);
    }
  }

  @Test
  void requestsThatNameNoCertificateAreRefusedSayingWhy() throws Exception {
    String api = api(nodes.node(0));
    String fingerprint = "ab".repeat(32);
    assertRefused("POST", api, "{\"serial\": \"xyz\"}", "hex digits");
    assertRefused("POST", api, "{\"fingerprint\": \"abcd\"}", "64 hex digits, got 4");
    assertRefused("POST", api, "{\"serial\": \"" + "1".repeat(41) + "\"}", "at most 40 hex digits");
    assertRefused("POST", api, "{\"serial\": \"0a\", \"fingerprint\": \"" + fingerprint + "\"}", "give one of serial, fingerprint and device, not serial and fingerprint");
    assertRefused("POST", api, "{}", "name a certificate or a device");
    assertRefused("POST", api, "{\"reason\": \"lost\"}", "name a certificate or a device");
    assertRefused("POST", api, "{\"serial\": 10}", "serial must be a string");
    assertRefused("POST", api, "{\"serial\": \"0a\", \"issuer\": \"x\"}", "unknown field 'issuer'");
    assertRefused("POST", api, "{\"serial\": \"0a\", \"reason\": \"" + "x".repeat(1001) + "\"}",
        "at most 1000 characters");
    assertRefused("POST", api, "serial=0a", "not valid JSON");
    assertRefused("POST", api, "[\"0a\"]", "must be a JSON object");
    assertRefused("DELETE", api + "/issuer/0a", null, "a serial, a fingerprint or a device, got 'issuer'");
    assertRefused("DELETE", api + "/serial/xyz", null, "hex digits");
    assertRefused("DELETE", api + "/fingerprint/abcd", null, "64 hex digits");
    assertRefused("POST", api, "{\"device\": \"not a device id!\"}", "a device id is 1 to 64 characters");

    String unknown = CertificateIdentity.serial(ca.issueDevice(TestNodes.uniqueDevice("never")).certificate());
    HttpProbe.Response absent = HttpProbe.send("DELETE", api + "/serial/" + unknown, null);
    assertThat(absent.status()).as(absent.body()).isEqualTo(404);
    assertThat(JSON.readTree(absent.body()).get("error").asText()).contains(unknown);
  }

  private static void assertRefused(String method, String url, String body, String saying) throws Exception {
    HttpProbe.Response r = HttpProbe.send(method, url, body);
    assertThat(r.status()).as(method + " " + body + ": " + r.body()).isEqualTo(400);
    assertThat(JSON.readTree(r.body()).get("error").asText()).contains(saying);
  }

  /** The entry of the list {@code node} answers with this value, or null. */
  private static JsonNode listed(TestNodes.Node node, String value) throws Exception {
    HttpProbe.Response list = HttpProbe.get(api(node));
    assertThat(list.status()).as(list.body()).isEqualTo(200);
    for (JsonNode entry : JSON.readTree(list.body())) {
      if (entry.get("value").asText().equals(value)) {
        return entry;
      }
    }
    return null;
  }

  private static DenyList denyList(TestNodes.Node node) {
    return DenyListStore.get(node.system()).denyList();
  }

  private static String api(TestNodes.Node node) {
    return node.managementUrl() + "/api/tls/deny";
  }

  /** Hex as openssl prints it: upper case, a colon between bytes. */
  private static String opensslStyle(String hex) {
    String even = hex.length() % 2 == 0 ? hex : "0" + hex;
    return String.join(":", even.toUpperCase(Locale.ROOT).split("(?<=\\G..)"));
  }
}
