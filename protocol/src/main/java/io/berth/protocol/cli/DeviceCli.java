package io.berth.protocol.cli;

import io.berth.protocol.ClientTls;
import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceException;
import io.berth.protocol.DeviceListener;
import io.berth.protocol.DurationText;
import io.berth.protocol.LinkStatus;
import io.berth.protocol.ErrorCode;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * A command-line device: each line read from stdin is sent as one DATA frame, each DATA received
 * is printed as one line on stdout. Exits 0 once stdin is closed and every line is acknowledged
 * (and, with {@code --expect N}, N lines were received). Connections use TLS, trusting the JDK's
 * trust store or {@code --ca}, unless {@code --insecure-plaintext} says otherwise.
 */
@Command(name = "device", mixinStandardHelpOptions = true, sortOptions = false,
    versionProvider = DeviceCli.Version.class,
    description = {"Connects a device to a Berth cluster: stdin lines go up as DATA frames, "
        + "DATA frames come down as stdout lines.",
        "Exit codes: 0 done, 1 bad arguments, 2 refused by the node, 3 no node reachable (or the "
        + "address is not a node's device port, or the TLS handshake failed), 4 timed out waiting for "
        + "acknowledgements or lines."})
public final class DeviceCli implements Callable<Integer> {

  static final int REFUSED = 2;
  static final int UNREACHABLE = 3;
  static final int TIMED_OUT = 4;

  /** While no connection succeeds: the first failure is explained, then one line this often. */
  static final Duration RETRY_REPORT_EVERY = Duration.ofSeconds(30);

  @Option(names = "--connect", required = true, split = ",", paramLabel = "HOST:PORT",
      description = "Node addresses, tried in turn on every (re)connect.")
  List<String> connect;

  @Option(names = "--device", required = true, description = "Device id.")
  String device;

  @Option(names = "--socket", defaultValue = "", description = "Socket name (default: the device's default socket).")
  String socket;

  @Option(names = "--mapping", defaultValue = "", description = "Mapping to open the socket with (default: the node's).")
  String mapping;

  @Option(names = "--secret", description = "Fleet secret to mint the device token with (default: $BERTH_SECRET).")
  String secret;

  @Option(names = "--secret-file", description = "File holding the fleet secret.")
  Path secretFile;

  @Option(names = "--key-id", paramLabel = "ID",
      description = "The id of the key the secret is (docs/auth.md), named in the tokens minted with it "
          + "(default: $BERTH_KEY_ID; none: the fleet secret's tokens, which name no key).")
  String keyId;

  @Option(names = "--token", description = "A ready device token instead of a secret.")
  String token;

  @Option(names = "--ca", paramLabel = "FILE",
      description = "Trust the CA certificates in this PEM file instead of the JDK's trust store (repeatable).")
  List<Path> caFiles = new ArrayList<>();

  @Option(names = "--cert", paramLabel = "FILE",
      description = "Client certificate (PEM, intermediates after it) for a node that asks for one; "
          + "with it, a token or secret is optional.")
  Path certFile;

  @Option(names = "--key", paramLabel = "FILE",
      description = "The client certificate's private key: unencrypted PKCS#8 PEM (BEGIN PRIVATE KEY), EC or RSA.")
  Path keyFile;

  @Option(names = "--insecure-plaintext",
      description = "No TLS: frames and token cross the network readable. Only for an edge that is plaintext.")
  boolean insecurePlaintext;

  @Option(names = "--expect", defaultValue = "0", description = "Also wait until N lines were received.")
  long expect;

  @Option(names = "--window", defaultValue = "256", description = "Unacknowledged frames in flight (default ${DEFAULT-VALUE}).")
  int window;

  @Option(names = "--timeout", defaultValue = "120", description = "Seconds to wait, after stdin ends, for acknowledgements and expected lines (default ${DEFAULT-VALUE}).")
  long timeoutSeconds;

