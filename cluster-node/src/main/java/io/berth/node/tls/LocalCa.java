package io.berth.node.tls;

import io.berth.protocol.SocketId;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.regex.Pattern;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.util.IPAddress;

/**
 * A certificate authority of Berth's own, for a cluster without a company CA: a local launch, a
 * test bed, a fleet that trusts nothing else. It issues the nodes' server certificates and the
 * devices' client certificates. Every key is EC P-256, signed with ECDSA SHA-256: small, fast to
 * handshake, and supported by every TLS stack a device is likely to run.
 *
 * <p>The CA's own files are the whole of its state: {@link #load} of what {@link #write} wrote
 * issues more certificates under the same CA.
 */
public final class LocalCa {

  public static final Duration CA_VALIDITY = Duration.ofDays(3650);
  public static final Duration NODE_VALIDITY = Duration.ofDays(730);
  public static final Duration DEVICE_VALIDITY = Duration.ofDays(730);
  /** Certificates start this long before they are issued: a clock a little behind still accepts them. */
  static final Duration BACKDATE = Duration.ofHours(1);

  /** Host names allowed in a dNSName: letters, digits and hyphens per label (RFC 5280 4.2.1.6). */
  private static final Pattern DNS_NAME =
      Pattern.compile("(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*");
  /** The URI a device certificate names its device with (CertificateIdentity.Source.SAN_URI). */
  public static final String DEVICE_URI_PREFIX = "urn:berth:device:";
  /** What makes a certificate a node's to the other nodes (docs/cluster-tls.md). */
  public static final String NODE_URI_PREFIX = "urn:berth:node:";

  private static final SecureRandom RANDOM = new SecureRandom();

  private final KeyAndChain ca;

  private LocalCa(KeyAndChain ca) {
    this.ca = ca;
  }

