package io.berth.node.edge;

import com.typesafe.config.Config;
import io.berth.node.socket.SocketSettings;
import io.berth.node.tls.EdgeTlsSettings;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.TokenKeys;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** Settings of the TCP edge, {@code berth.edge.*} and {@code berth.auth.*} in reference.conf. */
public record EdgeSettings(
    String host,
    int port,
    int backlog,
    int maxConnections,
    int maxFrameSize,
    Duration handshakeTimeout,
    Duration idleTimeout,
    int window,
    long windowBytes,
    int maxBatchFrames,
    int maxDeliveriesInFlight,
    int downlinkAckEvery,
    long maxBatchBytes,
    Duration entityHeartbeat,
    int outboundBuffer,
    Duration entityTimeout,
    Duration openTimeout,
    Duration closeTimeout,
    Duration drainHold,
    Duration ackTimeout,
    Duration closeLinger,
    Duration tick,
    TokenKeys tokenKeys,
    String defaultMapping,
    String advertisedHostSetting,
    int ioThreads,
    boolean proxyProtocol,
    double connectsPerSecond,
    int connectBurst,
    EdgeTlsSettings tls,
    WebSocket websocket,
    Mqtt mqtt) {

  /**
   * The MQTT port beside the device port (docs/edges.md), {@code berth.edge.mqtt.*}: the same
   * host, TLS and limits; publishes to {@code <topic-prefix>/<socket>/up} are the socket's data.
   */
  public record Mqtt(boolean enabled, int port, String topicPrefix, String mapping) {
    public Mqtt {
      if (topicPrefix.isEmpty() || topicPrefix.contains("+") || topicPrefix.contains("#")
          || topicPrefix.startsWith("/") || topicPrefix.endsWith("/")) {
        throw new IllegalArgumentException("berth.edge.mqtt.topic-prefix must be a topic name without wildcards or "
            + "a leading or trailing '/', such as berth; got '" + topicPrefix + "'");
      }
    }
  }

  /**
   * The WebSocket port beside the device port (docs/edges.md), {@code berth.edge.websocket.*}:
   * the same host, TLS and limits; binary messages on {@code path} carry the native frames.
   */
  public record WebSocket(boolean enabled, int port, String path) {
    public WebSocket {
      if (!path.startsWith("/") || path.contains("?") || path.contains("#") || path.contains(" ")) {
        throw new IllegalArgumentException("berth.edge.websocket.path must be an absolute path such as /devices, "
            + "without query or fragment, got '" + path + "'");
      }
    }
  }

  /** Messages between nodes must fit Artery's default frame (256 KiB) with room for the envelope. */
  static final long MAX_MESSAGE_BYTES = 192 * 1024;

  public EdgeSettings {
    if (maxBatchBytes > MAX_MESSAGE_BYTES) {
      throw new IllegalArgumentException("berth.edge.max-batch-bytes must be at most 192 KiB: batches cross "
          + "the network in one Artery message");
    }
    if (maxFrameSize < FrameCodec.MIN_MAX_FRAME_SIZE || maxFrameSize > maxBatchBytes) {
      throw new IllegalArgumentException("berth.edge.max-frame-size must be between "
          + FrameCodec.MIN_MAX_FRAME_SIZE + " B (the largest valid HELLO must fit) and berth.edge.max-batch-bytes ("
          + maxBatchBytes + " B), got " + maxFrameSize + " B");
    }
  }

  public static EdgeSettings fromConfig(Config config) {
    Config e = config.getConfig("berth.edge");
    SocketSettings socket = SocketSettings.fromConfig(config);
    requireHeartbeatBelowPassivation(e.getDuration("entity-heartbeat"), config);
    return new EdgeSettings(
        e.getString("host"),
        e.getInt("port"),
        e.getInt("backlog"),
        e.getInt("max-connections"),
        (int) Math.min(Integer.MAX_VALUE, e.getBytes("max-frame-size")),
        e.getDuration("handshake-timeout"),
        e.getDuration("idle-timeout"),
        e.getInt("window"),
        e.getBytes("window-bytes"),
        e.getInt("max-batch-frames"),
        e.getInt("max-deliveries-in-flight"),
        // A quarter of the session's downlink window: the rest stays open for its pushes while
        // the device's acknowledgements gather (Downlink#reportDue).
        Math.max(1, socket.downlinkWindow() / 4),
        e.getBytes("max-batch-bytes"),
        e.getDuration("entity-heartbeat"),
        e.getInt("outbound-buffer"),
        e.getDuration("entity-timeout"),
        e.getDuration("open-timeout"),
        e.getDuration("close-timeout"),
        e.getDuration("drain-hold"),
        e.getDuration("ack-timeout"),
        e.getDuration("close-linger"),
        e.getDuration("tick"),
        tokenKeys(config.getConfig("berth.auth")),
        socket.defaultMapping(),
        e.getString("advertised-host"),
        e.getInt("io-threads"),
        e.getBoolean("proxy-protocol"),
        e.getDouble("connect-rate.per-second"),
        e.getInt("connect-rate.burst"),
        EdgeTlsSettings.fromConfig(config),
        new WebSocket(e.getBoolean("websocket.enabled"), e.getInt("websocket.port"), e.getString("websocket.path")),
        new Mqtt(e.getBoolean("mqtt.enabled"), e.getInt("mqtt.port"), e.getString("mqtt.topic-prefix"),
            e.getString("mqtt.mapping")));
  }

  /**
   * The keys device tokens are verified with: {@code keys} ("id=secret,..."), and the fleet secret
   * {@code secret} for tokens that name no key (docs/auth.md). At least one; each of 16 bytes or more.
   */
  static TokenKeys tokenKeys(Config auth) {
    Map<String, byte[]> keys = new LinkedHashMap<>();
    String secret = auth.getString("secret");
    if (!secret.isEmpty()) {
      requireStrong(secret, "berth.auth.secret (BERTH_SECRET)");
      keys.put("", secret.getBytes(StandardCharsets.UTF_8));
    }
    // Errors name an entry by its place, never by its text: an entry whose "id=" was forgotten
    // is a secret, or splits one at its base64 padding into an "id" that is most of it.
    String[] entries = auth.getString("keys").split(",");
    for (int i = 0; i < entries.length; i++) {
      String entry = entries[i];
      if (entry.isBlank()) {
        continue;
      }
      String where = "berth.auth.keys (BERTH_AUTH_KEYS), entry " + (i + 1) + ": ";
      int equals = entry.indexOf('=');
      String id = equals < 0 ? "" : entry.substring(0, equals).strip();
      if (!TokenKeys.KEY_ID.matcher(id).matches()) {
        throw new IllegalArgumentException(where + "not id=secret with an id of a lowercase letter and up to 31 "
            + "lowercase letters, digits and '-' (is its id= missing?)");
      }
      String key = entry.substring(equals + 1).strip();
      requireStrong(key, where + "the key");
      if (keys.put(id, key.getBytes(StandardCharsets.UTF_8)) != null) {
        throw new IllegalArgumentException(where + "its id is given twice");
      }
    }
    if (keys.isEmpty()) {
      throw new IllegalArgumentException("berth.auth.secret (BERTH_SECRET) or berth.auth.keys (BERTH_AUTH_KEYS) "
          + "must be set, each key at least " + TokenKeys.MIN_SECRET_BYTES + " bytes: devices authenticate with "
          + "tokens signed by them");
    }
    return TokenKeys.of(keys);
  }

  private static void requireStrong(String key, String what) {
    if (key.getBytes(StandardCharsets.UTF_8).length < TokenKeys.MIN_SECRET_BYTES) {
      throw new IllegalArgumentException(what + " must be at least " + TokenKeys.MIN_SECRET_BYTES
          + " bytes: devices authenticate with tokens signed by it");
    }
  }


  /**
   * The host devices are sent to when redirected here: {@code advertised-host}, else the bind
   * host unless it is a wildcard, else the node's cluster host name.
   */
  public String advertisedHost(org.apache.pekko.actor.typed.ActorSystem<?> system) {
    if (!advertisedHostSetting.isBlank()) {
      return advertisedHostSetting;
    }
    if (!host.equals("0.0.0.0") && !host.equals("::")) {
      return host;
    }
    return org.apache.pekko.cluster.typed.Cluster.get(system).selfMember().address().getHost().orElse("127.0.0.1");
  }

  private static final String PASSIVATION = "pekko.cluster.sharding.passivation";
  private static final String IDLE_TIMEOUT = PASSIVATION + ".default-idle-strategy.idle-entity.timeout";

  /**
   * An attached socket session (its entity) must hear from its edge more often than sharding
   * passivates idle entities: a passivation stop looks like a handoff to the entity, which would
   * tell its device to resend and record a move that did not happen.
   */
  static void requireHeartbeatBelowPassivation(Duration heartbeat, Config config) {
    if (!config.hasPath(IDLE_TIMEOUT) || !config.hasPath(PASSIVATION + ".strategy")
        || !config.getString(PASSIVATION + ".strategy").equals("default-idle-strategy")) {
      return; // passivation off, or a strategy of its own: its operator's to judge
    }
    String timeout = config.getString(IDLE_TIMEOUT);
    if (timeout.equals("off") || timeout.equals("none")) {
      return;
    }
    Duration passivation = config.getDuration(IDLE_TIMEOUT);
    if (heartbeat.compareTo(passivation) >= 0) {
      throw new IllegalArgumentException("berth.edge.entity-heartbeat (" + heartbeat.toSeconds() + " s) must be "
          + "below " + IDLE_TIMEOUT + " (" + passivation.toSeconds() + " s): sharding would passivate the "
          + "entities of connected devices");
    }
  }

  /** What the edge's sockets are given; {@code tls} makes a TLS handler, null on a plaintext port. */
  EdgeSockets.Options socketOptions(
      java.util.function.Function<io.netty.buffer.ByteBufAllocator, io.netty.handler.ssl.SslHandler> tls) {
    return new EdgeSockets.Options(host, port, backlog, maxConnections, maxFrameSize, maxBatchBytes, outboundBuffer,
        ioThreads, handshakeTimeout, proxyProtocol, tls, connectsPerSecond, connectBurst, null, null);
  }

  /** The same for the WebSocket port. */
  EdgeSockets.Options websocketOptions(
      java.util.function.Function<io.netty.buffer.ByteBufAllocator, io.netty.handler.ssl.SslHandler> tls) {
    return new EdgeSockets.Options(host, websocket.port(), backlog, maxConnections, maxFrameSize, maxBatchBytes,
        outboundBuffer, ioThreads, handshakeTimeout, proxyProtocol, tls, connectsPerSecond, connectBurst,
        websocket.path(), null);
  }

  /** The same for the MQTT port. */
  EdgeSockets.Options mqttOptions(
      java.util.function.Function<io.netty.buffer.ByteBufAllocator, io.netty.handler.ssl.SslHandler> tls) {
    return new EdgeSockets.Options(host, mqtt.port(), backlog, maxConnections, maxFrameSize, maxBatchBytes,
        outboundBuffer, ioThreads, handshakeTimeout, proxyProtocol, tls, connectsPerSecond, connectBurst, null,
        new MqttFrames.Settings(mqtt.topicPrefix(), mqtt.mapping(), maxFrameSize, windowBytes));
  }

  /** Largest DATA payload a device may send. */
  public int maxPayload() {
    return maxFrameSize - FrameCodec.DATA_OVERHEAD;
  }
}
