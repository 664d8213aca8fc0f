package io.berth.protocol;

import java.io.IOException;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A private CA for TLS tests, issuing node and device certificates as PEM files in a directory:
 * certificates as a CA would write them, keys as unencrypted PKCS#8 ({@code BEGIN PRIVATE KEY}).
 */
public final class TestPki {

  private static final char[] PASSWORD = "test".toCharArray();
  private static final AtomicLong SERIALS = new AtomicLong(System.currentTimeMillis());

  private final Path dir;
  private final X500Name name;
  private final KeyPair keys;
  private final X509Certificate certificate;
  private final Path caPem;

  /** A certificate this CA issued, with its key, in memory and as PEM files. */
  public record Issued(X509Certificate certificate, PrivateKey key, Path certificatePem, Path keyPem) {}

  private TestPki(Path dir, String cn) throws Exception {
    this.dir = dir;
    this.name = new X500Name("CN=" + cn);
    this.keys = keyPair("EC");
    X509v3CertificateBuilder b = builder(name, keys);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
    b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
    this.certificate = sign(b, keys.getPrivate());
    this.caPem = dir.resolve(fileName(cn) + "-ca.pem");
    writePem(caPem, certificate);
  }

  /** A new CA named {@code cn}, writing its files into {@code dir}. */
  public static TestPki create(Path dir, String cn) throws Exception {
    return new TestPki(dir, cn);
  }

  public Path caPem() {
    return caPem;
  }

  /** A node certificate: for TLS servers, naming {@code sans} ({@code ip:127.0.0.1}, {@code dns:x}). */
  public Issued node(String cn, String... sans) throws Exception {
    return issue(cn, "EC", KeyPurposeId.id_kp_serverAuth, sans);
  }

  /** A device certificate for mutual TLS, with an {@code EC} or {@code RSA} key. */
  public Issued device(String cn, String keyAlgorithm) throws Exception {
    return issue(cn, keyAlgorithm, KeyPurposeId.id_kp_clientAuth);
  }

  private Issued issue(String cn, String keyAlgorithm, KeyPurposeId purpose, String... sans) throws Exception {
    KeyPair pair = keyPair(keyAlgorithm);
    X509v3CertificateBuilder b = builder(new X500Name("CN=" + cn), pair);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
    int usage = KeyUsage.digitalSignature | (keyAlgorithm.equals("RSA") ? KeyUsage.keyEncipherment : 0);
    b.addExtension(Extension.keyUsage, true, new KeyUsage(usage));
    b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose));
    if (sans.length > 0) {
      GeneralName[] names = new GeneralName[sans.length];
      for (int i = 0; i < sans.length; i++) {
        String[] kind = sans[i].split(":", 2);
        names[i] = new GeneralName(kind[0].equals("ip") ? GeneralName.iPAddress : GeneralName.dNSName, kind[1]);
      }
      b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(names));
    }
    X509Certificate issued = sign(b, keys.getPrivate());
    Path certificatePem = dir.resolve(fileName(cn) + ".pem");
    Path keyPem = dir.resolve(fileName(cn) + "-key.pem");
    writePem(certificatePem, issued);
    writePem(keyPem, new JcaPKCS8Generator(pair.getPrivate(), null));
    return new Issued(issued, pair.getPrivate(), certificatePem, keyPem);
  }

  /**
   * A TLS server context presenting {@code node}; with {@code clientCa}, it trusts that CA's
   * device certificates (the caller decides whether a certificate is required).
   */
  public SSLContext serverContext(Issued node, TestPki clientCa) throws GeneralSecurityException, IOException {
    KeyStore keyStore = KeyStore.getInstance("PKCS12");
    keyStore.load(null, null);
    keyStore.setKeyEntry("node", node.key(), PASSWORD, new X509Certificate[] {node.certificate(), certificate});
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(keyStore, PASSWORD);
    TrustManagerFactory tmf = null;
    if (clientCa != null) {
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("ca", clientCa.certificate);
      tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
    }
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(kmf.getKeyManagers(), tmf == null ? null : tmf.getTrustManagers(), null);
    return context;
  }

  /**
   * Writes {@code object} as PEM: a certificate, a PKCS#8 generator's key, or a bare private key,
   * which comes out in the traditional OpenSSL form ({@code BEGIN EC PRIVATE KEY}).
   */
  public static void writePem(Path file, Object object) throws IOException {
    try (Writer w = Files.newBufferedWriter(file); JcaPEMWriter pem = new JcaPEMWriter(w)) {
      if (object instanceof JcaPKCS8Generator g) {
        pem.writeObject(g);
      } else {
        pem.writeObject(object);
      }
    }
  }

  private X509v3CertificateBuilder builder(X500Name subject, KeyPair pair) {
    Instant now = Instant.now();
    return new JcaX509v3CertificateBuilder(name, BigInteger.valueOf(SERIALS.incrementAndGet()),
        Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(1))), subject, pair.getPublic());
  }

  private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey caKey)
      throws OperatorCreationException, GeneralSecurityException {
    return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA")
        .build(caKey)));
  }

  private static KeyPair keyPair(String algorithm) throws GeneralSecurityException {
    KeyPairGenerator g = KeyPairGenerator.getInstance(algorithm);
    g.initialize(algorithm.equals("RSA") ? 2048 : 256);
    return g.generateKeyPair();
  }

  private static String fileName(String cn) {
    return cn.replaceAll("[^A-Za-z0-9.-]", "_");
  }
}
