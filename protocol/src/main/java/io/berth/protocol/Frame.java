package io.berth.protocol;

import java.util.Arrays;
import java.util.Objects;

/** One protocol frame; each record is one frame type of PROTOCOL.md#frame-types. */
public sealed interface Frame {

  FrameType type();

  /** Opens (or resumes) a socket. Device to node, first frame of every connection. */
  record Hello(
      int version,
      boolean resume,
      long lastReceived,
      String deviceId,
      String token,
      String socketName,
      String mapping)
      implements Frame {
    public Hello {
      Objects.requireNonNull(deviceId, "deviceId");
      Objects.requireNonNull(token, "token");
      Objects.requireNonNull(socketName, "socketName");
      Objects.requireNonNull(mapping, "mapping");
    }

    @Override
    public FrameType type() {
      return FrameType.HELLO;
    }

    @Override
    public String toString() {
      // The token is a credential: never print it.
      return "Hello[version=" + version + ", resume=" + resume + ", lastReceived=" + lastReceived
          + ", deviceId=" + deviceId + ", socketName=" + socketName + ", mapping=" + mapping + "]";
    }
  }

  /** Accepts a HELLO. Node to device. */
  record Welcome(
      int version,
      String socketId,
      String node,
      long lastAccepted,
      long lastAcked,
      int maxFrameSize,
      int window,
      long windowBytes,
      int idleTimeoutSeconds)
      implements Frame {
    public Welcome {
      Objects.requireNonNull(socketId, "socketId");
      Objects.requireNonNull(node, "node");
    }

    @Override
    public FrameType type() {
      return FrameType.WELCOME;
    }
  }

  /** Application data with its sequence number. Both directions. */
  record Data(long seq, byte[] payload) implements Frame {
    public Data {
      Objects.requireNonNull(payload, "payload");
    }

    @Override
    public FrameType type() {
      return FrameType.DATA;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Data d && d.seq == seq && Arrays.equals(d.payload, payload);
    }

    @Override
    public int hashCode() {
      return Long.hashCode(seq) * 31 + Arrays.hashCode(payload);
    }

    @Override
    public String toString() {
      return "Data[seq=" + seq + ", " + payload.length + " bytes]";
    }
  }

  /** Cumulative acknowledgement: every DATA up to {@code seq} reached its destination. */
  record Ack(long seq) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.ACK;
    }
  }

  record Ping(long nonce) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.PING;
    }
  }

  record Pong(long nonce) implements Frame {
    @Override
    public FrameType type() {
      return FrameType.PONG;
    }
  }

  /** Peer-link status of the socket. Node to device. */
  record Link(LinkStatus status, String peer, String reason) implements Frame {
    public Link {
      Objects.requireNonNull(status, "status");
      Objects.requireNonNull(peer, "peer");
      Objects.requireNonNull(reason, "reason");
    }

    @Override
    public FrameType type() {
      return FrameType.LINK;
    }
  }

  /** Asks the device to reconnect to another node and resume there. Node to device. */
  record Redirect(String host, int port, String reason) implements Frame {
    public Redirect {
      Objects.requireNonNull(host, "host");
      Objects.requireNonNull(reason, "reason");
    }

    @Override
    public FrameType type() {
      return FrameType.REDIRECT;
    }
  }

  /** Ends the connection in an orderly way. Both directions. */
  record Close(int code, String reason) implements Frame {
    public Close {
      Objects.requireNonNull(reason, "reason");
    }

    public Close(CloseCode code, String reason) {
      this(code.wire, reason);
    }

    @Override
    public FrameType type() {
      return FrameType.CLOSE;
    }
  }

  /** A protocol or session error; the node closes the connection after sending it. */
  record Error(int code, String message) implements Frame {
    public Error {
      Objects.requireNonNull(message, "message");
    }

    public Error(ErrorCode code, String message) {
      this(code.wire, message);
    }

    @Override
    public FrameType type() {
      return FrameType.ERROR;
    }
  }
}
