package io.berth.node;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Minimal HTTP calls against the management port. The static calls go to test nodes (plain HTTP)
 * as their admin ({@link TestNodes#ADMIN_KEY}) unless a call names another key; an instance made
 * by {@link #trusting} calls a cluster of {@code scripts/cluster.sh} over HTTPS with its key.
 */
public final class HttpProbe {

  private static final HttpProbe TEST_NODES = new HttpProbe(
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build(), TestNodes.ADMIN_KEY);

  private final HttpClient client;
  private final String key;

  private HttpProbe(HttpClient client, String key) {
    this.client = client;
    this.key = key;
  }

  /** Calls over HTTPS trusting the CA of a PEM file, presenting {@code key}. */
  public static HttpProbe trusting(Path caPem, String key) {
    return new HttpProbe(HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).sslContext(tlsTrusting(caPem))
        .build(), key);
  }

  /** TLS trusting the CAs of a PEM file (a launched cluster's), for any client that takes an SSLContext. */
  public static SSLContext tlsTrusting(Path caPem) {
    try (InputStream in = Files.newInputStream(caPem)) {
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      int i = 0;
      for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        trust.setCertificateEntry("ca-" + i++, ca);
      }
      TrustManagerFactory managers = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      managers.init(trust);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, managers.getTrustManagers(), null);
      return context;
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot trust " + caPem + ": " + e, e);
    }
  }

  public record Response(int status, String body) {}

  public static Response get(String url) {
    return send("GET", url, null);
  }

  /** Any method, with a body (or none). */
  public static Response send(String method, String url, String body) {
    return send(method, url, body, TestNodes.ADMIN_KEY);
  }

  /** Any method, with a body (or none), presenting {@code key} as a bearer token (null: none). */
  public static Response send(String method, String url, String body, String key) {
    return TEST_NODES.call(method, url, body, key);
  }

  public static int status(String url) {
    return get(url).status();
  }

  /** A GET with this probe's key. */
  public Response fetch(String url) {
    return call("GET", url, null, key);
  }

  /** Any method with this probe's key. */
  public Response request(String method, String url, String body) {
    return call(method, url, body, key);
  }

  private Response call(String method, String url, String body, String bearer) {
    try {
      HttpRequest.BodyPublisher publisher = body == null ? HttpRequest.BodyPublishers.noBody()
          : HttpRequest.BodyPublishers.ofString(body);
      HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
          .method(method, publisher);
      if (bearer != null) {
        request.header("Authorization", "Bearer " + bearer);
      }
      HttpResponse<String> r = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
      return new Response(r.statusCode(), r.body());
    } catch (IOException e) {
      return new Response(-1, e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Response(-1, e.toString());
    }
  }
}
