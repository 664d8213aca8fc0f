package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import io.berth.node.connection.ConnectionEntity;
import io.berth.protocol.SocketId;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.marshallers.jackson.Jackson;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * Berth's operator API, served under {@code /api} on the Pekko Management port next to
 * Management's own cluster and health routes. Routes are thin: path in, command to an entity,
 * JSON out; failures map to status codes in {@link #failure}.
 */
public final class OperatorRoutes implements ManagementRouteProvider {

  private final ActorSystem<?> system;
  private final ClusterSharding sharding;
  private final ObjectMapper json;
  private final Duration askTimeout;

  public OperatorRoutes(ExtendedActorSystem classic) {
    this.system = Adapter.toTyped(classic);
    this.sharding = ClusterSharding.get(system);
    this.json = new ObjectMapper()
        .registerModule(new JavaTimeModule())
        .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS);
    this.askTimeout = system.settings().config().getDuration("berth.connection.ask-timeout");
  }

  @Override
  public Route routes(ManagementRouteProviderSettings settings) {
    return pathPrefix("api", () -> concat(
        pathPrefix("sockets", () -> get(() -> concat(
            // A socket id may hold one slash (device/name): accept it raw or as %2F.
            path(PathMatchers.segment().slash(PathMatchers.segment()),
                (device, name) -> socket(device + "/" + name)),
            path(PathMatchers.segment(), this::socket))))));
  }

  private Route socket(String socketId) {
    if (!SocketId.isValid(socketId)) {
      return error(StatusCodes.BAD_REQUEST, "invalid socket id '" + socketId + "'");
    }
    CompletionStage<ConnectionEntity.SocketStatus> status = sharding
        .entityRefFor(ConnectionEntity.ENTITY_KEY, socketId)
        .ask(ConnectionEntity.GetStatus::new, askTimeout);
    return org.apache.pekko.http.javadsl.server.Directives.onComplete(status, result -> {
      if (result.isFailure()) {
        return failure(result.failed().get());
      }
      ConnectionEntity.SocketStatus s = result.get();
      if (!s.exists()) {
        return error(StatusCodes.NOT_FOUND, "no socket '" + socketId + "'");
      }
      return complete(StatusCodes.OK, s, Jackson.marshaller(json));
    });
  }

  /** The one place where failures become HTTP answers. */
  private Route failure(Throwable t) {
    if (t instanceof java.util.concurrent.TimeoutException
        || t.getCause() instanceof java.util.concurrent.TimeoutException) {
      return error(StatusCodes.SERVICE_UNAVAILABLE, "the cluster did not answer within " + askTimeout.toMillis()
          + " ms; retry");
    }
    system.log().warn("Operator request failed", t);
    return error(StatusCodes.INTERNAL_SERVER_ERROR, t.getClass().getSimpleName() + ": " + t.getMessage());
  }

  private Route error(StatusCode code, String message) {
    return complete(code, Map.of("error", message), Jackson.marshaller(json));
  }
}
