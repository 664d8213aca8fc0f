package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.Decoded;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.haproxy.HAProxyCommand;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageEncoder;
import io.netty.handler.codec.haproxy.HAProxyProtocolVersion;
import io.netty.handler.codec.haproxy.HAProxyProxiedProtocol;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What the edge's sockets do before a connection carries frames, over real loopback TCP: the
 * PROXY protocol header, its timeout, and the per-node connect rate.
 */
class EdgeSocketsTest {

  private static final int MAX_FRAME = 4096;
  private static final Duration WAIT = Duration.ofSeconds(5);

  private static ActorTestKit testKit;

  @BeforeAll
  static void start() {
    testKit = ActorTestKit.create();
  }

  @AfterAll
  static void stop() {
    testKit.shutdownTestKit();
  }

  private final TestProbe<ConnectionActor.Command> actor = testKit.createTestProbe();
  private final BlockingQueue<Connection> accepted = new LinkedBlockingQueue<>();
  private final List<Socket> devices = new ArrayList<>();
  private EdgeSockets sockets;

  @AfterEach
  void closeAll() throws IOException {
    for (Socket device : devices) {
      device.close();
    }
    if (sockets != null) {
      sockets.close();
    }
  }

  private void listen(EdgeSockets.Options options) throws IOException {
    sockets = EdgeSockets.bind(options, new EdgeOutcome.Counts(), new EdgeBacklog(), connection -> {
      connection.start(actor.ref());
      accepted.add(connection);
    });
  }

  private static EdgeSockets.Options options(boolean proxy, Duration setupTimeout, double perSecond, int burst) {
    return new EdgeSockets.Options("127.0.0.1", 0, 4096, 100_000, MAX_FRAME, 4096, 64, 1, setupTimeout, proxy, null,
        perSecond, burst, null, null);
  }

  private Socket connect() throws IOException {
    Socket device = new Socket();
    devices.add(device);
    device.setSoTimeout((int) WAIT.toMillis());
    device.connect(sockets.localAddress());
    return device;
  }

  private static byte[] proxyV2(String source, int sourcePort) {
    EmbeddedChannel encoder = new EmbeddedChannel(HAProxyMessageEncoder.INSTANCE);
    encoder.writeOutbound(new HAProxyMessage(HAProxyProtocolVersion.V2, HAProxyCommand.PROXY,
        HAProxyProxiedProtocol.TCP6, source, "2001:db8::1", sourcePort, 7000));
    ByteBuf encoded = encoder.readOutbound();
    byte[] bytes = ByteBufUtil.getBytes(encoded);
    encoded.release();
    return bytes;
  }

  private Frame firstFrame() {
    ConnectionActor.Inbound inbound = actor.expectMessageClass(ConnectionActor.Inbound.class, WAIT);
    return ((Decoded.Ok) inbound.frames().get(0)).frame();
  }

  @Test
  void aProxyV1HeaderGivesTheDevicesAddressAndTheFramesAfterItArrive() throws Exception {
    listen(options(true, WAIT, 0, 1));
    OutputStream out = connect().getOutputStream();
    Frame.Ping ping = new Frame.Ping(7);
    out.write("PROXY TCP4 203.0.113.7 192.0.2.1 51234 7000\r\n".getBytes(StandardCharsets.US_ASCII));
    out.write(FrameCodec.encode(ping));
    out.flush();

    Connection connection = accepted.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertThat(connection).isNotNull();
    assertThat(connection.remote()).isEqualTo(new InetSocketAddress("203.0.113.7", 51234));
    assertThat(firstFrame()).isEqualTo(ping);
  }

  @Test
  void aProxyV2HeaderGivesTheDevicesIpv6Address() throws Exception {
    listen(options(true, WAIT, 0, 1));
    OutputStream out = connect().getOutputStream();
    Frame.Ping ping = new Frame.Ping(8);
    out.write(proxyV2("2001:db8::7", 40000));
    out.write(FrameCodec.encode(ping));
    out.flush();

    Connection connection = accepted.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertThat(connection).isNotNull();
    assertThat(connection.remote()).isEqualTo(new InetSocketAddress("2001:db8::7", 40000));
    assertThat(firstFrame()).isEqualTo(ping);
  }

  @Test
  void aMalformedProxyHeaderClosesTheConnectionBeforeAnyFrameAndIsCounted() throws Exception {
    listen(options(true, WAIT, 0, 1));
    Socket device = connect();
    device.getOutputStream().write("PROXY NONSENSE\r\n".getBytes(StandardCharsets.US_ASCII));
    device.getOutputStream().flush();

    assertThat(device.getInputStream().read()).as("closed").isEqualTo(-1);
    assertThat(accepted.poll(200, TimeUnit.MILLISECONDS)).isNull();
    assertThat(sockets.outcomes().get(EdgeOutcome.PROXY_HEADER_INVALID)).isEqualTo(1);
  }

  @Test
  void aConnectionThatSendsNoProxyHeaderIsClosedAfterTheSetupTimeout() throws Exception {
    listen(options(true, Duration.ofMillis(300), 0, 1));
    Socket device = connect();
    long started = System.nanoTime();

    assertThat(device.getInputStream().read()).as("closed").isEqualTo(-1);
    assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofMillis(250));
    assertThat(accepted).isEmpty();
    assertThat(sockets.outcomes().get(EdgeOutcome.SETUP_TIMEOUT)).isEqualTo(1);
  }

  /**
   * 5,000 connects in one burst against 1,000 per second (burst 1,000): every one is accepted,
   * none refused, and no faster than the rate allows. Connects the kernel's backlog cannot hold
   * are retried by TCP itself (SYN retransmission), which is what a device sees.
   */
  @Test
  void aBurstOfConnectsBeyondTheRateIsServedInFullAtTheRate() throws Exception {
    int devicesCount = 5_000;
    listen(options(false, WAIT, 1_000, 1_000));
    long started = System.nanoTime();
    List<Thread> connecting = new ArrayList<>();
    List<Throwable> refused = java.util.Collections.synchronizedList(new ArrayList<>());
    int threads = 8;
    for (int t = 0; t < threads; t++) {
      int share = devicesCount / threads;
      Thread thread = new Thread(() -> {
        for (int i = 0; i < share; i++) {
          try {
            Socket device = new Socket();
            synchronized (devices) {
              devices.add(device);
            }
            device.connect(sockets.localAddress(), 30_000);
          } catch (IOException e) {
            refused.add(e);
          }
        }
      });
      thread.start();
      connecting.add(thread);
    }
    for (Thread thread : connecting) {
      thread.join(Duration.ofSeconds(60).toMillis());
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (accepted.size() < devicesCount && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    Duration took = Duration.ofNanos(System.nanoTime() - started);

    assertThat(refused).as("connects refused").isEmpty();
    assertThat(accepted).hasSize(devicesCount);
    // 1,000 at once, then 4,000 at 1,000/s: at least about 4 s.
    assertThat(took).isGreaterThan(Duration.ofMillis(3_500));
  }
}
