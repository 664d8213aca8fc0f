package io.berth.node.mapping;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.TestEndpoint;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An operator's replay of a parked batch, against PostgreSQL and a real HTTP endpoint on
 * loopback; the socket the endpoint's reply is handed to is the test.
 */
class ParkedReplayTest {

  private static final String SECRET = "endpoint-secret-0123456789";
  private static final Duration REPLY_TIMEOUT = Duration.ofMillis(1234);

  private static ActorTestKit kit;
  private static MappingRegistry registry;
  private static ParkedStore parked;

  /** A reply handed to a socket. */
  private record Handed(String socketId, String payload, Duration timeout) {}

  private final List<Handed> handed = new CopyOnWriteArrayList<>();
  private CompletableFuture<Object> socketAnswer = CompletableFuture.completedFuture("taken");
  private TestEndpoint endpoint;
  private ParkedReplay replay;

  @BeforeAll
  static void start() {
    DatabaseSettings db = TestDatabase.settings();
    SchemaInstaller.install(db);
    kit = ActorTestKit.create("ParkedReplayTest", ConfigFactory.parseMap(Map.of(
        "berth.db.url", db.url(), "berth.db.user", db.user(), "berth.db.password", db.password()))
        .withFallback(ConfigFactory.parseString("berth.endpoints.allowed-hosts = [\"127.0.0.1\"]"))
        .withFallback(ConfigFactory.load()));
    registry = MappingRegistry.get(kit.system());
    parked = new ParkedStore(kit.system());
  }

  @AfterAll
  static void stop() {
    kit.shutdownTestKit();
  }

  @BeforeEach
  void setUp() throws Exception {
    endpoint = new TestEndpoint(SECRET);
    replay = new ParkedReplay(kit.system(), registry, parked, new ParkedReplaySettings(REPLY_TIMEOUT),
        (socketId, payload, timeout) -> {
          handed.add(new Handed(socketId, new String(payload, StandardCharsets.UTF_8), timeout));
          return socketAnswer;
        });
  }

  @AfterEach
  void tearDown() {
    endpoint.close();
  }

