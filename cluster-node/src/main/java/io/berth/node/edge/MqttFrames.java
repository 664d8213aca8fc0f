package io.berth.node.edge;

import io.berth.node.edge.api.ToEdge;
import io.berth.protocol.CloseCode;
import io.berth.protocol.Decoded;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.mqtt.MqttConnectMessage;
import io.netty.handler.codec.mqtt.MqttConnectReturnCode;
import io.netty.handler.codec.mqtt.MqttFixedHeader;
import io.netty.handler.codec.mqtt.MqttMessage;
import io.netty.handler.codec.mqtt.MqttMessageBuilders;
import io.netty.handler.codec.mqtt.MqttMessageIdAndPropertiesVariableHeader;
import io.netty.handler.codec.mqtt.MqttMessageIdVariableHeader;
import io.netty.handler.codec.mqtt.MqttMessageType;
import io.netty.handler.codec.mqtt.MqttProperties;
import io.netty.handler.codec.mqtt.MqttPublishMessage;
import io.netty.handler.codec.mqtt.MqttQoS;
import io.netty.handler.codec.mqtt.MqttSubAckMessage;
import io.netty.handler.codec.mqtt.MqttSubAckPayload;
import io.netty.handler.codec.mqtt.MqttSubscribeMessage;
import io.netty.handler.codec.mqtt.MqttTopicSubscription;
import io.netty.handler.codec.mqtt.MqttUnacceptableProtocolVersionException;
import io.netty.handler.codec.mqtt.MqttUnsubscribeMessage;
import io.netty.handler.codec.mqtt.MqttVersion;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * Between an MQTT client and the device's {@link Connection}: MQTT packets in become the device
 * protocol's frames, and the frames the connection writes become MQTT packets, so that an MQTT
 * client is a socket like any other (docs/edges.md, "MQTT"). Runs on the channel's event loop.
 *
 * <ul>
 *   <li>CONNECT is the HELLO: client id {@code device} or {@code device/socket}, password the
 *       token (or none, with a client certificate), the mapping from the MQTT 5 user property
 *       {@code mapping} or the port's configured one; a clean session opens without resume. The
 *       WELCOME is the CONNACK; an ERROR before it is a CONNACK with the refusal's code.
 *   <li>PUBLISH to {@code <prefix>/<socket>/up} is a DATA frame. Its PUBACK is sent when the node
 *       acknowledges the frame, so PUBACK means what ACK means; QoS 0 is at most once and gets
 *       no PUBACK; QoS 2 is refused (DISCONNECT 0x9B in MQTT 5, a closed connection in 3.1.1).
 *   <li>Downlink DATA is a PUBLISH to {@code <prefix>/<socket>/down} at the QoS the client
 *       subscribed with (at most 1), held until it subscribes; the client's PUBACKs become the
 *       cumulative ACK. At QoS 0 a frame is acknowledged as it is written.
 *   <li>PINGREQ is answered here; while the client keeps within its keep alive, the node is sent
 *       a PING at a third of its idle timeout, and a client silent for 1.5 keep alives is closed.
 *   <li>DISCONNECT ends a clean session (CLOSE 1000); otherwise it ends the input only, and the
 *       session stays for the client's next CONNECT.
 * </ul>
 */
final class MqttFrames extends ChannelDuplexHandler {

  /** What the MQTT port is told: its topic prefix and its mapping for clients that name none. */
  record Settings(String topicPrefix, String mapping, int maxFrameSize, long maxEarlyBytes) {}

  /** Packets a client may send before its CONNACK, held until the WELCOME (their bytes: Settings). */
  private static final int MAX_EARLY_PACKETS = 1_024;
  private static final byte V5_QOS_NOT_SUPPORTED = (byte) 0x9B;
  private static final byte V5_PROTOCOL_ERROR = (byte) 0x82;
  private static final byte V5_TOPIC_NAME_INVALID = (byte) 0x90;
  private static final byte V5_TOPIC_ALIAS_INVALID = (byte) 0x94;
  private static final byte V5_PACKET_TOO_LARGE = (byte) 0x95;
  private static final byte V5_USE_ANOTHER_SERVER = (byte) 0x9C;
  private static final byte V5_SESSION_TAKEN_OVER = (byte) 0x8E;
  private static final byte V5_SERVER_SHUTTING_DOWN = (byte) 0x8B;
  private static final byte V5_KEEP_ALIVE_TIMEOUT = (byte) 0x8D;
  private static final byte V5_NORMAL = 0x00;
  private static final byte V5_UNSPECIFIED = (byte) 0x80;
  private static final byte V5_BAD_AUTHENTICATION_METHOD = (byte) 0x8C;
  private static final short V5_NO_SUBSCRIPTION_EXISTED = 0x11;
  private static final int V5_NOT_AUTHORIZED = 0x87;
  private static final int V5_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E;
  private static final int V5_WILDCARDS_NOT_SUPPORTED = 0xA2;
  private static final int V5_TOPIC_FILTER_INVALID = 0x8F;

