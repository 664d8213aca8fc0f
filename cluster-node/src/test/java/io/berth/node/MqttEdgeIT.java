package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.MqttCallback;
import org.eclipse.paho.client.mqttv3.MqttClient;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.common.MqttSubscription;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The MQTT port of a node (docs/edges.md), spoken to by clients nobody here wrote: Eclipse Paho
 * (MQTT 3.1.1 and 5) and Mosquitto's command-line clients (3.1.1 and 5; the Debian package
 * mosquitto-clients, installed by scripts/test.sh). An MQTT client is a socket: its publishes are
 * the socket's data, PUBACKed once durable at the destination, and the socket's downlink arrives
 * on its down topic.
 */
class MqttEdgeIT {

  private static final Duration WAIT = Duration.ofSeconds(60);
  private static TestNodes nodes;

  @TempDir
  Path dir;

  @BeforeAll
  static void start() {
    nodes = new TestNodes("berth.edge.mqtt.enabled = on").start(1);
  }

  @AfterAll
  static void stop() {
    nodes.close();
  }

  private static String url() {
    return "tcp://127.0.0.1:" + nodes.node(0).mqttPort();
  }

  private static String token(String device) {
    return RawDevice.token(device, Instant.now().plusSeconds(3600));
  }

  private static MqttConnectOptions options(String device, boolean clean) {
    MqttConnectOptions options = new MqttConnectOptions();
    options.setMqttVersion(MqttConnectOptions.MQTT_VERSION_3_1_1);
    options.setUserName(device);
    options.setPassword(token(device).toCharArray());
    options.setCleanSession(clean);
    options.setAutomaticReconnect(false);
    options.setConnectionTimeout(30);
    return options;
  }

