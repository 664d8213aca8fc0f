package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.berth.node.ops.AccessPolicy;
import io.berth.node.ops.OperatorRole;
import io.berth.persistence.TestDatabase;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Who may call what on the management port (docs/operator-access.md), on a node with PostgreSQL,
 * over real HTTP: every route of {@link AccessPolicy} with no key, a wrong key and a key of each
 * role, against the matrix written out below; keys made and revoked through the API; the audit
 * trail; bodies too large or too slow.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OperatorAccessIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private TestNodes nodes;
  private String base;
  private final Map<OperatorRole, String> keys = new EnumMap<>(OperatorRole.class);

  @BeforeAll
  void start() throws Exception {
    nodes = new TestNodes("berth.management.body-timeout = 2s").start(1);
    base = nodes.node(0).managementUrl();
    keys.put(OperatorRole.ADMIN, TestNodes.ADMIN_KEY);
    for (OperatorRole role : List.of(OperatorRole.VIEWER, OperatorRole.OPERATOR)) {
      String id = "matrix-" + role.label() + "-" + System.nanoTime();
      HttpProbe.Response made = HttpProbe.send("POST", base + "/api/keys",
          "{\"id\": \"" + id + "\", \"role\": \"" + role.label() + "\", \"description\": \"role matrix\"}");
      assertThat(made.status()).as(made.body()).isEqualTo(201);
      keys.put(role, JSON.readTree(made.body()).get("key").asText());
    }
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  /** One call of the matrix, and the least role that may make it. */
  private record Call(String method, String path, String body, OperatorRole least) {}

  /**
   * Every rule's route, with the role written out here rather than read from the policy: a change
   * of the policy has to change this list too. The order matters only where a call makes what a
   * later one removes.
   */
  private static List<Call> matrix() {
    String socket = "matrix-device";
    return List.of(
        new Call("GET", "/api/sockets", null, OperatorRole.VIEWER),
        new Call("GET", "/api/sockets/" + socket, null, OperatorRole.VIEWER),
        new Call("GET", "/api/mappings", null, OperatorRole.VIEWER),
        new Call("GET", "/api/nodes", null, OperatorRole.VIEWER),
        new Call("GET", "/api/tls/deny", null, OperatorRole.VIEWER),
        new Call("GET", "/cluster/members", null, OperatorRole.VIEWER),
        new Call("GET", "/cluster/shards/socket", null, OperatorRole.VIEWER),
        new Call("HEAD", "/api/nodes", null, OperatorRole.VIEWER),
        new Call("GET", "/api/keys", null, OperatorRole.ADMIN),
        new Call("GET", "/api/audit", null, OperatorRole.ADMIN),
        new Call("POST", "/api/sockets/" + socket + "/messages", "hello", OperatorRole.OPERATOR),
        new Call("POST", "/api/sockets/" + socket + "/s1/messages", "hello", OperatorRole.OPERATOR),
        new Call("POST", "/api/sockets/" + socket + "/migrate", null, OperatorRole.OPERATOR),
        new Call("POST", "/api/sockets/" + socket + "/s1/migrate", null, OperatorRole.OPERATOR),
        new Call("DELETE", "/api/sockets/" + socket, null, OperatorRole.OPERATOR),
        new Call("DELETE", "/api/sockets/" + socket + "/s1", null, OperatorRole.OPERATOR),
        new Call("DELETE", "/api/links/no-such-link", null, OperatorRole.OPERATOR),
        new Call("POST", "/api/nodes/no-such-node/drain", null, OperatorRole.OPERATOR),
        new Call("DELETE", "/api/nodes/no-such-node/drain", null, OperatorRole.OPERATOR),
        new Call("POST", "/api/parked/no-such-batch/replay", null, OperatorRole.OPERATOR),
        new Call("DELETE", "/api/parked/no-such-batch", null, OperatorRole.OPERATOR),
        new Call("POST", "/api/tls/deny", "{\"device\": \"matrix-denied\"}", OperatorRole.OPERATOR),
        new Call("DELETE", "/api/tls/deny/device/matrix-denied", null, OperatorRole.ADMIN),
        new Call("PUT", "/api/mappings/matrix-mapping", "{\"endpoint\": \"builtin:echo\"}", OperatorRole.ADMIN),
        new Call("DELETE", "/api/mappings/matrix-mapping", null, OperatorRole.ADMIN),
        new Call("POST", "/api/keys", "{\"id\": \"matrix-made\", \"role\": \"viewer\"}", OperatorRole.ADMIN),
        new Call("DELETE", "/api/keys/matrix-made", null, OperatorRole.ADMIN),
        // Management's own: without their form fields these change nothing, but they reach the route.
        new Call("PUT", "/cluster", null, OperatorRole.ADMIN),
        new Call("POST", "/cluster/members", null, OperatorRole.ADMIN),
        new Call("PUT", "/cluster/members/pekko:%2F%2Fberth@127.0.0.1:1", null, OperatorRole.ADMIN),
        new Call("DELETE", "/cluster/members/pekko:%2F%2Fberth@127.0.0.1:1", null, OperatorRole.ADMIN));
  }

  @Test
  void everyRouteAnswersEachRoleAsTheMatrixSays() {
    Set<AccessPolicy.Rule> walked = new HashSet<>();
    Map<String, String> wrong = new LinkedHashMap<>();
    for (Call call : matrix()) {
      AccessPolicy.find(call.method(), segments(call.path())).ifPresent(walked::add);

      HttpResponse<String> none = send(call, null);
      assertThat(none.statusCode()).as("%s %s without a key", call.method(), call.path()).isEqualTo(401);
      assertThat(none.headers().allValues("WWW-Authenticate")).as("challenges").anyMatch(v -> v.startsWith("Bearer"))
          .noneMatch(v -> v.startsWith("Basic")); // a browser would keep Basic credentials for every later request
      assertThat(send(call, "test-admin.not-the-key").statusCode()).as("%s %s with a wrong key", call.method(),
          call.path()).isEqualTo(401);

      for (OperatorRole role : OperatorRole.values()) {
        int status = send(call, keys.get(role)).statusCode();
        boolean allowed = role.covers(call.least());
        if (allowed ? status == 401 || status == 403 : status != 403) {
          wrong.put(call.method() + " " + call.path() + " as " + role.label(),
              "answered " + status + ", expected " + (allowed ? "the route's own answer" : "403"));
        }
      }
    }
    assertThat(wrong).as("calls that did not answer as the matrix says").isEmpty();
    assertThat(new HashSet<>(AccessPolicy.RULES)).as("rules of AccessPolicy no call of the matrix walked: add them")
        .isEqualTo(walked);
  }

  @Test
  void aRouteWithoutARuleIsClosedToEveryRoleAndProbesNeedNoKey() {
    for (OperatorRole role : OperatorRole.values()) {
      assertThat(send(new Call("PATCH", "/api/sockets/x", "{}", role), keys.get(role)).statusCode())
          .as("PATCH as %s", role.label()).isEqualTo(403);
      assertThat(send(new Call("POST", "/api/sockets", "{}", role), keys.get(role)).statusCode())
          .as("POST /api/sockets as %s", role.label()).isEqualTo(403);
    }
    assertThat(send(new Call("GET", "/alive", null, OperatorRole.VIEWER), null).statusCode()).isEqualTo(200);
    assertThat(send(new Call("GET", "/ready", null, OperatorRole.VIEWER), null).statusCode()).isEqualTo(200);
    // Only GET: a probe path is no way around the keys.
    assertThat(send(new Call("POST", "/ready", "x", OperatorRole.VIEWER), null).statusCode()).isEqualTo(401);
  }

  /**
   * The cluster page's files pass the gate without a key (they hold no data), under a policy that
   * runs no script but the page's own; nothing else does: another method, a file that is not
   * there, or a path that leaves {@code /ui} reaches no route of Management's.
   */
  @Test
  void thePageIsServedWithoutAKeyAndNothingElseIs() {
    HttpResponse<String> page = send(new Call("GET", "/ui/", null, OperatorRole.VIEWER), null);
    assertThat(page.statusCode()).isEqualTo(200);
    assertThat(page.headers().firstValue("Content-Type")).hasValue("text/html; charset=UTF-8");
    assertThat(page.headers().firstValue("Content-Security-Policy").orElse(""))
        .contains("default-src 'self'").contains("script-src 'self'").doesNotContain("unsafe-inline");
    assertThat(page.headers().firstValue("Cache-Control")).hasValue("no-cache");
    assertThat(page.body()).contains("<script src=\"page.js\"").doesNotContain("<script>");
    HttpResponse<String> script = send(new Call("GET", "/ui/page.js", null, OperatorRole.VIEWER), null);
    assertThat(script.statusCode()).isEqualTo(200);
    assertThat(script.headers().firstValue("Content-Type")).hasValue("application/javascript; charset=UTF-8");
    assertThat(send(new Call("GET", "/ui/page.css", null, OperatorRole.VIEWER), null).headers()
        .firstValue("Content-Type")).hasValue("text/css; charset=UTF-8");
    assertThat(send(new Call("GET", "/ui", null, OperatorRole.VIEWER), null).headers().firstValue("Location"))
        .hasValue("/ui/");
    assertThat(send(new Call("GET", "/", null, OperatorRole.VIEWER), null).headers().firstValue("Location"))
        .hasValue("/ui/");

    assertThat(send(new Call("GET", "/ui/no-such-file.js", null, OperatorRole.VIEWER), null).statusCode())
        .isEqualTo(404);
    assertThat(send(new Call("GET", "/ui/api/nodes", null, OperatorRole.VIEWER), null).statusCode()).isEqualTo(404);
    assertThat(send(new Call("GET", "/ui/%2e%2e/api/nodes", null, OperatorRole.VIEWER), null).statusCode())
        .isIn(401, 404);
    assertThat(send(new Call("POST", "/ui/", "x", OperatorRole.VIEWER), null).statusCode()).isEqualTo(401);
    assertThat(send(new Call("GET", "/api/nodes", null, OperatorRole.VIEWER), null).statusCode()).isEqualTo(401);
  }

  @Test
  void aChangeABrowserSaysComesFromAnotherSiteIsRefusedEvenToAnAdmin() throws Exception {
    String body = "{\"device\": \"csrf-target\"}";
    for (String[] header : new String[][] {{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"},
        {"Origin", "https://attacker.example"}}) {
      HttpResponse<String> r = CLIENT.send(HttpRequest.newBuilder(URI.create(base + "/api/tls/deny"))
          .header("Authorization", "Bearer " + TestNodes.ADMIN_KEY).header(header[0], header[1])
          .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as("%s: %s", header[0], header[1]).isEqualTo(403);
    }
    HttpResponse<String> sameOrigin = CLIENT.send(HttpRequest.newBuilder(URI.create(base + "/api/tls/deny"))
        .header("Authorization", "Bearer " + TestNodes.ADMIN_KEY).header("Sec-Fetch-Site", "same-origin")
        .header("Origin", base).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(sameOrigin.statusCode()).as("the page's own call").isIn(200, 201);
    HttpResponse<String> read = CLIENT.send(HttpRequest.newBuilder(URI.create(base + "/api/tls/deny"))
        .header("Authorization", "Bearer " + keys.get(OperatorRole.VIEWER)).header("Sec-Fetch-Site", "cross-site")
        .build(), HttpResponse.BodyHandlers.ofString());
    assertThat(read.statusCode()).as("a read changes nothing").isEqualTo(200);
    HttpProbe.send("DELETE", base + "/api/tls/deny/device/csrf-target", null);
  }

  @Test
  void otherSpellingsOfARouteAreJudgedAsTheRouteTheyReach() {
    String viewer = keys.get(OperatorRole.VIEWER);
    for (String path : List.of("/api//keys", "/api/keys/", "//api/keys", "/api/./keys", "/api/x/../keys",
        "/api/audit/", "/api/Keys")) {
      HttpResponse<String> r = send(new Call("GET", path, null, OperatorRole.VIEWER), viewer);
      assertThat(r.statusCode()).as("GET %s as a viewer", path).isNotEqualTo(200);
      assertThat(r.body()).as("GET %s as a viewer", path).doesNotContain("test-admin");
    }
    assertThat(send(new Call("HEAD", "/api/keys", null, OperatorRole.VIEWER), viewer).statusCode())
        .as("HEAD /api/keys as a viewer").isNotEqualTo(200);
    for (String path : List.of("/api/mappings/x/", "/api/mappings//x", "/api/mappings/x%2F..%2F..%2Fkeys")) {
      assertThat(send(new Call("DELETE", path, null, OperatorRole.ADMIN), keys.get(OperatorRole.OPERATOR))
          .statusCode()).as("DELETE %s as an operator", path).isIn(403, 404);
    }
  }

  @Test
  void basicCredentialsCarryTheKeyAsTheirPassword() throws Exception {
    String basic = Base64.getEncoder().encodeToString(("anyone:" + keys.get(OperatorRole.VIEWER))
        .getBytes(StandardCharsets.UTF_8));
    HttpResponse<String> r = CLIENT.send(HttpRequest.newBuilder(URI.create(base + "/api/nodes"))
        .header("Authorization", "Basic " + basic).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
  }

  @Test
  void aRevokedKeyStopsWorkingAndKeysNeverShowTheirSecret() throws Exception {
    HttpProbe.Response made = HttpProbe.send("POST", base + "/api/keys", "{\"id\": \"short-lived\", \"role\": \"operator\"}");
    assertThat(made.status()).as(made.body()).isEqualTo(201);
    String key = JSON.readTree(made.body()).get("key").asText();
    assertThat(key).startsWith("short-lived.");
    assertThat(HttpProbe.send("GET", base + "/api/nodes", null, key).status()).isEqualTo(200);
    assertThat(HttpProbe.send("POST", base + "/api/keys", "{\"id\": \"short-lived\", \"role\": \"admin\"}").status())
        .as("an id taken").isEqualTo(409);
    assertThat(HttpProbe.send("POST", base + "/api/keys", "{\"id\": \"test-admin\", \"role\": \"admin\"}").status())
        .as("an id of the configuration").isEqualTo(409);
    assertThat(HttpProbe.send("POST", base + "/api/keys", "{\"id\": \"x\", \"role\": \"root\"}").status())
        .as("no such role").isEqualTo(400);

    HttpProbe.Response listed = HttpProbe.get(base + "/api/keys");
    assertThat(listed.body()).contains("short-lived", "test-admin").doesNotContain(key.substring(key.indexOf('.') + 1));
    try (Connection c = database(); PreparedStatement s = c.prepareStatement(
        "SELECT sha256 FROM berth_operator_key WHERE id = 'short-lived'"); ResultSet rs = s.executeQuery()) {
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).hasSize(64).doesNotContain(key);
    }

    assertThat(HttpProbe.send("DELETE", base + "/api/keys/short-lived", null).status()).isEqualTo(204);
    assertThat(HttpProbe.send("GET", base + "/api/nodes", null, key).status()).isEqualTo(401);
    assertThat(HttpProbe.send("DELETE", base + "/api/keys/test-admin", null).status()).as("configured").isEqualTo(409);
  }

  @Test
  void everyCallThatChangesSomethingAndEveryRefusalIsAudited() throws Exception {
    String viewer = keys.get(OperatorRole.VIEWER);
    HttpResponse<String> refused = CLIENT.send(HttpRequest.newBuilder(URI.create(base + "/api/mappings/audited"))
        .header("Authorization", "Bearer " + viewer).header("X-Forwarded-For", "203.0.113.9")
        .header("X-Real-Ip", "203.0.113.9").DELETE().build(), HttpResponse.BodyHandlers.ofString());
    assertThat(refused.statusCode()).isEqualTo(403);
    String refusedId = refused.headers().firstValue("X-Request-Id").orElseThrow();
    HttpResponse<String> done = send(new Call("POST", "/api/tls/deny", "{\"device\": \"audited-device\"}",
        OperatorRole.OPERATOR), keys.get(OperatorRole.OPERATOR));
    assertThat(done.statusCode()).isIn(200, 201);
    String doneId = done.headers().firstValue("X-Request-Id").orElseThrow();
    String readId = send(new Call("GET", "/api/nodes", null, OperatorRole.VIEWER), viewer).headers()
        .firstValue("X-Request-Id").orElseThrow();

    HttpProbe.Response trail = HttpProbe.get(base + "/api/audit?limit=1000");
    assertThat(trail.status()).isEqualTo(200);
    Map<String, JsonNode> byRequest = new LinkedHashMap<>();
    JSON.readTree(trail.body()).forEach(e -> byRequest.put(e.get("requestId").asText(), e));
    assertThat(byRequest).containsKeys(refusedId, doneId).doesNotContainKey(readId);
    JsonNode r = byRequest.get(refusedId);
    assertThat(r.get("actor").asText()).startsWith("matrix-viewer");
    assertThat(r.get("role").asText()).isEqualTo("viewer");
    assertThat(r.get("status").asInt()).isEqualTo(403);
    assertThat(r.get("path").asText()).isEqualTo("/api/mappings/audited");
    assertThat(r.get("remote").asText()).isEqualTo("127.0.0.1");
    JsonNode d = byRequest.get(doneId);
    assertThat(d.get("method").asText()).isEqualTo("POST");
    assertThat(d.get("status").asInt()).isEqualTo(done.statusCode());
    assertThat(d.get("node").asText()).isEqualTo(nodes.node(0).address().toString());
    try (Connection c = database(); PreparedStatement s = c.prepareStatement(
        "SELECT actor, status FROM berth_audit WHERE request_id = ?")) {
      s.setString(1, doneId);
      try (ResultSet rs = s.executeQuery()) {
        assertThat(rs.next()).as("the row in berth_audit").isTrue();
        assertThat(rs.getString(1)).startsWith("matrix-operator");
      }
    }
    HttpProbe.send("DELETE", base + "/api/tls/deny/device/audited-device", null);
  }

  @Test
  void aBodyTooLargeIs413AndOneTooSlowIs408WhileOtherCallsGoOn() throws Exception {
    String big = "{\"endpoint\": \"" + "x".repeat(70 * 1024) + "\"}";
    HttpProbe.Response tooLarge = HttpProbe.send("PUT", base + "/api/mappings/too-large", big);
    assertThat(tooLarge.status()).as(tooLarge.body()).isEqualTo(413);

    int port = nodes.node(0).managementPort();
    try (Socket slow = new Socket("127.0.0.1", port)) {
      slow.setSoTimeout(15_000);
      OutputStream out = slow.getOutputStream();
      out.write(("PUT /api/mappings/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TestNodes.ADMIN_KEY
          + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"endpoint\"").getBytes(
              StandardCharsets.US_ASCII));
      out.flush();
      long started = System.nanoTime();
      // Meanwhile another operator is served at once.
      assertThat(HttpProbe.get(base + "/api/nodes").status()).isEqualTo(200);
      InputStream in = slow.getInputStream();
      byte[] head = in.readNBytes(12);
      assertThat(new String(head, StandardCharsets.US_ASCII)).isEqualTo("HTTP/1.1 408");
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(12));
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> HttpProbe.get(base + "/api/mappings/slow").status() == 404);
  }

  private HttpResponse<String> send(Call call, String key) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + call.path()))
        .timeout(Duration.ofSeconds(30))
        .method(call.method(), call.body() == null ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(call.body()));
    if (call.body() != null) {
      request.header("Content-Type", "application/json");
    }
    if (key != null) {
      request.header("Authorization", "Bearer " + key);
    }
    try {
      return CLIENT.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new AssertionError(call.method() + " " + call.path() + " failed: " + e, e);
    }
  }

  private static List<String> segments(String path) {
    List<String> out = new ArrayList<>();
    for (String s : path.substring(1).split("/")) {
      out.add(java.net.URLDecoder.decode(s, StandardCharsets.UTF_8));
    }
    return out;
  }

  private static Connection database() throws Exception {
    var db = TestDatabase.settings();
    return DriverManager.getConnection(db.url(), db.user(), db.password());
  }
}
