package io.berth.protocol;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Certificates and private keys from PEM files, with the JDK alone: the device client must not
 * pull a crypto library into every device. Every problem becomes an {@link
 * IllegalArgumentException} naming the file and what to do about it.
 */
final class PemFiles {

  private static final String KEY_BEGIN = "-----BEGIN PRIVATE KEY-----";
  private static final String KEY_END = "-----END PRIVATE KEY-----";

  private PemFiles() {}

  /** Every certificate in {@code file}, in order; at least one. */
  static List<X509Certificate> certificates(Path file, String what) {
    List<X509Certificate> certificates = new ArrayList<>();
    try (InputStream in = Files.newInputStream(file)) {
      for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        certificates.add((X509Certificate) c);
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the " + what + " file " + file + ": " + e, e);
    } catch (CertificateException e) {
      throw new IllegalArgumentException("the " + what + " file " + file + " does not hold PEM certificates "
          + "(-----BEGIN CERTIFICATE-----): " + e.getMessage(), e);
    }
    if (certificates.isEmpty()) {
      throw new IllegalArgumentException("the " + what + " file " + file + " holds no certificate");
    }
    return certificates;
  }

  /** The unencrypted PKCS#8 key in {@code file}, EC or RSA. */
  static PrivateKey privateKey(Path file) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the key file " + file + ": " + e, e);
    }
    int begin = text.indexOf(KEY_BEGIN);
    int end = text.indexOf(KEY_END);
    if (begin < 0 || end < begin) {
      String convert = "; convert it with: openssl pkcs8 -topk8 -nocrypt -in " + file + " -out key.pem";
      if (text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
        throw new IllegalArgumentException("the key file " + file + " is encrypted, which is not supported"
            + convert);
      }
      if (text.contains("-----BEGIN EC PRIVATE KEY-----") || text.contains("-----BEGIN RSA PRIVATE KEY-----")) {
        throw new IllegalArgumentException("the key file " + file + " is in the traditional OpenSSL format, "
            + "not PKCS#8 (-----BEGIN PRIVATE KEY-----)" + convert);
      }
      throw new IllegalArgumentException("the key file " + file + " holds no PEM private key "
          + "(-----BEGIN PRIVATE KEY-----)");
    }
    byte[] der;
    try {
      der = Base64.getMimeDecoder().decode(text.substring(begin + KEY_BEGIN.length(), end));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the key file " + file + " is not valid base64: " + e.getMessage(), e);
    }
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    for (String algorithm : List.of("EC", "RSA")) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(spec);
      } catch (InvalidKeySpecException e) {
        // Not this algorithm: try the next.
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException("the JDK lacks the " + algorithm + " key factory", e);
      }
    }
    throw new IllegalArgumentException("the key file " + file + " holds neither an EC nor an RSA PKCS#8 key");
  }

  /**
   * Fails unless {@code key} is the private half of {@code certificate}'s public key: a mismatched
   * pair would otherwise surface as a handshake the node refuses for no visible reason.
   */
  static void requireKeyPair(X509Certificate certificate, PrivateKey key, Path certificateFile, Path keyFile) {
    String algorithm = switch (key.getAlgorithm()) {
      case "EC" -> "SHA256withECDSA";
      case "RSA" -> "SHA256withRSA";
      default -> throw new IllegalArgumentException("unsupported key algorithm " + key.getAlgorithm());
    };
    byte[] probe = "berth key pair check".getBytes(StandardCharsets.US_ASCII);
    boolean matches;
    try {
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(key);
      signer.update(probe);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(certificate.getPublicKey());
      verifier.update(probe);
      matches = verifier.verify(signature);
    } catch (GeneralSecurityException e) {
      matches = false;
    }
    if (!matches) {
      throw new IllegalArgumentException("the key in " + keyFile + " does not belong to the certificate in "
          + certificateFile + " (" + certificate.getSubjectX500Principal().getName() + ")");
    }
  }
}
