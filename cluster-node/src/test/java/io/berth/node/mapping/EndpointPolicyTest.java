package io.berth.node.mapping;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which endpoint addresses a call may connect to, in every spelling of an internal address. */
class EndpointPolicyTest {

  private final EndpointPolicy publicOnly = new EndpointPolicy(List.of("*"));

  @Test
  void everySpellingOfAnInternalAddressIsRefused() {
    for (String host : List.of("127.0.0.1", "[::1]", "0.0.0.0", "[::]", "10.1.2.3", "172.16.0.1", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "[fd00::1]", "[fe80::1]", "224.0.0.1",
        "2130706433", "127.1",                  // decimal and short forms of 127.0.0.1
        "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]",  // IPv4-mapped
        "[::127.0.0.1]",                        // IPv4-compatible
        "[64:ff9b::a00:1]",                     // NAT64 of 10.0.0.1
        "[2002:a9fe:a9fe::]")) {                // 6to4 of 169.254.169.254
      assertThatThrownBy(() -> publicOnly.connectAddress(host, 80)).as(host)
          .isInstanceOf(InvalidMapping.class).hasMessageContaining("internal address");
    }
  }

  /**
   * A DNS answer is not a literal: an AAAA record ::ffff:169.254.169.254 arrives as an
   * Inet6Address (the JDK converts only literals), and must be as internal as the IPv4 it holds.
   */
  @Test
  void anIpv4MappedAddressFromDnsIsInternalAsItsIpv4() throws Exception {
    byte[] mapped = new byte[16];
    mapped[10] = (byte) 0xFF;
    mapped[11] = (byte) 0xFF;
    mapped[12] = (byte) 169;
    mapped[13] = (byte) 254;
    mapped[14] = (byte) 169;
    mapped[15] = (byte) 254;
    InetAddress fromDns = java.net.Inet6Address.getByAddress(null, mapped, -1);
    assertThat(fromDns).isInstanceOf(java.net.Inet6Address.class);
    assertThat(EndpointPolicy.isInternal(fromDns)).isTrue();
    mapped[12] = (byte) 93;
    mapped[13] = (byte) 184;
    mapped[14] = (byte) 215;
    mapped[15] = (byte) 14;
    assertThat(EndpointPolicy.isInternal(java.net.Inet6Address.getByAddress(null, mapped, -1))).isFalse();
    assertThat(EndpointPolicy.isInternal(InetAddress.getByName("64:ff9b:1::1"))).as("local-use NAT64").isTrue();
    assertThat(EndpointPolicy.isInternal(InetAddress.getByName("2001:0:4136:e378:8000:63bf:3fff:fdd2")))
        .as("Teredo").isTrue();
  }

  /**
   * C's inet_aton reads 0177.0.0.1 as octal, 127.0.0.1; the JDK reads it as decimal, 177.0.0.1.
   * Whichever reading a tool would take, the call goes to the address the JDK checked, never to
   * loopback: an octal spelling cannot smuggle an internal address past the check.
   */
  @Test
  void anOctalSpellingIsConnectedToAsTheAddressCheckedNeverAsLoopback() {
    InetSocketAddress to;
    try {
      to = publicOnly.connectAddress("0177.0.0.1", 80);
    } catch (InvalidMapping refused) {
      return; // refused outright: as good
    }
    assertThat(to.getAddress().isLoopbackAddress()).isFalse();
    assertThat(to.getAddress().getHostAddress()).isEqualTo("177.0.0.1");
  }

  @Test
  void aPublicAddressIsConnectedToAsCheckedAndAListedHostEvenWhenInternal() throws Exception {
    InetSocketAddress to = publicOnly.connectAddress("93.184.215.14", 8443);
    assertThat(to.getAddress()).isEqualTo(InetAddress.getByName("93.184.215.14"));
    assertThat(to.getPort()).isEqualTo(8443);
    assertThat(publicOnly.connectAddress("[2606:2800:21f:cb07:6820:80da:af6b:8b2c]", 443).getAddress())
        .isEqualTo(InetAddress.getByName("2606:2800:21f:cb07:6820:80da:af6b:8b2c"));

    EndpointPolicy listed = new EndpointPolicy(List.of("127.0.0.1"));
    assertThat(listed.connectAddress("127.0.0.1", 9000).getAddress().isLoopbackAddress()).isTrue();
    assertThatThrownBy(() -> listed.connectAddress("10.0.0.1", 80)).isInstanceOf(InvalidMapping.class)
        .hasMessageContaining("not in berth.endpoints.allowed-hosts");
  }
}