  private final Settings settings;
  private ChannelHandlerContext ctx;
  private MqttVersion version = MqttVersion.MQTT_3_1_1;
  private boolean connected;
  private boolean welcomed;
  private boolean ended;
  /** A refusal was written and the connection lingers ({@link LingeringClose}): it ends with the input. */
  private boolean lingering;
  private boolean cleanSession;
  /** The client sent DISCONNECT. */
  private boolean clientDisconnected;
  /** Between a packet read and the end of its read ({@link #toNode}). */
  private boolean reading;
  private String upTopic;
  private String downTopic;
  private String statusTopic;
  private long nextSeq;
  /** Uplink frames sent to the node and not yet acknowledged: {seq, packet id or -1 for QoS 0}. */
  private final ArrayDeque<long[]> uplink = new ArrayDeque<>();
  /** Packets that came after the CONNECT and before the WELCOME, in order. */
  private final ArrayDeque<MqttMessage> early = new ArrayDeque<>();
  private long earlyBytes;
  /** MQTT 5: the client's Receive Maximum, downlink PUBLISHes it takes unacknowledged. */
  private int clientReceiveMaximum = 65_535;

  /** The QoS the client subscribed to its down topic with; null until it did. */
  private MqttQoS downQos;
  private boolean statusSubscribed;
  private final ArrayDeque<Frame.Data> heldDownlink = new ArrayDeque<>();
  /** Downlink PUBLISHes in flight: packet id → seq. */
  private final Map<Integer, Long> inFlight = new HashMap<>();
  /** Downlink seqs acknowledged by PUBACK above the contiguous watermark. */
  private final TreeSet<Long> ackedAbove = new TreeSet<>();
  private long downAcked;
  private int nextPacketId = 1;

  /**
   * Frames the session accepted on the client's previous connection that the client may send
   * again: packet id → payload fingerprint ({@link SessionOpened}); empty when none.
   */
  private Map<Integer, Integer> resendable = Map.of();
  /** Whether the session existed before this connection ({@link SessionOpened}). */
  private boolean sessionExisted;

  private int keepAliveSeconds;
  private long lastHeardNanos = System.nanoTime();
  private long pingNonce;
  private ScheduledFuture<?> liveness;

  /**
   * The DATA frame of a QoS 1 PUBLISH, handed to the connection with its packet id: the session
   * journals the id to recognise the PUBLISH if it is sent again (docs/mqtt-qos1-resends.md).
   */
  record Qos1Data(Frame.Data data, int packetId) {}

  /** Fired towards the connection once the CONNECT is in: the connection may be announced. */
  static final Object CONNECTED = new Object() {
    @Override
    public String toString() {
      return "MQTT CONNECT received";
    }
  };

  MqttFrames(Settings settings) {
    this.settings = settings;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    stopLiveness();
    early.forEach(ReferenceCountUtil::release);
    early.clear();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    stopLiveness();
    ctx.fireChannelInactive();
  }

