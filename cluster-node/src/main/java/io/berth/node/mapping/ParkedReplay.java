package io.berth.node.mapping;

import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * An operator's replay of a parked batch ({@code POST /api/parked/{id}/replay}): the batch goes
 * to its mapping's endpoint again as it was parked, with the same batch id, so that the endpoint
 * can tell a replay from a new batch, and the mapping version it was sent with; the endpoint,
 * secret and timeout are the mapping's now. When the endpoint takes it, a reply it gives is
 * handed to the socket (which sends it down if it is still open) and the record is marked
 * replayed. A link or close the answer asks for is not acted on: the socket's session has moved
 * on since the batch was parked.
 */
public final class ParkedReplay {

  /** What a replay came to. */
  public sealed interface Outcome {}

  /** The endpoint took the batch, answering {@code status} (2xx); the record is marked replayed. */
  public record Replayed(int status) implements Outcome {}

  /** Nothing was marked: {@code refusal} says why, {@code message} says it to an operator. */
  public record Refused(Refusal refusal, String message) implements Outcome {}

  public enum Refusal {
    /** No parked batch has this id. */
    NO_SUCH_BATCH,
    /** The batch's mapping was deleted, or names a built-in function now. */
    NO_HTTP_ENDPOINT,
    /** The endpoint did not take the batch: it answered other than 2xx, or not in time. */
    NOT_TAKEN
  }

  /**
   * Hands an endpoint's reply to a socket, to go down to its device if the socket is open:
   * completes when the socket answered, fails when it did not within {@code timeout}. Given by
   * the caller because a socket's messages name mappings: this package does not name sockets.
   */
  @FunctionalInterface
  public interface Downlink {
    CompletionStage<?> send(String socketId, byte[] payload, Duration timeout);
  }

  private final ActorSystem<?> system;
  private final MappingRegistry registry;
  private final ParkedStore parked;
  private final ParkedReplaySettings settings;
  private final Downlink downlink;

  public ParkedReplay(ActorSystem<?> system, MappingRegistry registry, ParkedStore parked,
                      ParkedReplaySettings settings, Downlink downlink) {
    this.system = system;
    this.registry = registry;
    this.parked = parked;
    this.settings = settings;
    this.downlink = downlink;
  }

  /**
   * Replays parked batch {@code parkedId}. Fails, rather than refuses, when the tables do not
   * answer or the socket does not take the reply in time ({@code berth.parked.reply-timeout}): the
   * endpoint may then have the batch, and the record is not marked.
   */
  public CompletionStage<Outcome> replay(String parkedId) {
    return parked.get(parkedId).thenCompose(found -> {
      if (found.isEmpty()) {
        return refused(Refusal.NO_SUCH_BATCH, "no parked batch '" + parkedId + "'");
      }
      ParkedStore.Parked p = found.get();
      return registry.find(p.mapping()).thenCompose(mapping -> {
        if (mapping.isEmpty() || mapping.get().isBuiltin()) {
          return refused(Refusal.NO_HTTP_ENDPOINT, "mapping '" + p.mapping() + "' no longer has an HTTP endpoint");
        }
        EndpointCall.Request request = new EndpointCall.Request(
            Mapping.Event.valueOf(p.event().toUpperCase(Locale.ROOT)), p.socketId(), p.deviceId(), p.batchId(),
            p.seqFrom(), p.seqTo(), p.data());
        return EndpointClient.call(system, mapping.get().withVersion(p.mappingVersion()), request)
            .thenCompose(o -> o.delivered() ? taken(p, o)
                : refused(Refusal.NOT_TAKEN, "the endpoint did not take the batch: " + o.describe()));
      });
    });
  }

  private CompletionStage<Outcome> taken(ParkedStore.Parked p, EndpointClient.Outcome o) {
    byte[] reply = o.answer().reply();
    CompletionStage<?> handed = reply == null ? CompletableFuture.completedFuture(null)
        : downlink.send(p.socketId(), reply, settings.replyTimeout());
    return handed.thenCompose(x -> parked.markReplayed(p.id(), Instant.now()))
        .thenApply(x -> new Replayed(o.status()));
  }

  private static CompletionStage<Outcome> refused(Refusal refusal, String message) {
    return CompletableFuture.completedFuture(new Refused(refusal, message));
  }
}
