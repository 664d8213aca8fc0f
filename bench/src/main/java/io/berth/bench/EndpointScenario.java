package io.berth.bench;

import com.sun.net.httpserver.HttpServer;
import io.berth.persistence.DatabaseSettings;
import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * What a mapping costs. Latency: one device sends one 64-byte frame at a time and waits for its
 * acknowledgement, through {@code builtin:discard} and through a minimal HTTP endpoint on
 * loopback; the anchor is the same endpoint called directly by the harness (what the webhook
 * itself costs), so the difference is what Berth adds. Throughput: a device streams frames to the
 * HTTP endpoint with one frame per invocation and with natural batching (no criteria), counting
 * invocations and frames per invocation. Every frame sent to the HTTP endpoint is numbered and the
 * endpoint checks what it takes ({@link EndpointLedger}): frames acknowledged to a device but
 * never taken are lost, frames taken from two batches duplicated.
 */
final class EndpointScenario {

  private static final String SECRET = "bench-endpoint-secret-0123";
  private static final Duration ACK_WAIT = Duration.ofSeconds(30);

  private EndpointScenario() {}

  static void run(Report report, DatabaseSettings db, boolean quick, PrintStream progress) throws Exception {
    int samples = quick ? 300 : 1500;
    Duration streamFor = Duration.ofSeconds(quick ? 5 : 15);
    EndpointLedger ledger = new EndpointLedger();
    HttpServer endpoint = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 256);
    ExecutorService endpointThreads = Executors.newFixedThreadPool(4);
    endpoint.setExecutor(endpointThreads);
    // A body the endpoint cannot read is refused (Berth parks the batch and its frames count as
    // lost); the refusals are counted apart, so that a harness fault does not read as Berth's.
    AtomicLong refused = new AtomicLong();
    AtomicReference<String> firstRefusal = new AtomicReference<>();
    endpoint.createContext("/hook", exchange -> {
      int status = 204;
      try {
        ledger.take(exchange.getRequestBody().readAllBytes());
      } catch (IOException | RuntimeException e) {
        status = 400;
        refused.incrementAndGet();
        firstRefusal.compareAndSet(null, e.toString());
      }
      exchange.sendResponseHeaders(status, -1);
      exchange.close();
    });
    endpoint.start();
    String url = "http://127.0.0.1:" + endpoint.getAddress().getPort() + "/hook";
    progress.println("endpoint: starting 1 node");
    try (LocalCluster cluster = new LocalCluster(db, 1, "berth.endpoints.allowed-hosts = [\"127.0.0.1\"]\n")) {
      String api = "http://127.0.0.1:" + cluster.nodes().get(0).managementPort() + "/api/mappings/";
      HttpClient http = HttpClient.newHttpClient();
      String single = "bench-one-" + UUID.randomUUID().toString().substring(0, 6);
      String natural = "bench-nat-" + UUID.randomUUID().toString().substring(0, 6);
      put(http, api + single, "{\"endpoint\":\"" + url + "\",\"secret\":\"" + SECRET
          + "\",\"events\":[\"data\"],\"criteria\":{\"maxFrames\":1}}");
      put(http, api + natural, "{\"endpoint\":\"" + url + "\",\"secret\":\"" + SECRET + "\",\"events\":[\"data\"]}");

      // The direct calls carry what Berth would send for one frame, so that the endpoint does the
      // same work for them (under a socket id of their own, not counted as any device's).
      Stats direct = new Stats();
      for (int i = 0; i < samples + 100; i++) {
        String data = Base64.getEncoder().encodeToString(EndpointLedger.frame(i));
        byte[] body = ("{\"event\":\"data\",\"socketId\":\"bench-direct\",\"deviceId\":\"bench-direct\",\"mapping\":\""
            + single + "\",\"mappingVersion\":1,\"batchId\":\"bench-direct:" + i + ".0\",\"seqFrom\":" + (i + 1)
            + ",\"seqTo\":" + (i + 1) + ",\"data\":\"" + data + "\"}").getBytes(StandardCharsets.UTF_8);
        HttpRequest request = HttpRequest.newBuilder(URI.create(url))
            .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build();
        long t = System.nanoTime();
        int status = http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
        if (status != 204) {
          throw new IllegalStateException("the endpoint answered a direct call with " + status + ": "
              + firstRefusal.get());
        }
        if (i >= 100) {
          direct.add((System.nanoTime() - t) / 1e6);
        }
      }
      progress.println("endpoint: direct calls measured");
      Stats discard = new Stats();
      pingPong(cluster, "discard", samples, discard);
      progress.println("endpoint: builtin:discard measured");
      Stats viaBerth = new Stats();
      List<Sent> sent = new ArrayList<>();
      sent.add(pingPong(cluster, single, samples, viaBerth));
      progress.println("endpoint: HTTP endpoint through Berth measured");

      long before = ledger.invocations();
      sent.add(streamFrames(cluster, single, streamFor));
      double oneRate = (ledger.invocations() - before) / (double) streamFor.toSeconds();
      before = ledger.invocations();
      Sent batched = streamFrames(cluster, natural, streamFor);
      sent.add(batched);
      double naturalInvocations = (ledger.invocations() - before) / (double) streamFor.toSeconds();
      double naturalFrames = batched.frames() / (double) streamFor.toSeconds();
      progress.println("endpoint: throughput measured");
      // A frame is acknowledged only once the endpoint answered its batch (docs/ENDPOINTS.md), so by
      // now the endpoint has taken every frame it will ever take.
      long lost = sent.stream().mapToLong(d -> Math.max(0, d.frames() - ledger.received(d.socketId()))).sum();
      long sentFrames = sent.stream().mapToLong(Sent::frames).sum();
      progress.printf(Locale.ROOT, "endpoint: the HTTP endpoint took %,d of %,d frames sent; %d duplicated, "
              + "%d batches redelivered under an id already taken, %d refused%s%n", sentFrames - lost, sentFrames,
          ledger.duplicates(), ledger.redelivered(), refused.get(),
          firstRefusal.get() == null ? "" : " (first: " + firstRefusal.get() + ")");

      String s = "endpoint";
      report.add(new Report.Row(s, "builtin:discard, frame to ACK, p50", discard.median(), Double.NaN, "ms", null,
          null));
      report.add(new Report.Row(s, "builtin:discard, frame to ACK, p99", discard.percentile(99), Double.NaN, "ms", null,
          null));
      report.add(new Report.Row(s, "HTTP endpoint, frame to ACK vs direct call, p50", viaBerth.median(),
          direct.median(), "ms", null, null));
      report.add(new Report.Row(s, "HTTP endpoint, frame to ACK vs direct call, p99", viaBerth.percentile(99),
          direct.percentile(99), "ms", null, null));
      report.add(new Report.Row(s, "latency Berth adds to an HTTP endpoint, p50", viaBerth.median() - direct.median(),
          Double.NaN, "ms", null, null));
      report.add(new Report.Row(s, "HTTP invocations/s, one frame per invocation", oneRate, Double.NaN, "", null,
          null));
      report.add(new Report.Row(s, "HTTP, natural batching: frames/s", naturalFrames, oneRate, "", null, null));
      report.add(new Report.Row(s, "HTTP, natural batching: frames per invocation", naturalFrames
          / Math.max(1, naturalInvocations), Double.NaN, "", null, null));
      report.add(new Report.Row(s, "HTTP frames lost (acknowledged, never taken by the endpoint)", lost, Double.NaN,
          "", "0", lost == 0));
      report.add(new Report.Row(s, "HTTP frames duplicated (taken from two batches)", ledger.duplicates(), Double.NaN,
          "", "0", ledger.duplicates() == 0));
      report.add(new Report.Row(s, "HTTP frames reordered", ledger.outOfOrder(), Double.NaN, "", "0",
          ledger.outOfOrder() == 0));
      report.add(new Report.Row(s, "HTTP batches not holding the frames their seqFrom..seqTo name",
          ledger.malformed(), Double.NaN, "", "0", ledger.malformed() == 0));
      report.add(new Report.Row(s, "HTTP requests the benchmark's endpoint could not read (refused)", refused.get(),
          Double.NaN, "", "0", refused.get() == 0));
      report.add(new Report.Row(s, "HTTP batches redelivered under an id already taken", ledger.redelivered(),
          Double.NaN, "", null, null));
      report.note("endpoint: 1 node in the harness JVM on PostgreSQL; 64-byte frames; the endpoint is a JDK HttpServer "
          + "on loopback answering 204 at once; the anchor of the latency rows is the same request sent directly "
          + "by the harness with java.net.http; the anchor of the batching row is the one-frame-per-invocation rate. "
          + "Frames to the HTTP endpoint are numbered; the endpoint splits each batch back into frames and counts "
          + "them per socket (a batch id taken before is a redelivery, answered without counting, as the endpoint "
          + "contract asks); lost: acknowledged to the device, never taken by the endpoint. The endpoint parses "
          + "every request (JSON, base64), the direct calls' too.");
    } finally {
      endpoint.stop(0);
      endpointThreads.shutdownNow();
    }
  }

  private static void put(HttpClient http, String url, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url))
        .header("Authorization", "Bearer " + LocalCluster.OPERATOR_KEY)
        .PUT(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IllegalStateException("mapping not saved: " + r.body());
    }
  }

  private static DeviceClient device(LocalCluster cluster, String mapping, int window) {
    return DeviceClient.builder().addresses(cluster.edges()).tls(ClientTls.PLAINTEXT)
        .deviceId("bench-ep-" + UUID.randomUUID().toString().substring(0, 8)).mapping(mapping).window(window)
        .secret(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1)).build().connect();
  }

  /** What one device sent: its socket and how many frames, all of them acknowledged. */
  private record Sent(String socketId, long frames) {}

  /**
   * One frame at a time: send, wait for its ACK; each frame's latency goes to {@code stats}
   * after the first hundred. Frames are numbered for the {@link EndpointLedger}.
   */
  private static Sent pingPong(LocalCluster cluster, String mapping, int samples, Stats stats) throws Exception {
    DeviceClient client = device(cluster, mapping, 1);
    try {
      for (int i = 0; i < samples + 100; i++) {
        byte[] payload = EndpointLedger.frame(i);
        long t = System.nanoTime();
        client.send(payload);
        if (!client.awaitAllAcked(ACK_WAIT)) {
          throw new IllegalStateException("frame " + i + " of " + client.welcome().socketId() + " not acknowledged in "
              + ACK_WAIT.toSeconds() + " s");
        }
        if (i >= 100) {
          stats.add((System.nanoTime() - t) / 1e6);
        }
      }
      return new Sent(client.welcome().socketId(), samples + 100);
    } finally {
      client.close();
    }
  }

  /** Sends numbered frames as fast as the window allows for the duration, then waits for every ACK. */
  private static Sent streamFrames(LocalCluster cluster, String mapping, Duration duration) throws Exception {
    DeviceClient client = device(cluster, mapping, 256);
    try {
      long end = System.nanoTime() + duration.toNanos();
      long sent = 0;
      while (System.nanoTime() < end) {
        client.send(EndpointLedger.frame(sent));
        sent++;
      }
      if (!client.awaitAllAcked(ACK_WAIT.multipliedBy(2))) {
        throw new IllegalStateException(client.unackedCount() + " frames of " + client.welcome().socketId()
            + " not acknowledged in " + ACK_WAIT.multipliedBy(2).toSeconds() + " s");
      }
      return new Sent(client.welcome().socketId(), sent);
    } finally {
      client.close();
    }
  }
}
