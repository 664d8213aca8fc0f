package io.berth.node.mapping;

import com.typesafe.config.Config;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Locale;

/**
 * Which endpoint hosts a mapping may name ({@code berth.endpoints.allowed-hosts}): {@code *} for
 * any public host, exact host names or IP addresses, and {@code *.domain} suffixes. A host that
 * resolves to a loopback, private, link-local (cloud metadata) or otherwise internal address is
 * refused unless a pattern other than {@code *} lists it: a mapping must not turn the cluster
 * into a proxy into its own network.
 */
public final class EndpointPolicy {

  private final List<String> allowed;

  public EndpointPolicy(List<String> allowed) {
    this.allowed = allowed.stream().map(s -> s.toLowerCase(Locale.ROOT).strip()).toList();
  }

  public static EndpointPolicy fromConfig(Config config) {
    return new EndpointPolicy(config.getStringList("berth.endpoints.allowed-hosts"));
  }

  /** Checks an HTTP endpoint; resolves the host name, so it blocks: call it off the actor threads. */
  public void check(String endpoint) {
    if (endpoint.startsWith(Mapping.BUILTIN)) {
      return;
    }
    String host = URI.create(endpoint).getHost().toLowerCase(Locale.ROOT);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    boolean listed = false;
    for (String p : allowed) {
      if (!p.equals("*") && (p.equals(host) || (p.startsWith("*.") && host.endsWith(p.substring(1))))) {
        listed = true;
      }
    }
    if (!listed && !allowed.contains("*")) {
      throw new InvalidMapping("endpoint: host '" + host + "' is not in berth.endpoints.allowed-hosts " + allowed);
    }
    InetAddress[] addresses;
    try {
      addresses = InetAddress.getAllByName(host);
    } catch (UnknownHostException e) {
      throw new InvalidMapping("endpoint: cannot resolve host '" + host + "'");
    }
    if (!listed) {
      for (InetAddress a : addresses) {
        if (isInternal(a)) {
          throw new InvalidMapping("endpoint: host '" + host + "' resolves to the internal address "
              + a.getHostAddress() + "; list it in berth.endpoints.allowed-hosts to allow it");
        }
      }
    }
  }

  static boolean isInternal(InetAddress a) {
    if (a.isLoopbackAddress() || a.isAnyLocalAddress() || a.isLinkLocalAddress() || a.isSiteLocalAddress()
        || a.isMulticastAddress()) {
      return true;
    }
    byte[] b = a.getAddress();
    if (a instanceof Inet4Address) {
      int first = b[0] & 0xFF;
      int second = b[1] & 0xFF;
      return first == 0 || (first == 100 && second >= 64 && second < 128) || (first == 198 && (second == 18
          || second == 19)) || first >= 240;
    }
    if (a instanceof Inet6Address) {
      return (b[0] & 0xFE) == 0xFC; // unique local fc00::/7
    }
    return false;
  }
}
