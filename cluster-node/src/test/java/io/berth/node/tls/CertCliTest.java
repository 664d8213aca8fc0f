package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The certificate command line, run in-process the way {@code main} runs it. */
class CertCliTest {

  @TempDir
  Path dir;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  @Test
  void initMakesTheCaAndEachNodesFilesForTheirHosts() throws Exception {
    int code = run("init", "--dir", dir.toString(), "--nodes", "2", "--host", "berth.example,10.0.0.5");

    assertThat(code).as(err.toString()).isZero();
    LocalCa ca = LocalCa.load(dir.resolve("ca.pem"), dir.resolve("ca-key.pem"));
    for (String node : List.of("node-1", "node-2")) {
      KeyAndChain files = read(dir.resolve(node + ".pem"), dir.resolve(node + "-key.pem"));
      X509Certificate leaf = files.certificate();
      leaf.verify(ca.certificate().getPublicKey());
      assertThat(files.chain()).containsExactly(leaf, ca.certificate());
      assertThat(leaf.getSubjectX500Principal().getName()).isEqualTo("CN=" + node);
      assertThat(leaf.getSubjectAlternativeNames()).extracting(san -> (Object) san.get(1))
          .containsExactlyInAnyOrder("urn:berth:node:" + node, "localhost", "127.0.0.1", "berth.example", "10.0.0.5");
    }
    assertThat(dir.resolve("node-3.pem")).doesNotExist();
  }

  @Test
  void initAgainKeepsTheCaAndTheNodesThatStillFit() throws Exception {
    assertThat(run("init", "--dir", dir.toString(), "--node-name", "alpha", "--node-name", "beta")).isZero();
    byte[] ca = Files.readAllBytes(dir.resolve("ca.pem"));
    byte[] caKey = Files.readAllBytes(dir.resolve("ca-key.pem"));
    byte[] alpha = Files.readAllBytes(dir.resolve("alpha.pem"));

    assertThat(run("init", "--dir", dir.toString(), "--node-name", "alpha", "--node-name", "beta")).isZero();
    assertThat(Files.readAllBytes(dir.resolve("ca.pem"))).isEqualTo(ca);
    assertThat(Files.readAllBytes(dir.resolve("ca-key.pem"))).isEqualTo(caKey);
    assertThat(Files.readAllBytes(dir.resolve("alpha.pem"))).isEqualTo(alpha);
    assertThat(out.toString()).contains("kept alpha", "kept beta");

    // A host the node's certificate does not name yet: issued again, under the same CA.
    assertThat(run("init", "--dir", dir.toString(), "--node-name", "alpha", "--host", "alpha.berth.example")).isZero();
    assertThat(Files.readAllBytes(dir.resolve("ca.pem"))).isEqualTo(ca);
    X509Certificate reissued = read(dir.resolve("alpha.pem"), dir.resolve("alpha-key.pem")).certificate();
    assertThat(reissued.getSubjectAlternativeNames()).extracting(san -> (Object) san.get(1)).contains("alpha.berth.example");
    reissued.verify(LocalCa.load(dir.resolve("ca.pem"), dir.resolve("ca-key.pem")).certificate().getPublicKey());
  }

  @Test
  void deviceGetsACertificateFromTheCaInTheDirectory() throws Exception {
    assertThat(run("init", "--dir", dir.toString())).isZero();

    assertThat(run("device", "--dir", dir.toString(), "--id", "sensor-7")).as(err.toString()).isZero();

    KeyAndChain device = read(dir.resolve("devices/sensor-7.pem"), dir.resolve("devices/sensor-7-key.pem"));
    device.certificate().verify(LocalCa.load(dir.resolve("ca.pem"), dir.resolve("ca-key.pem")).certificate().getPublicKey());
    assertThat(CertificateIdentity.of(device.certificate(), CertificateIdentity.Source.CN))
        .isInstanceOfSatisfying(CertificateIdentity.Identified.class, id -> assertThat(id.deviceId()).isEqualTo("sensor-7"));
    assertThat(out.toString()).contains(CertificateIdentity.fingerprint(device.certificate()));
  }

  @Test
  void deviceWritesWhereOutSays() throws Exception {
    assertThat(run("init", "--dir", dir.toString())).isZero();
    Path prefix = dir.resolve("elsewhere/meter_12");

    assertThat(run("device", "--dir", dir.toString(), "--id", "meter_12", "--out", prefix.toString())).isZero();

    assertThat(read(dir.resolve("elsewhere/meter_12.pem"), dir.resolve("elsewhere/meter_12-key.pem"))
        .certificate().getSubjectX500Principal().getName()).isEqualTo("CN=meter_12");
  }

  @Test
  void deviceWithoutACaSaysToRunInit() {
    assertThat(run("device", "--dir", dir.toString(), "--id", "sensor-7")).isEqualTo(CertCli.BAD_INPUT);

    assertThat(err.toString()).contains("no CA in " + dir, "run `init --dir " + dir + "` first");
    assertThat(dir.resolve("devices")).doesNotExist();
  }

  @Test
  void invalidDeviceIdIsRefused() {
    assertThat(run("init", "--dir", dir.toString())).isZero();

    assertThat(run("device", "--dir", dir.toString(), "--id", "no spaces/allowed")).isEqualTo(CertCli.BAD_INPUT);
    assertThat(err.toString()).contains("'no spaces/allowed' is not a valid device id");
  }

  @Test
  void initRefusesHalfACaAndContradictoryArguments() throws Exception {
    Files.writeString(dir.resolve("ca.pem"), "left over");

    assertThat(run("init", "--dir", dir.toString())).isEqualTo(CertCli.BAD_INPUT);
    assertThat(err.toString()).contains("ca-key.pem is missing");

    assertThat(run("init", "--dir", dir.resolve("b").toString(), "--nodes", "2", "--node-name", "x"))
        .isEqualTo(CertCli.BAD_INPUT);
    assertThat(run("init", "--dir", dir.resolve("c").toString(), "--host", "not a host")).isEqualTo(CertCli.BAD_INPUT);
    assertThat(err.toString()).contains("not both", "'not a host' is neither an IP address nor a valid DNS name");
  }

  @Test
  void missingArgumentsAreAUsageError() {
    assertThat(run("device", "--id", "sensor-7")).isEqualTo(CommandLine.ExitCode.USAGE);
    assertThat(err.toString()).contains("Missing required option: '--dir=<dir>'");
  }

  private int run(String... args) {
    return new CommandLine(new CertCli()).setOut(new PrintWriter(out, true)).setErr(new PrintWriter(err, true))
        .execute(args);
  }

  private static KeyAndChain read(Path chain, Path key) throws Exception {
    return new KeyAndChain(Pem.privateKey(Files.readAllBytes(key), key.toString()),
        Pem.certificates(Files.readAllBytes(chain), chain.toString()));
  }
}
