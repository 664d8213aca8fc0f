package io.berth.node.mapping;

import java.net.URI;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.pattern.CircuitBreaker;
import org.apache.pekko.pattern.CircuitBreakerOpenException;

/**
 * Where Berth calls HTTP endpoints, for a socket's batches and events ({@link MappingActor}) and
 * for an operator's replay of a parked batch ({@link ParkedReplay}) alike: one signed POST
 * through Pekko HTTP's pooled client (connections per host are bounded by {@code
 * pekko.http.host-connection-pool}), guarded by the host's circuit breaker. The response body is
 * always read (a pooled connection stalls otherwise) within the timeout.
 */
public final class EndpointClient {

  /**
   * What came back: a status and body, or an error (timeout, connection, open breaker); {@code
   * answer}: what a 2xx body asks for, {@link EndpointCall.Answer#NOTHING} for any other outcome.
   */
  public record Outcome(int status, byte[] body, String error, EndpointCall.Answer answer) {

    /** A call that got no HTTP answer at all. */
    public static Outcome failed(String error) {
      return new Outcome(0, null, error, EndpointCall.Answer.NOTHING);
    }

    static Outcome answered(int status, byte[] body) {
      boolean taken = status >= 200 && status < 300;
      return new Outcome(status, body, null, taken ? EndpointCall.answer(body) : EndpointCall.Answer.NOTHING);
    }

    public boolean delivered() {
      return error == null && status >= 200 && status < 300;
    }

    /** 5xx, 408, 429 and failures without a status are worth another attempt; other 4xx are not. */
    public boolean retryable() {
      return error != null || status >= 500 || status == 408 || status == 429;
    }

    public String describe() {
      if (error != null) {
        return error;
      }
      String excerpt = body == null ? "" : new String(body, 0, Math.min(body.length, 200),
          java.nio.charset.StandardCharsets.UTF_8);
      return "HTTP " + status + (excerpt.isBlank() ? "" : ": " + excerpt.strip());
    }
  }

  private EndpointClient() {}

  /**
   * Tells {@code mapping}'s HTTP endpoint about a socket (docs/ENDPOINTS.md#contract): the body
   * names the mapping and its version, is signed with its secret, and waits at most its {@code
   * timeoutMs} for the answer. Never fails: what went wrong is the outcome's error.
   */
  public static CompletionStage<Outcome> call(ActorSystem<?> system, Mapping mapping, EndpointCall.Request request) {
    byte[] body = EndpointCall.body(mapping, request);
    return post(system, mapping.endpoint(), body, mapping.secret(), request.batchId(),
        Duration.ofMillis(mapping.timeoutMs()));
  }

  private static CompletionStage<Outcome> post(ActorSystem<?> system, String url, byte[] body, String secret,
                                               String batchId, Duration timeout) {
    URI uri = URI.create(url);
    int port = uri.getPort() > 0 ? uri.getPort() : ("https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80);
    CircuitBreaker breaker = EndpointBreakers.get(system).forHost(uri.getHost() + ":" + port);
    HttpRequest request = HttpRequest.POST(url)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, body))
        .addHeader(RawHeader.create("X-Berth-Signature", EndpointCall.signature(secret, body)))
        .addHeader(RawHeader.create("X-Berth-Batch", batchId));
    EndpointTransport transport = EndpointTransport.get(system);
    // Checked before the call so that a refusal says why (the pool would report only that its
    // connection never opened); the connection's own check (EndpointTransport) is what holds.
    return transport.refusal(uri.getHost(), port, timeout).thenCompose(refused -> refused != null
        ? CompletableFuture.completedFuture(Outcome.failed("refused: " + refused))
        : send(system, transport, breaker, request, uri, port, timeout));
  }

  private static CompletionStage<Outcome> send(ActorSystem<?> system, EndpointTransport transport,
      CircuitBreaker breaker, HttpRequest request, URI uri, int port, Duration timeout) {
    CompletionStage<Outcome> call;
    try {
      Http http = Http.get(system);
      call = breaker.callWithCircuitBreakerCS(() -> http.singleRequest(request, transport.https(),
                  transport.pool(), system.classicSystem().log())
              .thenCompose(response -> response.entity().withSizeLimit(transport.maxAnswerBytes())
                  .toStrict(timeout.toMillis(), system)
                  .thenApply(strict -> Outcome.answered(response.status().intValue(), strict.getData().toArray())))
              .toCompletableFuture()
              .orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS),
          (Optional<Outcome> result, Optional<Throwable> failure) ->
              failure.isPresent() || result.map(o -> o.status() >= 500).orElse(true));
    } catch (RuntimeException e) {
      call = CompletableFuture.failedFuture(e);
    }
    return call.handle((outcome, failure) -> {
      if (failure == null) {
        return outcome;
      }
      Throwable cause = failure instanceof java.util.concurrent.CompletionException && failure.getCause() != null
          ? failure.getCause() : failure;
      if (cause instanceof CircuitBreakerOpenException) {
        return Outcome.failed("circuit breaker open for " + uri.getHost() + ":" + port
            + " (the endpoint kept failing)");
      }
      if (cause instanceof java.util.concurrent.TimeoutException) {
        return Outcome.failed("no answer within " + timeout.toMillis() + " ms");
      }
      return Outcome.failed(cause.getClass().getSimpleName() + ": " + cause.getMessage());
    });
  }
}
