package io.berth.node.edge;

import io.berth.node.edge.api.ToEdge;
import io.berth.node.mapping.Mapping;
import io.berth.protocol.DeviceToken;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.SocketId;
import io.berth.protocol.TokenKeys;
import java.time.Instant;

/**
 * What the edge answers in the handshake (PROTOCOL.md#handshake): which HELLO it refuses and
 * why, which mapping a HELLO opens, and the WELCOME. The {@link ConnectionActor} asks the socket
 * session to open, and writes the frames.
 */
final class Handshake {

  /** A HELLO refused: the device gets ERROR {@code code} and the connection closes. */
  record Refusal(ErrorCode code, String message) {}

  private Handshake() {}

  /** What a device an operator denied is told (ERROR 200), at HELLO or when its open connection ends. */
  static String revoked(String deviceId) {
    return "device " + deviceId + " is denied by an operator (the deny list)";
  }

  /** Null when the HELLO may open its socket: the version is ours, the ids valid, the token too. */
  static Refusal check(Frame.Hello hello, byte[] secret, Instant now) {
    return check(hello, TokenKeys.legacy(secret), null, now);
  }

  /** As {@link #check(Frame.Hello, TokenKeys, String, Instant)}, with the fleet secret alone. */
  static Refusal check(Frame.Hello hello, byte[] secret, String certifiedDevice, Instant now) {
    return check(hello, TokenKeys.legacy(secret), certifiedDevice, now);
  }

  /**
   * Null when the HELLO may open its socket: the version is ours, the ids valid, the token valid
   * with the key it names, if {@code keys} holds it. On a connection whose device presented a
   * client certificate naming {@code certifiedDevice} (null without a certificate, empty when
   * the certificate names no valid device id): the HELLO must name that device, and its token
   * becomes optional; a token it does carry must still be valid (PROTOCOL.md#tls).
   */
  static Refusal check(Frame.Hello hello, TokenKeys keys, String certifiedDevice, Instant now) {
    if (hello.version() != FrameCodec.VERSION) {
      return new Refusal(ErrorCode.UNSUPPORTED_VERSION, "protocol version " + hello.version()
          + " is not supported, this node speaks " + FrameCodec.VERSION);
    }
    if (!SocketId.isValidDeviceId(hello.deviceId()) || !SocketId.isValidSocketName(hello.socketName())) {
      return new Refusal(ErrorCode.INVALID_ID, "device ids and socket names are 1 to " + SocketId.MAX_ID_LENGTH
          + " characters of A-Z a-z 0-9 . _ -");
    }
    if (certifiedDevice != null) {
      if (certifiedDevice.isEmpty()) {
        return new Refusal(ErrorCode.AUTH_FAILED, "the client certificate names no valid device id");
      }
      if (!certifiedDevice.equals(hello.deviceId())) {
        return new Refusal(ErrorCode.AUTH_FAILED, "the client certificate is for device " + certifiedDevice
            + ", not " + hello.deviceId());
      }
      if (hello.token().isEmpty()) {
        return null;
      }
    }
    DeviceToken.Check token = DeviceToken.check(keys, hello.deviceId(), hello.token(), now);
    return switch (token.verdict()) {
      case VALID -> null;
      case EXPIRED -> new Refusal(ErrorCode.TOKEN_EXPIRED, "token expired");
      case MALFORMED -> new Refusal(ErrorCode.AUTH_FAILED,
          "malformed token for device " + hello.deviceId() + ": " + token.reason());
      case BAD_SIGNATURE -> new Refusal(ErrorCode.AUTH_FAILED,
          "invalid token for device " + hello.deviceId() + ": " + token.reason());
      case UNKNOWN_KEY -> new Refusal(ErrorCode.AUTH_FAILED,
          "token of a key this node does not accept, for device " + hello.deviceId() + ": " + token.reason());
    };
  }

  /** The mapping the HELLO names, or the node's default when it names none. */
  static String mapping(Frame.Hello hello, String defaultMapping) {
    return hello.mapping().isEmpty() ? defaultMapping : hello.mapping();
  }

  /**
   * No mapping has the name. The known names are not listed: they are operator configuration,
   * which a device's token does not entitle it to read (PROTOCOL.md#error-codes, 203). Where to
   * look is said instead.
   */
  static Refusal unknownMapping(Frame.Hello hello, String name, String defaultMapping) {
    return new Refusal(ErrorCode.UNKNOWN_MAPPING, "no mapping named '" + name + "'"
        + (hello.mapping().isEmpty() ? " (this node's default mapping)"
            : "; an empty mapping name opens the node's default, '" + defaultMapping + "'")
        + "; operators list the mappings with GET /api/mappings on a node's management port");
  }

  /** The socket session attached the connection: what the device is told of it and of our limits. */
  static Frame.Welcome welcome(ToEdge.Welcomed w, String edgeNode, EdgeSettings settings) {
    return welcome(w, edgeNode, settings, null);
  }

  /**
   * The WELCOME of a connection whose uplink runs with {@code limits} (null: none). Its window is
   * at most its burst and one second of its rate (docs/limits.md): what the device has in flight
   * then waits a second or so for the limit, and so does anything the device sends behind it, its
   * ACKs of downlink frames among them, which the ack timeout would otherwise close it for.
   */
  static Frame.Welcome welcome(ToEdge.Welcomed w, String edgeNode, EdgeSettings settings, Mapping.Limits limits) {
    long window = Math.min(settings.window(), 0xFFFF);
    long windowBytes = settings.windowBytes();
    if (limits != null && limits.framesPerSecond() > 0) {
      window = Math.min(window, limits.framesBurst() + limits.framesPerSecond());
    }
    if (limits != null && limits.bytesPerSecond() > 0) {
      windowBytes = Math.min(windowBytes, limits.bytesBurst() + limits.bytesPerSecond());
    }
    return new Frame.Welcome(FrameCodec.VERSION, w.socketId(), edgeNode, w.lastAccepted(), w.downlinkAcked(),
        settings.maxFrameSize(), (int) window, windowBytes, (int) Math.min(0xFFFF, settings.idleTimeout().toSeconds()));
  }
}
