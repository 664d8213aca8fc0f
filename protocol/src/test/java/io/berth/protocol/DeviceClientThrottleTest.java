package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A throttled HELLO (ERROR 303) names the wait before the next one: the reference client waits at
 * least that long, longer than its backoff would, and then gets in. A scripted node on a real TCP
 * socket.
 */
class DeviceClientThrottleTest {

  private static final byte[] SECRET = "a-secret-of-16-bytes-or-more".getBytes(StandardCharsets.UTF_8);

  @Test
  void aThrottledClientWaitsTheTimeTheNodeNamesBeforeItsNextHello() throws Exception {
    CountDownLatch welcomed = new CountDownLatch(1);
    try (ServerSocket server = new ServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
      server.setSoTimeout(15_000);
      DeviceClient client = DeviceClient.builder()
          .address("127.0.0.1", server.getLocalPort())
          .deviceId("throttled")
          .tls(ClientTls.PLAINTEXT)
          .secret(SECRET, Duration.ofMinutes(5))
          .reconnectBackoff(Duration.ofMillis(20), Duration.ofMillis(40))
          .giveUpAfter(Duration.ofSeconds(20))
          .listener(new DeviceListener() {
            @Override
            public void onConnected(Frame.Welcome welcome, String address) {
              welcomed.countDown();
            }
          })
          .build();
      // connect() returns once the handshake is done: the scripted node answers from this thread.
      Thread connecting = new Thread(client::connect);
      connecting.start();
      try {
        long refusedAt;
        try (Socket node = server.accept()) {
          node.setSoTimeout(5_000);
          FrameReader in = reader(node);
          assertThat(next(in)).isInstanceOf(Frame.Hello.class);
          node.getOutputStream().write(FrameCodec.encode(new Frame.Error(ErrorCode.THROTTLED.wire,
              RetryAfter.message(700, "device throttled connects too often"))));
          node.getOutputStream().flush();
          refusedAt = System.nanoTime();
        }
        try (Socket node = server.accept()) {
          long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - refusedAt);
          assertThat(waited).as("ms before the next connect").isBetween(690L, 5_000L);
          node.setSoTimeout(5_000);
          FrameReader in = reader(node);
          assertThat(next(in)).isInstanceOf(Frame.Hello.class);
          node.getOutputStream().write(FrameCodec.encode(new Frame.Welcome(FrameCodec.VERSION, "throttled", "node-1",
              0, 0, 65_536, 256, 1 << 20, 60)));
          node.getOutputStream().flush();
          assertThat(welcomed.await(10, TimeUnit.SECONDS)).isTrue();
          connecting.join(10_000);
          assertThat(client.terminatedCause()).isNull();
        }
      } finally {
        client.close(Duration.ofMillis(100));
      }
    }
  }

  @Test
  void theWaitIsReadFromTheStartOfTheMessageOnly() {
    assertThat(RetryAfter.millis(RetryAfter.message(1_234, "x"))).isEqualTo(1_234);
    assertThat(RetryAfter.millis(RetryAfter.message(0, "x"))).isEqualTo(1);
    assertThat(RetryAfter.millis("device d connects too often; retry after 5 ms")).isEqualTo(-1);
    assertThat(RetryAfter.millis("retry after soon")).isEqualTo(-1);
  }

  private static FrameReader reader(Socket node) throws IOException {
    return new FrameReader(new BufferedInputStream(node.getInputStream()), 65_536);
  }

  private static Frame next(FrameReader in) throws IOException {
    return ((Decoded.Ok) in.next()).frame();
  }
}
