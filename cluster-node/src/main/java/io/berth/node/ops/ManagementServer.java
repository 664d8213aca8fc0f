package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.extractRequest;
import static org.apache.pekko.http.javadsl.server.Directives.handleExceptions;
import static org.apache.pekko.http.javadsl.server.Directives.mapRequest;
import static org.apache.pekko.http.javadsl.server.Directives.mapRouteResultFuture;
import static org.apache.pekko.http.javadsl.server.Directives.respondWithHeader;
import static org.apache.pekko.http.javadsl.server.Directives.toStrictEntity;
import static org.apache.pekko.http.javadsl.server.Directives.withSizeLimit;

import io.berth.node.ops.OperatorKeys.Operator;
import io.berth.node.tls.ManagementTls;
import io.berth.node.tls.ManagementTlsSettings;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.http.javadsl.ConnectionContext;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.HttpsConnectionContext;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.model.AttributeKey;
import org.apache.pekko.http.javadsl.model.AttributeKeys;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.RemoteAddress;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.Authorization;
import org.apache.pekko.http.javadsl.model.headers.BasicHttpCredentials;
import org.apache.pekko.http.javadsl.model.headers.OAuth2BearerToken;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Complete;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.settings.ServerSettings;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.http.scaladsl.model.IllegalRequestException;
import org.apache.pekko.management.PekkoManagementSettings;
import org.apache.pekko.management.javadsl.PekkoManagement;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The management port (docs/operator-access.md): Pekko Management's routes (its cluster and health
 * routes, Berth's {@code /api}) served behind Berth's authentication, roles, limits and audit.
 *
 * <p>Management's own {@code start(authenticator)} does not fit: it takes Basic credentials only,
 * wraps every route, the probes' {@code /alive} and {@code /ready} included, and hands the routes
 * no caller, so no route could check a role. So this class binds the port itself, with the routes
 * {@link PekkoManagement#getRoutes} gives (the same routes, settings and HTTPS context Management
 * would serve), in front of which every request goes through one gate:
 *
 * <ol>
 *   <li>{@code GET} of the liveness and readiness paths passes: probes carry no credentials; so
 *       does {@code GET /bootstrap/seed-nodes} when the node bootstraps ({@link BootstrapSettings});
 *   <li>{@code GET} of {@code /} and {@code /ui/...} is the {@link ClusterPage}'s: static files
 *       that hold no data, served by that route alone (never by Management's);
 *   <li>anything else needs an operator key, as {@code Authorization: Bearer KEY} or as the
 *       password of Basic credentials: without a valid one, 401 with {@code WWW-Authenticate};
 *   <li>the route's rule in {@link AccessPolicy} names the role it needs: short of it, 403;
 *   <li>a body is read whole within {@code body-timeout} (408) and up to the rule's limit (413);
 *   <li>a call that changes something, and a refused one, is written to the {@link AuditLog}
 *       before its answer leaves.
 * </ol>
 *
 * Every answer carries an {@code X-Request-Id}, which the audit row and log line carry too. The
 * 401 and 403 answers say nothing about why, so that they teach a caller nothing.
 */
public final class ManagementServer {

  private static final Logger log = LoggerFactory.getLogger(ManagementServer.class);

  /** The operator a request came from, for routes that record who did something. */
  public static final AttributeKey<Operator> OPERATOR = AttributeKey.create("berth-operator", Operator.class);

  private static final HttpHeader BEARER_CHALLENGE = RawHeader.create("WWW-Authenticate", "Bearer realm=\"berth\"");

  /**
   * What cluster bootstrap's probes ask of the other nodes, without credentials: the member
   * addresses this node knows (docs/operator-access.md#the-gate).
   */
  private static final List<String> BOOTSTRAP_PROBE = List.of("bootstrap", "seed-nodes");

  private final ActorSystem<?> system;
  private final ManagementSettings settings;
  private final OperatorKeys keys;
  private final AuditLog audit;
  private final List<String> probePaths;
  private final boolean bootstrap;
  private final String node;

  ManagementServer(ActorSystem<?> system) {
    this.system = system;
    this.settings = ManagementSettings.fromConfig(system.settings().config());
    this.keys = OperatorKeys.get(system);
    this.audit = AuditLog.get(system);
    var health = system.settings().config().getConfig("pekko.management.health-checks");
    this.probePaths = List.of(health.getString("readiness-path"), health.getString("liveness-path"));
    this.bootstrap = BootstrapSettings.fromConfig(system.settings().config()).enabled();
    this.node = Cluster.get(system).selfMember().address().toString();
  }

  /**
   * Binds the management port, over HTTPS unless {@code berth.management.tls.enabled} is off, and
   * unbinds it when the node stops.
   */
  public static CompletionStage<ServerBinding> start(ActorSystem<?> system) {
    Optional<HttpsConnectionContext> https = Optional.empty();
    try {
      ManagementTlsSettings tlsSettings = ManagementTlsSettings.fromConfig(system.settings().config());
      if (tlsSettings.enabled()) {
        ManagementTls tls = new ManagementTls(tlsSettings);
        system.getWhenTerminated().thenRun(tls::close);
        https = Optional.of(ConnectionContext.httpsServer(tls::newEngine));
      }
      return start(system, https);
    } catch (RuntimeException e) {
      return java.util.concurrent.CompletableFuture.failedFuture(e);
    }
  }

  private static CompletionStage<ServerBinding> start(ActorSystem<?> system, Optional<HttpsConnectionContext> https) {
    ManagementServer server = new ManagementServer(system);
    PekkoManagement management = PekkoManagement.get(system);
    Route routes = management.getRoutes(s -> https.map(s::withHttpsConnectionContext).orElse(s));
    PekkoManagementSettings.Http$ http = management.settings().Http();
    var builder = Http.get(system).newServerAt(http.EffectiveBindHostname(), http.EffectiveBindPort())
        .withSettings(ServerSettings.create(system.settings().config()).withRemoteAddressAttribute(true));
    if (https.isPresent()) {
      builder = builder.enableHttps(https.get());
    }
    return builder.bind(server.route(routes)).thenApply(binding -> {
      log.info("Management port bound to {} ({}); operator routes need a key, /{} and /{}{} do not; the cluster"
          + " page is at /ui/", binding.localAddress(), https.isPresent() ? "HTTPS" : "plain HTTP",
          server.probePaths.get(1), server.probePaths.get(0),
          server.bootstrap ? " and GET /bootstrap/seed-nodes" : "");
      CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseServiceUnbind(), "berth-management-unbind",
          (java.util.function.Supplier<CompletionStage<org.apache.pekko.Done>>) () -> binding.unbind());
      return binding;
    });
  }

  /** The gate in front of Management's routes; package-visible for tests of the gate alone. */
  Route route(Route management) {
    Route inner = management.seal();
    Route page = ClusterPage.route().seal();
    return handleExceptions(bodyFailures(), () -> extractRequest(request -> {
      String requestId = UUID.randomUUID().toString();
      // The connection's own address: forwarding headers are the caller's to write.
      String remote = request.getAttribute(AttributeKeys.remoteAddress)
          .flatMap(RemoteAddress::getAddress).map(a -> a.getHostAddress()).orElse("unknown");
      return respondWithHeader(RawHeader.create("X-Request-Id", requestId), () -> {
        String method = request.method().value();
        List<String> path = segments(request);
        if (method.equals("GET") && path.size() == 1 && probePaths.contains(path.get(0))) {
          return inner;
        }
        if (bootstrap && method.equals("GET") && path.equals(BOOTSTRAP_PROBE)) {
          return inner;
        }
        if (ClusterPage.serves(method, path)) {
          return page;
        }
        Optional<Operator> operator = credentials(request).flatMap(keys::authenticate);
        if (operator.isEmpty()) {
          log.info("Management request without a valid key: {} {} from {} (request {})", method,
              request.getUri().path(), remote, requestId);
          return complete(HttpResponse.create().withStatus(StatusCodes.UNAUTHORIZED)
              .addHeader(BEARER_CHALLENGE)
              .withEntity(json("{\"error\":\"authentication required\"}")));
        }
        Operator who = operator.get();
        Optional<AccessPolicy.Rule> rule = AccessPolicy.find(method, path);
        Call call = new Call(who, method, request, requestId, remote);
        if (rule.isEmpty() || !who.role().covers(rule.get().role()) || (rule.get().mutating() && crossSite(request))) {
          return audited(call, () -> complete(HttpResponse.create().withStatus(StatusCodes.FORBIDDEN)
              .withEntity(json("{\"error\":\"forbidden\"}"))));
        }
        long maxBody = rule.get().maxBody() > 0 ? rule.get().maxBody() : settings.maxBody();
        Route asOperator = mapRequest(r -> r.addAttribute(OPERATOR, who), () -> inner);
        if (!rule.get().mutating()) {
          return withSizeLimit(maxBody, () -> asOperator);
        }
        return audited(call, () -> withSizeLimit(maxBody, () -> toStrictEntity(settings.bodyTimeout(),
            () -> asOperator)));
      });
    }));
  }

  /**
   * A change asked for by a page of another site: a browser that holds credentials for this port
   * (Basic ones it was given by hand) would attach them to a form another site posts. Browsers say
   * where a request comes from ({@code Sec-Fetch-Site}, {@code Origin}); curl and scripts send
   * neither and are not affected.
   */
  static boolean crossSite(HttpRequest request) {
    Optional<String> fetchSite = request.getHeader("Sec-Fetch-Site").map(HttpHeader::value);
    if (fetchSite.isPresent()) {
      return !fetchSite.get().equals("same-origin") && !fetchSite.get().equals("none");
    }
    Optional<String> origin = request.getHeader("Origin").map(HttpHeader::value);
    if (origin.isEmpty()) {
      return false;
    }
    Optional<String> host = request.getHeader("Host").map(HttpHeader::value);
    String o = origin.get();
    int scheme = o.indexOf("://");
    return host.isEmpty() || scheme < 0 || !o.substring(scheme + 3).equalsIgnoreCase(host.get());
  }

  private record Call(Operator who, String method, HttpRequest request, String requestId, String remote) {}

  /** Runs the route, then records its answer before it leaves. */
  private Route audited(Call call, java.util.function.Supplier<Route> route) {
    return mapRouteResultFuture(result -> result.thenCompose(r -> {
      int status = r instanceof Complete c ? c.getResponse().status().intValue() : 404;
      AuditLog.Entry entry = new AuditLog.Entry(0, Instant.now().truncatedTo(ChronoUnit.MICROS), call.who().id(),
          call.who().role().label(), call.method(), pathAndQuery(call.request()), status, call.requestId(),
          call.remote(), node);
      return audit.record(entry).handle((ok, failure) -> r);
    }), route);
  }

  /**
   * A body that did not arrive in time is 408, one over the limit 413, both before any route ran;
   * anything else goes on to the default handler (a 500 that says nothing of the cause).
   */
  private ExceptionHandler bodyFailures() {
    return ExceptionHandler.newBuilder()
        .match(CompletionException.class, e -> bodyFailure(e.getCause()))
        .match(TimeoutException.class, this::bodyFailure)
        .match(EntityStreamSizeException.class, this::bodyFailure)
        .match(IllegalRequestException.class, this::bodyFailure)
        .build();
  }

  private Route bodyFailure(Throwable t) {
    if (t instanceof TimeoutException) {
      return complete(StatusCodes.REQUEST_TIMEOUT, json("{\"error\":\"the request body did not arrive within "
          + settings.bodyTimeout().toSeconds() + " s\"}"));
    }
    if (t instanceof EntityStreamSizeException) {
      return complete(StatusCodes.PAYLOAD_TOO_LARGE, json("{\"error\":\"the request body is too large\"}"));
    }
    if (t instanceof IllegalRequestException e) {
      return complete(StatusCodes.get(e.status().intValue()), json("{\"error\":\"the request is malformed\"}"));
    }
    throw t instanceof RuntimeException r ? r : new CompletionException(t);
  }

  /** The key presented: a bearer token, or the password of Basic credentials (any user name). */
  static Optional<String> credentials(HttpRequest request) {
    return request.getHeader(Authorization.class).map(Authorization::credentials).flatMap(c -> {
      if (c instanceof OAuth2BearerToken bearer) {
        return Optional.of(bearer.token());
      } else if (c instanceof BasicHttpCredentials basic) {
        return Optional.of(basic.password());
      }
      return Optional.<String>empty();
    });
  }

  private static List<String> segments(HttpRequest request) {
    List<String> out = new ArrayList<>();
    request.getUri().pathSegments().forEach(out::add);
    if (!out.isEmpty() && out.get(out.size() - 1).isEmpty()) {
      out.remove(out.size() - 1); // a trailing slash names the same route
    }
    return out;
  }

  private static String pathAndQuery(HttpRequest request) {
    String query = request.getUri().rawQueryString().orElse("");
    return request.getUri().path() + (query.isEmpty() ? "" : "?" + query);
  }

  private static org.apache.pekko.http.javadsl.model.ResponseEntity json(String body) {
    return HttpEntities.create(ContentTypes.APPLICATION_JSON, body);
  }
}
