package io.berth.node.tls;

import io.berth.protocol.SocketId;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import org.bouncycastle.util.IPAddress;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Certificates for a cluster that runs its own CA (docs/tls.md): {@code init} makes the CA and the
 * nodes' certificates, {@code device} a device's client certificate. Runs without starting a node:
 * {@code java -cp berth-node.jar io.berth.node.tls.CertCli init --dir certs --nodes 3}.
 */
@Command(name = "cert", mixinStandardHelpOptions = true,
    subcommands = {CertCli.Init.class, CertCli.Device.class},
    description = {"Makes a local CA and the certificates of Berth's nodes and devices (PEM files).",
        "Exit codes: 0 done, 1 bad input (no CA, an invalid id or host), 2 bad arguments."})
public final class CertCli implements Callable<Integer> {

  static final int BAD_INPUT = 1;
  static final String CA_FILE = "ca.pem";
  static final String CA_KEY_FILE = "ca-key.pem";
  static final String DEVICES_DIR = "devices";
  /** Hosts every node certificate names, so that a local launch works without --host. */
  static final List<String> LOCAL_HOSTS = List.of("localhost", "127.0.0.1");
  /** A node certificate kept by a repeated init must be valid at least this much longer. */
  static final Duration KEEP_IF_VALID_FOR = Duration.ofDays(30);
  private static final Pattern NODE_NAME = Pattern.compile("[A-Za-z0-9._-]{1,64}");

  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    spec.commandLine().usage(spec.commandLine().getErr());
    return CommandLine.ExitCode.USAGE;
  }

  /** The CA and the nodes' certificates; what exists and fits is kept. */
  @Command(name = "init", mixinStandardHelpOptions = true,
      description = {"Makes DIR/ca.pem and DIR/ca-key.pem (kept if they exist) and, per node, "
          + "DIR/NAME.pem (certificate, then the CA) and DIR/NAME-key.pem (PKCS#8, mode 600).",
          "A node's files are kept when they are issued by this CA, name every host asked for, and stay "
              + "valid for 30 days more; otherwise they are issued again."})
  static final class Init implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--dir", required = true, description = "Directory of the CA and the certificates.")
    Path dir;

    @Option(names = "--nodes", description = "Number of nodes, named node-1 .. node-N (default 1).")
    Integer nodes;

    @Option(names = "--node-name", paramLabel = "NAME", description = "A node's name (repeatable), instead of --nodes.")
    List<String> nodeNames;

    @Option(names = "--host", split = ",", paramLabel = "HOST",
        description = "A DNS name or IP address devices reach the nodes by (repeatable), besides localhost "
            + "and 127.0.0.1.")
    List<String> hosts = new ArrayList<>();

    @Option(names = "--ca-name", defaultValue = "Berth local CA", description = "The CA's common name (default: ${DEFAULT-VALUE}).")
    String caName;

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      try {
        List<String> names = nodeNames();
        List<String> allHosts = new ArrayList<>(new LinkedHashSet<>(concat(LOCAL_HOSTS, hosts)));
        for (String h : allHosts) {
          if (!IPAddress.isValid(h) && !LocalCa.isDnsName(h)) {
            throw new IllegalArgumentException("--host '" + h + "' is neither an IP address nor a valid DNS name");
          }
        }
        LocalCa ca = caIn(dir, out);
        for (String name : names) {
          Path certificate = dir.resolve(name + ".pem");
          Path key = dir.resolve(name + "-key.pem");
          String stale = whyReissue(certificate, key, ca, allHosts);
          if (stale == null) {
            out.println("kept " + name + ": " + certificate);
            continue;
          }
          KeyAndChain issued = ca.issueNode(name, allHosts);
          issued.writePem(certificate, key);
          out.println("issued " + name + " (" + stale + "): " + certificate + ", " + key + " for "
              + String.join(", ", allHosts));
        }
        out.flush();
        return 0;
      } catch (IllegalArgumentException | IllegalStateException e) {
        return fail(spec, e);
      }
    }

    private List<String> nodeNames() {
      if (nodes != null && nodeNames != null) {
        throw new IllegalArgumentException("give --nodes or --node-name, not both");
      }
      if (nodeNames != null) {
        for (String n : nodeNames) {
          if (!NODE_NAME.matcher(n).matches()) {
            throw new IllegalArgumentException("--node-name '" + n + "' must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
          }
        }
        return List.copyOf(new LinkedHashSet<>(nodeNames));
      }
      int n = nodes == null ? 1 : nodes;
      if (n < 1 || n > 1000) {
        throw new IllegalArgumentException("--nodes must be between 1 and 1000, got " + n);
      }
      List<String> names = new ArrayList<>();
      for (int k = 1; k <= n; k++) {
        names.add("node-" + k);
      }
      return names;
    }

    /** The CA in {@code dir}, made there first if it has none. */
    private LocalCa caIn(Path dir, PrintWriter out) {
      Path certificate = dir.resolve(CA_FILE);
      Path key = dir.resolve(CA_KEY_FILE);
      boolean hasCertificate = Files.exists(certificate);
      boolean hasKey = Files.exists(key);
      if (hasCertificate && hasKey) {
        LocalCa ca = LocalCa.load(certificate, key);
        out.println("kept the CA: " + certificate);
        return ca;
      }
      if (hasCertificate || hasKey) {
        throw new IllegalArgumentException((hasCertificate ? key : certificate) + " is missing while "
            + (hasCertificate ? certificate : key) + " exists: restore it, or remove both to make a new CA "
            + "(every certificate it issued then stops being trusted)");
      }
      LocalCa ca = LocalCa.create(caName);
      ca.write(certificate, key);
      out.println("made the CA: " + certificate + ", " + key);
      return ca;
    }
  }

  /** A device's client certificate, issued by the CA in --dir. */
  @Command(name = "device", mixinStandardHelpOptions = true,
      description = "Issues a device's client certificate (common name, URI and, where valid, DNS name = the "
          + "device id) from the CA in DIR: DIR/devices/ID.pem and DIR/devices/ID-key.pem.")
  static final class Device implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--dir", required = true, description = "Directory holding ca.pem and ca-key.pem (from init).")
    Path dir;

    @Option(names = "--id", required = true, description = "The device id.")
    String id;

    @Option(names = "--out", paramLabel = "PREFIX",
        description = "Write PREFIX.pem and PREFIX-key.pem instead of DIR/devices/ID.pem and DIR/devices/ID-key.pem.")
    String out;

    @Override
    public Integer call() {
      PrintWriter stdout = spec.commandLine().getOut();
      try {
        if (!SocketId.isValidDeviceId(id)) {
          throw new IllegalArgumentException("--id '" + id + "' is not a valid device id: 1 to "
              + SocketId.MAX_ID_LENGTH + " characters of A-Z a-z 0-9 . _ -");
        }
        Path caCertificate = dir.resolve(CA_FILE);
        Path caKey = dir.resolve(CA_KEY_FILE);
        if (!Files.exists(caCertificate) || !Files.exists(caKey)) {
          throw new IllegalArgumentException("no CA in " + dir + " (" + (Files.exists(caCertificate) ? caKey : caCertificate)
              + " does not exist): run `init --dir " + dir + "` first");
        }
        LocalCa ca = LocalCa.load(caCertificate, caKey);
        String prefix = out != null ? out : dir.resolve(DEVICES_DIR).resolve(id).toString();
        Path certificate = Path.of(prefix + ".pem");
        Path key = Path.of(prefix + "-key.pem");
        KeyAndChain issued = ca.issueDevice(id);
        issued.writePem(certificate, key);
        stdout.println("issued device " + id + ": " + certificate + ", " + key + " (serial "
            + CertificateIdentity.serial(issued.certificate()) + ", sha256 "
            + CertificateIdentity.fingerprint(issued.certificate()) + ")");
        stdout.flush();
        return 0;
      } catch (IllegalArgumentException | IllegalStateException e) {
        return fail(spec, e);
      }
    }
  }

  /**
   * Why a node's files must be issued again, or null when they can stay: they exist, belong
   * together, were signed by this CA, name every host and stay valid long enough.
   */
  static String whyReissue(Path certificate, Path key, LocalCa ca, List<String> hosts) {
    if (!Files.exists(certificate) || !Files.exists(key)) {
      return "new";
    }
    X509Certificate leaf;
    try {
      KeyAndChain existing = new KeyAndChain(Pem.privateKey(Pem.read(key, "key"), key.toString()),
          Pem.certificates(Pem.read(certificate, "certificate"), certificate.toString()));
      leaf = existing.certificate();
      leaf.verify(ca.certificate().getPublicKey());
    } catch (IllegalArgumentException | GeneralSecurityException e) {
      return "the files there were unusable or from another CA";
    }
    if (leaf.getNotAfter().toInstant().isBefore(Instant.now().plus(KEEP_IF_VALID_FOR))) {
      return "the one there expires at " + leaf.getNotAfter().toInstant();
    }
    if (ClusterTls.nodeName(leaf).isEmpty()) {
      return "the one there does not name a node (" + LocalCa.NODE_URI_PREFIX + "), which the cluster's TLS needs";
    }
    Set<String> named = alternativeNames(leaf);
    for (String h : hosts) {
      if (!named.contains(canonicalHost(h))) {
        return "the one there does not name " + h;
      }
    }
    return null;
  }

  private static Set<String> alternativeNames(X509Certificate certificate) {
    Set<String> names = new HashSet<>();
    try {
      Collection<List<?>> sans = certificate.getSubjectAlternativeNames();
      if (sans != null) {
        for (List<?> san : sans) {
          if (san.size() >= 2 && san.get(1) instanceof String s) {
            names.add(canonicalHost(s));
          }
        }
      }
    } catch (CertificateParsingException e) {
      return Set.of();
    }
    return names;
  }

  /** Lowercase DNS names; IP literals in the JDK's form, so that ::1 and 0:0:0:0:0:0:0:1 are one. */
  private static String canonicalHost(String host) {
    if (IPAddress.isValid(host)) {
      try {
        return InetAddress.getByName(host).getHostAddress(); // a literal: no lookup
      } catch (UnknownHostException e) {
        return host;
      }
    }
    return host.toLowerCase(Locale.ROOT);
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  private static int fail(CommandSpec spec, RuntimeException e) {
    PrintWriter err = spec.commandLine().getErr();
    err.println("cert " + spec.name() + ": " + e.getMessage());
    err.flush();
    return BAD_INPUT;
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new CertCli()).execute(args));
  }
}
