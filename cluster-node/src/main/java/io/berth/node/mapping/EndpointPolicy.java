package io.berth.node.mapping;

import com.typesafe.config.Config;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
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
    resolve(URI.create(endpoint).getHost());
  }

  /**
   * Where a call to the endpoint host connects, resolved and checked now, for this connection: a
   * name that resolved to a public address when the mapping was saved and to 127.0.0.1 or
   * 169.254.169.254 since (DNS rebinding) is refused here, and the connection goes to the address
   * checked, never to a second resolution. Blocks: call it off the actor threads.
   *
   * @throws InvalidMapping why the host may not be called
   */
  public InetSocketAddress connectAddress(String host, int port) {
    return new InetSocketAddress(resolve(host)[0], port);
  }

  /** The host's addresses, each allowed; the reason otherwise, as an {@link InvalidMapping}. */
  private InetAddress[] resolve(String rawHost) {
    String host = rawHost.toLowerCase(Locale.ROOT);
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
    return addresses;
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
      if ((b[0] & 0xFE) == 0xFC) {
        return true; // unique local fc00::/7
      }
      // An IPv4 address inside an IPv6 one reaches that IPv4 host: IPv4-mapped ::ffff:a.b.c.d
      // (a literal becomes an Inet4Address, but a DNS AAAA answer stays an Inet6Address),
      // IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::. Each is as
      // internal as the IPv4 address it holds.
      boolean mapped = isZero(b, 0, 10) && (b[10] & 0xFF) == 0xFF && (b[11] & 0xFF) == 0xFF;
      boolean nat64 = b[0] == 0x00 && b[1] == 0x64 && (b[2] & 0xFF) == 0xFF && (b[3] & 0xFF) == 0x9B && isZero(b, 4, 12);
      if (mapped || isZero(b, 0, 12) || nat64) {
        return isInternal(v4(b, 12));
      }
      if (b[0] == 0x20 && b[1] == 0x02) {
        return isInternal(v4(b, 2));
      }
      // NAT64 for local use (64:ff9b:1::/48, RFC 8215) and Teredo (2001::/32) carry IPv4
      // addresses where no check can read them reliably: no endpoint needs either.
      boolean localNat64 = b[0] == 0x00 && b[1] == 0x64 && (b[2] & 0xFF) == 0xFF && (b[3] & 0xFF) == 0x9B
          && b[4] == 0x00 && b[5] == 0x01;
      boolean teredo = b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00;
      return localNat64 || teredo;
    }
    return false;
  }

  private static boolean isZero(byte[] b, int from, int to) {
    for (int i = from; i < to; i++) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  }

  private static InetAddress v4(byte[] b, int at) {
    try {
      return InetAddress.getByAddress(new byte[] {b[at], b[at + 1], b[at + 2], b[at + 3]});
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e); // four bytes are always an address
    }
  }
}
