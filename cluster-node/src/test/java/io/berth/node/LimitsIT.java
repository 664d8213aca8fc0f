package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceListener;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.RetryAfter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The edge's abuse protection on real TCP against one node and PostgreSQL (docs/limits.md): a
 * socket's uplink rate limit, a mapping's own limits, connect throttling and the maximum of
 * connections per device. Rates are measured by the time the device's ACKs take to cover a known
 * number of frames, which follows the node's limit, not the test's timing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LimitsIT {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration READ = Duration.ofSeconds(20);
  /** The node's limit on each socket: 200 frames a second after a burst of 100. */
  private static final int RATE = 200;
  private static final int BURST = 100;
  private static final int CONNECT_BURST = 6;

  private TestNodes nodes;
  private String api;

  @BeforeAll
  void start() {
    nodes = new TestNodes("""
        berth.edge.limits.socket.frames-per-second = %d
        berth.edge.limits.socket.frames-burst = %d
        berth.edge.limits.device.connects-per-second = 2
        berth.edge.limits.device.connect-burst = %d
        berth.edge.limits.device.max-connections = 3
        berth.edge.ack-timeout = 3s
        """.formatted(RATE, BURST, CONNECT_BURST)).start(1);
    api = nodes.node(0).managementUrl() + "/api";
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  // ------------------------------------------------------------------ uplink rate

  @Test
  void aFloodingDeviceGetsItsLimitWhileItsNeighbourKeepsItsThroughput() throws Exception {
    String free = mapping("{\"endpoint\":\"builtin:discard\",\"limits\":{\"framesPerSecond\":0}}");
    String flooder = TestNodes.uniqueDevice("flood");
    String neighbour = TestNodes.uniqueDevice("neighbour");
    try (Sender flood = new Sender(client(flooder, "discard", TestNodes.ignore()), 10 * RATE, 16);
         Sender steady = new Sender(client(neighbour, free, TestNodes.ignore()), 5 * RATE, 16)) {
      assertThat(flood.client.welcome().window()).as("the window of a limited socket").isEqualTo(BURST + RATE);

      // Past the burst, the flooder's ACKs cover RATE frames a second.
      Rate flooded = measure(flood.client, BURST + RATE, 5 * RATE, steady.client);
      assertThat(flooded.perSecond()).as("flooder, frames/s").isBetween(RATE * 0.9, RATE * 1.1);
      assertThat(flooded.otherPerSecond()).as("neighbour, frames/s").isBetween(5 * RATE * 0.9, 5 * RATE * 1.1);

      // Slowed down, never dropped: one connection all along, and no error.
      assertThat(flood.client.connectionCount()).isEqualTo(1);
      assertThat(flood.failure()).isNull();
      assertThat(steady.failure()).isNull();

      assertThat(status(flooder).get("limits")).isEqualTo(JSON.readTree(
          "{\"framesPerSecond\":200,\"framesBurst\":100,\"bytesPerSecond\":0,\"bytesBurst\":0}"));
      assertThat(status(neighbour).get("limits")).isEqualTo(JSON.readTree(
          "{\"framesPerSecond\":0,\"framesBurst\":0,\"bytesPerSecond\":0,\"bytesBurst\":0}"));
    }
  }

  @Test
  void aMappingsOwnLimitsOverrideTheNodesAndWhatItLeavesOutIsTheNodes() throws Exception {
    int bytesPerSecond = 32_768;
    int payload = 1_024;
    String slow = mapping("{\"endpoint\":\"builtin:discard\",\"limits\":{\"bytesPerSecond\":" + bytesPerSecond + "}}");
    assertThat(JSON.readTree(HttpProbe.get(api + "/mappings/" + slow).body()).get("limits"))
        .isEqualTo(JSON.readTree("{\"bytesPerSecond\":32768}"));
    String device = TestNodes.uniqueDevice("bytes");
    int framesPerSecond = bytesPerSecond / payload;
    try (Sender flood = new Sender(client(device, slow, TestNodes.ignore()), 10 * framesPerSecond, payload)) {
      assertThat(flood.client.welcome().windowBytes()).isEqualTo(2L * bytesPerSecond);
      Rate flooded = measure(flood.client, 2 * framesPerSecond, 5 * framesPerSecond, null);
      assertThat(flooded.perSecond() * payload).as("bytes/s").isBetween(bytesPerSecond * 0.9, bytesPerSecond * 1.1);
      assertThat(flood.failure()).isNull();
    }
    JsonNode after = status(device);
    assertThat(after.get("state").asText()).isNotEqualTo("open");
    assertThat(after.has("limits")).as("no connection attached, no limits").isFalse();
  }

  /**
   * A limited socket's window is small enough that the device's ACKs of downlink frames, which
   * wait behind its DATA, arrive well within the ack timeout (3 s here): a device that sends a
   * whole window at once and ACKs the first echoes behind it would, with the client's window of
   * 256 frames at 60 a second, have them read 3.8 s later, and ERROR 302 would close it.
   */
  @Test
  void aLimitedEchoDeviceKeepsItsConnectionWhileItsAcksWaitBehindItsData() throws Exception {
    String slowEcho = mapping("{\"endpoint\":\"builtin:echo\",\"limits\":{\"framesPerSecond\":60,\"framesBurst\":30}}");
    int frames = 360;
    AtomicInteger echoed = new AtomicInteger();
    DeviceListener counting = new DeviceListener() {
      @Override
      public void onData(long seq, byte[] payload) {
        echoed.incrementAndGet();
      }
    };
    try (Sender flood = new Sender(client(TestNodes.uniqueDevice("echo"), slowEcho, counting), 0, 16, frames)) {
      assertThat(flood.client.welcome().window()).isEqualTo(90);
      await().atMost(Duration.ofSeconds(30)).until(() -> echoed.get() == frames || flood.client.connectionCount() > 1);
      assertThat(flood.client.connectionCount()).isEqualTo(1);
      assertThat(flood.client.awaitAllAcked(Duration.ofSeconds(10))).isTrue();
      assertThat(echoed.get()).isEqualTo(frames);
    }
  }

  // ------------------------------------------------------------------ connects

  @Test
  void aDeviceReconnectingInATightLoopIsToldToWaitAndGetsInOnceItHas() throws IOException {
    String device = TestNodes.uniqueDevice("loop");
    Frame.Error throttled = null;
    long refusedAttemptAt = 0;
    for (int attempt = 1; attempt <= CONNECT_BURST + 10 && throttled == null; attempt++) {
      long at = System.nanoTime();
      Frame answer = hello(device, "");
      if (answer instanceof Frame.Error e) {
        assertThat(e.code()).as(e.message()).isEqualTo(ErrorCode.THROTTLED.wire);
        assertThat(attempt).isGreaterThan(CONNECT_BURST);
        throttled = e;
        refusedAttemptAt = at;
      } else {
        assertThat(answer).isInstanceOf(Frame.Welcome.class);
      }
    }
    assertThat(throttled).as("a device connecting in a tight loop is throttled").isNotNull();
    long retryAfter = RetryAfter.millis(throttled.message());
    assertThat(retryAfter).isBetween(1L, 500L); // at most one connect's refill, 2 a second

    // Trying all along: throttled until the wait is over, welcomed soon after.
    long waitedFrom = refusedAttemptAt;
    AtomicReference<Long> welcomedAt = new AtomicReference<>();
    await().atMost(Duration.ofMillis(retryAfter + 3_000)).pollInterval(Duration.ofMillis(20)).until(() -> {
      Frame answer = hello(device, "");
      if (answer instanceof Frame.Error e) {
        assertThat(e.code()).as(e.message()).isEqualTo(ErrorCode.THROTTLED.wire);
        return false;
      }
      welcomedAt.set(System.nanoTime());
      return answer instanceof Frame.Welcome;
    });
    assertThat(TimeUnit.NANOSECONDS.toMillis(welcomedAt.get() - waitedFrom)).isGreaterThanOrEqualTo(retryAfter - 1);
  }

  @Test
  void aDeviceHoldingItsMostConnectionsIsRefusedOneMoreUntilOneEnds() throws IOException {
    String device = TestNodes.uniqueDevice("many");
    List<RawDevice> open = new ArrayList<>();
    try {
      for (String socket : List.of("a", "b", "c")) {
        RawDevice d = new RawDevice(nodes.node(0).edge(), READ);
        open.add(d);
        d.send(hello(device, socket, "discard"));
        assertThat(d.read()).isInstanceOf(Frame.Welcome.class);
      }
      Frame refused = hello(device, "d");
      assertThat(refused).isInstanceOf(Frame.Error.class);
      assertThat(((Frame.Error) refused).code()).isEqualTo(ErrorCode.TOO_MANY_CONNECTIONS.wire);
      assertThat(ErrorCode.TOO_MANY_CONNECTIONS.retryable).isTrue();

      open.remove(0).close();
      await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> {
        Frame answer = hello(device, "d");
        if (answer instanceof Frame.Error e) {
          // Until the closed connection is gone (304), and the connects this used up are back (303).
          assertThat(e.code()).as(e.message()).isIn(ErrorCode.TOO_MANY_CONNECTIONS.wire, ErrorCode.THROTTLED.wire);
          return false;
        }
        return answer instanceof Frame.Welcome;
      });
    } finally {
      for (RawDevice d : open) {
        d.close();
      }
    }
  }

  // ------------------------------------------------------------------ helpers

  private String mapping(String definition) {
    String name = TestNodes.uniqueDevice("limits");
    HttpProbe.Response r = HttpProbe.send("PUT", api + "/mappings/" + name, definition);
    assertThat(r.status()).as(r.body()).isEqualTo(200);
    return name;
  }

  /** A connected client, welcomed. */
  private DeviceClient client(String device, String mapping, DeviceListener listener) {
    DeviceClient client = TestNodes.device(device, nodes.node(0).edge()).mapping(mapping).listener(listener).build()
        .connect();
    await().atMost(Duration.ofSeconds(20)).until(() -> client.welcome() != null);
    return client;
  }

  private JsonNode status(String socketId) throws IOException {
    HttpProbe.Response r = HttpProbe.get(api + "/sockets/" + socketId);
    assertThat(r.status()).as(r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  private static Frame.Hello hello(String device, String socket, String mapping) {
    return new Frame.Hello(FrameCodec.VERSION, false, 0, device,
        RawDevice.token(device, Instant.now().plusSeconds(3600)), socket, mapping);
  }

  /** One connection's answer to a HELLO; the connection is closed after it. */
  private Frame hello(String device, String socket) throws IOException {
    try (RawDevice d = new RawDevice(nodes.node(0).edge(), READ)) {
      d.send(hello(device, socket, "discard"));
      return d.read();
    }
  }

  /** Frames a second the device's ACKs covered, and the other device's over the same time. */
  private record Rate(double perSecond, double otherPerSecond) {}

  /**
   * Waits until {@code client}'s ACKs cover {@code warmUp} frames (its burst spent), then measures
   * how long they take to cover {@code frames} more, and how many {@code other}'s cover meanwhile.
   */
  private static Rate measure(DeviceClient client, long warmUp, long frames, DeviceClient other) {
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(5)).until(() -> client.lastAcked() >= warmUp);
    long from = client.lastAcked();
    long otherFrom = other == null ? 0 : other.lastAcked();
    long start = System.nanoTime();
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(5))
        .until(() -> client.lastAcked() >= from + frames);
    double seconds = (System.nanoTime() - start) / 1e9;
    long covered = client.lastAcked() - from;
    long otherCovered = other == null ? 0 : other.lastAcked() - otherFrom;
    return new Rate(covered / seconds, otherCovered / seconds);
  }

  /**
   * Sends numbered frames of {@code size} bytes at {@code perSecond} (by the clock, catching up
   * when the client's window held it back; 0: as fast as the window allows), up to {@code total}
   * frames, until closed.
   */
  private static final class Sender implements AutoCloseable {
    final DeviceClient client;
    private final Thread thread;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile boolean stopped;

    Sender(DeviceClient client, int perSecond, int size) {
      this(client, perSecond, size, Integer.MAX_VALUE);
    }

    Sender(DeviceClient client, int perSecond, int size, int total) {
      this.client = client;
      long interval = perSecond == 0 ? 0 : TimeUnit.SECONDS.toNanos(1) / perSecond;
      thread = new Thread(() -> {
        long start = System.nanoTime();
        try {
          for (int i = 0; i < total && !stopped; i++) {
            long due = start + i * interval;
            for (long now = System.nanoTime(); now < due; now = System.nanoTime()) {
              LockSupport.parkNanos(due - now);
            }
            client.send(ByteBuffer.allocate(size).putInt(i).array());
          }
        } catch (InterruptedException e) {
          // closed
        } catch (Throwable t) {
          failure.set(t);
        }
      }, "limits-sender");
      thread.setDaemon(true);
      thread.start();
    }

    Throwable failure() {
      return failure.get();
    }

    @Override
    public void close() throws InterruptedException {
      stopped = true;
      client.close();
      thread.interrupt();
      thread.join(TimeUnit.SECONDS.toMillis(10));
    }
  }
}