  /** A new CA: a fresh key and a self-signed certificate valid for {@link #CA_VALIDITY}. */
  public static LocalCa create(String name) {
    KeyPair pair = newKeyPair();
    X500Name subject = commonName(name);
    Instant now = Instant.now();
    X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, serial(),
        Date.from(now.minus(BACKDATE)), Date.from(now.plus(CA_VALIDITY)), subject, pair.getPublic());
    try {
      JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
      builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
      builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      builder.addExtension(Extension.subjectKeyIdentifier, false, utils.createSubjectKeyIdentifier(pair.getPublic()));
    } catch (CertIOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot build the CA certificate", e);
    }
    X509Certificate certificate = sign(builder, pair);
    return new LocalCa(new KeyAndChain(pair.getPrivate(), List.of(certificate)));
  }

  /**
   * The CA written earlier by {@link #write}: its certificate (the first in the file) and key,
   * which must belong together and make a CA.
   */
  public static LocalCa load(Path certificateFile, Path keyFile) {
    X509Certificate certificate = Pem.certificates(Pem.read(certificateFile, "CA certificate"),
        certificateFile.toString()).get(0);
    if (certificate.getBasicConstraints() < 0) {
      throw new IllegalArgumentException(certificateFile + " is not a CA certificate (no basicConstraints CA)");
    }
    KeyAndChain material;
    try {
      material = new KeyAndChain(Pem.privateKey(Pem.read(keyFile, "CA key"), keyFile.toString()),
          List.of(certificate));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(keyFile + ": " + e.getMessage(), e);
    }
    return new LocalCa(material);
  }

  public X509Certificate certificate() {
    return ca.certificate();
  }

  /** Writes the CA's certificate and key (PEM; the key readable by its owner only). */
  public void write(Path certificateFile, Path keyFile) {
    ca.writePem(certificateFile, keyFile);
  }

  /** A node's certificate, valid for {@link #NODE_VALIDITY} from now. */
  public KeyAndChain issueNode(String name, List<String> hosts) {
    return issueNode(name, hosts, Validity.from(Instant.now(), NODE_VALIDITY));
  }

  /**
   * A node's certificate: common name {@code name}, a subject alternative name for each host (an IP
   * address for an IPv4 or IPv6 literal, a DNS name otherwise) and the URI {@code
   * urn:berth:node:NAME} that makes it a node's to the others, for TLS servers and clients: the
   * same certificate serves the device port and the links between nodes ({@link ClusterTls}).
   */
  public KeyAndChain issueNode(String name, List<String> hosts, Validity validity) {
    if (hosts.isEmpty()) {
      throw new IllegalArgumentException("a node certificate needs at least one host name or address");
    }
    List<GeneralName> names = new ArrayList<>();
    names.add(new GeneralName(GeneralName.uniformResourceIdentifier, NODE_URI_PREFIX + name));
    for (String host : hosts) {
      if (IPAddress.isValid(host)) {
        names.add(new GeneralName(GeneralName.iPAddress, host));
      } else if (isDnsName(host)) {
        names.add(new GeneralName(GeneralName.dNSName, host));
      } else {
        throw new IllegalArgumentException("'" + host + "' is neither an IP address nor a valid DNS name");
      }
    }
    return issue(name, names, new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth},
        validity);
  }

  /** A device's certificate, valid for {@link #DEVICE_VALIDITY} from now. */
  public KeyAndChain issueDevice(String deviceId) {
    return issueDevice(deviceId, Validity.from(Instant.now(), DEVICE_VALIDITY));
  }

  /**
   * A device's client certificate. It names the device three ways, so that any
   * {@code berth.edge.tls.identity} finds it: common name {@code deviceId}, a URI
   * {@code urn:berth:device:<deviceId>}, and a DNS name {@code deviceId} when the id is a valid
   * host name (ids may hold {@code _} or start with {@code .}, which a DNS name may not).
   */
  public KeyAndChain issueDevice(String deviceId, Validity validity) {
    if (!SocketId.isValidDeviceId(deviceId)) {
      throw new IllegalArgumentException("'" + deviceId + "' is not a valid device id: 1 to "
          + SocketId.MAX_ID_LENGTH + " characters of A-Z a-z 0-9 . _ -");
    }
    List<GeneralName> names = new ArrayList<>();
    names.add(new GeneralName(GeneralName.uniformResourceIdentifier, DEVICE_URI_PREFIX + deviceId));
    if (isDnsName(deviceId)) {
      names.add(new GeneralName(GeneralName.dNSName, deviceId));
    }
    return issue(deviceId, names, new KeyPurposeId[] {KeyPurposeId.id_kp_clientAuth}, validity);
  }

  private KeyAndChain issue(String commonName, List<GeneralName> names, KeyPurposeId[] purposes, Validity validity) {
    KeyPair pair = newKeyPair();
    X509Certificate issuer = ca.certificate();
    X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(issuer, serial(),
        Date.from(validity.notBefore()), Date.from(validity.notAfter()), commonName(commonName), pair.getPublic());
    try {
      JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
      builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
      builder.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purposes));
      builder.addExtension(Extension.subjectAlternativeName, false,
          new GeneralNames(names.toArray(GeneralName[]::new)));
      builder.addExtension(Extension.subjectKeyIdentifier, false, utils.createSubjectKeyIdentifier(pair.getPublic()));
      builder.addExtension(Extension.authorityKeyIdentifier, false, utils.createAuthorityKeyIdentifier(issuer.getPublicKey()));
    } catch (CertIOException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot build the certificate of " + commonName, e);
    }
    X509Certificate certificate = sign(builder, new KeyPair(issuer.getPublicKey(), ca.privateKey()));
    return new KeyAndChain(pair.getPrivate(), List.of(certificate, issuer));
  }

  static boolean isDnsName(String name) {
    return DNS_NAME.matcher(name).matches();
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, KeyPair signer) {
    try {
      X509Certificate certificate = new JcaX509CertificateConverter()
          .getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
      certificate.verify(signer.getPublic());
      return certificate;
    } catch (OperatorCreationException | GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign a certificate: " + e.getMessage(), e);
    }
  }

  private static KeyPair newKeyPair() {
    try {
      KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
      generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
      return generator.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JVM cannot make EC P-256 keys", e);
    }
  }

  /** 127 random bits, positive: unique without a counter to keep, and within RFC 5280's 20 octets. */
  private static BigInteger serial() {
    return new BigInteger(127, RANDOM);
  }

  private static X500Name commonName(String name) {
    if (name.isBlank()) {
      throw new IllegalArgumentException("a certificate's common name cannot be empty");
    }
    return new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.CN, name).build();
  }

  /** When a certificate is valid. */
  public record Validity(Instant notBefore, Instant notAfter) {

    public Validity {
      if (!notAfter.isAfter(notBefore)) {
        throw new IllegalArgumentException("a certificate must end after it starts: " + notBefore + " .. " + notAfter);
      }
    }

    /** Valid for {@code duration} from {@code start}, and from an hour before it (clock skew). */
    public static Validity from(Instant start, Duration duration) {
      return new Validity(start.minus(BACKDATE), start.plus(duration));
    }
  }
}
