package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.DeviceClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.eclipse.paho.client.mqttv3.IMqttActionListener;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
import org.junit.jupiter.api.Test;

/**
 * Whatever protocol each side speaks: an Eclipse Paho client on one node's MQTT port and a
 * native device (the reference client) on the other node's device port, linked by {@code pair},
 * exchange 10,000 messages each way, every one once and in order.
 */
class MqttLinkIT {

  private static final int COUNT = 10_000;
  private static final int WINDOW = 256;
  private static final Duration WAIT = Duration.ofMinutes(3);

  @Test
  void aPahoClientAndANativeDeviceLinkedByPairExchangeTenThousandMessagesEachWayExactlyOnce() throws Exception {
    try (TestNodes nodes = new TestNodes("""
        berth.edge.mqtt.enabled = on
        berth.edge.mqtt.mapping = pair
        """).start(2)) {
      String room = TestNodes.uniqueDevice("room");
      String mqttDevice = TestNodes.uniqueDevice("paho");
      String nativeDevice = TestNodes.uniqueDevice("native");
      String mqttSocket = mqttDevice + "/" + room;

      List<String> toMqtt = new CopyOnWriteArrayList<>();
      MqttAsyncClient paho = new MqttAsyncClient("tcp://127.0.0.1:" + nodes.node(0).mqttPort(), mqttSocket,
          new MemoryPersistence());
      paho.setCallback(MqttEdgeIT.collecting(toMqtt));
      MqttConnectOptions options = new MqttConnectOptions();
      options.setMqttVersion(MqttConnectOptions.MQTT_VERSION_3_1_1);
      options.setUserName(mqttDevice);
      options.setPassword(RawDevice.token(mqttDevice, Instant.now().plusSeconds(3600)).toCharArray());
      options.setCleanSession(true);
      options.setAutomaticReconnect(false);
      options.setMaxInflight(2 * WINDOW);
      paho.connect(options).waitForCompletion(WAIT.toMillis());
      paho.subscribe("berth/" + mqttSocket + "/down", 1).waitForCompletion(WAIT.toMillis());

      List<String> toNative = new CopyOnWriteArrayList<>();
      try (DeviceClient device = TestNodes.device(nativeDevice, nodes.node(1).edge()).socketName(room).mapping("pair")
          .listener(TestNodes.collecting(toNative)).build().connect()) {
        Semaphore window = new Semaphore(WINDOW);
        IMqttActionListener release = new IMqttActionListener() {
          @Override
          public void onSuccess(IMqttToken token) {
            window.release();
          }

          @Override
          public void onFailure(IMqttToken token, Throwable cause) {
            window.release();
          }
        };
        Thread nativeSender = new Thread(() -> {
          try {
            for (int i = 0; i < COUNT; i++) {
              device.send(("n" + i).getBytes(StandardCharsets.UTF_8));
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }, "native-sender");
        nativeSender.start();
        for (int i = 0; i < COUNT; i++) {
          assertThat(window.tryAcquire(WAIT.toSeconds(), TimeUnit.SECONDS)).as("PUBACK of message %d", i).isTrue();
          paho.publish("berth/" + mqttSocket + "/up", ("m" + i).getBytes(StandardCharsets.UTF_8), 1, false, null,
              release);
        }
        nativeSender.join(WAIT.toMillis());
        await().atMost(WAIT).until(() -> toMqtt.size() >= COUNT && toNative.size() >= COUNT);
        assertThat(window.tryAcquire(WINDOW, WAIT.toSeconds(), TimeUnit.SECONDS))
            .as("every PUBACK came: the native device acknowledged every message").isTrue();
        assertThat(device.awaitAllAcked(WAIT)).as("every native frame acknowledged by the MQTT client").isTrue();
      } finally {
        paho.disconnect().waitForCompletion(WAIT.toMillis());
        paho.close();
      }
      assertThat(toNative).as("the native device got each MQTT message once, in order").containsExactlyElementsOf(
          numbered("m"));
      assertThat(toMqtt).as("the MQTT client got each native message once, in order").containsExactlyElementsOf(
          numbered("n"));
      System.out.printf("FIGURE mqtt link: %d messages each way between a Paho client and a native device, "
          + "exactly once and in order%n", COUNT);
    }
  }

  private static List<String> numbered(String prefix) {
    List<String> all = new ArrayList<>(COUNT);
    for (int i = 0; i < COUNT; i++) {
      all.add(prefix + i);
    }
    return all;
  }
}
