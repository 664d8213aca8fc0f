package io.berth.node.mapping;

import io.berth.node.metrics.Metrics;
import io.berth.protocol.Backoff;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Invokes one socket's HTTP endpoint, one batch at a time: a child of the socket's entity, so it
 * moves and stops with it. Retries 5xx, timeouts and connection errors with exponential backoff
 * and jitter; after {@code retry.maxAttempts}, or at once for other 4xx, it parks the batch
 * durably and only then answers, so that the socket can acknowledge and go on.
 */
public final class MappingActor {

  public sealed interface Command {}

  /** Deliver one batch (or an open/close event, without data). */
  public record Invoke(String batchId, Mapping.Event event, long seqFrom, long seqTo, byte[] data,
                       ActorRef<Result> replyTo) implements Command {}

  private record Attempted(Invoke invoke, int attempt, EndpointClient.Outcome outcome, long startedAt)
      implements Command {}

  private record Again(Invoke invoke, int attempt) implements Command {}

  private record ParkWritten(Invoke invoke, ParkedStore.Parked parked, Throwable failure) implements Command {}

  private record ParkAgain(Invoke invoke, ParkedStore.Parked parked) implements Command {}

  /** What the entity learns: delivered (with the endpoint's answer), or parked. */
  public sealed interface Result {}

  public record Delivered(String batchId, EndpointCall.Answer answer) implements Result {}

  public record Parked(String batchId, String parkedId, String error) implements Result {}

  public static Behavior<Command> create(Mapping mapping, String socketId, String deviceId) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
        new MappingActor(ctx, timers, mapping, socketId, deviceId).behavior()));
  }

  private final ActorContext<Command> ctx;
  private final TimerScheduler<Command> timers;
  private final Mapping mapping;
  private final String socketId;
  private final String deviceId;
  private final ParkedStore parked;
  private final Metrics metrics;

  private MappingActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, Mapping mapping, String socketId,
                       String deviceId) {
    this.ctx = ctx;
    this.timers = timers;
    this.mapping = mapping;
    this.socketId = socketId;
    this.deviceId = deviceId;
    this.parked = new ParkedStore(ctx.getSystem());
    this.metrics = Metrics.get(ctx.getSystem());
  }

  private Behavior<Command> behavior() {
    return Behaviors.receive(Command.class)
        .onMessage(Invoke.class, m -> attempt(m, 1))
        .onMessage(Again.class, m -> attempt(m.invoke(), m.attempt()))
        .onMessage(Attempted.class, this::onAttempted)
        .onMessage(ParkWritten.class, this::onParkWritten)
        .onMessage(ParkAgain.class, m -> writePark(m.invoke(), m.parked()))
        .build();
  }

  private Behavior<Command> attempt(Invoke m, int attempt) {
    EndpointCall.Request request = new EndpointCall.Request(m.event(), socketId, deviceId, m.batchId(), m.seqFrom(),
        m.seqTo(), m.data());
    long startedAt = System.nanoTime();
    ctx.pipeToSelf(EndpointClient.call(ctx.getSystem(), mapping, request),
        (outcome, failure) -> new Attempted(m, attempt, failure == null ? outcome
            : EndpointClient.Outcome.failed(String.valueOf(failure)), startedAt));
    return Behaviors.same();
  }

  private Behavior<Command> onAttempted(Attempted m) {
    EndpointClient.Outcome o = m.outcome();
    metrics.endpointCall(mapping.name(), o.delivered() ? "delivered" : o.retryable() ? "failed" : "refused",
        System.nanoTime() - m.startedAt());
    if (o.delivered()) {
      EndpointCall.Answer answer = o.answer();
      if (answer.problem() != null) {
        ctx.getLog().warn("Socket {}: endpoint {} took batch {} but its answer was ignored: {}", socketId,
            mapping.endpoint(), m.invoke().batchId(), answer.problem());
      }
      m.invoke().replyTo().tell(new Delivered(m.invoke().batchId(), answer));
      return Behaviors.same();
    }
    Mapping.Retry retry = mapping.retry();
    if (o.retryable() && m.attempt() < retry.maxAttempts()) {
      long delay = Backoff.doubling(Duration.ofMillis(retry.backoffBaseMs()),
          Duration.ofMillis(retry.backoffMaxMs()), 0.5).delayMillis(m.attempt());
      ctx.getLog().info("Socket {}: batch {} attempt {}/{} failed ({}), retrying in {} ms", socketId,
          m.invoke().batchId(), m.attempt(), retry.maxAttempts(), o.describe(), delay);
      metrics.endpointRetry(mapping.name());
      timers.startSingleTimer(new Again(m.invoke(), m.attempt() + 1), Duration.ofMillis(delay));
      return Behaviors.same();
    }
    String error = (o.retryable() ? "gave up after " + m.attempt() + " attempts: " : "refused: ") + o.describe();
    ctx.getLog().warn("Socket {}: parking batch {} ({})", socketId, m.invoke().batchId(), error);
    metrics.parked(mapping.name());
    Invoke inv = m.invoke();
    return writePark(inv, new ParkedStore.Parked(UUID.randomUUID().toString(), socketId, deviceId, mapping.name(),
        mapping.version(), mapping.endpoint(), inv.event().wire(), inv.batchId(), inv.seqFrom(), inv.seqTo(),
        inv.data(), error, m.attempt(), Instant.now(), null));
  }

  private Behavior<Command> writePark(Invoke inv, ParkedStore.Parked p) {
    ctx.pipeToSelf(parked.insert(p), (ok, failure) -> new ParkWritten(inv, p, failure));
    return Behaviors.same();
  }

  private Behavior<Command> onParkWritten(ParkWritten m) {
    if (m.failure() != null) {
      // The batch is acknowledged only once it is durably parked: keep trying.
      ctx.getLog().warn("Socket {}: cannot park batch {} yet: {}", socketId, m.invoke().batchId(),
          m.failure().getMessage());
      timers.startSingleTimer(new ParkAgain(m.invoke(), m.parked()), Duration.ofSeconds(2));
      return Behaviors.same();
    }
    m.invoke().replyTo().tell(new Parked(m.invoke().batchId(), m.parked().id(), m.parked().error()));
    return Behaviors.same();
  }
}
