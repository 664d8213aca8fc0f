package io.berth.node;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.berth.node.mapping.EndpointCall;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.function.Function;

/**
 * A real HTTP endpoint on loopback, as a user would run one: it checks each request's signature
 * and answers as the test says.
 */
public final class TestEndpoint implements AutoCloseable {

  /** One request as received. */
  public record Call(JsonNode body, String signature, boolean signatureValid, long receivedAtNanos) {
    public String event() {
      return body.get("event").asText();
    }

    public String batchId() {
      return body.get("batchId").asText();
    }

    public byte[] data() {
      JsonNode d = body.get("data");
      return d == null ? new byte[0] : Base64.getDecoder().decode(d.asText());
    }

    public String text() {
      return new String(data(), StandardCharsets.UTF_8);
    }
  }

  /** The answer to give: status, JSON body (or null), and a delay. */
  public record Answer(int status, String body, long delayMillis) {
    public static Answer ok() {
      return new Answer(204, null, 0);
    }

    public static Answer json(String body) {
      return new Answer(200, body, 0);
    }

    public static Answer status(int status) {
      return new Answer(status, "{\"error\":\"test\"}", 0);
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  private final HttpServer server;
  private final String secret;
  private final List<Call> calls = new CopyOnWriteArrayList<>();
  private volatile Function<Call, Answer> behaviour = c -> Answer.ok();

  public TestEndpoint(String secret) throws IOException {
    this.secret = secret;
    this.server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
    server.setExecutor(Executors.newFixedThreadPool(8));
    server.createContext("/hook", exchange -> {
      byte[] body = exchange.getRequestBody().readAllBytes();
      String signature = exchange.getRequestHeaders().getFirst("X-Berth-Signature");
      boolean valid = EndpointCall.signature(this.secret, body).equals(signature);
      Call call = new Call(JSON.readTree(body), signature, valid, System.nanoTime());
      calls.add(call);
      Answer answer = behaviour.apply(call);
      if (answer.delayMillis() > 0) {
        try {
          Thread.sleep(answer.delayMillis());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      byte[] out = answer.body() == null ? new byte[0] : answer.body().getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().add("Content-Type", "application/json");
      try {
        exchange.sendResponseHeaders(answer.status(), out.length == 0 ? -1 : out.length);
        if (out.length > 0) {
          try (OutputStream os = exchange.getResponseBody()) {
            os.write(out);
          }
        }
      } catch (IOException e) {
        // The node gave up waiting (timeout): nothing to do.
      } finally {
        exchange.close();
      }
    });
    server.start();
  }

  public String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort() + "/hook";
  }

  public void answer(Function<Call, Answer> behaviour) {
    this.behaviour = behaviour;
  }

  public List<Call> calls() {
    return List.copyOf(calls);
  }

  public List<Call> calls(String event) {
    List<Call> out = new ArrayList<>();
    for (Call c : calls) {
      if (c.event().equals(event)) {
        out.add(c);
      }
    }
    return out;
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
