package io.berth.node.mapping;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The HTTP contract with an endpoint (docs/ENDPOINTS.md#contract): the request body, its
 * signature, and what a 2xx answer may carry. {@link EndpointClient#call} is what sends one.
 */
public final class EndpointCall {

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * What one call tells the endpoint about a socket: an event, and for {@code data} the batch
   * ({@code batchId}, the frames {@code seqFrom..seqTo} and their bytes); open and close carry
   * no data.
   */
  public record Request(Mapping.Event event, String socketId, String deviceId, String batchId, long seqFrom,
                        long seqTo, byte[] data) {}

  /** What the endpoint asked for; every field optional. */
  public record Answer(byte[] reply, String link, String close, String problem) {
    public static final Answer NOTHING = new Answer(null, null, null, null);
  }

  private EndpointCall() {}

  /** The JSON body; {@code mapping} gives its name and version. */
  static byte[] body(Mapping mapping, Request request) {
    ObjectNode n = JSON.createObjectNode();
    n.put("event", request.event().wire());
    n.put("socketId", request.socketId());
    n.put("deviceId", request.deviceId());
    n.put("mapping", mapping.name());
    n.put("mappingVersion", mapping.version());
    n.put("batchId", request.batchId());
    n.put("seqFrom", request.seqFrom());
    n.put("seqTo", request.seqTo());
    if (request.data() != null) {
      n.put("data", Base64.getEncoder().encodeToString(request.data()));
    }
    try {
      return JSON.writeValueAsBytes(n);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code sha256=<hex HMAC-SHA256(secret, body)>}, the X-Berth-Signature header. */
  public static String signature(String secret, byte[] body) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
      return "sha256=" + HexFormat.of().formatHex(mac.doFinal(body));
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("HMAC-SHA256 unavailable", e);
    }
  }

  /**
   * Reads a 2xx body. An empty body (204) asks for nothing; a body that is not the documented
   * JSON is delivered anyway (the endpoint took the batch) and the problem is reported.
   */
  static Answer answer(byte[] body) {
    if (body == null || body.length == 0) {
      return Answer.NOTHING;
    }
    JsonNode root;
    try {
      root = JSON.readTree(body);
    } catch (java.io.IOException e) {
      return new Answer(null, null, null, "answer is not JSON");
    }
    if (root == null || !root.isObject()) {
      return new Answer(null, null, null, "answer is not a JSON object");
    }
    byte[] reply = null;
    String problem = null;
    JsonNode r = root.get("reply");
    if (r != null && !r.isNull()) {
      try {
        reply = Base64.getDecoder().decode(r.asText());
      } catch (IllegalArgumentException e) {
        problem = "reply is not base64";
      }
    }
    JsonNode l = root.get("link");
    JsonNode c = root.get("close");
    return new Answer(reply, l == null || l.isNull() ? null : l.asText(), c == null || c.isNull() ? null : c.asText(),
        problem);
  }
}