  @Option(names = "--give-up-after", defaultValue = "120", description = "Seconds without any reachable node before giving up (default ${DEFAULT-VALUE}).")
  long giveUpSeconds;

  @Option(names = "--verbose", description = "Report connections and reconnects on stderr.")
  boolean verbose;

  private final PrintStream out;
  private final PrintStream err;
  /** Where the token came from, for the hint after a refused token. */
  private String credentialSource;
  /** The failing streak of connection attempts: when it started, when it was last reported. */
  private long failingSince;
  private long lastRetryReport;

  DeviceCli(PrintStream out, PrintStream err) {
    this.out = out;
    this.err = err;
  }

  @Override
  public Integer call() throws Exception {
    List<InetSocketAddress> addresses = new ArrayList<>();
    for (String a : connect) {
      int colon = a.lastIndexOf(':');
      if (colon <= 0) {
        err.println("device: --connect expects HOST:PORT, got '" + a + "'");
        return 1;
      }
      addresses.add(new InetSocketAddress(a.substring(0, colon), Integer.parseInt(a.substring(colon + 1))));
    }
    DeviceClient.Builder builder = DeviceClient.builder()
        .addresses(addresses)
        .deviceId(device)
        .socketName(socket)
        .mapping(mapping)
        .window(window)
        .giveUpAfter(Duration.ofSeconds(giveUpSeconds));
    String tlsProblem = tls(builder);
    if (tlsProblem != null) {
      err.println("device: " + tlsProblem);
      return 1;
    }
    String credentialProblem = credentials(builder);
    if (credentialProblem != null) {
      err.println("device: " + credentialProblem);
      return 1;
    }
    AtomicLong received = new AtomicLong();
    CountDownLatch expected = new CountDownLatch(1);
    builder.listener(new DeviceListener() {
      @Override
      public void onData(long seq, byte[] payload) {
        out.println(new String(payload, StandardCharsets.UTF_8));
        if (received.incrementAndGet() >= expect) {
          expected.countDown();
        }
      }

      @Override
      public void onConnected(Frame.Welcome welcome, String address) {
        failingSince = 0;
        if (verbose) {
          err.println("device: connected to " + address + " as " + welcome.socketId()
              + " (last accepted " + welcome.lastAccepted() + ")");
        }
      }

      @Override
      public void onLink(LinkStatus status, String peer, String reason) {
        err.println("device: LINK " + status.name().toLowerCase(Locale.ROOT)
            + (peer.isEmpty() ? "" : " " + peer) + (reason.isEmpty() ? "" : " (" + reason + ")"));
      }

      @Override
      public void onDisconnected(String address, String cause) {
        err.println("device: connection to " + address + " lost (" + cause + "), reconnecting");
      }

      @Override
      public void onConnectFailed(String address, String cause, int attempt) {
        reportFailedAttempt(address, cause, attempt);
      }
    });
    if (expect <= 0) {
      expected.countDown();
    }

    DeviceClient client;
    try {
      client = builder.build().connect();
    } catch (DeviceException e) {
      return fail(e);
    } catch (IllegalArgumentException e) {
      err.println("device: " + e.getMessage());
      return 1;
    }
    try {
      int maxPayload = client.welcome().maxFrameSize() - FrameCodec.DATA_OVERHEAD;
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      String line;
      long lineNo = 0;
      while ((line = in.readLine()) != null) {
        lineNo++;
        byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > maxPayload) {
          err.println("device: line " + lineNo + " has " + bytes.length + " bytes, more than the "
              + maxPayload + " a frame can carry; not sent");
          return 1;
        }
        client.send(bytes);
      }
      if (!client.awaitAllAcked(Duration.ofSeconds(timeoutSeconds))) {
        err.println("device: " + client.unackedCount() + " lines still unacknowledged after "
            + timeoutSeconds + " s");
        return TIMED_OUT;
      }
      if (!expected.await(timeoutSeconds, TimeUnit.SECONDS)) {
        err.println("device: received " + received.get() + " lines, expected " + expect);
        return TIMED_OUT;
      }
      return 0;
    } catch (DeviceException e) {
      return fail(e);
    } finally {
      client.close(Duration.ofSeconds(5));
      out.flush();
    }
  }

  /**
   * Keeps a streak of failed attempts readable: the first is explained with what to check, then
   * one short line every {@link #RETRY_REPORT_EVERY} (every attempt with {@code --verbose}); the
   * client's final error sums the streak up.
   */
  void reportFailedAttempt(String address, String cause, int attempt) {
    long now = System.nanoTime();
    if (attempt == 1 || failingSince == 0) {
      failingSince = now;
      lastRetryReport = now;
      err.println("device: cannot connect to " + address + ": " + cause);
      String hint = connectHint(cause);
      if (hint != null) {
        err.println("device: " + hint);
      }
      err.println("device: retrying for up to " + DurationText.of(Duration.ofSeconds(giveUpSeconds))
          + " (--give-up-after)" + (verbose ? "" : ", reporting every " + DurationText.of(RETRY_REPORT_EVERY)));
      return;
    }
    if (verbose || now - lastRetryReport >= RETRY_REPORT_EVERY.toNanos()) {
      lastRetryReport = now;
      err.println("device: still no connection after " + DurationText.of(Duration.ofNanos(now - failingSince))
          + " (" + attempt + " attempts), last: " + cause);
    }
  }

  String connectHint(String cause) {
    String tlsHint = tlsHint(cause);
    if (tlsHint != null) {
      return tlsHint;
    }
    if (cause.startsWith("connection refused")) {
      return "is the cluster up (scripts/cluster.sh status)? Devices connect to a node's edge port: "
          + "berth.edge.port, 7000 by default; scripts/cluster.sh up uses 7001, 7002, 7003";
    }
    if (cause.startsWith("unknown host")) {
      return "check the host name in --connect";
    }
    if (cause.startsWith("no answer")) {
      return "a firewall may drop the connection, or the host is down";
    }
    return null;
  }

  /** What the user can do about a failed TLS handshake (DeviceClient names the kind of failure). */
  private String tlsHint(String cause) {
    if (cause.contains("untrusted certificate")) {
      return "give the CA that signed the nodes' certificates with --ca FILE; scripts/cluster.sh up writes "
          + "its CA to .berth/cluster/tls/ca.pem, which scripts/device.sh passes when no --ca is given";
    }
    if (cause.contains("hostname mismatch")) {
      return "connect with a host name or address that the node's certificate lists (its subject "
          + "alternative names)";
    }
    if (cause.contains("client certificate required")) {
      return "give the device's certificate and key with --cert FILE --key FILE";
    }
    if (cause.contains("client certificate refused")) {
      return "the nodes must trust the CA that issued --cert, and the certificate must be valid now";
    }
    if (cause.contains("not TLS")) {
      return "this edge does not speak TLS; if it is plaintext on purpose, add --insecure-plaintext";
    }
    if (insecurePlaintext && cause.contains("without answering the HELLO")) {
      return "if the node's edge requires TLS, drop --insecure-plaintext (and give its CA with --ca FILE)";
    }
    return null;
  }

  /** TLS from --ca, --cert, --key, or plaintext with --insecure-plaintext; a problem in words. */
  private String tls(DeviceClient.Builder builder) {
    if (insecurePlaintext) {
      if (!caFiles.isEmpty() || certFile != null || keyFile != null) {
        return "--insecure-plaintext turns TLS off: it does not go with --ca, --cert or --key";
      }
      builder.tls(ClientTls.PLAINTEXT);
      return null;
    }
    if ((certFile == null) != (keyFile == null)) {
      return "--cert and --key go together: the certificate and its private key";
    }
    ClientTls tls = caFiles.isEmpty() ? ClientTls.jdkTrust() : ClientTls.trusting(caFiles);
    builder.tls(certFile == null ? tls : tls.withClientCertificate(certFile, keyFile));
    return null;
  }

  private String credentials(DeviceClient.Builder builder) throws IOException {
    if (token != null) {
      builder.token(token);
      credentialSource = "--token";
      return null;
    }
    String s = secret;
    credentialSource = "--secret";
    if (s == null && secretFile != null) {
      if (!Files.isReadable(secretFile)) {
        return "cannot read the secret file " + secretFile;
      }
      s = Files.readString(secretFile).strip();
      credentialSource = "--secret-file " + secretFile;
    }
    if (s == null) {
      s = System.getenv("BERTH_SECRET");
      credentialSource = "$BERTH_SECRET";
    }
    if (s == null || s.isEmpty()) {
      if (certFile != null) {
        // The node takes the device from the certificate; the HELLO carries an empty token.
        credentialSource = "--cert";
        return null;
      }
      return "no credentials: give --token, --secret, --secret-file, set BERTH_SECRET, or give a client "
          + "certificate with --cert and --key";
    }
    String id = keyId != null ? keyId : System.getenv().getOrDefault("BERTH_KEY_ID", "");
    try {
      builder.secret(id, s.getBytes(StandardCharsets.UTF_8), Duration.ofHours(24));
    } catch (IllegalArgumentException e) {
      return "--key-id: " + e.getMessage();
    }
    return null;
  }

  private int fail(DeviceException e) {
    err.println("device: " + e.getMessage());
    String hint = e.reason() == DeviceException.Reason.NODE_ERROR ? refusalHint(ErrorCode.fromWire(e.code())) : null;
    if (hint != null) {
      err.println("device: " + hint);
    }
    return switch (e.reason()) {
      case UNREACHABLE, NOT_A_NODE -> UNREACHABLE;
      default -> REFUSED;
    };
  }

  /** What the user can do about a refusal; the node's message says what was wrong. */
  String refusalHint(ErrorCode code) {
    if (code == null) {
      return null;
    }
    return switch (code) {
      case AUTH_FAILED -> credentialSource.equals("--cert")
          ? "the node did not take the client certificate " + certFile + " as the credential of device '"
              + device + "', and no token was given (--token, --secret, --secret-file, $BERTH_SECRET)"
          : (credentialSource.equals("--token")
          ? "the token given with --token must be minted for device '" + device + "' with the nodes' fleet secret"
          : "the token was minted with the secret from " + credentialSource + ", which must be the nodes' fleet "
              + "secret")
          + " (setting berth.auth.secret, $BERTH_SECRET on the nodes). Give it with --secret, --secret-file or "
          + "$BERTH_SECRET; scripts/cluster.sh up writes its secret to .berth/cluster/secret, which "
          + "scripts/device.sh uses when no secret is given";
      case TOKEN_EXPIRED -> credentialSource.equals("--token")
          ? "mint a fresh token, or give the secret instead (--secret, --secret-file, $BERTH_SECRET)"
          : "the token was minted a moment ago for 24 hours: is this machine's clock far behind the node's?";
      case UNKNOWN_MAPPING -> "operators list the mappings with GET /api/mappings on a node's management port "
          + "(scripts/cluster.sh up: curl http://127.0.0.1:8551/api/mappings); without --mapping the socket "
          + "opens with the node's default mapping";
      default -> null;
    };
  }

  /** The project version, from the resource the build fills in. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() throws IOException {
      Properties p = new Properties();
      try (InputStream in = DeviceCli.class.getResourceAsStream("/io/berth/protocol/version.properties")) {
        if (in != null) {
          p.load(in);
        }
      }
      return new String[] {"device (Berth) " + p.getProperty("version", "unknown"),
          "protocol version " + FrameCodec.VERSION};
    }
  }

  public static void main(String[] args) {
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
        StandardCharsets.UTF_8);
    System.exit(new CommandLine(new DeviceCli(out, System.err)).execute(args));
  }
}
