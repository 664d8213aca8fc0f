package io.berth.bench;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttActionListener;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.packet.UserProperty;

/**
 * One MQTT 5 client (Eclipse Paho) publishing at QoS 1 as fast as a window of unacknowledged
 * publishes allows, to Berth's MQTT port (a socket whose mapping, named in the CONNECT's user
 * property, is {@code discard}: a PUBACK means the frame is durable at the endpoint) or to a
 * broker (a topic nobody subscribes to: a PUBACK means the broker has it). The figure is PUBACKs
 * per second, from the first publish to the last PUBACK.
 */
final class MqttUplink {

  private static final long TIMEOUT_MS = 30_000;

  /** Where the client connects, as whom, and where it publishes. */
  record Spec(String system, String serverUri, String clientId, String userName, byte[] password, String topic,
              String mapping) {}

  /**
   * One round: acknowledged publishes per second (NaN when the round failed: {@code failure} says
   * why), what was sent, and what was never acknowledged.
   */
  record Result(String system, double publishesPerSecond, long sent, long unacknowledged, String failure) {}

  private MqttUplink() {}

  static Result run(Spec spec, int window, int frameBytes, Duration sendFor) {
    Semaphore room = new Semaphore(window);
    AtomicLong acked = new AtomicLong();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    long sent = 0;
    long start = 0;
    long lastAck = 0;
    MqttAsyncClient client = null;
    try {
      client = new MqttAsyncClient(spec.serverUri(), spec.clientId(), new MemoryPersistence());
      MqttConnectionOptions options = new MqttConnectionOptions();
      options.setCleanStart(true);
      options.setAutomaticReconnect(false);
      options.setConnectionTimeout(30);
      // What Paho keeps in flight is bounded by the server's Receive Maximum (Berth: the session's
      // window, 512; the harness's Mosquitto: max_inflight_messages 512), so the window here is
      // the one that binds.
      if (spec.userName() != null) {
        options.setUserName(spec.userName());
        options.setPassword(spec.password());
      }
      if (spec.mapping() != null) {
        options.setUserProperties(List.of(new UserProperty("mapping", spec.mapping())));
      }
      client.connect(options).waitForCompletion(TIMEOUT_MS);
      byte[] payload = new byte[frameBytes];
      MqttActionListener onAck = new MqttActionListener() {
        @Override
        public void onSuccess(IMqttToken token) {
          acked.incrementAndGet();
          room.release();
        }

        @Override
        public void onFailure(IMqttToken token, Throwable cause) {
          failed.compareAndSet(null, cause);
          room.release();
        }
      };
      start = System.nanoTime();
      long end = start + sendFor.toNanos();
      while (System.nanoTime() < end && failed.get() == null) {
        if (!room.tryAcquire(100, TimeUnit.MILLISECONDS)) {
          continue;
        }
        MqttMessage message = new MqttMessage(payload);
        message.setQos(1);
        client.publish(spec.topic(), message, null, onAck);
        sent++;
      }
      // Every publish acknowledged, bounded.
      if (!room.tryAcquire(window, TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
        failed.compareAndSet(null, new IllegalStateException("PUBACKs missing " + TIMEOUT_MS + " ms after the last "
            + "publish"));
      }
      lastAck = System.nanoTime();
    } catch (Exception e) {
      failed.compareAndSet(null, e);
    } finally {
      if (lastAck == 0) {
        lastAck = System.nanoTime(); // failed before the end: the rate is over the time it ran
      }
      if (client != null) {
        try {
          if (client.isConnected()) {
            client.disconnect().waitForCompletion(TIMEOUT_MS);
          }
          client.close();
        } catch (Exception e) {
          // Measured already; closing is all there is to do.
        }
      }
    }
    Throwable failure = failed.get();
    double seconds = (lastAck - start) / 1e9;
    double rate = failure != null || start == 0 || seconds <= 0 ? Double.NaN : acked.get() / seconds;
    return new Result(spec.system(), rate, sent, sent - acked.get(), failure == null ? null : failure.toString());
  }

  /** Bytes of a string, for a password. */
  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
