package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The reference client acknowledges downlink DATA once nothing more is waiting to be read, even
 * when the last frame of a burst is not DATA — otherwise the last frames of a stream would stay
 * unacknowledged until the node gives up on the device. A scripted node on a real TCP socket.
 */
class DeviceClientAckTest {

  @Test
  void theLastDataIsAcknowledgedEvenWhenAnotherFrameFollowsItInTheSameWrite() throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      server.setSoTimeout(10_000);
      DeviceClient client = DeviceClient.builder()
          .address("127.0.0.1", server.getLocalPort())
          .deviceId("ack-test")
          .tls(ClientTls.PLAINTEXT)
          .secret("a-secret-of-16-bytes-or-more".getBytes(StandardCharsets.UTF_8), Duration.ofMinutes(5))
          .giveUpAfter(Duration.ofSeconds(10))
          .build();
      Thread connecting = new Thread(client::connect);
      connecting.start();
      try (Socket node = server.accept()) {
        node.setSoTimeout(5_000);
        FrameReader in = new FrameReader(new BufferedInputStream(node.getInputStream()), 65_536);
        assertThat(((Decoded.Ok) in.next()).frame()).isInstanceOf(Frame.Hello.class);
        OutputStream out = node.getOutputStream();
        out.write(FrameCodec.encode(new Frame.Welcome(FrameCodec.VERSION, "ack-test", "node-1", 0, 0, 65_536, 256,
            1 << 20, 60)));
        out.flush();
        connecting.join(10_000);

        // DATA 1 and 2, then a LINK and an ACK in the same write: the DATA is not last.
        ByteArrayOutputStream burst = new ByteArrayOutputStream();
        burst.writeBytes(FrameCodec.encode(new Frame.Data(1, new byte[] {1})));
        burst.writeBytes(FrameCodec.encode(new Frame.Data(2, new byte[] {2})));
        burst.writeBytes(FrameCodec.encode(new Frame.Link(LinkStatus.LINKED, "peer", "")));
        burst.writeBytes(FrameCodec.encode(new Frame.Ack(0)));
        out.write(burst.toByteArray());
        out.flush();

        List<Frame> fromClient = new ArrayList<>();
        long highestAck = -1;
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (highestAck < 2 && System.nanoTime() < deadline) {
          try {
            Frame f = ((Decoded.Ok) in.next()).frame();
            fromClient.add(f);
            if (f instanceof Frame.Ack a) {
              highestAck = Math.max(highestAck, a.seq());
            }
          } catch (SocketTimeoutException e) {
            break;
          } catch (IOException e) {
            throw new AssertionError("client closed the connection; frames: " + fromClient, e);
          }
        }
        assertThat(highestAck).as("the client's ACKs, frames: " + fromClient).isEqualTo(2);
      } finally {
        client.close();
      }
    }
  }
}
