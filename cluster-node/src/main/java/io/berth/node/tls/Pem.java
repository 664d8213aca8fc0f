package io.berth.node.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo;

/**
 * PEM text of certificates and private keys, read and written with Bouncy Castle. Reading works on
 * bytes already in memory, so that what was hashed to notice a change is exactly what is parsed.
 * Every failure is an {@link IllegalArgumentException} whose message names what was wrong.
 */
public final class Pem {

  private Pem() {}

  /** Every certificate in the text, in order; at least one. */
  public static List<X509Certificate> certificates(byte[] pem, String source) {
    List<X509Certificate> certificates = new ArrayList<>();
    JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
    try (PEMParser parser = parser(pem)) {
      Object o;
      while ((o = parser.readObject()) != null) {
        if (!(o instanceof X509CertificateHolder holder)) {
          throw new IllegalArgumentException(source + " holds a " + describe(o) + " where only certificates "
              + "(BEGIN CERTIFICATE) are expected");
        }
        certificates.add(converter.getCertificate(holder));
      }
    } catch (IOException | CertificateException e) {
      throw new IllegalArgumentException(source + " is not valid PEM certificate text: " + e.getMessage(), e);
    }
    if (certificates.isEmpty()) {
      throw new IllegalArgumentException(source + " holds no certificate (BEGIN CERTIFICATE)");
    }
    return List.copyOf(certificates);
  }

  /**
   * The one private key in the text: PKCS#8 ({@code BEGIN PRIVATE KEY}), or the older
   * {@code BEGIN EC PRIVATE KEY} and {@code BEGIN RSA PRIVATE KEY} forms openssl writes. Encrypted
   * keys are refused: the node would need the password in its configuration anyway, where file
   * permissions protect it no better than they protect the key.
   */
  public static PrivateKey privateKey(byte[] pem, String source) {
    JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
    PrivateKey key = null;
    try (PEMParser parser = parser(pem)) {
      Object o;
      while ((o = parser.readObject()) != null) {
        PrivateKey found;
        if (o instanceof PrivateKeyInfo info) {
          found = converter.getPrivateKey(info);
        } else if (o instanceof PEMKeyPair pair) {
          found = converter.getKeyPair(pair).getPrivate();
        } else if (o instanceof PKCS8EncryptedPrivateKeyInfo) {
          throw new IllegalArgumentException(source + " holds an encrypted private key: give it unencrypted "
              + "(PKCS#8, BEGIN PRIVATE KEY) and protect the file with its permissions");
        } else {
          throw new IllegalArgumentException(source + " holds a " + describe(o) + " where a private key "
              + "(BEGIN PRIVATE KEY) is expected");
        }
        if (key != null) {
          throw new IllegalArgumentException(source + " holds more than one private key");
        }
        key = found;
      }
    } catch (IOException e) {
      throw new IllegalArgumentException(source + " is not valid PEM private key text: " + e.getMessage(), e);
    }
    if (key == null) {
      throw new IllegalArgumentException(source + " holds no private key (BEGIN PRIVATE KEY)");
    }
    return key;
  }

  /** The certificates as PEM text, one block after the other. */
  public static String text(List<X509Certificate> certificates) {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
      for (X509Certificate c : certificates) {
        writer.writeObject(c);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot encode a certificate as PEM", e);
    }
    return out.toString();
  }

  /** The key as unencrypted PKCS#8 PEM ({@code BEGIN PRIVATE KEY}), the form every TLS stack reads. */
  public static String text(PrivateKey key) {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
      writer.writeObject(new JcaPKCS8Generator(key, null));
    } catch (IOException e) {
      throw new IllegalStateException("cannot encode a private key as PEM", e);
    }
    return out.toString();
  }

  /** Reads a whole file, with a message that names the file and the setting it came from. */
  public static byte[] read(Path file, String what) {
    try {
      return Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException(what + ": file " + file + " does not exist", e);
    } catch (IOException e) {
      throw new IllegalArgumentException(what + ": cannot read " + file + " (" + e + ")", e);
    }
  }

  private static PEMParser parser(byte[] pem) {
    return new PEMParser(new InputStreamReader(new ByteArrayInputStream(pem), StandardCharsets.US_ASCII));
  }

  private static String describe(Object o) {
    return o.getClass().getSimpleName();
  }
}