  @Test
  void pahoPublishesThroughEchoAndGetsEveryMessageBackOnceInOrder() throws Exception {
    String device = TestNodes.uniqueDevice("paho");
    List<String> received = new CopyOnWriteArrayList<>();
    MqttClient client = new MqttClient(url(), device, new MemoryPersistence());
    client.setCallback(new MqttCallback() {
      @Override
      public void connectionLost(Throwable cause) {}

      @Override
      public void messageArrived(String topic, MqttMessage message) {
        received.add(topic + " " + new String(message.getPayload(), StandardCharsets.UTF_8));
      }

      @Override
      public void deliveryComplete(IMqttDeliveryToken token) {}
    });
    client.setTimeToWait(WAIT.toMillis());
    client.connect(options(device, true));
    try {
      client.subscribe("berth/" + device + "/down", 1);
      int count = 200;
      for (int i = 0; i < count; i++) {
        // publish() returns once the PUBACK came: the echo mapping took the message.
        client.publish("berth/" + device + "/up", ("m" + i).getBytes(StandardCharsets.UTF_8), 1, false);
      }
      await().atMost(WAIT).until(() -> received.size() >= count);
      List<String> expected = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        expected.add("berth/" + device + "/down m" + i);
      }
      assertThat(received).containsExactlyElementsOf(expected);
    } finally {
      client.disconnect();
      client.close();
    }
  }

  @Test
  void aPersistentSessionKeepsItsSubscriptionAndItsDownlinkIsAcknowledgedAcrossConnections() throws Exception {
    String device = TestNodes.uniqueDevice("paho-persistent");
    List<String> received = new CopyOnWriteArrayList<>();
    for (int connection = 1; connection <= 2; connection++) {
      MqttClient client = new MqttClient(url(), device, new MemoryPersistence());
      client.setCallback(collecting(received));
      client.setTimeToWait(WAIT.toMillis());
      client.connect(options(device, false));
      if (connection == 1) {
        client.subscribe("berth/" + device + "/down", 1);
      }
      // The second connection does not subscribe again: its session kept the subscription.
      for (int i = 0; i < 5; i++) {
        client.publish("berth/" + device + "/up", ("c" + connection + "-" + i).getBytes(StandardCharsets.UTF_8), 1,
            false);
      }
      int expected = 5 * connection;
      await().atMost(WAIT).until(() -> received.size() >= expected);
      // Every downlink frame acknowledged by the client's PUBACKs, on the second connection too.
      await().atMost(WAIT).until(() -> io.berth.node.socket.api.Sockets.status(nodes.node(0).system(), device,
          Duration.ofSeconds(10)).toCompletableFuture().get(20, TimeUnit.SECONDS).downlinkAcked() == expected);
      client.disconnect();
      client.close();
    }
    assertThat(received).containsExactly("c1-0", "c1-1", "c1-2", "c1-3", "c1-4", "c2-0", "c2-1", "c2-2", "c2-3",
        "c2-4");
  }

  /**
   * QoS 1 across a reconnect (docs/mqtt-qos1-resends.md), with a raw client that rotates its ids
   * as Paho does: PUBLISHes the session accepted and that are sent again with DUP after the
   * connection dropped get their PUBACKs, in order, and are not taken again; a DUP never accepted,
   * one whose payload differs, and one accepted two connections before are new messages. The
   * session is present from the second connection on, though nothing was accepted on the first.
   */
  @Test
  void aPublishSentAgainAfterItsPubAckWasLostIsTakenOnce() throws Exception {
    String device = TestNodes.uniqueDevice("raw-resend");
    String up = "berth/" + device + "/up";
    int port = nodes.node(0).mqttPort();
    try (RawMqtt first = RawMqtt.connect(port, WAIT)) {
      assertThat(first.hello(device, token(device), false).body()[0]).as("no session yet").isZero();
    }
    try (RawMqtt second = RawMqtt.connect(port, WAIT)) {
      assertThat(second.hello(device, token(device), false).body()[0])
          .as("the first connection made the session, though it sent nothing").isEqualTo((byte) 1);
      for (int id = 1; id <= 8; id++) {
        second.publish(up, id, "m" + id, false);
      }
      for (int id = 1; id <= 8; id++) {
        second.pubAck(id);
      }
      // Dropped as if the PUBACKs of 7 and 8 had not come.
    }
    assertThat(lastAccepted(device)).isEqualTo(8);
    try (RawMqtt third = RawMqtt.connect(port, WAIT)) {
      assertThat(third.hello(device, token(device), false).body()[0]).isEqualTo((byte) 1);
      third.publish(up, 7, "m7", true);
      third.publish(up, 9, "m9", false);
      third.publish(up, 8, "m8", true); // PUBACKed after 9's, in the order of the PUBLISHes
      third.publish(up, 10, "m10", true); // DUP, but never accepted: new
      assertThat(third.until(p -> p.type() == RawMqtt.PUBACK).packetId()).isEqualTo(7);
      assertThat(third.until(p -> p.type() == RawMqtt.PUBACK).packetId()).isEqualTo(9);
      assertThat(third.until(p -> p.type() == RawMqtt.PUBACK).packetId()).isEqualTo(8);
      assertThat(third.until(p -> p.type() == RawMqtt.PUBACK).packetId()).isEqualTo(10);
      assertThat(lastAccepted(device)).as("m7 and m8 not taken again, m9 and m10 taken").isEqualTo(10);
    }
    try (RawMqtt fourth = RawMqtt.connect(port, WAIT)) {
      fourth.hello(device, token(device), false);
      fourth.publish(up, 10, "m10", true); // accepted on the connection before: a resend
      fourth.pubAck(10);
      assertThat(lastAccepted(device)).isEqualTo(10);
      fourth.publish(up, 9, "not m9", true); // the payload tells it apart
      fourth.pubAck(9);
      assertThat(lastAccepted(device)).isEqualTo(11);
      fourth.publish(up, 3, "m3", true); // accepted two connections before: a new message
      fourth.pubAck(3);
      assertThat(lastAccepted(device)).isEqualTo(12);
    }
  }

  /** A client's DISCONNECT ends the exchange: the node sends nothing after it (MQTT-3.14.4-1), only its FIN. */
  @Test
  void anMqtt5ClientsDisconnectIsNotAnsweredWithOne() throws Exception {
    String device = TestNodes.uniqueDevice("raw-disconnect");
    try (RawMqtt client = RawMqtt.connect(nodes.node(0).mqttPort(), WAIT)) {
      assertThat(client.hello5(device, token(device), true).body()[1]).as("CONNACK success").isZero();
      client.disconnect();
      RawMqtt.Packet after = client.next();
      assertThat(after).as("the stream ends with nothing after the CONNACK").isNull();
    }
  }

  /**
   * A PUBLISH the MQTT decoder takes (it allows twice max-frame-size) but whose frame would be
   * larger than max-frame-size (64 KiB) is refused as a device port frame that size is: the
   * connection ends without a PUBACK, and the session takes nothing more.
   */
  @Test
  void aPublishLargerThanAFrameIsRefusedAndNothingIsTaken() throws Exception {
    String device = TestNodes.uniqueDevice("raw-large");
    String up = "berth/" + device + "/up";
    try (RawMqtt client = RawMqtt.connect(nodes.node(0).mqttPort(), WAIT)) {
      assertThat(client.hello(device, token(device), false).body()[1]).as("CONNACK accepted").isZero();
      client.publish(up, 1, "small", false);
      client.pubAck(1);
      List<Integer> read = new ArrayList<>(); // packet types until the end (the echo of "small" among them)
      try {
        client.publish(up, 2, "x".repeat(70 * 1024), false);
        for (RawMqtt.Packet p = client.next(); p != null; p = client.next()) {
          read.add(p.type());
        }
      } catch (java.net.SocketException reset) {
        // ended by a reset while the client was still writing: refused all the same
      }
      assertThat(read).as("no PUBACK: the connection ends").doesNotContain(RawMqtt.PUBACK);
    }
    assertThat(lastAccepted(device)).isEqualTo(1);
  }

  /**
   * PUBLISHes that arrive in one read reach the session together, and a DISCONNECT after them
   * (a persistent session: the input ends) loses none of them.
   */
  @Test
  void publishesReadTogetherWithADisconnectAreAllTaken() throws Exception {
    String device = TestNodes.uniqueDevice("raw-batch");
    try (RawMqtt client = RawMqtt.connect(nodes.node(0).mqttPort(), WAIT)) {
      client.hello(device, token(device), false);
      List<String> payloads = new ArrayList<>();
      for (int i = 0; i < 50; i++) {
        payloads.add("b" + i);
      }
      client.publishAllThenDisconnect("berth/" + device + "/up", 1, payloads);
      await().atMost(WAIT).until(() -> lastAccepted(device) == 50);
    }
  }

  /**
   * A client that acknowledges its last message and disconnects in one write. Its connection's
   * actor stops right after; the entity's death watch on it takes a shorter way than the PUBACK
   * and the DISCONNECT (which go through the shard region), and used to overtake them under
   * load: a clean session was then left detached instead of closed (a linked peer never learned
   * its frame was delivered), and a persistent one got its message again on the next connection.
   * Rounds of each, since the race needs the node busy to show.
   */
  @Test
  void aPubAckAndADisconnectInOneWriteBothReachTheSession() throws Exception {
    int port = nodes.node(0).mqttPort();
    for (int round = 0; round < 10; round++) {
      String clean = TestNodes.uniqueDevice("raw-ack-close");
      echoAckedWithTheDisconnect(port, clean, true, "one");
      await().atMost(WAIT).until(() -> status(clean).state().equals("closed"));
      assertThat(status(clean).downlinkAcked()).as("the PUBACK came before the DISCONNECT").isEqualTo(1);

      String persistent = TestNodes.uniqueDevice("raw-ack-leave");
      echoAckedWithTheDisconnect(port, persistent, false, "first");
      try (RawMqtt again = RawMqtt.connect(port, WAIT)) {
        assertThat(again.hello(persistent, token(persistent), false).body()[0]).as("session present").isEqualTo((byte) 1);
        again.subscribe("berth/" + persistent + "/down", 1);
        again.publish("berth/" + persistent + "/up", 2, "second", false);
        // An acknowledged "first" would come again before the echo of "second".
        assertThat(again.until(p -> p.type() == RawMqtt.PUBLISH).payload()).isEqualTo("second");
      }
    }
  }

  /**
   * Connects, publishes {@code payload} to the echo mapping, and acknowledges its echo with the
   * DISCONNECT in one write; the connection then closes at once, as mosquitto_sub's does.
   */
  private static void echoAckedWithTheDisconnect(int port, String device, boolean clean, String payload)
      throws Exception {
    try (RawMqtt client = RawMqtt.connect(port, WAIT)) {
      client.hello(device, token(device), clean);
      client.subscribe("berth/" + device + "/down", 1);
      client.publish("berth/" + device + "/up", 1, payload, false);
      RawMqtt.Packet echo = client.until(p -> p.type() == RawMqtt.PUBLISH);
      assertThat(echo.payload()).isEqualTo(payload);
      client.pubAckThenDisconnect(echo.publishPacketId());
    }
  }

  private static io.berth.node.socket.api.SocketStatus status(String device) throws Exception {
    return io.berth.node.socket.api.Sockets.status(nodes.node(0).system(), device, Duration.ofSeconds(10))
        .toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private static long lastAccepted(String device) throws Exception {
    return io.berth.node.socket.api.Sockets.status(nodes.node(0).system(), device, Duration.ofSeconds(10))
        .toCompletableFuture().get(20, TimeUnit.SECONDS).lastAccepted();
  }

  /** A callback adding each message's payload, as text, to {@code received}. */
  static MqttCallback collecting(List<String> received) {
    return new MqttCallback() {
      @Override
      public void connectionLost(Throwable cause) {}

      @Override
      public void messageArrived(String topic, MqttMessage message) {
        received.add(new String(message.getPayload(), StandardCharsets.UTF_8));
      }

      @Override
      public void deliveryComplete(IMqttDeliveryToken token) {}
    };
  }

  @Test
  void aWrongTokenIsRefusedWithBadUserNameOrPassword() throws Exception {
    String device = TestNodes.uniqueDevice("paho-bad");
    MqttClient client = new MqttClient(url(), device, new MemoryPersistence());
    MqttConnectOptions options = options(device, true);
    options.setPassword(token("someone-else").toCharArray());
    assertThatThrownBy(() -> client.connect(options)).isInstanceOf(MqttException.class)
        .satisfies(e -> assertThat(((MqttException) e).getReasonCode())
            .isEqualTo(MqttException.REASON_CODE_FAILED_AUTHENTICATION));
    client.close();
  }

  @Test
  void aPublishToAnotherSocketsTopicEndsTheConnection() throws Exception {
    String device = TestNodes.uniqueDevice("paho-topic");
    MqttClient client = new MqttClient(url(), device, new MemoryPersistence());
    client.setTimeToWait(WAIT.toMillis());
    client.connect(options(device, true));
    assertThatThrownBy(() -> client.publish("berth/someone-else/up", new byte[] {1}, 1, false))
        .isInstanceOf(MqttException.class);
    await().atMost(WAIT).until(() -> !client.isConnected());
    client.close();
  }

  @Test
  void mosquittoClientsAreLinkedByThePairMappingNamedInAnMqtt5UserProperty() throws Exception {
    Path pub = onPath("mosquitto_pub");
    Path sub = onPath("mosquitto_sub");
    Assumptions.assumeTrue(pub != null && sub != null, "mosquitto_pub/mosquitto_sub not on PATH (the Debian package "
        + "mosquitto-clients; scripts/test.sh installs it where it may use apt-get)");
    String room = TestNodes.uniqueDevice("room");
    String a = TestNodes.uniqueDevice("a");
    String b = TestNodes.uniqueDevice("b");
    String port = String.valueOf(nodes.node(0).mqttPort());
    Process subscriber = new ProcessBuilder(sub.toString(), "-h", "127.0.0.1", "-p", port, "-V", "mqttv5",
        "-i", b + "/" + room, "-u", b, "-P", token(b), "-D", "connect", "user-property", "mapping", "pair",
        "-t", "berth/" + b + "/" + room + "/down", "-q", "1", "-C", "1", "-W", "60")
        .redirectError(dir.resolve("sub.err").toFile()).start();
    Process publisher = new ProcessBuilder(pub.toString(), "-h", "127.0.0.1", "-p", port, "-V", "mqttv5",
        "-i", a + "/" + room, "-u", a, "-P", token(a), "-D", "connect", "user-property", "mapping", "pair",
        "-t", "berth/" + a + "/" + room + "/up", "-q", "1", "-m", "hello from mosquitto_pub")
        .redirectErrorStream(true).start();
    // mosquitto_pub exits 0 once its PUBACK came: here, once b's client acknowledged the message.
    assertThat(publisher.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).as("mosquitto_pub ended").isTrue();
    String pubOutput = new String(publisher.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(publisher.exitValue()).as(pubOutput).isZero();
    assertThat(subscriber.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).as("mosquitto_sub ended").isTrue();
    String received = new String(subscriber.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(received.strip()).as(Files.readString(dir.resolve("sub.err"))).isEqualTo("hello from mosquitto_pub");
  }

  @Test
  void qos2IsRefusedNeverHung() throws Exception {
    Path pub = onPath("mosquitto_pub");
    Assumptions.assumeTrue(pub != null, "mosquitto_pub not on PATH");
    // MQTT 5: the CONNACK says Maximum QoS 1, and the client refuses to publish at 2 itself.
    String output5 = mosquittoPubAtQos2(pub, "mqttv5");
    assertThat(output5).contains("QoS not supported");
    // MQTT 3.1.1 has no way to say it before: the node closes the connection at the PUBLISH.
    String output311 = mosquittoPubAtQos2(pub, "mqttv311");
    assertThat(output311).as("mosquitto_pub exits with an error").startsWith("exit ").doesNotStartWith("exit 0");
  }

  /**
   * MQTT 5 (Paho's v5 client): a SUBSCRIBE gets a reason code per filter that says why one is
   * refused (a client that ignores the CONNACK and asks for a wildcard gets 0xA2, a shared
   * subscription 0x9E), and an UNSUBSCRIBE says which filters the socket was subscribed to.
   */
  @Test
  void mqtt5SubscribeAndUnsubscribeSayWhyPerFilter() throws Exception {
    String device = TestNodes.uniqueDevice("paho5");
    MqttAsyncClient client = new MqttAsyncClient(url(), device,
        new org.eclipse.paho.mqttv5.client.persist.MemoryPersistence());
    MqttConnectionOptions options = new MqttConnectionOptions();
    options.setUserName(device);
    options.setPassword(token(device).getBytes(StandardCharsets.UTF_8));
    options.setConnectionTimeout(30);
    client.connect(options).waitForCompletion(WAIT.toMillis());
    try {
      String down = "berth/" + device + "/down";
      IMqttToken subscribed = client.subscribe(new MqttSubscription[] {new MqttSubscription(down, 1),
          new MqttSubscription("berth/someone-else/down", 1)});
      subscribed.waitForCompletion(WAIT.toMillis());
      // Granted QoS 1; another socket's topic: not authorized.
      assertThat(subscribed.getReasonCodes()).containsExactly(1, 0x87);
      // The CONNACK said Wildcard and Shared Subscription Available 0: Paho refuses those itself.
      assertThatThrownBy(() -> client.subscribe(new MqttSubscription("berth/+/down", 1)))
          .isInstanceOf(IllegalArgumentException.class);
      IMqttToken unsubscribed = client.unsubscribe(new String[] {down, "berth/" + device + "/status"});
      unsubscribed.waitForCompletion(WAIT.toMillis());
      // Success; no subscription existed.
      assertThat(unsubscribed.getReasonCodes()).containsExactly(0x00, 0x11);
    } finally {
      client.disconnect().waitForCompletion(WAIT.toMillis());
      client.close();
    }
  }

  /**
   * mosquitto_sub does not hold back a wildcard or a shared subscription because of the CONNACK,
   * so it shows the node's own answer: a reason code per filter, in the order asked.
   */
  @Test
  void mosquittoSubIsToldWhyAWildcardAndASharedSubscriptionAreRefused() throws Exception {
    Path sub = onPath("mosquitto_sub");
    Assumptions.assumeTrue(sub != null, "mosquitto_sub not on PATH");
    String device = TestNodes.uniqueDevice("sub5");
    Process subscriber = new ProcessBuilder(sub.toString(), "-h", "127.0.0.1", "-p",
        String.valueOf(nodes.node(0).mqttPort()), "-V", "mqttv5", "-i", device, "-u", device, "-P", token(device),
        "-d", "-t", "berth/+/down", "-t", "$share/group/berth/" + device + "/down", "-t", "berth/" + device + "/down",
        "-W", "2").redirectErrorStream(true).start();
    assertThat(subscriber.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).as("mosquitto_sub ended").isTrue();
    String output = new String(subscriber.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    // 0xA2 wildcards not supported, 0x9E shared subscriptions not supported, QoS 0 granted.
    assertThat(output).contains("Subscribed (mid: 1): 162, 158, 0");
  }

  /** mosquitto_pub at QoS 2: its exit code and output, once it ended (bounded). */
  private String mosquittoPubAtQos2(Path pub, String version) throws Exception {
    String device = TestNodes.uniqueDevice("qos2");
    Process publisher = new ProcessBuilder(pub.toString(), "-h", "127.0.0.1", "-p",
        String.valueOf(nodes.node(0).mqttPort()), "-V", version, "-i", device, "-u", device, "-P", token(device),
        "-t", "berth/" + device + "/up", "-q", "2", "-m", "exactly once?").redirectErrorStream(true).start();
    assertThat(publisher.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).as("mosquitto_pub ended, no hang").isTrue();
    return "exit " + publisher.exitValue() + ": "
        + new String(publisher.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
  }

  private static Path onPath(String name) {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(":")).map(d -> Path.of(d, name))
        .filter(Files::isExecutable).findFirst().orElse(null);
  }
}
