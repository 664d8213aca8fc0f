package io.berth.protocol;

import java.util.regex.Pattern;

/**
 * Device ids, socket names and socket ids (PROTOCOL.md#identifiers). A socket id is the device id,
 * or {@code deviceId/socketName}: a device can only ever open its own sockets.
 */
public final class SocketId {

  public static final int MAX_ID_LENGTH = 64;
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9._-]{1," + MAX_ID_LENGTH + "}");

  private SocketId() {}

  public static boolean isValidDeviceId(String deviceId) {
    return ID.matcher(deviceId).matches();
  }

  /** An empty name is valid: it names the device's default socket. */
  public static boolean isValidSocketName(String name) {
    return name.isEmpty() || ID.matcher(name).matches();
  }

  public static String of(String deviceId, String socketName) {
    return socketName.isEmpty() ? deviceId : deviceId + "/" + socketName;
  }

  /** The device that owns a socket id. */
  public static String deviceOf(String socketId) {
    int slash = socketId.indexOf('/');
    return slash < 0 ? socketId : socketId.substring(0, slash);
  }

  public static boolean isValid(String socketId) {
    int slash = socketId.indexOf('/');
    if (slash < 0) {
      return isValidDeviceId(socketId);
    }
    return isValidDeviceId(socketId.substring(0, slash))
        && ID.matcher(socketId.substring(slash + 1)).matches();
  }
}
