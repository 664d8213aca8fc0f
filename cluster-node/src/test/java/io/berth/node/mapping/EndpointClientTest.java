package io.berth.node.mapping;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.ConfigFactory;
import io.berth.node.TestEndpoint;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.EnumSet;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** One call of a mapping's endpoint, against a real HTTP endpoint on loopback. */
class EndpointClientTest {

  private static final String SECRET = "endpoint-secret-0123456789";
  /** The test endpoint listens on loopback: allowed by name, as an operator would list it. */
  private static final ActorTestKit KIT = ActorTestKit.create("EndpointClientTest", ConfigFactory.parseString("""
      berth.endpoints.allowed-hosts = ["127.0.0.1"]
      berth.endpoints.max-answer-bytes = 64k
      """).withFallback(ConfigFactory.load()));
  /** A node allowing any public host: loopback is refused at every call, whatever was saved. */
  private static final ActorTestKit PUBLIC_ONLY = ActorTestKit.create("EndpointClientTestPublicOnly");
  /** Frames 5 and 6 of socket dev/a, as one batch. */
  private static final EndpointCall.Request BATCH = new EndpointCall.Request(Mapping.Event.DATA, "dev/a", "dev",
      "dev/a:b:3", 5, 6, "hello".getBytes(StandardCharsets.UTF_8));

  private TestEndpoint endpoint;

  @AfterAll
  static void shutdown() {
    KIT.shutdownTestKit();
    PUBLIC_ONLY.shutdownTestKit();
  }

  @BeforeEach
  void start() throws Exception {
    endpoint = new TestEndpoint(SECRET);
  }

  @AfterEach
  void stop() {
    endpoint.close();
  }

  private Mapping mapping(int timeoutMs) {
    return new Mapping("hook", 7, endpoint.url(), EnumSet.allOf(Mapping.Event.class), Mapping.Criteria.NONE,
        timeoutMs, Mapping.Retry.DEFAULT, SECRET, 30_000, false);
  }

