package io.berth.protocol;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;

/**
 * What a {@link DeviceClient.Builder} collected, checked and fixed when the client is built. It
 * never changes afterwards, so every thread of the client reads it without a lock.
 *
 * @param tokens the token to present in a HELLO, given the device id: a fixed token, or one minted
 *     with the fleet secret on every connection attempt; {@code null} with a client certificate,
 *     which then is the credential and the HELLO carries an empty token
 * @param tls TLS or plaintext, with the CA files and the client certificate already read
 * @param silenceTimeout how long the node may stay silent while frames wait for its ACK before a
 *     PING asks it to answer, and then how long it has to answer before the client reconnects
 *     elsewhere; zero for never
 */
record ClientSettings(
    List<InetSocketAddress> addresses,
    String deviceId,
    Function<String, String> tokens,
    String socketName,
    String mapping,
    int window,
    int maxFrameSize,
    Backoff backoff,
    Duration giveUpAfter,
    Duration connectTimeout,
    Duration handshakeTimeout,
    Duration silenceTimeout,
    TlsConnector tls,
    DeviceListener listener) {

  ClientSettings {
    if (addresses.isEmpty()) {
      throw new IllegalArgumentException("at least one node address is required");
    }
    if (deviceId == null || !SocketId.isValidDeviceId(deviceId)) {
      throw new IllegalArgumentException("invalid device id: " + deviceId);
    }
    if (!SocketId.isValidSocketName(socketName)) {
      throw new IllegalArgumentException("invalid socket name: " + socketName);
    }
    if (tokens == null) {
      if (!tls.config().presentsCertificate()) {
        throw new IllegalArgumentException("a token, a secret or a client certificate is required");
      }
      tokens = id -> "";
    }
  }

  /** The token for the next HELLO (PROTOCOL.md#authentication). */
  String token() {
    return tokens.apply(deviceId);
  }
}
