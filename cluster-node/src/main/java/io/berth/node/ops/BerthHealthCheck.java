package io.berth.node.ops;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import scala.Function0;
import scala.concurrent.Future;
import scala.jdk.javaapi.FutureConverters;

/**
 * A health check that says why it fails. Pekko Management 1.1 shows a check that answers false
 * as {@code Not Healthy: Check [<class>] not ok}, and a Java {@code Supplier} check under the
 * name of the lambda that wraps it ({@code HealthChecksImpl$$Lambda$1214/...}). A check written
 * as Scala's {@code () => Future[Boolean]} keeps its own class name, and one whose future fails
 * is shown with the failure's message: {@code Health Check Failed: Check
 * [io.berth.node.ops.EdgeReadiness] failed: node is draining ...}. So a Berth check passes by
 * answering true and fails with the reason.
 */
abstract class BerthHealthCheck implements Function0<Future<Object>> {

  /** Why the check fails now, or empty when it passes. */
  protected abstract CompletionStage<Optional<String>> problem();

  @Override
  public final Future<Object> apply() {
    CompletionStage<Object> answer = problem().thenCompose(p -> p.isEmpty()
        ? CompletableFuture.completedFuture((Object) Boolean.TRUE)
        : CompletableFuture.failedFuture(new NotReady(p.get())));
    return FutureConverters.asScala(answer);
  }

  protected static CompletionStage<Optional<String>> now(Optional<String> problem) {
    return CompletableFuture.completedFuture(problem);
  }

  /** The reason, as the message Management shows; no stack trace, it is not an error of the code. */
  static final class NotReady extends RuntimeException {
    NotReady(String reason) {
      super(reason, null, false, false);
    }
  }
}