  private static <T> T await(java.util.concurrent.CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  /** A mapping to the test endpoint, saved twice: its current version is 2. */
  private Mapping mapping() throws Exception {
    Mapping m = new Mapping("replay-" + UUID.randomUUID().toString().substring(0, 8), 0, endpoint.url(),
        EnumSet.of(Mapping.Event.DATA), Mapping.Criteria.NONE, 5_000, Mapping.Retry.DEFAULT, SECRET, 30_000, false);
    await(registry.save(m));
    return await(registry.save(m));
  }

  /** A batch of {@code mapping} parked while it was at version 1. */
  private ParkedStore.Parked park(String mapping, String data) throws Exception {
    String socket = "dev-" + UUID.randomUUID().toString().substring(0, 8) + "/a";
    ParkedStore.Parked p = new ParkedStore.Parked(UUID.randomUUID().toString(), socket, socket.split("/")[0],
        mapping, 1, endpoint.url(), "data", socket + ":b:4", 10, 11, data.getBytes(StandardCharsets.UTF_8),
        "gave up after 3 attempts: HTTP 503", 3, Instant.now(), null);
    await(parked.insert(p));
    return p;
  }

  private static String base64(String s) {
    return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  private boolean markedReplayed(ParkedStore.Parked p) throws Exception {
    return await(parked.get(p.id())).orElseThrow().replayedAt() != null;
  }

  @Test
  void aParkedBatchGoesAgainAsItWasParkedAndTheEndpointsReplyIsHandedToItsSocket() throws Exception {
    Mapping mapping = mapping();
    ParkedStore.Parked p = park(mapping.name(), "precious");
    endpoint.answer(c -> TestEndpoint.Answer.json("{\"reply\":\"" + base64("re:" + c.text()) + "\"}"));

    assertThat(await(replay.replay(p.id()))).isEqualTo(new ParkedReplay.Replayed(200));

    assertThat(endpoint.calls()).hasSize(1);
    TestEndpoint.Call call = endpoint.calls().get(0);
    assertThat(call.signatureValid()).isTrue();
    assertThat(call.event()).isEqualTo("data");
    assertThat(call.batchId()).isEqualTo(p.batchId());
    assertThat(call.body().get("mappingVersion").asLong()).as("the version it was parked with").isEqualTo(1);
    assertThat(call.body().get("socketId").asText()).isEqualTo(p.socketId());
    assertThat(call.body().get("seqFrom").asLong()).isEqualTo(10);
    assertThat(call.body().get("seqTo").asLong()).isEqualTo(11);
    assertThat(call.text()).isEqualTo("precious");
    assertThat(handed).containsExactly(new Handed(p.socketId(), "re:precious", REPLY_TIMEOUT));
    assertThat(markedReplayed(p)).isTrue();
  }

  @Test
  void anAnswerWithoutAReplyHandsNothingToTheSocket() throws Exception {
    ParkedStore.Parked p = park(mapping().name(), "quiet");
    assertThat(await(replay.replay(p.id()))).isEqualTo(new ParkedReplay.Replayed(204));
    assertThat(handed).isEmpty();
    assertThat(markedReplayed(p)).isTrue();
  }

  @Test
  void aBatchTheEndpointDoesNotTakeIsRefusedWithItsAnswerAndStaysUnmarked() throws Exception {
    ParkedStore.Parked p = park(mapping().name(), "refused");
    endpoint.answer(c -> TestEndpoint.Answer.status(422));
    assertThat(await(replay.replay(p.id()))).isEqualTo(new ParkedReplay.Refused(ParkedReplay.Refusal.NOT_TAKEN,
        "the endpoint did not take the batch: HTTP 422: {\"error\":\"test\"}"));
    assertThat(handed).isEmpty();
    assertThat(markedReplayed(p)).isFalse();
  }

  @Test
  void aBatchThatIsNotParkedOrWhoseMappingHasNoHttpEndpointIsRefusedWithoutACall() throws Exception {
    String unknown = UUID.randomUUID().toString();
    assertThat(await(replay.replay(unknown))).isEqualTo(new ParkedReplay.Refused(
        ParkedReplay.Refusal.NO_SUCH_BATCH, "no parked batch '" + unknown + "'"));

    Mapping mapping = mapping();
    ParkedStore.Parked p = park(mapping.name(), "orphan");
    await(registry.delete(mapping.name()));
    assertThat(await(replay.replay(p.id()))).isEqualTo(new ParkedReplay.Refused(
        ParkedReplay.Refusal.NO_HTTP_ENDPOINT, "mapping '" + mapping.name() + "' no longer has an HTTP endpoint"));

    await(registry.ensureDefaults());
    ParkedStore.Parked builtin = park("echo", "to a function");
    assertThat(await(replay.replay(builtin.id()))).isEqualTo(new ParkedReplay.Refused(
        ParkedReplay.Refusal.NO_HTTP_ENDPOINT, "mapping 'echo' no longer has an HTTP endpoint"));
    assertThat(endpoint.calls()).isEmpty();
  }

  @Test
  void aSocketThatDoesNotTakeTheReplyInTimeFailsTheReplayAndLeavesItUnmarked() throws Exception {
    ParkedStore.Parked p = park(mapping().name(), "late");
    endpoint.answer(c -> TestEndpoint.Answer.json("{\"reply\":\"" + base64("re:late") + "\"}"));
    socketAnswer = CompletableFuture.failedFuture(new TimeoutException("no answer from the socket"));
    assertThatThrownBy(() -> await(replay.replay(p.id()))).isInstanceOf(ExecutionException.class)
        .hasRootCauseInstanceOf(TimeoutException.class);
    assertThat(handed).extracting(Handed::timeout).containsExactly(REPLY_TIMEOUT);
    assertThat(markedReplayed(p)).isFalse();
  }

  @Test
  void theReplyTimeoutIsReadFromConfig() {
    assertThat(ParkedReplaySettings.fromConfig(ConfigFactory.load()).replyTimeout()).isEqualTo(Duration.ofSeconds(5));
    Config changed = ConfigFactory.parseString("berth.parked.reply-timeout = 2s").withFallback(ConfigFactory.load());
    assertThat(ParkedReplaySettings.fromConfig(changed).replyTimeout()).isEqualTo(Duration.ofSeconds(2));
  }
}
