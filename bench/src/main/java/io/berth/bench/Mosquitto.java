package io.berth.bench;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The harness's own Mosquitto, the anchor of the relay scenario (plaintext, in-flight and queue
 * limits raised so that the broker's defaults, 20 in flight and 1000 queued, do not set the pace)
 * and of the tls scenario (a TLS listener): a config of its own on a spare loopback port (never a
 * system broker on 1883), no persistence. A
 * {@link ChildProcess}: stopped by its PID at close, and by a shutdown hook if the harness dies
 * first.
 */
final class Mosquitto implements AutoCloseable {

  /**
   * Frames the broker may queue per subscriber above those in flight. A QoS 1 publisher's window
   * closes at the broker's PUBACK, so a publisher can run ahead of its subscriber, and past this
   * limit Mosquitto drops QoS 1 frames silently: it is set above what a round sends, so the QoS 1
   * anchor loses nothing (100,000 still lost some in a 10 s round with 1 pair).
   */
  static final int MAX_QUEUED = 2_000_000;

  private final ChildProcess process;
  private final int port;

  private Mosquitto(ChildProcess process, int port) {
    this.process = process;
    this.port = port;
  }

  /** The broker binary: BERTH_BENCH_MOSQUITTO, else on the PATH, else where Debian puts it. */
  static Path locate() {
    String configured = System.getenv("BERTH_BENCH_MOSQUITTO");
    if (configured != null && !configured.isBlank()) {
      if (!Files.isExecutable(Path.of(configured))) {
        throw new IllegalStateException("BERTH_BENCH_MOSQUITTO=" + configured + " is not an executable file");
      }
      return Path.of(configured);
    }
    Stream<Path> onPath = Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .filter(d -> !d.isEmpty()).map(d -> Path.of(d, "mosquitto"));
    return Stream.concat(onPath, Stream.of(Path.of("/usr/sbin/mosquitto"), Path.of("/usr/local/sbin/mosquitto")))
        .filter(Files::isExecutable).findFirst()
        .orElseThrow(() -> new IllegalStateException("mosquitto not found: the relay and tls scenarios' anchor "
            + "needs it (Debian/Ubuntu: apt-get install mosquitto; or set BERTH_BENCH_MOSQUITTO to its path)"));
  }

  /**
   * Starts a broker whose config and log are {@code mosquitto.conf} and {@code mosquitto.log} in
   * {@code dir}; {@code maxInflight} is its per-subscriber window of unacknowledged QoS 1 frames.
   */
  static Mosquitto start(Path dir, int maxInflight) throws IOException {
    int port = LocalCluster.freePort();
    return launch(dir, "mosquitto", port, """
        # Written by the benchmark harness (Mosquitto.java) for its private broker.
        listener %d 127.0.0.1
        allow_anonymous true
        persistence false
        set_tcp_nodelay true
        max_inflight_messages %d
        max_queued_messages %d
        max_queued_bytes 0
        log_dest stderr
        log_type error
        log_type warning
        log_type notice
        """.formatted(port, maxInflight, MAX_QUEUED));
  }

  /**
   * Starts a broker with one TLS listener serving {@code certificate} (the broker's chain, PEM)
   * and {@code key}; clients present no certificate. Its config and log are {@code
   * mosquitto-tls.conf} and {@code mosquitto-tls.log} in {@code dir}. Started as root, Mosquitto
   * would switch to its own user before reading the key, which the harness wrote readable by its
   * owner only: it is told to stay the harness's user (any other user ignores the setting).
   * Connections are not logged, as a node does not log them.
   */
  static Mosquitto startTls(Path dir, Path certificate, Path key) throws IOException {
    int port = LocalCluster.freePort();
    return launch(dir, "mosquitto-tls", port, """
        # Written by the benchmark harness (Mosquitto.java) for its private TLS broker.
        listener %d 127.0.0.1
        certfile %s
        keyfile %s
        require_certificate false
        allow_anonymous true
        persistence false
        set_tcp_nodelay true
        connection_messages false
        user %s
        log_dest stderr
        log_type error
        log_type warning
        log_type notice
        """.formatted(port, certificate.toAbsolutePath(), key.toAbsolutePath(), System.getProperty("user.name")));
  }

  private static Mosquitto launch(Path dir, String name, int port, String config) throws IOException {
    Path binary = locate();
    Files.createDirectories(dir);
    Path conf = dir.resolve(name + ".conf");
    Files.writeString(conf, config);
    ChildProcess process = ChildProcess.start(name, List.of(binary.toString(), "-c", conf.toString()), Map.of(),
        dir.resolve(name + ".log"));
    try {
      process.awaitListening(port, Duration.ofSeconds(10));
    } catch (RuntimeException e) {
      process.close();
      throw e;
    }
    return new Mosquitto(process, port);
  }

  /** Where the broker listens (plaintext or TLS, as started). */
  InetSocketAddress address() {
    return new InetSocketAddress("127.0.0.1", port);
  }

  String uri() {
    return "tcp://127.0.0.1:" + port;
  }

  long pid() {
    return process.pid();
  }

  /** Stops exactly this broker (by its PID). */
  @Override
  public void close() {
    process.close();
  }
}
