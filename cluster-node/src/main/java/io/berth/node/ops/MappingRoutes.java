package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.delete;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.onComplete;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathEndOrSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.Directives.put;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.berth.node.mapping.EndpointPolicy;
import io.berth.node.mapping.InvalidMapping;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingJson;
import io.berth.node.mapping.MappingRegistry;
import io.berth.node.mapping.ParkedReplay;
import io.berth.node.mapping.ParkedReplaySettings;
import io.berth.node.mapping.ParkedStore;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.Sockets;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.marshallers.jackson.Jackson;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;

/**
 * {@code /api/mappings} (the registry) and {@code /api/parked} (batches an endpoint refused or
 * kept failing on). A mapping is checked completely before it is saved: a wrong field, an
 * unknown field or a host outside {@code berth.endpoints.allowed-hosts} is a 400 naming it.
 */
final class MappingRoutes {

  private final ActorSystem<?> system;
  private final ObjectMapper json;
  private final OperatorRoutes common;
  private final MappingRegistry registry;
  private final ParkedStore parked;
  private final EndpointPolicy policy;
  private final ParkedReplay replay;

  MappingRoutes(ActorSystem<?> system, ObjectMapper json, OperatorRoutes common) {
    this.system = system;
    this.json = json;
    this.common = common;
    this.registry = MappingRegistry.get(system);
    this.parked = new ParkedStore(system);
    this.policy = EndpointPolicy.fromConfig(system.settings().config());
    this.replay = new ParkedReplay(system, registry, parked,
        ParkedReplaySettings.fromConfig(system.settings().config()),
        (socketId, payload, timeout) -> Sockets.ref(system, socketId)
            .<InjectResult>ask(replyTo -> new SocketCommand.Inject(payload, replyTo), timeout));
  }

  Route routes(boolean readOnly) {
    return concat(
        pathPrefix("mappings", () -> concat(
            pathEndOrSingleSlash(() -> get(this::list)),
            path(PathMatchers.segment(), name -> concat(
                get(() -> find(name)),
                put(() -> common.mutating(readOnly, () -> entity(Unmarshaller.entityToString(), body -> save(name,
                    body)))),
                delete(() -> common.mutating(readOnly, () -> remove(name))))))),
        pathPrefix("parked", () -> concat(
            pathEndOrSingleSlash(() -> get(() -> parameterOptional("limit", limit ->
                parameterOptional("socket", socket -> parkedList(limit, socket))))),
            path(PathMatchers.segment().slash("replay"), id -> post(() -> common.mutating(readOnly, () -> replay(id)))),
            path(PathMatchers.segment(), id -> concat(
                get(() -> parkedOne(id)),
                delete(() -> common.mutating(readOnly, () -> parkedDelete(id))))))));
  }

  // ------------------------------------------------------------------ mappings

  private Route list() {
    return onComplete(registry.list(), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      ArrayNode out = json.createArrayNode();
      r.get().forEach(m -> out.add(MappingJson.toView(m)));
      return complete(StatusCodes.OK, out, Jackson.marshaller(json));
    });
  }

  private Route find(String name) {
    return onComplete(registry.find(name), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      return r.get().isEmpty() ? common.error(StatusCodes.NOT_FOUND, "no mapping '" + name + "'")
          : complete(StatusCodes.OK, MappingJson.toView(r.get().get()), Jackson.marshaller(json));
    });
  }

  private Route save(String name, String body) {
    Mapping parsed;
    try {
      parsed = MappingJson.parse(name, body, 0);
    } catch (InvalidMapping e) {
      return common.error(StatusCodes.BAD_REQUEST, e.getMessage());
    }
    // The host check resolves names: off the actor threads.
    CompletionStage<Mapping> saved = CompletableFuture
        .runAsync(() -> policy.check(parsed.endpoint()), system.dispatchers().lookup(
            org.apache.pekko.actor.typed.DispatcherSelector.blocking()))
        .thenCompose(ok -> registry.save(parsed));
    return onComplete(saved, r -> {
      if (r.isFailure()) {
        Throwable t = r.failed().get();
        Throwable cause = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        return cause instanceof InvalidMapping ? common.error(StatusCodes.BAD_REQUEST, cause.getMessage())
            : common.failure(cause);
      }
      return complete(StatusCodes.OK, MappingJson.toView(r.get()), Jackson.marshaller(json));
    });
  }

  private Route remove(String name) {
    return onComplete(registry.delete(name), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      return r.get() ? complete(StatusCodes.NO_CONTENT)
          : common.error(StatusCodes.NOT_FOUND, "no mapping '" + name + "'");
    });
  }

  // ------------------------------------------------------------------ parked

  private Route parkedList(Optional<String> limitParam, Optional<String> socket) {
    int limit;
    try {
      limit = limitParam.map(Integer::parseInt).orElse(100);
    } catch (NumberFormatException e) {
      return common.error(StatusCodes.BAD_REQUEST, "limit must be a number");
    }
    return onComplete(parked.list(Math.max(1, Math.min(limit, 1000)), socket.orElse(null)), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      ArrayNode out = json.createArrayNode();
      r.get().forEach(p -> out.add(view(p)));
      return complete(StatusCodes.OK, out, Jackson.marshaller(json));
    });
  }

  private Route parkedOne(String id) {
    return onComplete(parked.get(id), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      return r.get().isEmpty() ? common.error(StatusCodes.NOT_FOUND, "no parked batch '" + id + "'")
          : complete(StatusCodes.OK, view(r.get().get()), Jackson.marshaller(json));
    });
  }

  private Route parkedDelete(String id) {
    return onComplete(parked.delete(id), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      return r.get() ? complete(StatusCodes.NO_CONTENT)
          : common.error(StatusCodes.NOT_FOUND, "no parked batch '" + id + "'");
    });
  }

  /** {@code POST /api/parked/{id}/replay} ({@link ParkedReplay}). */
  private Route replay(String id) {
    return onComplete(replay.replay(id), r -> {
      if (r.isFailure()) {
        Throwable t = r.failed().get();
        return common.failure(t instanceof CompletionException && t.getCause() != null ? t.getCause() : t);
      }
      if (r.get() instanceof ParkedReplay.Replayed replayed) {
        return complete(StatusCodes.OK, Map.<String, Object>of("id", id, "replayed", true, "status",
            replayed.status()), Jackson.marshaller(json));
      }
      return common.refused((ParkedReplay.Refused) r.get());
    });
  }

  private ObjectNode view(ParkedStore.Parked p) {
    ObjectNode n = json.createObjectNode();
    n.put("id", p.id());
    n.put("socketId", p.socketId());
    n.put("deviceId", p.deviceId());
    n.put("mapping", p.mapping());
    n.put("mappingVersion", p.mappingVersion());
    n.put("endpoint", p.endpoint());
    n.put("event", p.event());
    n.put("batchId", p.batchId());
    n.put("seqFrom", p.seqFrom());
    n.put("seqTo", p.seqTo());
    if (p.data() != null) {
      n.put("data", Base64.getEncoder().encodeToString(p.data()));
    }
    n.put("error", p.error());
    n.put("attempts", p.attempts());
    n.put("parkedAt", p.parkedAt().toString());
    if (p.replayedAt() != null) {
      n.put("replayedAt", p.replayedAt().toString());
    }
    return n;
  }
}
