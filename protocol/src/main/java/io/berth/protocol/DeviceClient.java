package io.berth.protocol;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The reference device client and Java device SDK (PROTOCOL.md#delivery-contract).
 *
 * <p>{@link #send} numbers each frame and keeps it until the node acknowledges it; at most {@code
 * window} frames are unacknowledged, so a sender blocks while the node (or its endpoint) is slower
 * than it. When a connection drops, the client reconnects to its addresses in turn with
 * exponential backoff, resumes the session and resends every unacknowledged frame; the node drops
 * the ones it already had. Downlink frames are handed to the listener once per sequence number.
 * Connections use TLS unless {@link ClientTls#PLAINTEXT} is chosen ({@link Builder#tls}); a failed
 * TLS handshake is a failed connection attempt like any other, retried with the same backoff.
 *
 * <p>Threads: one supervisor thread per client (connects and reads) and one writer thread per
 * connection. Listener callbacks run on the supervisor thread: a callback that calls {@link #send}
 * while the window is full would wait for an acknowledgement only that thread can read, so it
 * gets an {@link IllegalStateException} instead; send replies from another thread. A callback
 * that throws stops the client.
 *
 * <p>Inside: {@link ClientState} holds the session under one lock (the application's threads and
 * the supervisor meet there), {@link ReconnectLoop} is the supervisor thread's body, {@link
 * DeviceConnection} is one connection with its writer thread, {@link TlsConnector} wraps it in
 * TLS, and {@link ClientSettings} is what the {@link Builder} fixed.
 */
public final class DeviceClient implements AutoCloseable {

  private final ClientSettings settings;
  private final ClientState state;

  private DeviceClient(ClientSettings settings) {
    this.settings = settings;
    this.state = new ClientState(settings);
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * Connects and completes the handshake, trying the addresses in turn until one accepts or the
   * give-up time passes.
   *
   * @throws DeviceException when the node refuses the device (bad token, invalid id, unknown
   *     mapping) or no address could be reached in time
   */
  public DeviceClient connect() {
    Thread supervisor = new Thread(new ReconnectLoop(state, settings), "berth-device-" + settings.deviceId());
    supervisor.setDaemon(true);
    state.start(supervisor);
    return this;
  }

  /**
   * Sends one DATA frame and returns its sequence number. Blocks while {@code window} frames are
   * unacknowledged. While disconnected the frame is kept and sent after the reconnect.
   */
  public long send(byte[] payload) throws InterruptedException {
    return state.send(payload);
  }

  /** Waits until every frame sent so far is acknowledged; false when the time ran out. */
  public boolean awaitAllAcked(Duration timeout) throws InterruptedException {
    return state.awaitAllAcked(timeout);
  }

  /** Highest sequence number the node acknowledged (cumulative). */
  public long lastAcked() {
    return state.lastAcked();
  }

  /** Highest downlink sequence number received. */
  public long lastReceived() {
    return state.lastReceived();
  }

  /** Number of frames sent but not yet acknowledged. */
  public int unackedCount() {
    return state.unackedCount();
  }

  /**
   * The payloads sent but not acknowledged, oldest first. After the client stopped on an error
   * (ERROR 204: nothing took them, PROTOCOL.md#error-codes) these are what did not reach a
   * destination; a new client for the socket can send them again.
   */
  public List<byte[]> unackedPayloads() {
    return state.unackedPayloads();
  }

  /** How many connections completed a handshake (1 + reconnects). */
  public int connectionCount() {
    return state.connectionCount();
  }

  /** The WELCOME of the current (or last) connection. */
  public Frame.Welcome welcome() {
    return state.welcome();
  }

  /** Whether the client stopped for good, and why ({@code null} while running). */
  public String terminatedCause() {
    return state.terminatedCause();
  }

  /**
   * Cuts the current connection without a CLOSE, as a network failure would. The client
   * reconnects and resumes by itself. Meant for fault drills.
   */
  public void dropConnection() {
    state.dropConnection();
  }

  /**
   * Ends the session: sends CLOSE, waits up to {@code timeout} for the node to confirm, then
   * releases everything. Unacknowledged frames are abandoned: call {@link #awaitAllAcked} first.
   */
  public void close(Duration timeout) {
    state.close(timeout);
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(5));
  }

  /** Collects a client's settings; {@link #build} checks them. */
  public static final class Builder {
    private List<InetSocketAddress> addresses = new ArrayList<>();
    private String deviceId;
    private Function<String, String> tokens;
    private String socketName = "";
    private String mapping = "";
    private int window = 256;
    private int maxFrameSize = FrameCodec.DEFAULT_MAX_FRAME_SIZE;
    private Backoff backoff = reconnects(Duration.ofMillis(100), Duration.ofSeconds(5));
    private Duration giveUpAfter = Duration.ofMinutes(5);
    private Duration connectTimeout = Duration.ofSeconds(5);
    private Duration handshakeTimeout = Duration.ofSeconds(15);
    private Duration silenceTimeout = Duration.ofSeconds(5);
    private ClientTls tls = ClientTls.jdkTrust();
    private DeviceListener listener = new DeviceListener() {};

    private Builder() {}

    /** Node addresses, tried in turn on every (re)connect. */
    public Builder addresses(List<InetSocketAddress> addresses) {
      this.addresses = List.copyOf(addresses);
      return this;
    }

    public Builder address(String host, int port) {
      this.addresses = List.of(new InetSocketAddress(host, port));
      return this;
    }

    public Builder deviceId(String deviceId) {
      this.deviceId = deviceId;
      return this;
    }

    /**
     * A fixed token (PROTOCOL.md#authentication). Without a token or a secret the client needs a
     * certificate ({@link ClientTls#withClientCertificate}) and its HELLO carries an empty token.
     */
    public Builder token(String token) {
      this.tokens = id -> token;
      return this;
    }

    /** Mints a fresh token with the fleet secret (no key id) on every connection attempt. */
    public Builder secret(byte[] secret, Duration ttl) {
      return secret("", secret, ttl);
    }

    /** Mints a fresh token with the key {@code keyId} on every connection attempt (docs/auth.md). */
    public Builder secret(String keyId, byte[] secret, Duration ttl) {
      byte[] copy = secret.clone();
      DeviceToken.mint(keyId, copy, "probe", Instant.now()); // an invalid key id fails here, not at connect
      this.tokens = id -> DeviceToken.mint(keyId, copy, id, Instant.now().plus(ttl));
      return this;
    }

    /** Socket name; empty (the default) opens the device's default socket. */
    public Builder socketName(String socketName) {
      this.socketName = socketName;
      return this;
    }

    /** Mapping name; empty (the default) lets the node choose its default mapping. */
    public Builder mapping(String mapping) {
      this.mapping = mapping;
      return this;
    }

    /** Maximum number of unacknowledged frames before {@link DeviceClient#send} blocks. */
    public Builder window(int window) {
      if (window < 1) {
        throw new IllegalArgumentException("window must be at least 1");
      }
      this.window = window;
      return this;
    }

    public Builder maxFrameSize(int maxFrameSize) {
      this.maxFrameSize = maxFrameSize;
      return this;
    }

    /**
     * The pause before reconnecting after the n-th failed attempt in a row: {@code min} doubled
     * n − 1 times, at most {@code max}, of which a random half is waited (docs/retry.md).
     */
    public Builder reconnectBackoff(Duration min, Duration max) {
      this.backoff = reconnects(min, max);
      return this;
    }

    private static Backoff reconnects(Duration min, Duration max) {
      return Backoff.doubling(min, max, 0.5);
    }

    /** Stop reconnecting when no connection could be established for this long. */
    public Builder giveUpAfter(Duration giveUpAfter) {
      this.giveUpAfter = giveUpAfter;
      return this;
    }

    /**
     * TLS settings; by default TLS with the JDK's trust store. {@link ClientTls#PLAINTEXT} turns
     * TLS off, and must be asked for: the token would cross the network readable.
     */
    public Builder tls(ClientTls tls) {
      this.tls = tls;
      return this;
    }

    /** How long the TCP connect and the TLS handshake together may take. */
    public Builder connectTimeout(Duration connectTimeout) {
      this.connectTimeout = connectTimeout;
      return this;
    }

    /** How long the node may take to answer the HELLO. */
    public Builder handshakeTimeout(Duration handshakeTimeout) {
      this.handshakeTimeout = handshakeTimeout;
      return this;
    }

    /**
     * How soon a node that went silent is left (docs/failover.md): while frames wait for its ACK
     * and nothing came from it for this long, the client sends a PING, which the node's edge
     * answers whatever its sessions are doing; when that stays unanswered as long again, the
     * node is taken for frozen or cut off and the client reconnects to the next address. 5 s by
     * default; {@link Duration#ZERO} leaves it to the idle timeout the node gives (60 s).
     */
    public Builder silenceTimeout(Duration silenceTimeout) {
      if (silenceTimeout.isNegative()) {
        throw new IllegalArgumentException("the silence timeout must not be negative");
      }
      this.silenceTimeout = silenceTimeout;
      return this;
    }

    public Builder listener(DeviceListener listener) {
      this.listener = listener;
      return this;
    }

    /**
     * Checks the settings and reads the TLS files.
     *
     * @throws IllegalArgumentException when a setting is invalid or a TLS file cannot be used
     */
    public DeviceClient build() {
      return new DeviceClient(new ClientSettings(addresses, deviceId, tokens, socketName, mapping, window,
          maxFrameSize, backoff, giveUpAfter, connectTimeout, handshakeTimeout, silenceTimeout, TlsConnector.of(tls),
          listener));
    }
  }
}
