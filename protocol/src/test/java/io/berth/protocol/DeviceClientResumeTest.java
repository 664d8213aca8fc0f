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
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * A node whose session is older than the device's state (its database restored from an earlier
 * backup) refuses the resume with ERROR 105: the reference client resumes again without a
 * downlink position, keeps its unacknowledged uplink frames, and takes the node's downlink
 * numbering from then on. A scripted node on a real TCP socket.
 */
class DeviceClientResumeTest {

  private static final byte[] SECRET = "a-secret-of-16-bytes-or-more".getBytes(StandardCharsets.UTF_8);

  @Test
  void aResumeRefusedForADownlinkPositionTheNodeNeverReachedResumesWithoutItKeepingTheUplink() throws Exception {
    List<String> received = new CopyOnWriteArrayList<>();
    try (ServerSocket server = new ServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
      server.setSoTimeout(15_000);
      DeviceClient client = DeviceClient.builder()
          .address("127.0.0.1", server.getLocalPort())
          .deviceId("resume-test")
          .tls(ClientTls.PLAINTEXT)
          .secret(SECRET, Duration.ofMinutes(5))
          .giveUpAfter(Duration.ofSeconds(20))
          .listener(new DeviceListener() {
            @Override
            public void onData(long seq, byte[] payload) {
              received.add(new String(payload, StandardCharsets.UTF_8));
            }
          })
          .build();
      Thread connecting = new Thread(client::connect);
      connecting.start();
      try {
        // First connection: the device receives downlink 1..3 and sends uplink 1, never acknowledged.
        try (Socket node = server.accept()) {
          node.setSoTimeout(5_000);
          FrameReader in = reader(node);
          assertThat(next(in)).isInstanceOf(Frame.Hello.class);
          OutputStream out = node.getOutputStream();
          out.write(FrameCodec.encode(welcome(0, 0)));
          for (int i = 1; i <= 3; i++) {
            out.write(FrameCodec.encode(new Frame.Data(i, ("old-" + i).getBytes(StandardCharsets.UTF_8))));
          }
          out.flush();
          connecting.join(10_000);
          client.send("up-1".getBytes(StandardCharsets.UTF_8));
          awaitDataAndAck(in, 1, 3);
        }
        assertThat(received).containsExactly("old-1", "old-2", "old-3");

        // Second: the node's session never sent beyond 1 (restored from an older backup).
        try (Socket node = server.accept()) {
          node.setSoTimeout(5_000);
          FrameReader in = reader(node);
          Frame.Hello hello = (Frame.Hello) next(in);
          assertThat(hello.resume()).isTrue();
          assertThat(hello.lastReceived()).isEqualTo(3);
          node.getOutputStream().write(FrameCodec.encode(new Frame.Error(ErrorCode.BAD_SEQUENCE.wire,
              "HELLO lastReceived 3 is beyond the last downlink seq 1")));
          node.getOutputStream().flush();
        }

        // Third: a resume without a downlink position; the uplink frame comes again, and the
        // node's downlink 2 and 3 (new frames under old numbers) reach the application.
        try (Socket node = server.accept()) {
          node.setSoTimeout(5_000);
          FrameReader in = reader(node);
          Frame.Hello hello = (Frame.Hello) next(in);
          assertThat(hello.resume()).isTrue();
          assertThat(hello.lastReceived()).isZero();
          OutputStream out = node.getOutputStream();
          out.write(FrameCodec.encode(welcome(0, 1)));
          out.write(FrameCodec.encode(new Frame.Data(2, "new-2".getBytes(StandardCharsets.UTF_8))));
          out.write(FrameCodec.encode(new Frame.Data(3, "new-3".getBytes(StandardCharsets.UTF_8))));
          out.flush();
          Frame.Data resent = awaitDataAndAck(in, 1, 3);
          assertThat(new String(resent.payload(), StandardCharsets.UTF_8)).isEqualTo("up-1");
        }
        assertThat(received).containsExactly("old-1", "old-2", "old-3", "new-2", "new-3");
      } finally {
        client.close(Duration.ofMillis(100));
      }
    }
  }

  private static Frame.Welcome welcome(long lastAccepted, long lastAcked) {
    return new Frame.Welcome(FrameCodec.VERSION, "resume-test", "node-1", lastAccepted, lastAcked, 65_536, 256,
        1 << 20, 60);
  }

  private static FrameReader reader(Socket node) throws IOException {
    return new FrameReader(new BufferedInputStream(node.getInputStream()), 65_536);
  }

  private static Frame next(FrameReader in) throws IOException {
    return ((Decoded.Ok) in.next()).frame();
  }

  /** Reads until the client sent DATA {@code data} and an ACK of at least {@code ack}, in either order. */
  private static Frame.Data awaitDataAndAck(FrameReader in, long data, long ack) throws IOException {
    Frame.Data found = null;
    boolean acked = false;
    while (found == null || !acked) {
      Frame f = next(in);
      if (f instanceof Frame.Data d && d.seq() == data) {
        found = d;
      } else if (f instanceof Frame.Ack a && a.seq() >= ack) {
        acked = true;
      }
    }
    return found;
  }
}