  private EndpointClient.Outcome call(Mapping mapping, EndpointCall.Request request) throws Exception {
    return EndpointClient.call(KIT.system(), mapping, request).toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static String base64(String s) {
    return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void aCallSendsTheSignedContractBodyAndReadsWhatTheAnswerAsksFor() throws Exception {
    endpoint.answer(c -> TestEndpoint.Answer.json(
        "{\"reply\":\"" + base64("re:" + c.text()) + "\",\"link\":\"peer/b\",\"close\":\"done\"}"));
    EndpointClient.Outcome outcome = call(mapping(5_000), BATCH);

    assertThat(outcome.delivered()).isTrue();
    assertThat(outcome.status()).isEqualTo(200);
    assertThat(new String(outcome.answer().reply(), StandardCharsets.UTF_8)).isEqualTo("re:hello");
    assertThat(outcome.answer().link()).isEqualTo("peer/b");
    assertThat(outcome.answer().close()).isEqualTo("done");
    assertThat(outcome.answer().problem()).isNull();
    assertThat(endpoint.calls()).hasSize(1);
    TestEndpoint.Call got = endpoint.calls().get(0);
    assertThat(got.signatureValid()).isTrue();
    assertThat(got.event()).isEqualTo("data");
    assertThat(got.body().get("socketId").asText()).isEqualTo("dev/a");
    assertThat(got.body().get("deviceId").asText()).isEqualTo("dev");
    assertThat(got.body().get("mapping").asText()).isEqualTo("hook");
    assertThat(got.body().get("mappingVersion").asLong()).isEqualTo(7);
    assertThat(got.batchId()).isEqualTo("dev/a:b:3");
    assertThat(got.body().get("seqFrom").asLong()).isEqualTo(5);
    assertThat(got.body().get("seqTo").asLong()).isEqualTo(6);
    assertThat(got.text()).isEqualTo("hello");
  }

  /**
   * A mapping saved when its host was public, or on a node that allowed it, whose host is now an
   * internal address (DNS rebinding, a tightened policy): the call's own connection is refused,
   * and the endpoint never sees a request.
   */
  @Test
  void aCallToAHostThatIsNowInternalIsRefusedAndSendsNothing() throws Exception {
    endpoint.answer(c -> TestEndpoint.Answer.ok());
    EndpointClient.Outcome outcome = EndpointClient.call(PUBLIC_ONLY.system(), mapping(5_000), BATCH)
        .toCompletableFuture().get(10, TimeUnit.SECONDS);

    assertThat(outcome.delivered()).isFalse();
    assertThat(outcome.error()).contains("resolves to the internal address 127.0.0.1");
    assertThat(endpoint.calls()).isEmpty();
  }

  /** A redirect is an answer that did not take the batch: nothing follows it. */
  @Test
  void aRedirectIsNotFollowed() throws Exception {
    endpoint.answer(c -> TestEndpoint.Answer.status(302));
    EndpointClient.Outcome outcome = call(mapping(5_000), BATCH);

    assertThat(outcome.delivered()).isFalse();
    assertThat(outcome.status()).isEqualTo(302);
    assertThat(endpoint.calls()).hasSize(1);
  }

  /**
   * The connection's own check, under the call's: a request through the endpoint pool to an
   * internal address never opens a connection, whoever sends it.
   */
  @Test
  void thePoolsConnectionsResolveAndCheckTheirHostThemselves() throws Exception {
    Http http = Http.get(PUBLIC_ONLY.system());
    CompletionStage<HttpResponse> sent = http.singleRequest(HttpRequest.POST(endpoint.url()),
        http.defaultClientHttpsContext(), EndpointTransport.get(PUBLIC_ONLY.system()).pool(),
        PUBLIC_ONLY.system().classicSystem().log());

    assertThatThrownBy(() -> sent.toCompletableFuture().get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class);
    assertThat(endpoint.calls()).isEmpty();
  }

  /** An answer larger than berth.endpoints.max-answer-bytes fails the call, read no further. */
  @Test
  void anAnswerLargerThanTheLimitFailsTheCall() throws Exception {
    endpoint.answer(c -> TestEndpoint.Answer.json("{\"reply\":\"" + "A".repeat(200_000) + "\"}"));
    EndpointClient.Outcome outcome = call(mapping(5_000), BATCH);

    assertThat(outcome.delivered()).isFalse();
    assertThat(outcome.error()).contains("EntityStreamSizeException");
  }

  @Test
  void anEventWithoutDataHasNoDataField() throws Exception {
    EndpointClient.Outcome outcome = call(mapping(5_000),
        new EndpointCall.Request(Mapping.Event.OPEN, "dev/a", "dev", "dev/a:open:1", 0, 0, null));
    assertThat(outcome.delivered()).isTrue();
    assertThat(outcome.answer()).isEqualTo(EndpointCall.Answer.NOTHING);
    assertThat(endpoint.calls("open")).hasSize(1);
    assertThat(endpoint.calls("open").get(0).body().has("data")).isFalse();
  }

  @Test
  void aRefusalIsNeitherDeliveredNorRetriedAndItsBodyAsksForNothing() throws Exception {
    endpoint.answer(c -> new TestEndpoint.Answer(422, "{\"reply\":\"" + base64("no") + "\"}", 0));
    EndpointClient.Outcome outcome = call(mapping(5_000), BATCH);
    assertThat(outcome.delivered()).isFalse();
    assertThat(outcome.retryable()).isFalse();
    assertThat(outcome.answer()).isEqualTo(EndpointCall.Answer.NOTHING);
    assertThat(outcome.describe()).isEqualTo("HTTP 422: {\"reply\":\"" + base64("no") + "\"}");
  }

  @Test
  void anAnswerThatIsNotTheDocumentedJsonStillDeliversAndSaysWhy() throws Exception {
    endpoint.answer(c -> new TestEndpoint.Answer(200, "ok", 0));
    EndpointClient.Outcome outcome = call(mapping(5_000), BATCH);
    assertThat(outcome.delivered()).isTrue();
    assertThat(outcome.answer().problem()).isEqualTo("answer is not JSON");
    assertThat(outcome.answer().reply()).isNull();
  }

  @Test
  void anEndpointSlowerThanTheMappingsTimeoutIsARetryableFailure() throws Exception {
    endpoint.answer(c -> new TestEndpoint.Answer(204, null, 2_000));
    EndpointClient.Outcome outcome = call(mapping(300), BATCH);
    assertThat(outcome.delivered()).isFalse();
    assertThat(outcome.retryable()).isTrue();
    assertThat(outcome.error()).isEqualTo("no answer within 300 ms");
    assertThat(outcome.answer()).isEqualTo(EndpointCall.Answer.NOTHING);
  }
}
