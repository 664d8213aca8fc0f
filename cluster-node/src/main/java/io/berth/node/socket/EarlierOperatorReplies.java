package io.berth.node.socket;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.berth.node.socket.api.InjectResult;
import io.berth.node.socket.api.OperatorCloseResult;
import java.util.List;
import org.apache.pekko.serialization.jackson.JacksonMigration;

/**
 * Reads the operator replies of a node running the earlier code, during a rolling upgrade. That
 * code answered an inject with {@code {accepted, seq, problem}} and an operator close with {@code
 * {closed, problem}}, under the class names listed here; serialization.conf binds each to its
 * migration, which rewrites the content as the outcome it meant. The other way round does not
 * hold: a node running the earlier code cannot read these outcomes, so an operator request it
 * serves for a socket on an upgraded node is answered 503 although the socket did what it asked.
 */
public final class EarlierOperatorReplies {

  /** The inject reply's former class names, each with the same content. */
  static final List<String> INJECT_RESULT = List.of(
      "io.berth.node.connection.ConnectionEntity$InjectResult", "io.berth.node.socket.api.InjectResult");

  /** The operator close reply's former class names, each with the same content. */
  static final List<String> OPERATOR_CLOSE_RESULT = List.of(
      "io.berth.node.connection.ConnectionEntity$OperatorCloseResult",
      "io.berth.node.socket.api.OperatorCloseResult");

  /**
   * The one refusal the earlier code told apart by its text (its operator route answered 404 for
   * it, 503 for any other): the only place that reads a refusal's text, for want of anything else.
   */
  private static final String NOT_OPEN = "socket is not open";

  private EarlierOperatorReplies() {}

  /** {@code {accepted, seq, problem}} as an {@link InjectResult}. */
  public static final class Inject extends JacksonMigration {
    @Override
    public int currentVersion() {
      // Replies of the earlier code carry no version, which Jackson reads as 1.
      return 2;
    }

    @Override
    public String transformClassName(int fromVersion, String className) {
      return InjectResult.class.getName();
    }

    @Override
    public JsonNode transform(int fromVersion, JsonNode json) {
      ObjectNode outcome = JsonNodeFactory.instance.objectNode();
      if (json.path("accepted").asBoolean()) {
        return outcome.put("outcome", "injected").put("seq", json.path("seq").asLong());
      }
      InjectResult.Refusal refusal = NOT_OPEN.equals(json.path("problem").asText())
          ? InjectResult.Refusal.NOT_OPEN : InjectResult.Refusal.OUTBOX_FULL;
      return outcome.put("outcome", "refused").put("refusal", refusal.name());
    }
  }

  /** {@code {closed, problem}} as an {@link OperatorCloseResult}. */
  public static final class Close extends JacksonMigration {
    @Override
    public int currentVersion() {
      return 2;
    }

    @Override
    public String transformClassName(int fromVersion, String className) {
      return OperatorCloseResult.class.getName();
    }

    @Override
    public JsonNode transform(int fromVersion, JsonNode json) {
      ObjectNode outcome = JsonNodeFactory.instance.objectNode();
      if (json.path("closed").asBoolean()) {
        return outcome.put("outcome", "closed");
      }
      return outcome.put("outcome", "refused").put("refusal", OperatorCloseResult.Refusal.NOT_OPEN.name());
    }
  }
}
