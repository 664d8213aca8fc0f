package io.berth.node.ops;

import static io.berth.node.ops.OperatorRole.ADMIN;
import static io.berth.node.ops.OperatorRole.OPERATOR;
import static io.berth.node.ops.OperatorRole.VIEWER;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * Which role each route of the management port needs: one table, read top to bottom, the first
 * rule whose method and path match deciding (docs/operator-access.md#roles). A request no rule
 * matches is refused to every role: a route added without a rule here is closed until someone
 * decides who may call it, and {@code OperatorAccessIT} walks every rule with every role.
 *
 * <p>Patterns are path segments; {@code *} is one segment, {@code **} the rest of the path. A
 * socket id may hold one slash, so socket routes come in two lengths.
 */
public final class AccessPolicy {

  /** A route's rule. {@code maxBody}: its largest request body, 0 for the node's default. */
  public record Rule(String method, String pattern, OperatorRole role, long maxBody) {

    public boolean mutating() {
      return !method.equals("GET") && !method.equals("HEAD");
    }

    boolean matches(String requestMethod, List<String> path) {
      return method.equals(requestMethod) && matches(Arrays.asList(pattern.substring(1).split("/")), path);
    }

    private static boolean matches(List<String> pattern, List<String> path) {
      for (int i = 0; i < pattern.size(); i++) {
        String p = pattern.get(i);
        if (p.equals("**")) {
          return true;
        }
        if (i >= path.size() || !(p.equals("*") || p.equals(path.get(i)))) {
          return false;
        }
      }
      return pattern.size() == path.size();
    }
  }

  public static final List<Rule> RULES = List.of(
      // Reads: everything to a viewer, but the audit trail and the keys, which say who can act.
      rule("GET", "/api/audit", ADMIN),
      rule("GET", "/api/keys", ADMIN),
      rule("GET", "/**", VIEWER),
      rule("HEAD", "/**", VIEWER),
      // Acting on sockets, links, parked batches and nodes.
      new Rule("POST", "/api/sockets/*/messages", OPERATOR, OperatorRoutes.MAX_MESSAGE_BYTES),
      new Rule("POST", "/api/sockets/*/*/messages", OPERATOR, OperatorRoutes.MAX_MESSAGE_BYTES),
      rule("POST", "/api/sockets/*/migrate", OPERATOR),
      rule("POST", "/api/sockets/*/*/migrate", OPERATOR),
      rule("DELETE", "/api/sockets/*", OPERATOR),
      rule("DELETE", "/api/sockets/*/*", OPERATOR),
      rule("DELETE", "/api/links/*", OPERATOR),
      rule("POST", "/api/nodes/*/drain", OPERATOR),
      rule("DELETE", "/api/nodes/*/drain", OPERATOR),
      rule("POST", "/api/parked/*/replay", OPERATOR),
      rule("DELETE", "/api/parked/*", OPERATOR),
      // Cutting a device off is incident response, open to whoever is on duty; letting it back in
      // is a decision about credentials.
      rule("POST", "/api/tls/deny", OPERATOR),
      rule("DELETE", "/api/tls/deny/*/*", ADMIN),
      // What devices' data does and who may act.
      rule("PUT", "/api/mappings/*", ADMIN),
      rule("DELETE", "/api/mappings/*", ADMIN),
      rule("POST", "/api/keys", ADMIN),
      rule("DELETE", "/api/keys/*", ADMIN),
      // Pekko Management's membership routes: join, leave, down, prepare for a full shutdown.
      rule("PUT", "/cluster", ADMIN),
      rule("POST", "/cluster/members", ADMIN),
      rule("PUT", "/cluster/members/**", ADMIN),
      rule("DELETE", "/cluster/members/**", ADMIN));

  private AccessPolicy() {}

  private static Rule rule(String method, String pattern, OperatorRole role) {
    return new Rule(method, pattern, role, 0);
  }

  /** The rule for a request; empty when none matches (no role may call it). */
  public static Optional<Rule> find(String method, List<String> path) {
    return RULES.stream().filter(r -> r.matches(method, path)).findFirst();
  }
}
