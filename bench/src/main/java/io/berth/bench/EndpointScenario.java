package io.berth.bench;

import com.sun.net.httpserver.HttpServer;
import io.berth.persistence.DatabaseSettings;
import io.berth.protocol.DeviceClient;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a mapping costs. Latency: one device sends one 64-byte frame at a time and waits for its
 * acknowledgement, through {@code builtin:discard} and through a minimal HTTP endpoint on
 * loopback; the anchor is the same endpoint called directly by the harness (what the webhook
 * itself costs), so the difference is what Berth adds. Throughput: a device streams frames to the
 * HTTP endpoint with one frame per invocation and with natural batching (no criteria), counting
 * invocations and frames per invocation.
 */
final class EndpointScenario {

  private static final String SECRET = "bench-endpoint-secret-0123";

  private EndpointScenario() {}

  static void run(Report report, DatabaseSettings db, boolean quick, PrintStream progress) throws Exception {
    int samples = quick ? 300 : 1500;
    Duration streamFor = Duration.ofSeconds(quick ? 5 : 15);
    AtomicLong invocations = new AtomicLong();
    HttpServer endpoint = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 256);
    endpoint.setExecutor(Executors.newFixedThreadPool(4));
    endpoint.createContext("/hook", exchange -> {
      exchange.getRequestBody().readAllBytes();
      invocations.incrementAndGet();
      exchange.sendResponseHeaders(204, -1);
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

      Stats direct = new Stats();
      byte[] body = "{\"event\":\"data\",\"data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}"
          .getBytes(StandardCharsets.UTF_8);
      HttpRequest request = HttpRequest.newBuilder(URI.create(url)).POST(HttpRequest.BodyPublishers.ofByteArray(body))
          .build();
      for (int i = 0; i < samples + 100; i++) {
        long t = System.nanoTime();
        http.send(request, HttpResponse.BodyHandlers.discarding());
        if (i >= 100) {
          direct.add((System.nanoTime() - t) / 1e6);
        }
      }
      progress.println("endpoint: direct calls measured");
      Stats discard = pingPong(cluster, "discard", samples);
      progress.println("endpoint: builtin:discard measured");
      Stats viaBerth = pingPong(cluster, single, samples);
      progress.println("endpoint: HTTP endpoint through Berth measured");

      double oneRate = stream(cluster, single, streamFor, invocations);
      long before = invocations.get();
      long frames = streamFrames(cluster, natural, streamFor);
      double naturalInvocations = (invocations.get() - before) / (double) streamFor.toSeconds();
      double naturalFrames = frames / (double) streamFor.toSeconds();
      progress.println("endpoint: throughput measured");

      String s = "endpoint";
      report.add(new Report.Row(s, "builtin:discard, frame to ACK, p50", discard.median(), Double.NaN, "ms", null, null));
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
      report.note("endpoint: 1 node in the harness JVM on PostgreSQL; 64-byte frames; the endpoint is a JDK HttpServer "
          + "on loopback answering 204 at once; the anchor of the latency rows is the same request sent directly "
          + "by the harness with java.net.http; the anchor of the batching row is the one-frame-per-invocation rate.");
    } finally {
      endpoint.stop(0);
    }
  }

  private static void put(HttpClient http, String url, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).PUT(HttpRequest.BodyPublishers.ofString(body))
        .build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IllegalStateException("mapping not saved: " + r.body());
    }
  }

  private static DeviceClient device(LocalCluster cluster, String mapping, int window) {
    return DeviceClient.builder().addresses(cluster.edges())
        .deviceId("bench-ep-" + UUID.randomUUID().toString().substring(0, 8)).mapping(mapping).window(window)
        .secret(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1)).build().connect();
  }

  /** One frame at a time: send, wait for its ACK. */
  private static Stats pingPong(LocalCluster cluster, String mapping, int samples) throws Exception {
    Stats stats = new Stats();
    DeviceClient client = device(cluster, mapping, 1);
    try {
      byte[] payload = new byte[64];
      for (int i = 0; i < samples + 100; i++) {
        long t = System.nanoTime();
        client.send(payload);
        client.awaitAllAcked(Duration.ofSeconds(30));
        if (i >= 100) {
          stats.add((System.nanoTime() - t) / 1e6);
        }
      }
    } finally {
      client.close();
    }
    return stats;
  }

  private static double stream(LocalCluster cluster, String mapping, Duration duration, AtomicLong invocations)
      throws Exception {
    long before = invocations.get();
    streamFrames(cluster, mapping, duration);
    return (invocations.get() - before) / (double) duration.toSeconds();
  }

  /** Sends as fast as the window allows for the duration; returns frames acknowledged. */
  private static long streamFrames(LocalCluster cluster, String mapping, Duration duration) throws Exception {
    DeviceClient client = device(cluster, mapping, 256);
    try {
      byte[] payload = new byte[64];
      long end = System.nanoTime() + duration.toNanos();
      long sent = 0;
      while (System.nanoTime() < end) {
        client.send(payload);
        sent++;
      }
      client.awaitAllAcked(Duration.ofSeconds(60));
      return sent;
    } finally {
      client.close();
    }
  }
}
