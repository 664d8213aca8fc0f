package io.berth.bench;

import io.berth.protocol.DeviceToken;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import javax.net.SocketFactory;
import org.eclipse.paho.client.mqttv3.IMqttActionListener;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttCallback;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;

/**
 * Relay pairs over MQTT: through a broker, the anchor of the relay scenario, where each device of
 * a pair is an Eclipse Paho {@link MqttAsyncClient} that subscribes to its own topic and publishes
 * to its peer's, at one QoS for both; or through Berth's MQTT port ({@link #berth}), where each
 * client is a socket of its own, the two of a pair on different nodes and linked by {@code pair},
 * publishing to its socket's up topic and subscribed to its down topic. The harness keeps at most {@code window} publishes of a client
 * unconfirmed (for QoS 1 until the broker's PUBACK, for QoS 0 until Paho has written the frame),
 * the same pipelining Berth's send window gives its devices. Paho's own in-flight limit is set
 * above it because Paho frees a slot only after calling back, so at the same limit it could refuse
 * the publish the callback let in. TCP_NODELAY is set as Berth's client sets it.
 */
final class MqttRelay implements RelayTransport {

  private static final long TIMEOUT_MS = 10_000;

  /** Where one side connects, as whom, and its topics. */
  record SideSpec(String serverUri, String clientId, String userName, char[] password, String own, String peer) {}

  /** The spec of side {@code a} (else b) of pair {@code pair} in run {@code run}. */
  interface Addressing {
    SideSpec side(String run, int pair, boolean a);
  }

  private final String name;
  private final Addressing addressing;
  private final int qos;
  private final int window;

  /** Through a broker at {@code serverUri}. */
  MqttRelay(String serverUri, int qos, int window) {
    this("MQTT QoS " + qos, (run, pair, a) -> {
      String topic = "berth-bench/relay/" + run + "/" + pair + "/";
      return new SideSpec(serverUri, "bench-" + run + "-" + pair + (a ? "a" : "b"), null, null,
          topic + (a ? "a" : "b"), topic + (a ? "b" : "a"));
    }, qos, window);
  }

  private MqttRelay(String name, Addressing addressing, int qos, int window) {
    this.name = name;
    this.addressing = addressing;
    this.qos = qos;
    this.window = window;
  }

  /**
   * Through Berth's MQTT ports at QoS 1: side a on the first node, side b on the second; a
   * client's PUBACK comes once its peer's client acknowledged the message.
   */
  static MqttRelay berth(List<String> serverUris, byte[] secret, int window) {
    return new MqttRelay("Berth MQTT QoS 1", (run, pair, a) -> {
      String device = "mq-" + run + "-" + pair + (a ? "a" : "b");
      String socket = device + "/room-" + run + "-" + pair;
      String token = DeviceToken.mint(secret, device, Instant.now().plusSeconds(3600));
      return new SideSpec(serverUris.get(a ? 0 : (1 % serverUris.size())), socket, device, token.toCharArray(),
          "berth/" + socket + "/down", "berth/" + socket + "/up");
    }, 1, window);
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public List<Pair> open(int count) throws MqttException {
    String run = UUID.randomUUID().toString().substring(0, 8);
    List<Side> sides = new ArrayList<>();
    try {
      for (int i = 0; i < count; i++) {
        sides.add(new Side(addressing.side(run, i, true)));
        sides.add(new Side(addressing.side(run, i, false)));
      }
    } catch (MqttException | RuntimeException e) {
      sides.forEach(Side::close);
      throw e;
    }
    return RelayTransport.pairUp(sides);
  }

  /** One device: subscribed to {@code own}, publishing to {@code peer}. */
  private final class Side implements RelaySide {

    private final RelayReceiver received = new RelayReceiver();
    private final Semaphore permits = new Semaphore(window);
    private final MqttAsyncClient client;
    private final String peer;
    private volatile Throwable lost;
    private final IMqttActionListener release = new IMqttActionListener() {
      @Override
      public void onSuccess(IMqttToken token) {
        permits.release();
      }

      @Override
      public void onFailure(IMqttToken token, Throwable cause) {
        lost = cause;
        permits.release();
      }
    };

    Side(SideSpec spec) throws MqttException {
      this.peer = spec.peer();
      this.client = new MqttAsyncClient(spec.serverUri(), spec.clientId(), new MemoryPersistence());
      client.setCallback(new MqttCallback() {
        @Override
        public void connectionLost(Throwable cause) {
          lost = cause;
        }

        @Override
        public void messageArrived(String topic, MqttMessage message) {
          received.accept(message.getPayload());
        }

        @Override
        public void deliveryComplete(IMqttDeliveryToken token) {}
      });
      MqttConnectOptions options = new MqttConnectOptions();
      options.setMqttVersion(MqttConnectOptions.MQTT_VERSION_3_1_1);
      options.setCleanSession(true);
      options.setAutomaticReconnect(false);
      options.setMaxInflight(2 * window);
      options.setSocketFactory(new NoDelaySocketFactory());
      if (spec.userName() != null) {
        options.setUserName(spec.userName());
        options.setPassword(spec.password());
      }
      try {
        client.connect(options).waitForCompletion(TIMEOUT_MS);
        client.subscribe(spec.own(), qos).waitForCompletion(TIMEOUT_MS);
      } catch (MqttException e) {
        close();
        throw e;
      }
    }

    @Override
    public void send(byte[] frame) throws InterruptedException {
      while (!permits.tryAcquire(100, TimeUnit.MILLISECONDS)) {
        if (lost != null) {
          throw new IllegalStateException("MQTT client failed", lost);
        }
      }
      try {
        client.publish(peer, frame, qos, false, null, release);
      } catch (MqttException e) {
        permits.release();
        throw new IllegalStateException("publish refused", e);
      }
    }

    @Override
    public RelayReceiver received() {
      return received;
    }

    @Override
    public void close() {
      try {
        if (client.isConnected()) {
          client.disconnect(1_000).waitForCompletion(TIMEOUT_MS);
        }
        client.close();
      } catch (MqttException e) {
        // The next round uses fresh clients; the broker drops this one's session with the socket.
      }
    }
  }

  /** Paho opens unconnected sockets through its factory; this one turns Nagle's algorithm off. */
  private static final class NoDelaySocketFactory extends SocketFactory {

    private static Socket noDelay(Socket s) throws SocketException {
      s.setTcpNoDelay(true);
      return s;
    }

    @Override
    public Socket createSocket() throws IOException {
      return noDelay(new Socket());
    }

    @Override
    public Socket createSocket(String host, int port) throws IOException {
      return noDelay(new Socket(host, port));
    }

    @Override
    public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
      return noDelay(new Socket(host, port, localHost, localPort));
    }

    @Override
    public Socket createSocket(InetAddress host, int port) throws IOException {
      return noDelay(new Socket(host, port));
    }

    @Override
    public Socket createSocket(InetAddress host, int port, InetAddress localHost, int localPort) throws IOException {
      return noDelay(new Socket(host, port, localHost, localPort));
    }
  }
}
