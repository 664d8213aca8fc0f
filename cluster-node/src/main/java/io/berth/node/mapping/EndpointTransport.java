package io.berth.node.mapping;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.http.javadsl.ClientTransport;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.HttpsConnectionContext;
import org.apache.pekko.http.javadsl.settings.ConnectionPoolSettings;

/**
 * How calls to mapping endpoints connect (docs/ENDPOINTS.md#what-an-endpoint-may-be): every new
 * connection resolves its host itself and checks each address against {@link EndpointPolicy}, then
 * connects to the address it checked. Pekko HTTP's own resolution is bypassed, so there is no
 * second lookup between the check and the connect for a rebinding name to answer differently.
 * The pool's other settings are the node's ({@code pekko.http.host-connection-pool}).
 */
public final class EndpointTransport implements Extension {

  private static final ExtensionId<EndpointTransport> ID = new ExtensionId<>() {
    @Override
    public EndpointTransport createExtension(ActorSystem<?> system) {
      return new EndpointTransport(system);
    }
  };

  private final EndpointPolicy policy;
  private final Executor blocking;
  private final ConnectionPoolSettings pool;
  private final HttpsConnectionContext https;
  private final long maxAnswerBytes;

  private EndpointTransport(ActorSystem<?> system) {
    this.policy = EndpointPolicy.fromConfig(system.settings().config());
    // Resolving blocks: on the blocking dispatcher, never on the pool's or the actors' threads.
    this.blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
    ClientTransport checked = ClientTransport.withCustomResolver((host, port) -> connect(policy, blocking, host, port));
    this.pool = ConnectionPoolSettings.create(system.classicSystem()).withTransport(checked);
    // The JDK's trust and hostname check, made here rather than taken from Http's default: a node
    // that bootstraps replaces that default with one trusting only node certificates
    // (BootstrapTls), which must never decide whom a webhook call trusts.
    this.https = Http.get(system).createDefaultClientHttpsContext();
    this.maxAnswerBytes = system.settings().config().getBytes("berth.endpoints.max-answer-bytes");
  }

  public static EndpointTransport get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /**
   * Why a call to {@code host} would be refused now, or null when it may go (the host resolved and
   * checked within {@code timeout}). Never fails.
   */
  CompletionStage<String> refusal(String host, int port, Duration timeout) {
    try {
      return CompletableFuture.supplyAsync(() -> {
        try {
          policy.connectAddress(host, port);
          return null;
        } catch (InvalidMapping e) {
          return e.getMessage();
        } catch (RuntimeException e) {
          return "cannot check host '" + host + "': " + e;
        }
      }, blocking).completeOnTimeout("host '" + host + "' not resolved within " + timeout.toMillis() + " ms",
          timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (RuntimeException e) {
      return CompletableFuture.completedFuture("cannot check host '" + host + "': " + e);
    }
  }

  /** The connection pool settings of endpoint calls. */
  ConnectionPoolSettings pool() {
    return pool;
  }

  /** The TLS of endpoint calls: the JDK's trusted CAs, the endpoint's host name checked. */
  HttpsConnectionContext https() {
    return https;
  }

  /** An answer longer than this fails the call, read no further (berth.endpoints.max-answer-bytes). */
  long maxAnswerBytes() {
    return maxAnswerBytes;
  }

  private static CompletionStage<InetSocketAddress> connect(EndpointPolicy policy, Executor blocking, String host,
      Object port) {
    return CompletableFuture.supplyAsync(() -> policy.connectAddress(host, (Integer) port), blocking);
  }
}
