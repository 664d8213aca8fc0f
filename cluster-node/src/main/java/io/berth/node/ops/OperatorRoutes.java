package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.delete;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.onComplete;
import static org.apache.pekko.http.javadsl.server.Directives.parameterMap;
import static org.apache.pekko.http.javadsl.server.Directives.parameterOptional;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathEndOrSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.post;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import io.berth.node.balance.LoadReporter;
import io.berth.node.balance.LoadView;
import io.berth.node.balance.MigrationLog;
import io.berth.node.balance.MigrationRequest;
import io.berth.node.balance.NodeLoad;
import io.berth.node.link.LinkStore;
import io.berth.node.link.PeerLinkEntity;
import io.berth.node.mapping.MappingJson;
import io.berth.node.mapping.ParkedReplay;
import io.berth.node.socket.SocketIndex;
import io.berth.node.socket.SocketSettings;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.OperatorCloseResult;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.SocketStatus;
import io.berth.node.socket.api.Sockets;
import io.berth.protocol.SocketId;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.http.javadsl.marshallers.jackson.Jackson;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * Berth's operator API, served under {@code /api} on the Pekko Management port next to
 * Management's own cluster and health routes. Routes are thin: path in, command or read out,
 * JSON back; failures map to status codes in {@link #failure}. Mutating routes are refused when
 * Management runs read-only.
 */
public final class OperatorRoutes implements ManagementRouteProvider {

  private final ActorSystem<?> system;
  private final ClusterSharding sharding;
  private final ObjectMapper json;
  private final Duration askTimeout;
  private final MappingRoutes mappings;
  private final DenyListRoutes denyList;
  private final AccessRoutes access;
  private final LinkStore linkStore;

  public OperatorRoutes(ExtendedActorSystem classic) {
    this.system = Adapter.toTyped(classic);
    this.sharding = ClusterSharding.get(system);
    this.json = new ObjectMapper()
        .registerModule(new JavaTimeModule())
        .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
        .setSerializationInclusion(JsonInclude.Include.NON_NULL);
    this.askTimeout = SocketSettings.fromConfig(system.settings().config()).askTimeout();
    this.mappings = new MappingRoutes(system, json, this);
    this.denyList = new DenyListRoutes(system, json, this);
    this.access = new AccessRoutes(system, json, this);
    this.linkStore = new LinkStore(system);
  }

  @Override
  public Route routes(ManagementRouteProviderSettings settings) {
    boolean readOnly = settings.readOnly();
    return pathPrefix("api", () -> concat(
        pathPrefix("sockets", () -> concat(
            pathEndOrSingleSlash(() -> get(() -> parameterMap(this::sockets))),
            // A socket id may hold one slash (device/name): accept it raw or as %2F.
            path(PathMatchers.segment().slash("migrate"), id -> post(() -> mutating(readOnly, () -> migrate(id)))),
            path(PathMatchers.segment().slash(PathMatchers.segment()).slash("migrate"),
                (device, name) -> post(() -> mutating(readOnly, () -> migrate(device + "/" + name)))),
            path(PathMatchers.segment().slash("messages"), id -> post(() -> mutating(readOnly, () -> inject(id)))),
            path(PathMatchers.segment().slash(PathMatchers.segment()).slash("messages"),
                (device, name) -> post(() -> mutating(readOnly, () -> inject(device + "/" + name)))),
            get(() -> concat(
                path(PathMatchers.segment().slash(PathMatchers.segment()),
                    (device, name) -> socket(device + "/" + name)),
                path(PathMatchers.segment(), this::socket))),
            delete(() -> mutating(readOnly, () -> concat(
                path(PathMatchers.segment().slash(PathMatchers.segment()),
                    (device, name) -> closeSocket(device + "/" + name)),
                path(PathMatchers.segment(), this::closeSocket)))))),
        mappings.routes(readOnly),
        denyList.routes(readOnly),
        access.routes(readOnly),
        pathPrefix("links", () -> concat(
            pathEndOrSingleSlash(() -> get(() -> parameterOptional("state", this::links))),
            path(PathMatchers.segment(), id -> concat(
                get(() -> link(id)),
                delete(() -> mutating(readOnly, () -> unlink(id))))))),
        pathPrefix("nodes", () -> concat(
            pathEndOrSingleSlash(() -> get(this::nodes)),
            path(PathMatchers.segment().slash("drain"), node -> concat(
                post(() -> mutating(readOnly, () -> drain(node, true))),
                delete(() -> mutating(readOnly, () -> drain(node, false))))))),
        pathPrefix("migrations", () -> get(() -> concat(
            pathEndOrSingleSlash(() -> parameterOptional("limit", limit -> parameterOptional("socket", socket ->
                parameterOptional("cause", cause -> migrations(limit, socket, cause))))),
            path(PathMatchers.segment(), this::migration))))));
  }

  // ------------------------------------------------------------------ sockets

  private static final Set<String> LIST_PARAMETERS = Set.of("state", "node", "edge", "mapping", "device", "limit",
      "after");
  private static final Set<String> LISTED_STATES = Set.of("open", "detached", "closed");

  /**
   * {@code GET /api/sockets[?state=&node=&edge=&mapping=&device=&limit=&after=]}: a page of the
   * socket index in socket id order, each socket with the node its shard runs on now
   * (docs/operator-api.md#listing-sockets).
   */
  private Route sockets(Map<String, String> params) {
    for (String name : params.keySet()) {
      if (!LIST_PARAMETERS.contains(name)) {
        return error(StatusCodes.BAD_REQUEST, "unknown parameter '" + name + "' (expected one of state, node, edge,"
            + " mapping, device, limit, after)");
      }
    }
    SocketIndex index = SocketIndex.get(system);
    String state = params.get("state");
    if (state != null && !LISTED_STATES.contains(state)) {
      return error(StatusCodes.BAD_REQUEST, "state must be open, detached or closed, got '" + state + "'");
    }
    String device = params.get("device");
    if (device != null && !SocketId.isValidDeviceId(device)) {
      return error(StatusCodes.BAD_REQUEST, "device: a device id (1 to 64 of A-Z a-z 0-9 . _ -) is expected, got '"
          + device + "'");
    }
    String mapping = params.get("mapping");
    if (mapping != null && !MappingJson.isValidName(mapping)) {
      return error(StatusCodes.BAD_REQUEST, "mapping: a mapping name (1 to 64 of A-Z a-z 0-9 . _ -) is expected, got '"
          + mapping + "'");
    }
    Optional<String> node = Optional.empty();
    if (params.containsKey("node")) {
      node = nodeAddress(params.get("node"));
      if (node.isEmpty()) {
        return error(StatusCodes.BAD_REQUEST, "node: host:port or pekko://" + system.name() + "@host:port is expected,"
            + " got '" + params.get("node") + "'");
      }
    }
    String edge = null;
    if (params.containsKey("edge")) {
      Optional<String> e = nodeAddress(params.get("edge"));
      if (e.isEmpty()) {
        return error(StatusCodes.BAD_REQUEST, "edge: host:port or pekko://" + system.name() + "@host:port is expected,"
            + " got '" + params.get("edge") + "'");
      }
      edge = e.get();
    }
    int max = index.settings().maxPageSize();
    int limit;
    try {
      limit = params.containsKey("limit") ? Integer.parseInt(params.get("limit")) : index.settings().defaultPageSize();
    } catch (NumberFormatException e) {
      limit = -1;
    }
    if (limit < 1 || limit > max) {
      return error(StatusCodes.BAD_REQUEST, "limit must be a number between 1 and " + max + ", got '"
          + params.get("limit") + "'");
    }
    String after = params.get("after");
    if (after != null && !SocketId.isValid(after)) {
      return error(StatusCodes.BAD_REQUEST, "after: the 'next' socket id of the previous page is expected, got '"
          + after + "'");
    }
    String edgeNode = edge;
    int pageSize = limit;
    Optional<String> onNode = node;
    CompletionStage<Map<String, Object>> page = shardLocations().thenCompose(located -> {
      Set<String> shards = null;
      if (onNode.isPresent()) {
        shards = new java.util.HashSet<>();
        for (Map.Entry<String, String> e : located.entrySet()) {
          if (e.getValue().equals(onNode.get())) {
            shards.add(e.getKey());
          }
        }
      }
      return index.list(new SocketIndex.Query(state, device, mapping, edgeNode, shards, after, pageSize))
          .thenApply(p -> {
            List<Map<String, Object>> rows = new ArrayList<>();
            for (SocketIndex.Row r : p.rows()) {
              Map<String, Object> row = new LinkedHashMap<>();
              row.put("socketId", r.socketId());
              row.put("deviceId", r.deviceId());
              row.put("state", r.state());
              row.put("mapping", r.mapping());
              row.put("node", located.get(r.shardId()));
              row.put("edge", r.edgeNode());
              row.put("shard", r.shardId());
              row.put("openedAt", r.openedAt());
              row.put("updatedAt", r.updatedAt());
              rows.add(row);
            }
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("sockets", rows);
            body.put("next", p.next());
            return body;
          });
    });
    return onComplete(page, r -> r.isSuccess() ? complete(StatusCodes.OK, r.get(), Jackson.marshaller(json))
        : failure(r.failed().get()));
  }

  /** Where each running shard of sockets is now: shard id to node address, from every region. */
  private CompletionStage<Map<String, String>> shardLocations() {
    CompletionStage<org.apache.pekko.cluster.sharding.ShardRegion.ClusterShardingStats> stats =
        org.apache.pekko.actor.typed.javadsl.AskPattern.ask(sharding.shardState(),
            replyTo -> new org.apache.pekko.cluster.sharding.typed.GetClusterShardingStats(Sockets.ENTITY_KEY,
                askTimeout, replyTo), askTimeout.multipliedBy(2), system.scheduler());
    return stats.thenApply(s -> {
      Map<String, String> located = new java.util.HashMap<>();
      s.getRegions().forEach((address, region) -> {
        for (String shard : region.getStats().keySet()) {
          located.put(shard, address.toString());
        }
      });
      return located;
    });
  }

  /**
   * A node's address from a filter value: a member's address or host:port, or one of a node that
   * left (its sockets may still be listed there); empty when the value is not an address at all.
   */
  private Optional<String> nodeAddress(String value) {
    Optional<String> member = resolveNode(value);
    if (member.isPresent()) {
      return member;
    }
    String prefix = "pekko://" + system.name() + "@";
    String hostPort = value.startsWith(prefix) ? value.substring(prefix.length()) : value;
    return hostPort.matches("[A-Za-z0-9.\\-]+:[0-9]{1,5}") ? Optional.of(prefix + hostPort) : Optional.empty();
  }

  private Route socket(String socketId) {
    return withSocket(socketId, s -> complete(StatusCodes.OK, s, Jackson.marshaller(json)));
  }

  private Route withSocket(String socketId, Function<SocketStatus, Route> then) {
    if (!SocketId.isValid(socketId)) {
      return error(StatusCodes.BAD_REQUEST, "invalid socket id '" + socketId + "'");
    }
    CompletionStage<SocketStatus> status = Sockets.status(system, socketId, askTimeout);
    return onComplete(status, result -> {
      if (result.isFailure()) {
        return failure(result.failed().get());
      }
      SocketStatus s = result.get();
      if (!s.exists()) {
        return error(StatusCodes.NOT_FOUND, "no socket '" + socketId + "'");
      }
      return then.apply(s);
    });
  }

  /** {@code POST /api/sockets/{id}/migrate[?to=node]}: the same path as an automatic move. */
  private Route migrate(String socketId) {
    return parameterOptional("to", to -> withSocket(socketId, status -> {
      String target = "";
      if (to.isPresent() && !to.get().isBlank()) {
        Optional<String> node = resolveNode(to.get());
        if (node.isEmpty()) {
          return error(StatusCodes.BAD_REQUEST, "no cluster member '" + to.get() + "' (give its address, "
              + "pekko://berth@host:port, or host:port)");
        }
        if (LoadView.get(system).draining().contains(node.get())) {
          return error(StatusCodes.CONFLICT, "node " + node.get() + " is being drained");
        }
        target = node.get();
      }
      String shard = Sockets.shardOf(system, socketId);
      MigrationRequest request = new MigrationRequest(UUID.randomUUID().toString(), socketId, shard, target,
          System.currentTimeMillis());
      // The record exists before the request travels: the id answered finds it at once.
      CompletionStage<Void> recorded = MigrationLog.get(system).insert(new MigrationLog.Migration(request.id(),
          socketId, shard, "manual", MigrationLog.REQUESTED, status.node(), target.isEmpty() ? null : target, null,
          null, null, Instant.ofEpochMilli(request.requestedAtMillis()), null, null, null, null, null, null));
      String asked = target;
      return onComplete(recorded, r -> {
        if (r.isFailure()) {
          return failure(r.failed().get());
        }
        LoadView.get(system).reporter().tell(new LoadReporter.Request(request));
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("id", request.id());
        body.put("socketId", socketId);
        body.put("shard", shard);
        body.put("from", status.node());
        body.put("to", asked.isEmpty() ? "the node with the most headroom" : asked);
        body.put("record", "/api/migrations/" + request.id());
        return complete(StatusCodes.ACCEPTED, body, Jackson.marshaller(json));
      });
    }));
  }

  /** {@code POST /api/sockets/{id}/messages}: the body goes down the socket as DATA. */
  private Route inject(String socketId) {
    if (!SocketId.isValid(socketId)) {
      return error(StatusCodes.BAD_REQUEST, "invalid socket id '" + socketId + "'");
    }
    return org.apache.pekko.http.javadsl.server.Directives.withSizeLimit(MAX_MESSAGE_BYTES, () ->
        org.apache.pekko.http.javadsl.server.Directives.entity(
            org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller.entityToByteString(), body -> {
              CompletionStage<InjectResult> result = sharding
                  .entityRefFor(Sockets.ENTITY_KEY, socketId)
                  .ask(replyTo -> new SocketCommand.Inject(body.toArray(), replyTo), askTimeout);
              return onComplete(result, r -> {
                if (r.isFailure()) {
                  return failure(r.failed().get());
                }
                if (r.get() instanceof InjectResult.Injected injected) {
                  return complete(StatusCodes.ACCEPTED, Map.of("socketId", socketId, "seq", injected.seq()),
                      Jackson.marshaller(json));
                }
                return refused(((InjectResult.Refused) r.get()).refusal());
              });
            }));
  }

  /** {@code DELETE /api/sockets/{id}}: ends the session; the device gets CLOSE 1003. */
  private Route closeSocket(String socketId) {
    if (!SocketId.isValid(socketId)) {
      return error(StatusCodes.BAD_REQUEST, "invalid socket id '" + socketId + "'");
    }
    CompletionStage<OperatorCloseResult> result = sharding
        .entityRefFor(Sockets.ENTITY_KEY, socketId)
        .ask(replyTo -> new SocketCommand.CloseByOperator("closed by an operator", replyTo),
            askTimeout.multipliedBy(6));
    return onComplete(result, r -> {
      if (r.isFailure()) {
        return failure(r.failed().get());
      }
      if (r.get() instanceof OperatorCloseResult.Closed) {
        return complete(StatusCodes.OK, Map.of("socketId", socketId, "closed", true), Jackson.marshaller(json));
      }
      return refused(socketId, ((OperatorCloseResult.Refused) r.get()).refusal());
    });
  }

  // ------------------------------------------------------------------ links

  /** {@code GET /api/links[?state=linked]}: newest first; live links with frames relayed each way. */
  private Route links(Optional<String> state) {
    CompletionStage<List<Map<String, Object>>> rows = linkStore.list(200, state.orElse(null))
        .thenCompose(list -> {
          List<CompletionStage<Map<String, Object>>> each = new ArrayList<>();
          for (LinkStore.Row r : list) {
            each.add(withCounters(r.id(), r.a(), r.b(), r.state(), r.waiter(), r.reason(), r.since()));
          }
          return sequence(each);
        });
    return onComplete(rows, r -> r.isSuccess() ? complete(StatusCodes.OK, r.get(), Jackson.marshaller(json))
        : failure(r.failed().get()));
  }

  /** {@code GET /api/links/{id}} (the id URL-encoded: the two socket ids in order, joined by +). */
  private Route link(String id) {
    CompletionStage<Map<String, Object>> info = sharding
        .entityRefFor(PeerLinkEntity.ENTITY_KEY, id)
        .ask(PeerLinkEntity.Get::new, askTimeout)
        .thenCompose(i -> i.a() == null ? CompletableFuture.completedFuture(null)
            : withCounters(i.id(), i.a(), i.b(), i.state(), i.waiter(), i.reason(), i.since()));
    return onComplete(info, r -> {
      if (r.isFailure()) {
        return failure(r.failed().get());
      }
      return r.get() == null ? error(StatusCodes.NOT_FOUND, "no link '" + id + "'")
          : complete(StatusCodes.OK, r.get(), Jackson.marshaller(json));
    });
  }

  /** {@code DELETE /api/links/{id}}: both devices get LINK unlinked. */
  private Route unlink(String id) {
    CompletionStage<PeerLinkEntity.Info> info = sharding
        .entityRefFor(PeerLinkEntity.ENTITY_KEY, id)
        .ask(PeerLinkEntity.Get::new, askTimeout);
    return onComplete(info, r -> {
      if (r.isFailure()) {
        return failure(r.failed().get());
      }
      String state = r.get().state();
      if (!state.equals("linked") && !state.equals("waiting")) {
        return error(StatusCodes.NOT_FOUND, "no active link '" + id + "'");
      }
      sharding.entityRefFor(PeerLinkEntity.ENTITY_KEY, id)
          .tell(new PeerLinkEntity.Unlink("operator", "unlinked by an operator", 0));
      return complete(StatusCodes.ACCEPTED, Map.of("id", id, "unlinked", true), Jackson.marshaller(json));
    });
  }

  /**
   * A link row; while the link is live, with the frames taken each way on it, asked from the two
   * sockets (whose entities are running anyway). An ended link's sockets are not woken up for it.
   */
  private CompletionStage<Map<String, Object>> withCounters(String id, String a, String b, String state, String waiter,
                                                            String reason, Instant since) {
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("id", id);
    row.put("state", state);
    row.put("a", a);
    row.put("b", b);
    if (waiter != null) {
      row.put("waiting", waiter);
    }
    if (reason != null) {
      row.put("reason", reason);
    }
    row.put("since", since);
    if (!state.equals("waiting") && !state.equals("linked")) {
      return CompletableFuture.completedFuture(row);
    }
    CompletionStage<SocketStatus> sa = Sockets.status(system, a, askTimeout);
    CompletionStage<SocketStatus> sb = Sockets.status(system, b, askTimeout);
    return sa.thenCombine(sb, (x, y) -> {
      // Counted where the frames were taken into the receiving socket.
      row.put("framesAtoB", y.linkFramesIn());
      row.put("framesBtoA", x.linkFramesIn());
      return row;
    });
  }

  private static <T> CompletionStage<List<T>> sequence(List<CompletionStage<T>> stages) {
    CompletionStage<List<T>> all = CompletableFuture.completedFuture(new ArrayList<>());
    for (CompletionStage<T> st : stages) {
      all = all.thenCombine(st, (list, item) -> {
        list.add(item);
        return list;
      });
    }
    return all;
  }

  // ------------------------------------------------------------------ nodes

  /** {@code GET /api/nodes}: every member with what it last published about its load. */
  private Route nodes() {
    LoadView view = LoadView.get(system);
    Map<String, NodeLoad> loads = view.loads();
    List<Map<String, Object>> out = new ArrayList<>();
    for (Member m : Cluster.get(system).state().getMembers()) {
      String address = m.address().toString();
      NodeLoad load = loads.get(address);
      Map<String, Object> node = new LinkedHashMap<>();
      node.put("node", address);
      node.put("status", m.status().toString());
      node.put("draining", view.draining().contains(address));
      if (load != null) {
        node.put("edge", load.edgeHost() + ":" + load.edgePort());
        node.put("sockets", load.sockets());
        node.put("connections", load.connections());
        node.put("shards", load.shards());
        node.put("framesPerSecond", Math.round(load.framesPerSecond() * 10) / 10.0);
        node.put("bytesPerSecond", Math.round(load.bytesPerSecond()));
        node.put("capacity", load.capacity());
        node.put("headroom", Math.round(load.headroom() * 10) / 10.0);
        node.put("hotSockets", load.hot());
        node.put("reportedAt", Instant.ofEpochMilli(load.at()));
      }
      out.add(node);
    }
    return complete(StatusCodes.OK, out, Jackson.marshaller(json));
  }

  /** {@code POST|DELETE /api/nodes/{node}/drain}. */
  private Route drain(String nodeParam, boolean draining) {
    Optional<String> node = resolveNode(nodeParam);
    if (node.isEmpty()) {
      return error(StatusCodes.NOT_FOUND, "no cluster member '" + nodeParam + "'");
    }
    LoadView.get(system).reporter().tell(new LoadReporter.SetDraining(node.get(), draining));
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("node", node.get());
    body.put("draining", draining);
    return complete(StatusCodes.ACCEPTED, body, Jackson.marshaller(json));
  }

  /** {@code GET /api/migrations[?socket=id&cause=auto|manual|drain&limit=n]}: newest first. */
  private Route migrations(Optional<String> limitParam, Optional<String> socket, Optional<String> cause) {
    int limit;
    try {
      limit = limitParam.map(Integer::parseInt).orElse(50);
    } catch (NumberFormatException e) {
      return error(StatusCodes.BAD_REQUEST, "limit must be a number");
    }
    if (limit < 1 || limit > 1000) {
      return error(StatusCodes.BAD_REQUEST, "limit must be between 1 and 1000");
    }
    if (cause.isPresent() && !List.of("auto", "manual", "drain").contains(cause.get())) {
      return error(StatusCodes.BAD_REQUEST, "cause must be auto, manual or drain, got '" + cause.get() + "'");
    }
    return onComplete(MigrationLog.get(system).recent(limit, socket.orElse(null), cause.orElse(null)),
        result -> result.isSuccess()
            ? complete(StatusCodes.OK, result.get(), Jackson.marshaller(json))
            : failure(result.failed().get()));
  }

  /** {@code GET /api/migrations/{id}}: the id a migrate request was answered with, or any record's. */
  private Route migration(String id) {
    return onComplete(MigrationLog.get(system).find(id), result -> {
      if (result.isFailure()) {
        return failure(result.failed().get());
      }
      return result.get().isPresent() ? complete(StatusCodes.OK, result.get().get(), Jackson.marshaller(json))
          : error(StatusCodes.NOT_FOUND, "no migration '" + id + "'");
    });
  }

  /** A member by its full address or by {@code host:port}. */
  private Optional<String> resolveNode(String param) {
    for (Member m : Cluster.get(system).state().getMembers()) {
      String address = m.address().toString();
      String hostPort = m.address().getHost().orElse("") + ":" + m.address().getPort().orElse(0);
      if (address.equals(param) || hostPort.equals(param)) {
        return Optional.of(address);
      }
    }
    return Optional.empty();
  }

  // ------------------------------------------------------------------ errors

  static final long MAX_MESSAGE_BYTES = 1 << 20;

  Route mutating(boolean readOnly, java.util.function.Supplier<Route> route) {
    if (readOnly) {
      return error(StatusCodes.FORBIDDEN, "the management API is read-only "
          + "(pekko.management.http.route-providers-read-only = true)");
    }
    return route.get();
  }

  /**
   * The one place where failures and refusals become HTTP answers: this method for what failed
   * (no answer in time, an error), the {@code refused} methods below it for what was refused,
   * one exhaustive switch per kind of refusal.
   */
  Route failure(Throwable t) {
    if (t instanceof TimeoutException || t.getCause() instanceof TimeoutException) {
      return error(StatusCodes.SERVICE_UNAVAILABLE, "the cluster did not answer within " + askTimeout.toMillis()
          + " ms; retry");
    }
    system.log().warn("Operator request failed", t);
    return error(StatusCodes.INTERNAL_SERVER_ERROR, t.getClass().getSimpleName() + ": " + t.getMessage());
  }

  /** {@code POST /api/sockets/{id}/messages} refused by the socket. */
  Route refused(InjectResult.Refusal refusal) {
    return switch (refusal) {
      case NOT_OPEN -> error(StatusCodes.NOT_FOUND, "socket is not open");
      case OUTBOX_FULL -> error(StatusCodes.SERVICE_UNAVAILABLE, "the socket's outbox is full");
    };
  }

  /** {@code DELETE /api/sockets/{id}} refused by the socket. */
  Route refused(String socketId, OperatorCloseResult.Refusal refusal) {
    return switch (refusal) {
      case NOT_OPEN -> error(StatusCodes.NOT_FOUND, "socket '" + socketId + "' is not open");
    };
  }

  /** {@code POST /api/parked/{id}/replay} refused, with the reason's own words. */
  Route refused(ParkedReplay.Refused refused) {
    StatusCode code = switch (refused.refusal()) {
      case NO_SUCH_BATCH -> StatusCodes.NOT_FOUND;
      case NO_HTTP_ENDPOINT, NOT_TAKEN -> StatusCodes.BAD_GATEWAY;
    };
    return error(code, refused.message());
  }

  Route error(StatusCode code, String message) {
    return complete(code, Map.of("error", message), Jackson.marshaller(json));
  }
}