  /** While lingering after a refusal, the client's end of input ends the connection. */
  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
    if (lingering && event instanceof ChannelInputShutdownEvent) {
      ctx.close();
      return;
    }
    ctx.fireUserEventTriggered(event);
  }

  // ------------------------------------------------------------------ client → node

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof MqttMessage message)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    lastHeardNanos = System.nanoTime();
    reading = true;
    boolean kept = false;
    try {
      if (ended || clientDisconnected) {
        return; // nothing follows a DISCONNECT (MQTT-3.14.4-1)
      }
      DecoderResult result = message.decoderResult();
      if (result != null && result.isFailure()) {
        malformed(result.cause());
        return;
      }
      MqttMessageType type = message.fixedHeader().messageType();
      if (!connected && type != MqttMessageType.CONNECT) {
        abort("the first packet must be CONNECT, got " + type);
      } else if (connected && !welcomed && type != MqttMessageType.DISCONNECT) {
        // Nothing is answered before the CONNACK (MQTT-3.2.0-1): held until the WELCOME.
        kept = hold(message);
      } else {
        handle(message);
      }
    } finally {
      if (!kept) {
        ReferenceCountUtil.release(msg);
      }
    }
  }

  /** Holds a packet that came before the CONNACK; false (and the connection refused) when too many. */
  private boolean hold(MqttMessage message) {
    long bytes = message instanceof MqttPublishMessage p ? p.payload().readableBytes() : 0;
    if (early.size() >= MAX_EARLY_PACKETS || earlyBytes + bytes > settings.maxEarlyBytes()) {
      refuse(V5_UNSPECIFIED, "more than " + MAX_EARLY_PACKETS + " packets or " + settings.maxEarlyBytes()
          + " bytes before the CONNACK");
      return false;
    }
    early.add(message);
    earlyBytes += bytes;
    return true;
  }

  /** One packet of a connected client (the CONNECT included); the caller releases it. */
  private void handle(MqttMessage message) {
    switch (message.fixedHeader().messageType()) {
      case CONNECT -> onConnect((MqttConnectMessage) message);
      case PUBLISH -> onPublish((MqttPublishMessage) message);
      case PUBACK -> onPubAck(((MqttMessageIdVariableHeader) message.variableHeader()).messageId());
      case SUBSCRIBE -> onSubscribe((MqttSubscribeMessage) message);
      case UNSUBSCRIBE -> onUnsubscribe((MqttUnsubscribeMessage) message);
      case PINGREQ -> ctx.writeAndFlush(new MqttMessage(new MqttFixedHeader(MqttMessageType.PINGRESP, false,
          MqttQoS.AT_MOST_ONCE, false, 0)));
      case DISCONNECT -> onDisconnect();
      case AUTH -> refuse(V5_BAD_AUTHENTICATION_METHOD, "enhanced authentication (AUTH) is not supported");
      case PUBREC, PUBREL, PUBCOMP -> refuse(V5_QOS_NOT_SUPPORTED, "QoS 2 is not supported");
      default -> abort("a client does not send " + message.fixedHeader().messageType());
    }
  }

  private void onConnect(MqttConnectMessage connect) {
    if (connected) {
      abort("a second CONNECT");
      return;
    }
    connected = true;
    version = MqttVersion.fromProtocolNameAndLevel(connect.variableHeader().name(),
        (byte) connect.variableHeader().version());
    String clientId = connect.payload().clientIdentifier();
    if (clientId == null || clientId.isEmpty()) {
      connAckRefused(version == MqttVersion.MQTT_5 ? MqttConnectReturnCode.CONNECTION_REFUSED_CLIENT_IDENTIFIER_NOT_VALID
          : MqttConnectReturnCode.CONNECTION_REFUSED_IDENTIFIER_REJECTED,
          "the client id names the device: device or device/socket");
      return;
    }
    if (connect.variableHeader().isWillFlag()) {
      connAckRefused(version == MqttVersion.MQTT_5 ? MqttConnectReturnCode.CONNECTION_REFUSED_IMPLEMENTATION_SPECIFIC
          : MqttConnectReturnCode.CONNECTION_REFUSED_NOT_AUTHORIZED, "will messages are not supported");
      return;
    }
    int slash = clientId.indexOf('/');
    String device = slash < 0 ? clientId : clientId.substring(0, slash);
    String socketName = slash < 0 ? "" : clientId.substring(slash + 1);
    byte[] password = connect.payload().passwordInBytes();
    String token = password == null ? "" : new String(password, StandardCharsets.UTF_8);
    String mapping = settings.mapping();
    if (version == MqttVersion.MQTT_5) {
      for (MqttProperties.MqttProperty<?> p : connect.variableHeader().properties()
          .getProperties(MqttProperties.MqttPropertyType.USER_PROPERTY.value())) {
        // The decoder gives one UserProperty per pair; UserProperties holds several.
        if (p instanceof MqttProperties.UserProperty one && one.value().key.equals("mapping")) {
          mapping = one.value().value;
        } else if (p instanceof MqttProperties.UserProperties user) {
          for (MqttProperties.StringPair pair : user.value()) {
            if (pair.key.equals("mapping")) {
              mapping = pair.value;
            }
          }
        }
      }
    }
    if (version == MqttVersion.MQTT_5) {
      MqttProperties.MqttProperty<?> receiveMaximum = connect.variableHeader().properties()
          .getProperty(MqttProperties.MqttPropertyType.RECEIVE_MAXIMUM.value());
      if (receiveMaximum != null && receiveMaximum.value() instanceof Integer max && max > 0) {
        clientReceiveMaximum = max;
      }
    }
    cleanSession = connect.variableHeader().isCleanSession();
    keepAliveSeconds = connect.variableHeader().keepAliveTimeSeconds();
    String socket = socketName.isEmpty() ? device : device + "/" + socketName;
    upTopic = settings.topicPrefix() + "/" + socket + "/up";
    downTopic = settings.topicPrefix() + "/" + socket + "/down";
    statusTopic = settings.topicPrefix() + "/" + socket + "/status";
    Frame.Hello hello;
    try {
      hello = new Frame.Hello(FrameCodec.VERSION, !cleanSession, 0, device, token, socketName, mapping);
      FrameCodec.encode(hello);
    } catch (RuntimeException e) {
      connAckRefused(MqttConnectReturnCode.CONNECTION_REFUSED_BAD_USERNAME_OR_PASSWORD,
          "the client id, password or mapping cannot be a device's: " + e.getMessage());
      return;
    }
    // The connection is ready for the node once its CONNECT is in (Connection#announce).
    ctx.fireUserEventTriggered(CONNECTED);
    toNode(hello);
  }

  private void onPublish(MqttPublishMessage publish) {
    MqttQoS qos = publish.fixedHeader().qosLevel();
    if (qos == MqttQoS.EXACTLY_ONCE) {
      refuse(V5_QOS_NOT_SUPPORTED, "QoS 2 is not supported: publish at QoS 1, whose PUBACK means the data is durable");
      return;
    }
    if (version == MqttVersion.MQTT_5 && publish.variableHeader().properties()
        .getProperty(MqttProperties.MqttPropertyType.TOPIC_ALIAS.value()) != null) {
      refuse(V5_TOPIC_ALIAS_INVALID, "topic aliases are not supported (Topic Alias Maximum is 0)");
      return;
    }
    if (!upTopic.equals(publish.variableHeader().topicName())) {
      refuse(V5_TOPIC_NAME_INVALID, "this client publishes to " + upTopic + " only, not "
          + publish.variableHeader().topicName());
      return;
    }
    byte[] payload = ByteBufUtil.getBytes(publish.payload());
    int packetId = qos == MqttQoS.AT_LEAST_ONCE ? publish.variableHeader().packetId() : -1;
    if (packetId > 0 && publish.fixedHeader().isDup() && resentAccepted(packetId, payload)) {
      return;
    }
    long seq = nextSeq++;
    uplink.add(new long[] {seq, packetId});
    Frame.Data data = new Frame.Data(seq, payload);
    toNode(packetId > 0 ? new Qos1Data(data, packetId) : data);
  }

  /**
   * A PUBLISH sent again whose first send the session accepted on the previous connection (its
   * PUBACK was lost with it): acknowledged, in order, and not handed on again
   * (docs/mqtt-qos1-resends.md). False when it is not one of those: it is a new frame.
   */
  private boolean resentAccepted(int packetId, byte[] payload) {
    Integer fingerprint = resendable.get(packetId);
    if (fingerprint == null) {
      return false;
    }
    if (ToEdge.Welcomed.fingerprint(payload) != fingerprint) {
      return false;
    }
    resendable.remove(packetId);
    if (uplink.isEmpty()) {
      ctx.write(MqttMessageBuilders.pubAck().packetId(packetId).build(), ctx.voidPromise());
      ctx.flush();
    } else {
      // PUBACKs go in the order of the PUBLISHes: with the frame before it.
      uplink.add(new long[] {uplink.peekLast()[0], packetId});
    }
    return true;
  }

  private void onPubAck(int packetId) {
    Long seq = inFlight.remove(packetId);
    if (seq == null) {
      return; // not ours, or acknowledged already: MQTT allows neither, and both are harmless
    }
    acknowledged(seq);
    if (!heldDownlink.isEmpty()) {
      flushHeldDownlink();
      ctx.flush();
    }
  }

  /** Downlink {@code seq} is the client's: the node hears the cumulative ACK once all before it are. */
  private void acknowledged(long seq) {
    if (seq <= downAcked) {
      return;
    }
    ackedAbove.add(seq);
    long before = downAcked;
    while (ackedAbove.remove(downAcked + 1)) {
      downAcked++;
    }
    if (downAcked > before) {
      toNode(new Frame.Ack(downAcked));
    }
  }

  private void onSubscribe(MqttSubscribeMessage subscribe) {
    List<Integer> codes = new ArrayList<>();
    for (MqttTopicSubscription s : subscribe.payload().topicSubscriptions()) {
      MqttQoS qos = s.qualityOfService() == MqttQoS.EXACTLY_ONCE ? MqttQoS.AT_LEAST_ONCE : s.qualityOfService();
      String filter = s.topicFilter();
      if (filter.equals(downTopic)) {
        downQos = qos;
        codes.add(qos.value());
      } else if (filter.equals(statusTopic)) {
        statusSubscribed = true;
        codes.add(MqttQoS.AT_MOST_ONCE.value());
      } else {
        codes.add(subscribeRefusal(filter));
      }
    }
    MqttProperties props = MqttProperties.NO_PROPERTIES;
    if (version == MqttVersion.MQTT_5 && codes.stream().anyMatch(c -> c >= 0x80)) {
      props = new MqttProperties();
      props.add(new MqttProperties.StringProperty(MqttProperties.MqttPropertyType.REASON_STRING.value(),
          "a socket subscribes to its own topics only: " + downTopic + " and " + statusTopic));
    }
    ctx.write(new MqttSubAckMessage(new MqttFixedHeader(MqttMessageType.SUBACK, false, MqttQoS.AT_MOST_ONCE, false, 0),
        new MqttMessageIdAndPropertiesVariableHeader(subscribe.idAndPropertiesVariableHeader().messageId(), props),
        new MqttSubAckPayload(codes)));
    flushHeldDownlink();
    ctx.flush();
  }

  /**
   * Why a filter other than the socket's own topics is refused: MQTT 5 names it (wildcards and
   * shared subscriptions are not supported; any other topic is another socket's), MQTT 3.1.1 has
   * 0x80 only.
   */
  private int subscribeRefusal(String filter) {
    if (version != MqttVersion.MQTT_5) {
      return MqttQoS.FAILURE.value();
    }
    if (!wellFormed(filter)) {
      return V5_TOPIC_FILTER_INVALID;
    }
    if (filter.startsWith("$share/")) {
      return V5_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED;
    }
    if (filter.indexOf('+') >= 0 || filter.indexOf('#') >= 0) {
      return V5_WILDCARDS_NOT_SUPPORTED;
    }
    return V5_NOT_AUTHORIZED;
  }

  /**
   * A filter as MQTT allows it: not empty, '+' a whole level, '#' a whole level and the last; a
   * shared subscription ({@code $share/NAME/FILTER}) with a name without wildcards and a filter
   * of its own.
   */
  static boolean wellFormed(String filter) {
    if (filter.startsWith("$share/")) {
      int slash = filter.indexOf('/', "$share/".length());
      String name = slash < 0 ? "" : filter.substring("$share/".length(), slash);
      if (name.isEmpty() || name.indexOf('+') >= 0 || name.indexOf('#') >= 0) {
        return false;
      }
      filter = filter.substring(slash + 1);
    }
    if (filter.isEmpty()) {
      return false;
    }
    String[] levels = filter.split("/", -1);
    for (int i = 0; i < levels.length; i++) {
      String level = levels[i];
      if (level.indexOf('#') >= 0 && (!level.equals("#") || i != levels.length - 1)) {
        return false;
      }
      if (level.indexOf('+') >= 0 && !level.equals("+")) {
        return false;
      }
    }
    return true;
  }

  /**
   * UNSUBACK: MQTT 5 says for each filter whether the socket was subscribed to it (0x00) or not
   * (0x11); MQTT 3.1.1's UNSUBACK carries no codes.
   */
  private void onUnsubscribe(MqttUnsubscribeMessage unsubscribe) {
    MqttMessageBuilders.UnsubAckBuilder ack = MqttMessageBuilders.unsubAck()
        .packetId(unsubscribe.idAndPropertiesVariableHeader().messageId());
    for (String filter : unsubscribe.payload().topics()) {
      boolean subscribed = false;
      if (filter.equals(downTopic)) {
        subscribed = downQos != null;
        downQos = null;
      } else if (filter.equals(statusTopic)) {
        subscribed = statusSubscribed;
        statusSubscribed = false;
      }
      if (version == MqttVersion.MQTT_5) {
        ack.addReasonCode(subscribed ? V5_NORMAL : V5_NO_SUBSCRIPTION_EXISTED);
      }
    }
    ctx.writeAndFlush(ack.build());
  }

  /** A clean session ends with the connection; a persistent one stays for the next CONNECT. */
  private void onDisconnect() {
    // The client sends nothing after its DISCONNECT and closes: no DISCONNECT of ours answers it.
    clientDisconnected = true;
    if (cleanSession && welcomed) {
      toNode(new Frame.Close(CloseCode.NORMAL.wire, "MQTT DISCONNECT of a clean session"));
    } else {
      ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    }
  }

  /**
   * Hands a frame to the connection: DATA as it is (with its packet id at QoS 1), others encoded. Within a read the
   * connection hears the read's end once, after every packet of it, so that the frames of one
   * read travel to the session together as the device port's do; outside one (timers, answers to
   * the node) at once.
   */
  private void toNode(Frame frame) {
    toNode((Object) (frame instanceof Frame.Data ? frame : Unpooled.wrappedBuffer(FrameCodec.encode(frame))));
  }

  private void toNode(Object message) {
    ctx.fireChannelRead(message);
    if (!reading) {
      ctx.fireChannelReadComplete();
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    reading = false;
    ctx.fireChannelReadComplete();
  }

  // ------------------------------------------------------------------ node → client

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (msg instanceof SessionOpened opened) {
      sessionExisted = opened.existed();
      if (opened.resendable() != null && !cleanSession) {
        resendable = new HashMap<>();
        for (long r : opened.resendable()) {
          resendable.put((int) (r >>> 32), (int) r);
        }
      }
      if (!promise.isVoid()) {
        promise.trySuccess();
      }
      return;
    }
    if (!(msg instanceof ByteBuf bytes) || !bytes.isReadable()) {
      ctx.write(msg, promise);
      return;
    }
    try {
      ByteBuffer all = bytes.nioBuffer();
      // After our DISCONNECT or a refusing CONNACK nothing more is sent (MQTT-3.14.4-1).
      while (!ended && all.remaining() >= FrameCodec.HEADER_SIZE) {
        int length = all.getInt(all.position());
        ByteBuffer one = all.slice(all.position(), FrameCodec.HEADER_SIZE + length);
        all.position(all.position() + FrameCodec.HEADER_SIZE + length);
        if (FrameCodec.decode(one, Integer.MAX_VALUE) instanceof Decoded.Ok ok) {
          fromNode(ok.frame());
        }
      }
    } finally {
      bytes.release();
    }
    if (!promise.isVoid()) {
      promise.trySuccess();
    }
  }

  private void fromNode(Frame frame) {
    if (frame instanceof Frame.Welcome w) {
      onWelcome(w);
    } else if (frame instanceof Frame.Ack a) {
      while (!uplink.isEmpty() && uplink.peek()[0] <= a.seq()) {
        long[] acked = uplink.poll();
        if (acked[1] >= 0) {
          ctx.write(MqttMessageBuilders.pubAck().packetId((int) acked[1]).build(), ctx.voidPromise());
        }
      }
    } else if (frame instanceof Frame.Data d) {
      if (downQos == null || !heldDownlink.isEmpty()) {
        heldDownlink.add(d);
        flushHeldDownlink();
      } else {
        publishDown(d);
      }
    } else if (frame instanceof Frame.Ping p) {
      toNode(new Frame.Pong(p.nonce()));
    } else if (frame instanceof Frame.Link l) {
      if (statusSubscribed) {
        String json = "{\"event\":\"link\",\"status\":\"" + l.status().name().toLowerCase(java.util.Locale.ROOT)
            + "\",\"peer\":\"" + l.peer() + "\"}";
        ctx.write(MqttMessageBuilders.publish().topicName(statusTopic).qos(MqttQoS.AT_MOST_ONCE)
            .payload(Unpooled.copiedBuffer(json, StandardCharsets.UTF_8)).build(), ctx.voidPromise());
      }
    } else if (frame instanceof Frame.Redirect r) {
      // MQTT 5: Server Reference names another node's MQTT port; 3.1.1 has no way to say it.
      MqttProperties props = new MqttProperties();
      props.add(new MqttProperties.StringProperty(MqttProperties.MqttPropertyType.SERVER_REFERENCE.value(),
          r.host() + ":" + r.port()));
      if (!welcomed) {
        connAckRefused(MqttConnectReturnCode.CONNECTION_REFUSED_USE_ANOTHER_SERVER, r.reason(), props);
      } else {
        disconnect(V5_USE_ANOTHER_SERVER, r.reason(), props);
      }
    } else if (frame instanceof Frame.Close c && !welcomed) {
      connAckRefused(MqttConnectReturnCode.CONNECTION_REFUSED_SERVER_UNAVAILABLE_5, c.reason(), new MqttProperties());
    } else if (frame instanceof Frame.Close c) {
      byte reason = c.code() == CloseCode.REPLACED.wire ? V5_SESSION_TAKEN_OVER
          : c.code() == CloseCode.NODE_SHUTDOWN.wire ? V5_SERVER_SHUTTING_DOWN
          : c.code() == CloseCode.NORMAL.wire ? V5_NORMAL : V5_UNSPECIFIED;
      disconnect(reason, c.reason(), new MqttProperties());
    } else if (frame instanceof Frame.Error e) {
      if (!welcomed) {
        connAckRefused(connectCode(e.code()), e.message(), new MqttProperties());
      } else {
        disconnect(V5_UNSPECIFIED, "ERROR " + e.code() + ": " + e.message(), new MqttProperties());
      }
    }
    // PONG: the answer to a PING sent for liveness; nothing to do.
  }

  private void onWelcome(Frame.Welcome w) {
    welcomed = true;
    nextSeq = w.lastAccepted() + 1;
    // Downlink numbering goes on from the session's: the next frame is lastAcked + 1.
    downAcked = w.lastAcked();
    if (!cleanSession) {
      // A persistent session keeps its subscription (MQTT): the down topic at QoS 1 until the
      // client says otherwise, so a client told "session present" need not subscribe again.
      downQos = MqttQoS.AT_LEAST_ONCE;
    }
    MqttMessageBuilders.ConnAckBuilder ack = MqttMessageBuilders.connAck()
        .returnCode(MqttConnectReturnCode.CONNECTION_ACCEPTED)
        .sessionPresent(!cleanSession && sessionExisted);
    if (version == MqttVersion.MQTT_5) {
      MqttProperties props = new MqttProperties();
      props.add(new MqttProperties.IntegerProperty(MqttProperties.MqttPropertyType.RECEIVE_MAXIMUM.value(),
          Math.min(w.window(), 65_535)));
      props.add(new MqttProperties.IntegerProperty(MqttProperties.MqttPropertyType.MAXIMUM_QOS.value(), 1));
      props.add(new MqttProperties.IntegerProperty(MqttProperties.MqttPropertyType.RETAIN_AVAILABLE.value(), 0));
      props.add(new MqttProperties.IntegerProperty(
          MqttProperties.MqttPropertyType.WILDCARD_SUBSCRIPTION_AVAILABLE.value(), 0));
      props.add(new MqttProperties.IntegerProperty(
          MqttProperties.MqttPropertyType.SHARED_SUBSCRIPTION_AVAILABLE.value(), 0));
      props.add(new MqttProperties.IntegerProperty(
          MqttProperties.MqttPropertyType.SUBSCRIPTION_IDENTIFIER_AVAILABLE.value(), 0));
      props.add(new MqttProperties.IntegerProperty(MqttProperties.MqttPropertyType.MAXIMUM_PACKET_SIZE.value(),
          settings.maxFrameSize()));
      ack.properties(props);
    }
    ctx.write(ack.build(), ctx.voidPromise());
    startLiveness(w.idleTimeoutSeconds());
    while (!early.isEmpty() && !ended) {
      MqttMessage message = early.poll();
      try {
        handle(message);
      } finally {
        ReferenceCountUtil.release(message);
      }
    }
    early.forEach(ReferenceCountUtil::release);
    early.clear();
    earlyBytes = 0;
  }

  private void publishDown(Frame.Data d) {
    if (downQos == MqttQoS.AT_MOST_ONCE) {
      ctx.write(MqttMessageBuilders.publish().topicName(downTopic).qos(MqttQoS.AT_MOST_ONCE)
          .payload(Unpooled.wrappedBuffer(d.payload())).build(), ctx.voidPromise());
      // At most once: acknowledged as written.
      acknowledged(d.seq());
      return;
    }
    if (inFlight.size() >= clientReceiveMaximum) {
      heldDownlink.addFirst(d);
      return;
    }
    int packetId = nextPacketId();
    inFlight.put(packetId, d.seq());
    ctx.write(MqttMessageBuilders.publish().topicName(downTopic).qos(MqttQoS.AT_LEAST_ONCE).messageId(packetId)
        .payload(Unpooled.wrappedBuffer(d.payload())).build(), ctx.voidPromise());
  }

  private void flushHeldDownlink() {
    while (downQos != null && !heldDownlink.isEmpty()
        && (downQos == MqttQoS.AT_MOST_ONCE || inFlight.size() < clientReceiveMaximum)) {
      publishDown(heldDownlink.poll());
    }
  }

  private int nextPacketId() {
    for (int tries = 0; tries < 65_535; tries++) {
      int id = nextPacketId;
      nextPacketId = nextPacketId == 65_535 ? 1 : nextPacketId + 1;
      if (!inFlight.containsKey(id)) {
        return id;
      }
    }
    throw new IllegalStateException("65,535 downlink messages unacknowledged");
  }

  // ------------------------------------------------------------------ liveness

  /**
   * The node closes a connection it hears nothing from for its idle timeout; an MQTT client only
   * promises a packet per keep alive, which may be longer. So the node is sent a PING at a third
   * of its idle timeout while the client keeps its promise, and a client silent for one and a half
   * keep alives (MQTT's rule) is closed.
   */
  private void startLiveness(int idleTimeoutSeconds) {
    if (keepAliveSeconds == 0) {
      return; // no promise from the client: the node's own idle timeout applies
    }
    long everyMillis = Math.max(1_000, Math.min(idleTimeoutSeconds * 1_000L / 3, keepAliveSeconds * 500L));
    liveness = ctx.executor().scheduleAtFixedRate(() -> {
      if (ended) {
        stopLiveness();
        return;
      }
      if (!ctx.channel().config().isAutoRead()) {
        // The node is not reading (the client is over its window): its PINGREQs wait unread too.
        lastHeardNanos = System.nanoTime();
      }
      long silentNanos = System.nanoTime() - lastHeardNanos;
      if (silentNanos > TimeUnit.MILLISECONDS.toNanos(keepAliveSeconds * 1_500L)) {
        disconnect(V5_KEEP_ALIVE_TIMEOUT, "no packet within 1.5 keep alives", new MqttProperties());
        ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        return;
      }
      toNode(new Frame.Ping(++pingNonce));
    }, everyMillis, everyMillis, TimeUnit.MILLISECONDS);
  }

  private void stopLiveness() {
    if (liveness != null) {
      liveness.cancel(false);
      liveness = null;
    }
  }

  // ------------------------------------------------------------------ endings

  private void connAckRefused(MqttConnectReturnCode code, String reason) {
    connAckRefused(code, reason, new MqttProperties());
  }

  private void connAckRefused(MqttConnectReturnCode code, String reason, MqttProperties props) {
    if (ended) {
      return;
    }
    ended = true;
    MqttMessageBuilders.ConnAckBuilder ack = MqttMessageBuilders.connAck().returnCode(v3OrV5(code))
        .sessionPresent(false);
    if (version == MqttVersion.MQTT_5) {
      props.add(new MqttProperties.StringProperty(MqttProperties.MqttPropertyType.REASON_STRING.value(), reason));
      ack.properties(props);
    }
    lingering = true;
    LingeringClose.after(ctx.writeAndFlush(ack.build()));
  }

  /** An MQTT 3.1.1 client gets the 3.1.1 code nearest to an MQTT 5 one. */
  private MqttConnectReturnCode v3OrV5(MqttConnectReturnCode code) {
    if (version == MqttVersion.MQTT_5 || (code.byteValue() & 0xFF) < 0x80) {
      return code;
    }
    return switch (code) {
      case CONNECTION_REFUSED_BAD_USERNAME_OR_PASSWORD -> MqttConnectReturnCode.CONNECTION_REFUSED_BAD_USER_NAME_OR_PASSWORD;
      case CONNECTION_REFUSED_NOT_AUTHORIZED_5, CONNECTION_REFUSED_BANNED ->
          MqttConnectReturnCode.CONNECTION_REFUSED_NOT_AUTHORIZED;
      case CONNECTION_REFUSED_CLIENT_IDENTIFIER_NOT_VALID -> MqttConnectReturnCode.CONNECTION_REFUSED_IDENTIFIER_REJECTED;
      default -> MqttConnectReturnCode.CONNECTION_REFUSED_SERVER_UNAVAILABLE;
    };
  }

  /** The CONNACK code of a HELLO's refusal (PROTOCOL.md#error-codes). */
  private static MqttConnectReturnCode connectCode(int errorCode) {
    ErrorCode code = ErrorCode.fromWire(errorCode);
    if (code == null) {
      return MqttConnectReturnCode.CONNECTION_REFUSED_UNSPECIFIED_ERROR;
    }
    return switch (code) {
      case AUTH_FAILED, TOKEN_EXPIRED -> MqttConnectReturnCode.CONNECTION_REFUSED_BAD_USERNAME_OR_PASSWORD;
      case INVALID_ID -> MqttConnectReturnCode.CONNECTION_REFUSED_CLIENT_IDENTIFIER_NOT_VALID;
      case UNKNOWN_MAPPING -> MqttConnectReturnCode.CONNECTION_REFUSED_NOT_AUTHORIZED_5;
      case THROTTLED -> MqttConnectReturnCode.CONNECTION_REFUSED_CONNECTION_RATE_EXCEEDED;
      case TOO_MANY_CONNECTIONS -> MqttConnectReturnCode.CONNECTION_REFUSED_QUOTA_EXCEEDED;
      case UNAVAILABLE, INTERNAL, HANDSHAKE_TIMEOUT -> MqttConnectReturnCode.CONNECTION_REFUSED_SERVER_UNAVAILABLE_5;
      default -> MqttConnectReturnCode.CONNECTION_REFUSED_UNSPECIFIED_ERROR;
    };
  }

  /**
   * Ends the connection: MQTT 5 clients get a DISCONNECT with the reason first (3.1.1 has no
   * server DISCONNECT). The connection's own ending (its FIN) follows.
   */
  private void disconnect(byte reasonCode, String reason, MqttProperties props) {
    if (ended) {
      return;
    }
    ended = true;
    stopLiveness();
    if (version == MqttVersion.MQTT_5 && welcomed && !clientDisconnected) {
      if (reason != null && !reason.isEmpty()) {
        props.add(new MqttProperties.StringProperty(MqttProperties.MqttPropertyType.REASON_STRING.value(), reason));
      }
      ctx.write(MqttMessageBuilders.disconnect().reasonCode(reasonCode).properties(props).build(), ctx.voidPromise());
    }
  }

  /**
   * The client broke a rule: told why (MQTT 5, with a lingering close so that the DISCONNECT is
   * read), then the connection is closed. MQTT 3.1.1 has no word for it but the close itself.
   */
  private void refuse(byte reasonCode, String reason) {
    boolean told = version == MqttVersion.MQTT_5 && welcomed && !ended && !clientDisconnected;
    disconnect(reasonCode, reason, new MqttProperties());
    ChannelFuture written = ctx.writeAndFlush(Unpooled.EMPTY_BUFFER);
    if (told) {
      lingering = true;
      LingeringClose.after(written);
    } else {
      written.addListener(ChannelFutureListener.CLOSE);
    }
  }

  private void abort(String reason) {
    if (!connected || !welcomed) {
      ended = true;
      ctx.close();
      return;
    }
    refuse(V5_PROTOCOL_ERROR, reason);
  }

  private void malformed(Throwable cause) {
    if (cause instanceof MqttUnacceptableProtocolVersionException) {
      connected = true;
      connAckRefused(MqttConnectReturnCode.CONNECTION_REFUSED_UNACCEPTABLE_PROTOCOL_VERSION,
          "MQTT 3.1.1 and 5 are spoken here");
    } else if (cause instanceof TooLongFrameException) {
      refuse(V5_PACKET_TOO_LARGE, "a packet larger than " + settings.maxFrameSize() + " bytes");
    } else {
      refuse(V5_PROTOCOL_ERROR, "malformed packet: " + cause.getMessage());
    }
  }
}
