package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.delete;
import static org.apache.pekko.http.javadsl.server.Directives.entity;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.onComplete;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathEndOrSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.post;
import static org.apache.pekko.http.javadsl.server.Directives.respondWithHeader;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.berth.node.tls.DenyList;
import io.berth.node.tls.DenyListStore;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.marshallers.jackson.Jackson;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.Location;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;

/**
 * {@code /api/tls/deny}: the client certificates the edge refuses on every node although their CA
 * is trusted (docs/tls.md#deny-list), and the devices it refuses whatever they present
 * (docs/operator-api.md#the-deny-list). Changes go to {@link DenyListStore}, which applies them on
 * this node at once; the other nodes read them within {@code berth.edge.tls.deny-list-poll-interval}.
 */
final class DenyListRoutes {

  private static final String EXPECTED = "{\"serial\": \"hex\"}, {\"fingerprint\": \"hex\"} or {\"device\": \"id\"},"
      + " with an optional \"reason\"";
  private static final Set<String> FIELDS = Set.of("serial", "fingerprint", "device", "reason");
  private static final List<String> NAMES = List.of("serial", "fingerprint", "device");

  private final ObjectMapper json;
  private final OperatorRoutes common;
  private final DenyListStore store;

  DenyListRoutes(ActorSystem<?> system, ObjectMapper json, OperatorRoutes common) {
    this.json = json;
    this.common = common;
    this.store = DenyListStore.get(system);
  }

  Route routes(boolean readOnly) {
    return pathPrefix(PathMatchers.segment("tls").slash("deny"), () -> concat(
        pathEndOrSingleSlash(() -> concat(
            get(this::list),
            post(() -> common.mutating(readOnly, () -> entity(Unmarshaller.entityToString(), this::add))))),
        path(PathMatchers.segment().slash(PathMatchers.segment()), (kind, value) ->
            delete(() -> common.mutating(readOnly, () -> remove(kind, value))))));
  }

  /** {@code GET /api/tls/deny}: every entry, oldest first. */
  private Route list() {
    return onComplete(store.list(), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      ArrayNode out = json.createArrayNode();
      r.get().forEach(row -> out.add(view(row)));
      return complete(StatusCodes.OK, out, Jackson.marshaller(json));
    });
  }

  /** {@code POST /api/tls/deny}: 201 with the new entry, 200 with the one already there. */
  private Route add(String body) {
    DenyList.Entry entry;
    CompletionStage<DenyListStore.Added> stored;
    try {
      JsonNode request = parseObject(body);
      entry = entry(request);
      stored = store.add(entry, text(request, "reason"));
    } catch (IllegalArgumentException e) {
      return common.error(StatusCodes.BAD_REQUEST, e.getMessage());
    }
    return onComplete(stored, r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      DenyListStore.Added added = r.get();
      if (!added.created()) {
        return complete(StatusCodes.OK, view(added.row()), Jackson.marshaller(json));
      }
      return respondWithHeader(Location.create("/api/tls/deny/" + entry.kind().label() + "/" + entry.value()),
          () -> complete(StatusCodes.CREATED, view(added.row()), Jackson.marshaller(json)));
    });
  }

  /** {@code DELETE /api/tls/deny/{kind}/{value}}: 204, or 404 when the list does not hold it. */
  private Route remove(String kind, String value) {
    DenyList.Entry entry;
    try {
      entry = new DenyList.Entry(DenyList.Kind.ofLabel(kind), value);
    } catch (IllegalArgumentException e) {
      return common.error(StatusCodes.BAD_REQUEST, e.getMessage());
    }
    return onComplete(store.remove(entry), r -> {
      if (r.isFailure()) {
        return common.failure(r.failed().get());
      }
      return r.get() ? complete(StatusCodes.NO_CONTENT)
          : common.error(StatusCodes.NOT_FOUND, "no deny list entry " + kind + " '" + entry.value() + "'");
    });
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
      if (!FIELDS.contains(name)) {
        throw new IllegalArgumentException("unknown field '" + name + "'; expected " + EXPECTED);
      }
    }
    return request;
  }

  /** The one thing the request names: a certificate by serial or fingerprint, or a device. */
  private static DenyList.Entry entry(JsonNode request) {
    List<String> given = NAMES.stream().filter(n -> text(request, n) != null).toList();
    if (given.size() != 1) {
      throw new IllegalArgumentException((given.isEmpty() ? "name a certificate or a device: "
          : "give one of serial, fingerprint and device, not " + String.join(" and ", given) + ": ") + EXPECTED);
    }
    String name = given.get(0);
    return new DenyList.Entry(DenyList.Kind.ofLabel(name), text(request, name));
  }

  /** A text field, or null when absent; any other JSON type is refused. */
  private static String text(JsonNode request, String field) {
    JsonNode value = request.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isTextual()) {
      throw new IllegalArgumentException(field + " must be a string, got " + value.getNodeType().name()
          .toLowerCase(Locale.ROOT));
    }
    return value.asText();
  }

  private ObjectNode view(DenyListStore.Row row) {
    ObjectNode n = json.createObjectNode();
    n.put("kind", row.entry().kind().label());
    n.put("value", row.entry().value());
    if (row.reason() != null) {
      n.put("reason", row.reason());
    }
    n.put("addedAt", row.addedAt().toString());
    return n;
  }
}
