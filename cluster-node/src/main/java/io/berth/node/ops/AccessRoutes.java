package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.attribute;
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

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Iterator;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.marshallers.jackson.Jackson;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;

/**
 * {@code /api/keys} (operator keys made, listed, revoked) and {@code /api/audit} (the audit trail):
 * both for admins only ({@link AccessPolicy}); docs/operator-access.md.
 */
final class AccessRoutes {

  private static final Set<String> KEY_FIELDS = Set.of("id", "role", "description");
  private static final String EXPECTED = "{\"id\": \"name\", \"role\": \"viewer|operator|admin\"} with an optional"
      + " \"description\"";

  private final ObjectMapper json;
  private final OperatorRoutes common;
  private final OperatorKeys keys;
  private final AuditLog audit;

  AccessRoutes(ActorSystem<?> system, ObjectMapper json, OperatorRoutes common) {
    this.json = json;
    this.common = common;
    this.keys = OperatorKeys.get(system);
    this.audit = AuditLog.get(system);
  }

  Route routes(boolean readOnly) {
    return concat(
        pathPrefix("keys", () -> concat(
            pathEndOrSingleSlash(() -> concat(
                get(this::listKeys),
                post(() -> common.mutating(readOnly, () -> attribute(ManagementServer.OPERATOR, who ->
                    entity(Unmarshaller.entityToString(), body -> create(body, who.id()))))))),
            path(PathMatchers.segment(), id -> delete(() -> common.mutating(readOnly, () -> revoke(id)))))),
        pathPrefix("audit", () -> pathEndOrSingleSlash(() -> get(() ->
            parameterOptional("limit", limit -> parameterOptional("before", before -> listAudit(limit, before)))))));
  }

  /** {@code GET /api/keys}: every key's id, role and origin; never a key or its hash. */
  private Route listKeys() {
    return onComplete(keys.list(), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      ArrayNode out = json.createArrayNode();
      r.get().forEach(k -> out.add(view(k)));
      return complete(StatusCodes.OK, out, Jackson.marshaller(json));
    });
  }

  /** {@code POST /api/keys}: 201 with the new key, shown this once. */
  private Route create(String body, String by) {
    CompletionStage<OperatorKeys.Created> created;
    try {
      JsonNode request = parseObject(body);
      String id = required(request, "id");
      OperatorRole role = OperatorRole.of(required(request, "role"));
      JsonNode description = request.get("description");
      if (description != null && !description.isTextual()) {
        throw new IllegalArgumentException("description: a string is expected");
      }
      created = keys.create(id, role, description == null ? null : description.asText(), by);
    } catch (OperatorKeys.KeyExists e) {
      return common.error(StatusCodes.CONFLICT, e.getMessage());
    } catch (IllegalArgumentException e) {
      return common.error(StatusCodes.BAD_REQUEST, e.getMessage());
    }
    return onComplete(created, r -> {
      if (r.isFailure()) {
        Throwable t = r.failed().get();
        Throwable cause = t.getCause() != null ? t.getCause() : t;
        if (cause instanceof OperatorKeys.KeyExists exists) {
          return common.error(StatusCodes.CONFLICT, exists.getMessage());
        }
        return common.failure(t);
      }
      ObjectNode out = view(r.get().info());
      out.put("key", r.get().key());
      out.put("note", "the key is shown this once; only its SHA-256 is stored");
      return complete(StatusCodes.CREATED, out, Jackson.marshaller(json));
    });
  }

  /** {@code DELETE /api/keys/{id}}: 204; the key stops working here at once, on every node soon. */
  private Route revoke(String id) {
    CompletionStage<Boolean> revoked;
    try {
      revoked = keys.revoke(id);
    } catch (OperatorKeys.KeyExists e) {
      return common.error(StatusCodes.CONFLICT, e.getMessage());
    }
    return onComplete(revoked, r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      return r.get() ? complete(StatusCodes.NO_CONTENT) : common.error(StatusCodes.NOT_FOUND, "no key '" + id + "'");
    });
  }

  /** {@code GET /api/audit[?limit=&before=]}: newest first; {@code before} pages back by id. */
  private Route listAudit(Optional<String> limitParam, Optional<String> beforeParam) {
    int limit;
    Optional<Long> before;
    try {
      limit = limitParam.map(Integer::parseInt).orElse(100);
      before = beforeParam.map(Long::parseLong);
    } catch (NumberFormatException e) {
      return common.error(StatusCodes.BAD_REQUEST, "limit and before are whole numbers");
    }
    if (limit < 1 || limit > AuditLog.MAX_LIST) {
      return common.error(StatusCodes.BAD_REQUEST, "limit is 1 to " + AuditLog.MAX_LIST);
    }
    return onComplete(audit.list(limit, before), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      ArrayNode out = json.createArrayNode();
      r.get().forEach(e -> {
        ObjectNode n = out.addObject();
        n.put("id", e.id());
        n.put("at", e.at().toString());
        n.put("actor", e.actor());
        n.put("role", e.role());
        n.put("method", e.method());
        n.put("path", e.path());
        n.put("status", e.status());
        n.put("requestId", e.requestId());
        n.put("remote", e.remote());
        n.put("node", e.node());
      });
      return complete(StatusCodes.OK, out, Jackson.marshaller(json));
    });
  }

  private ObjectNode view(OperatorKeys.KeyInfo k) {
    ObjectNode n = json.createObjectNode();
    n.put("id", k.id());
    n.put("role", k.role().label());
    n.put("source", k.configured() ? "configuration" : "api");
    if (k.description() != null) {
      n.put("description", k.description());
    }
    if (k.createdBy() != null) {
      n.put("createdBy", k.createdBy());
    }
    if (k.createdAt() != null) {
      n.put("createdAt", k.createdAt().toString());
    }
    return n;
  }

  private JsonNode parseObject(String body) {
    JsonNode request;
    try {
      request = json.readTree(body);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("the body is not valid JSON; expected " + EXPECTED);
    }
    if (request == null || !request.isObject()) {
      throw new IllegalArgumentException("the body must be a JSON object: " + EXPECTED);
    }
    for (Iterator<String> names = request.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      if (!KEY_FIELDS.contains(name)) {
        throw new IllegalArgumentException("unknown field '" + name + "'; expected " + EXPECTED);
      }
    }
    return request;
  }

  private static String required(JsonNode request, String field) {
    JsonNode n = request.get(field);
    if (n == null || !n.isTextual()) {
      throw new IllegalArgumentException(field + ": a string is required; expected " + EXPECTED);
    }
    return n.asText();
  }
}
