package io.berth.protocol.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.FrameReader;
import io.berth.protocol.TestPki;
import io.berth.protocol.TlsNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** What the command-line device tells a user who got something wrong, against stand-in servers. */
class DeviceCliTest {

  private static final String SECRET = "sixteen-bytes-or-more";

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();
  private ServerSocket server;
  @TempDir
  Path dir;

  @AfterEach
  void closeServer() throws IOException {
    if (server != null) {
      server.close();
    }
  }

  private int run(String... args) {
    CommandLine cmd = new CommandLine(new DeviceCli(new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8)));
    cmd.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
    cmd.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
    return cmd.execute(args);
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  /** Answers every connection with {@code answer}, after reading what the device sends first; counts them. */
  private AtomicInteger serve(byte[] answer, boolean readHello) throws IOException {
    server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    AtomicInteger connections = new AtomicInteger();
    Thread t = new Thread(() -> {
      while (!server.isClosed()) {
        try (Socket s = server.accept()) {
          connections.incrementAndGet();
          if (readHello) {
            new FrameReader(s.getInputStream(), FrameCodec.DEFAULT_MAX_FRAME_SIZE).next();
          } else {
            s.getInputStream().read(new byte[64]);
          }
          s.getOutputStream().write(answer);
          s.getOutputStream().flush();
          s.shutdownOutput();
          s.getInputStream().readAllBytes();
        } catch (IOException e) {
          // closed by the test, or the device hung up: next
        }
      }
    });
    t.setDaemon(true);
    t.start();
    return connections;
  }

  private String address() {
    return "127.0.0.1:" + server.getLocalPort();
  }

  @Test
  void versionPrintsTheProjectVersion() {
    assertThat(run("--version")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).containsPattern("device \\(Berth\\) \\d+\\.\\d+")
        .contains("protocol version 1");
  }

  @Test
  void aKeyIdThatIsNoneIsRefusedBeforeConnecting() {
    int code = run("--connect", "127.0.0.1:1", "--device", "d1", "--secret", SECRET, "--key-id", "K-2027",
        "--insecure-plaintext");
    assertThat(code).isEqualTo(1);
    assertThat(err()).contains("--key-id: token key id 'K-2027' must be a lowercase letter");
  }

  @Test
  void aPortWithNothingListeningIsExplainedOnceAndSummedUpInWords() throws IOException {
    int port = freePort();
    int code = run("--connect", "127.0.0.1:" + port, "--device", "d1", "--secret", SECRET, "--give-up-after", "2");
    assertThat(code).isEqualTo(DeviceCli.UNREACHABLE);
    assertThat(err()).contains("connection refused: nothing listens on 127.0.0.1:" + port)
        .contains("is the cluster up").contains("edge port")
        .contains("no node accepted a connection in 2 seconds (")
        .doesNotContain("PT2S");
    assertThat(err().lines().count()).as(err()).isLessThanOrEqualTo(5);
  }

  @Test
  void anHttpAnswerIsRecognisedAsTheManagementPortAndNotRetried() throws IOException {
    AtomicInteger connections = serve("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        .getBytes(StandardCharsets.US_ASCII), false);
    int code = run("--connect", address(), "--device", "d1", "--secret", SECRET, "--give-up-after", "5",
        "--insecure-plaintext");
    assertThat(code).isEqualTo(DeviceCli.UNREACHABLE);
    assertThat(err()).contains(address() + " answers HTTP").contains("management port")
        .contains("edge port (berth.edge.port, 7000 by default)").doesNotContain("1213486160");
    assertThat(connections.get()).isEqualTo(1);
  }

  @Test
  void aRefusedTokenSaysWhereTheRightSecretComesFrom() throws IOException {
    serve(FrameCodec.encode(new Frame.Error(ErrorCode.AUTH_FAILED, "invalid token for device d1")), true);
    int code = run("--connect", address(), "--device", "d1", "--secret", SECRET, "--insecure-plaintext");
    assertThat(code).isEqualTo(DeviceCli.REFUSED);
    assertThat(err()).contains("ERROR 200").contains("secret from --secret")
        .contains("berth.auth.secret").contains("--secret-file").contains(".berth/cluster/secret");
  }

  @Test
  void anUnknownMappingSaysHowToListTheMappings() throws IOException {
    serve(FrameCodec.encode(new Frame.Error(ErrorCode.UNKNOWN_MAPPING, "no mapping named 'x'")), true);
    int code = run("--connect", address(), "--device", "d1", "--secret", SECRET, "--mapping", "x",
        "--insecure-plaintext");
    assertThat(code).isEqualTo(DeviceCli.REFUSED);
    assertThat(err()).contains("GET /api/mappings");
  }

  @Test
  void aNodeCertificateFromAPrivateCaSaysToGiveThatCa() throws Exception {
    TestPki ca = TestPki.create(dir, "cli-ca");
    try (TlsNode node = TlsNode.start(ca.serverContext(ca.node("cli-node", "ip:127.0.0.1"), null), false)) {
      int code = run("--connect", node.address(), "--device", "d1", "--secret", SECRET, "--give-up-after", "1");
      assertThat(code).isEqualTo(DeviceCli.UNREACHABLE);
      assertThat(err()).contains("untrusted certificate").contains("the JDK's default trust store")
          .contains("--ca FILE").contains(".berth/cluster/tls/ca.pem");
    }
  }

  @Test
  void aPlaintextEdgeSaysToAskForPlaintext() throws IOException {
    serve(FrameCodec.encode(new Frame.Error(ErrorCode.FRAME_TOO_LARGE, "declared frame length exceeds the limit")),
        false);
    int code = run("--connect", address(), "--device", "d1", "--secret", SECRET, "--give-up-after", "1");
    assertThat(code).isEqualTo(DeviceCli.UNREACHABLE);
    assertThat(err()).contains("not TLS").contains("add --insecure-plaintext");
  }

  @Test
  void aClientCertificateStandsInForTheSecret() throws Exception {
    TestPki ca = TestPki.create(dir, "cli-device-ca");
    TestPki.Issued device = ca.device("d1", "EC");
    int code = run("--connect", "127.0.0.1:" + freePort(), "--device", "d1", "--ca", ca.caPem().toString(),
        "--cert", device.certificatePem().toString(), "--key", device.keyPem().toString(), "--give-up-after", "1");
    assertThat(code).as(err()).isEqualTo(DeviceCli.UNREACHABLE);
    assertThat(err()).doesNotContain("no credentials").contains("connection refused");
  }

  @Test
  void tlsOptionsThatCannotWorkAreBadArguments() throws Exception {
    assertThat(run("--connect", "127.0.0.1:7001", "--device", "d1", "--secret", SECRET, "--insecure-plaintext",
        "--ca", "ca.pem")).isEqualTo(1);
    assertThat(err()).contains("--insecure-plaintext turns TLS off");
    assertThat(run("--connect", "127.0.0.1:7001", "--device", "d1", "--cert", "device.pem")).isEqualTo(1);
    assertThat(err()).contains("--cert and --key go together");
    Path missing = dir.resolve("missing-ca.pem");
    assertThat(run("--connect", "127.0.0.1:7001", "--device", "d1", "--secret", SECRET, "--ca", missing.toString()))
        .isEqualTo(1);
    assertThat(err()).contains("cannot read the CA file " + missing);
  }

  private static int freePort() throws IOException {
    try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return free.getLocalPort();
    }
  }
}
