package io.berth.node.mapping;

import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.pattern.CircuitBreaker;

/**
 * One circuit breaker per endpoint host and port on this node: while a host keeps failing, calls
 * to it fail at once instead of tying up connections, and sockets of other mappings (other
 * hosts) are unaffected. Settings: {@code berth.endpoints.breaker.*}.
 */
public final class EndpointBreakers implements Extension {

  private static final ExtensionId<EndpointBreakers> ID = new ExtensionId<>() {
    @Override
    public EndpointBreakers createExtension(ActorSystem<?> system) {
      return new EndpointBreakers(system);
    }
  };

  private final ActorSystem<?> system;
  private final int maxFailures;
  private final Duration callTimeout;
  private final Duration resetTimeout;
  private final ConcurrentHashMap<String, CircuitBreaker> breakers = new ConcurrentHashMap<>();

  private EndpointBreakers(ActorSystem<?> system) {
    this.system = system;
    var c = system.settings().config().getConfig("berth.endpoints.breaker");
    this.maxFailures = c.getInt("max-failures");
    this.callTimeout = c.getDuration("call-timeout");
    this.resetTimeout = c.getDuration("reset-timeout");
  }

  public static EndpointBreakers get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Each endpoint host's breaker: 1 while it is open (calls fail at once), 0 otherwise. */
  public java.util.Map<String, Integer> openByHost() {
    java.util.Map<String, Integer> out = new java.util.HashMap<>();
    breakers.forEach((host, breaker) -> out.put(host, breaker.isOpen() ? 1 : 0));
    return out;
  }

  public CircuitBreaker forHost(String hostAndPort) {
    return breakers.computeIfAbsent(hostAndPort, h ->
        CircuitBreaker.create(system.classicSystem().scheduler(), maxFailures, callTimeout, resetTimeout));
  }
}
