package io.berth.node.mapping;

import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The endpoints every node has without configuration (docs/ENDPOINTS.md#built-in-endpoints).
 * They run inside the socket's entity, frame by frame: receive criteria apply to HTTP endpoints.
 * A socket's DATA reaches its destination when the endpoint has taken it; what the endpoint
 * answers goes back down the socket.
 */
public enum BuiltinEndpoint {
  /** Sends each DATA payload back to the device as a downlink DATA frame. */
  ECHO {
    @Override
    public List<byte[]> onData(String socketId, Frame.Data frame) {
      return List.of(frame.payload());
    }
  },
  /** Takes every DATA frame and answers nothing. */
  DISCARD {
    @Override
    public List<byte[]> onData(String socketId, Frame.Data frame) {
      return List.of();
    }
  },
  /** Writes each DATA frame to the node's log (a short preview) and answers nothing. */
  LOG {
    @Override
    public List<byte[]> onData(String socketId, Frame.Data frame) {
      byte[] p = frame.payload();
      String preview = new String(p, 0, Math.min(p.length, 80), StandardCharsets.UTF_8).replaceAll("\\p{Cntrl}", ".");
      LOG_OUT.info("socket {} DATA {} ({} bytes): {}", socketId, frame.seq(), p.length, preview);
      return List.of();
    }
  },
  /**
   * Links sockets presenting the same pairing key (peer links). Data goes to the peer: while
   * the socket waits it is held for the peer, and when it is not linked nothing takes it.
   */
  PAIR {
    @Override
    public List<byte[]> onData(String socketId, Frame.Data frame) {
      throw new IllegalStateException("builtin:pair takes no data of its own");
    }

    @Override
    public boolean takesData() {
      return false;
    }
  };

  private static final Logger LOG_OUT = LoggerFactory.getLogger("io.berth.endpoint.log");

  /** What the endpoint answers to one uplink frame (downlink payloads, in order). */
  public abstract List<byte[]> onData(String socketId, Frame.Data frame);

  /** Whether this endpoint is a destination for data at all (docs/delivery.md#where-data-goes). */
  public boolean takesData() {
    return true;
  }

  public String mappingName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static Optional<BuiltinEndpoint> named(String name) {
    for (BuiltinEndpoint e : values()) {
      if (e.mappingName().equals(name)) {
        return Optional.of(e);
      }
    }
    return Optional.empty();
  }
}
