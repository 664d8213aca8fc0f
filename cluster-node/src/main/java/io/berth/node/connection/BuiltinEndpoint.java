package io.berth.node.connection;

import io.berth.protocol.Frame;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The endpoints every node has without configuration. A socket's DATA reaches its destination
 * when the endpoint has taken it; what the endpoint answers goes back down the socket.
 */
public enum BuiltinEndpoint {
  /** Sends each DATA payload back to the device as a downlink DATA frame. */
  ECHO {
    @Override
    public List<byte[]> onData(Frame.Data frame) {
      return List.of(frame.payload());
    }
  },
  /** Takes every DATA frame and answers nothing. */
  DISCARD {
    @Override
    public List<byte[]> onData(Frame.Data frame) {
      return List.of();
    }
  };

  /** What the endpoint answers to one uplink frame (downlink payloads, in order). */
  public abstract List<byte[]> onData(Frame.Data frame);

  public String mappingName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static Optional<BuiltinEndpoint> named(String mapping) {
    for (BuiltinEndpoint e : values()) {
      if (e.mappingName().equals(mapping)) {
        return Optional.of(e);
      }
    }
    return Optional.empty();
  }
}
