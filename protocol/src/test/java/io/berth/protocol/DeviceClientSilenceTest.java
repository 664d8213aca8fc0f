package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A node that goes silent (frozen, or cut off without a reset) while the device waits for an
 * ACK is left within about twice the silence timeout: the client sends a PING, and when that is
 * not answered either, reconnects to its next address and resends what was not acknowledged. A
 * node that answers the PING keeps the device, however long its ACK takes. Scripted nodes on
 * real TCP sockets.
 */
class DeviceClientSilenceTest {

  private static final byte[] SECRET = "a-secret-of-16-bytes-or-more".getBytes(StandardCharsets.UTF_8);
  private static final Duration SILENCE = Duration.ofMillis(1500);

  @Test
  void aSilentNodeIsPingedThenLeftForTheNextAddressAndTheFrameIsResent() throws Exception {
    try (ServerSocket frozen = new ServerSocket(0, 4, InetAddress.getLoopbackAddress());
         ServerSocket alive = new ServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
      frozen.setSoTimeout(15_000);
      alive.setSoTimeout(15_000);
      DeviceClient client = client(frozen.getLocalPort(), alive.getLocalPort());
      Thread connecting = new Thread(client::connect);
      connecting.start();
      try (Socket node = frozen.accept()) {
        node.setSoTimeout(10_000);
        FrameReader in = reader(node);
        assertThat(next(in)).isInstanceOf(Frame.Hello.class);
        // The last frame from the node: the client's silence is measured from here.
        write(node, welcome(0));
        long welcomed = System.nanoTime();
        connecting.join(10_000);
        client.send("up-1".getBytes(StandardCharsets.UTF_8));
        assertThat(next(in)).isInstanceOf(Frame.Data.class);
        // Nothing from the node from here on: the client asks once, then leaves.
        assertThat(next(in)).isInstanceOf(Frame.Ping.class);
        double pingAfter = (System.nanoTime() - welcomed) / 1e9;
        assertThat(pingAfter).as("PING after, s").isBetween(1.4, 6.0);

        try (Socket next = alive.accept()) {
          double leftAfter = (System.nanoTime() - welcomed) / 1e9;
          assertThat(leftAfter).as("left the silent node after, s").isBetween(2.9, 12.0);
          next.setSoTimeout(10_000);
          FrameReader in2 = reader(next);
          Frame.Hello hello = (Frame.Hello) next(in2);
          assertThat(hello.resume()).isTrue();
          write(next, welcome(0));
          Frame.Data resent = (Frame.Data) next(in2);
          assertThat(new String(resent.payload(), StandardCharsets.UTF_8)).isEqualTo("up-1");
          write(next, new Frame.Ack(1));
          assertThat(client.awaitAllAcked(Duration.ofSeconds(5))).isTrue();
        }
      } finally {
        client.close(Duration.ofMillis(100));
      }
    }
  }

  @Test
  void aNodeThatAnswersThePingKeepsTheDeviceWhileItsAckIsSlow() throws Exception {
    try (ServerSocket slow = new ServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
      slow.setSoTimeout(15_000);
      DeviceClient client = client(slow.getLocalPort(), slow.getLocalPort());
      Thread connecting = new Thread(client::connect);
      connecting.start();
      try (Socket node = slow.accept()) {
        node.setSoTimeout(10_000);
        FrameReader in = reader(node);
        assertThat(next(in)).isInstanceOf(Frame.Hello.class);
        write(node, welcome(0));
        connecting.join(10_000);
        client.send("up-1".getBytes(StandardCharsets.UTF_8));
        assertThat(next(in)).isInstanceOf(Frame.Data.class);
        // Each PING answered: five silence timeouts pass without the device leaving.
        long until = System.nanoTime() + SILENCE.multipliedBy(5).toNanos();
        int pings = 0;
        while (System.nanoTime() < until) {
          Frame f = next(in);
          if (f instanceof Frame.Ping p) {
            pings++;
            write(node, new Frame.Pong(p.nonce()));
          }
        }
        assertThat(pings).isPositive();
        write(node, new Frame.Ack(1));
        assertThat(client.awaitAllAcked(Duration.ofSeconds(5))).isTrue();
        assertThat(client.connectionCount()).as("never reconnected").isEqualTo(1);
      } finally {
        client.close(Duration.ofMillis(100));
      }
    }
  }

  private static DeviceClient client(int first, int second) {
    return DeviceClient.builder()
        .addresses(java.util.List.of(new java.net.InetSocketAddress("127.0.0.1", first),
            new java.net.InetSocketAddress("127.0.0.1", second)))
        .deviceId("silence-test")
        .tls(ClientTls.PLAINTEXT)
        .secret(SECRET, Duration.ofMinutes(5))
        .silenceTimeout(SILENCE)
        .giveUpAfter(Duration.ofSeconds(20))
        .build();
  }

  private static Frame.Welcome welcome(long lastAccepted) {
    return new Frame.Welcome(FrameCodec.VERSION, "silence-test", "node-1", lastAccepted, 0, 65_536, 256, 1 << 20, 60);
  }

  private static void write(Socket node, Frame frame) throws IOException {
    OutputStream out = node.getOutputStream();
    out.write(FrameCodec.encode(frame));
    out.flush();
  }

  private static FrameReader reader(Socket node) throws IOException {
    return new FrameReader(new BufferedInputStream(node.getInputStream()), 65_536);
  }

  private static Frame next(FrameReader in) throws IOException {
    return ((Decoded.Ok) in.next()).frame();
  }
}
