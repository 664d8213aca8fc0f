package io.berth.node.tls;

import io.berth.protocol.SocketId;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.Certificate;
import java.security.cert.CertificateEncodingException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.bouncycastle.asn1.ASN1String;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.style.BCStyle;

/**
 * Which device a verified client certificate belongs to (docs/tls.md#identity). The certificate
 * has already been checked by the TLS handshake against {@code berth.edge.tls.trust}; this only
 * reads the name in it that {@code berth.edge.tls.identity} points at, and accepts it only if it
 * is a valid device id (PROTOCOL.md#identifiers).
 */
public final class CertificateIdentity {

  private static final HexFormat HEX = HexFormat.of();
  /** Subject alternative name types, RFC 5280 4.2.1.6, as the JDK numbers them. */
  private static final int SAN_DNS = 2;
  private static final int SAN_URI = 6;

  private CertificateIdentity() {}

  /** Where in a client certificate the device id is read. */
  public enum Source {
    /** The subject's common name; the certificate must have exactly one. */
    CN("cn"),
    /** The first DNS name among the subject alternative names. */
    SAN_DNS("san-dns"),
    /**
     * The last segment of the first URI among the subject alternative names: what follows its last
     * {@code /}, or its last {@code :} when it has no {@code /}. {@code urn:berth:device:d-1} and
     * {@code spiffe://fleet.example/device/d-1} both name device {@code d-1}.
     */
    SAN_URI("san-uri");

    private final String configValue;

    Source(String configValue) {
      this.configValue = configValue;
    }

    public String configValue() {
      return configValue;
    }

    public static Source fromConfig(String value, String key) {
      for (Source s : values()) {
        if (s.configValue.equals(value)) {
          return s;
        }
      }
      throw new IllegalArgumentException(key + " must be cn, san-dns or san-uri, got '" + value + "'");
    }
  }

  /** What a client certificate says about its device. */
  public sealed interface Result {}

  /** The certificate names a valid device id; its fingerprint and serial are for logs and the deny list. */
  public record Identified(String deviceId, String fingerprint, String serial) implements Result {}

  /** The certificate names no valid device id where {@link Source} looks; the reason says why. */
  public record Refused(String reason) implements Result {}

  /**
   * The device a client certificate names, read where {@code source} says. A node's certificate
   * ({@code urn:berth:node:NAME}, docs/cluster-tls.md) names no device, whatever its common name:
   * the same CA may issue both, and a node's key must not open a device's session.
   */
  public static Result of(X509Certificate certificate, Source source) {
    Optional<String> node = ClusterTls.nodeName(certificate);
    if (node.isPresent()) {
      return new Refused("the client certificate is node " + node.get() + "'s, not a device's");
    }
    String found;
    switch (source) {
      case CN -> {
        List<String> names = commonNames(certificate);
        if (names.size() != 1) {
          return new Refused("the client certificate has " + names.size() + " common names, not one");
        }
        found = names.get(0);
      }
      case SAN_DNS -> {
        Optional<String> dns = firstAlternativeName(certificate, SAN_DNS);
        if (dns.isEmpty()) {
          return new Refused("the client certificate has no DNS subject alternative name");
        }
        found = dns.get();
      }
      case SAN_URI -> {
        Optional<String> uri = firstAlternativeName(certificate, SAN_URI);
        if (uri.isEmpty()) {
          return new Refused("the client certificate has no URI subject alternative name");
        }
        found = lastSegment(uri.get());
      }
      default -> throw new IllegalStateException("unknown identity source " + source);
    }
    if (!SocketId.isValidDeviceId(found)) {
      return new Refused("the client certificate's " + source.configValue() + " '" + found
          + "' is not a valid device id (1 to " + SocketId.MAX_ID_LENGTH + " characters of A-Z a-z 0-9 . _ -)");
    }
    return new Identified(found, fingerprint(certificate), serial(certificate));
  }

  /**
   * The certificate the peer of a TLS session presented and the handshake verified, if any: empty
   * when client authentication is optional and the device sent none.
   */
  public static Optional<X509Certificate> peerCertificate(SSLSession session) {
    try {
      Certificate[] chain = session.getPeerCertificates();
      return chain.length > 0 && chain[0] instanceof X509Certificate leaf ? Optional.of(leaf) : Optional.empty();
    } catch (SSLPeerUnverifiedException e) {
      return Optional.empty();
    }
  }

  /** SHA-256 of the certificate's DER encoding: 64 lowercase hex digits, no colons. */
  public static String fingerprint(X509Certificate certificate) {
    try {
      return HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(certificate.getEncoded()));
    } catch (CertificateEncodingException | NoSuchAlgorithmException e) {
      throw new IllegalStateException("cannot hash a certificate", e);
    }
  }

  /** The serial number in lowercase hex, without leading zeros: as openssl and the deny list print it. */
  public static String serial(X509Certificate certificate) {
    return certificate.getSerialNumber().toString(16).toLowerCase(Locale.ROOT);
  }

  static String lastSegment(String uri) {
    int slash = uri.lastIndexOf('/');
    return uri.substring((slash >= 0 ? slash : uri.lastIndexOf(':')) + 1);
  }

  private static List<String> commonNames(X509Certificate certificate) {
    X500Name subject = X500Name.getInstance(certificate.getSubjectX500Principal().getEncoded());
    return Arrays.stream(subject.getRDNs(BCStyle.CN))
        .map(RDN::getFirst)
        .map(a -> a.getValue() instanceof ASN1String s ? s.getString() : a.getValue().toString())
        .toList();
  }

  private static Optional<String> firstAlternativeName(X509Certificate certificate, int type) {
    return alternativeNames(certificate, type).stream().findFirst();
  }

  /** The certificate's subject alternative names of one type (6: URI), in order; none if unreadable. */
  static List<String> alternativeNames(X509Certificate certificate, int type) {
    Collection<List<?>> names;
    try {
      names = certificate.getSubjectAlternativeNames();
    } catch (CertificateParsingException e) {
      return List.of();
    }
    if (names == null) {
      return List.of();
    }
    return names.stream()
        .filter(n -> n.size() >= 2 && Integer.valueOf(type).equals(n.get(0)) && n.get(1) instanceof String)
        .map(n -> (String) n.get(1))
        .toList();
  }
}
