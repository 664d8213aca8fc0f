package io.berth.bench;

import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import io.berth.protocol.LinkStatus;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;

/**
 * Relay pairs through Berth: the two devices of a pair connect to different nodes and open a
 * socket with the same name under {@code builtin:pair} (HELLO mapping {@code pair}), which links
 * them (ENDPOINTS.md, PROTOCOL.md#link). A sender's frame is acknowledged only once the peer
 * device has acknowledged it, so the client's window spans the whole path.
 */
final class BerthRelay implements RelayTransport {

  private static final Duration LINK_TIMEOUT = Duration.ofSeconds(30);

  private final LocalCluster cluster;
  private final int window;
  private final String name;
  private final ClientTls tls;

  BerthRelay(LocalCluster cluster, int window) {
    this(cluster, window, "Berth", ClientTls.PLAINTEXT);
  }

  /** Pairs whose devices reach the cluster's edges with {@code tls}, named {@code name} in the report. */
  BerthRelay(LocalCluster cluster, int window, String name, ClientTls tls) {
    this.cluster = cluster;
    this.window = window;
    this.name = name;
    this.tls = tls;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public List<Pair> open(int count) {
    String run = UUID.randomUUID().toString().substring(0, 8);
    List<InetSocketAddress> edges = cluster.edges();
    List<InetSocketAddress> reversed = new ArrayList<>(edges);
    Collections.reverse(reversed);
    List<Side> sides = new ArrayList<>();
    try {
      for (int i = 0; i < count; i++) {
        String room = "relay-" + run + "-" + i;
        sides.add(new Side(edges, "bench-relay-" + run + "-" + i + "a", room, window, tls));
        sides.add(new Side(reversed, "bench-relay-" + run + "-" + i + "b", room, window, tls));
      }
      LocalCluster.awaitCondition(LINK_TIMEOUT, () -> sides.stream().allMatch(s -> s.link == LinkStatus.LINKED));
    } catch (RuntimeException e) {
      sides.forEach(Side::close);
      throw e;
    }
    return RelayTransport.pairUp(sides);
  }

  /** One device: a reference client on its own socket, connected to its first edge. */
  private static final class Side implements RelaySide {

    private final RelayReceiver received = new RelayReceiver();
    private final DeviceClient client;
    private volatile LinkStatus link;

    Side(List<InetSocketAddress> edges, String deviceId, String room, int window, ClientTls tls) {
      this.client = DeviceClient.builder().addresses(edges).deviceId(deviceId).socketName(room).mapping("pair")
          .tls(tls)
          .window(window).secret(LocalCluster.SECRET.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1))
          .listener(new DeviceListener() {
            @Override
            public void onData(long seq, byte[] payload) {
              received.accept(payload);
            }

            @Override
            public void onLink(LinkStatus status, String peer, String reason) {
              link = status;
            }
          }).build().connect();
    }

    @Override
    public void send(byte[] frame) throws InterruptedException {
      client.send(frame);
    }

    @Override
    public RelayReceiver received() {
      return received;
    }

    @Override
    public void close() {
      client.close();
    }
  }
}
