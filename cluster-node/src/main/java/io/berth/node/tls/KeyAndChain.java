package io.berth.node.tls;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * A private key and its certificate chain, leaf first: what a TLS server presents (or a client,
 * for client authentication). Made only when the key belongs to the leaf certificate, so a
 * mismatched pair is refused where it is read, not at the first handshake.
 */
public record KeyAndChain(PrivateKey privateKey, List<X509Certificate> chain) {

  public KeyAndChain {
    chain = List.copyOf(chain);
    if (chain.isEmpty()) {
      throw new IllegalArgumentException("a certificate chain needs at least its leaf certificate");
    }
    requireMatch(privateKey, chain.get(0).getPublicKey(), chain.get(0));
  }

  /** Names the certificates only: some JDK keys print their private parts. */
  @Override
  public String toString() {
    return "KeyAndChain" + chain.stream().map(c -> c.getSubjectX500Principal().getName()).toList();
  }

  /**
   * The key and chain of a PEM chain file (the node's own certificate first, its CA after it) and
   * a PEM key file, from their content; errors name the files as {@code certificateFile} and
   * {@code keyFile} say.
   */
  static KeyAndChain fromPem(byte[] chainPem, byte[] keyPem, String certificateFile, String keyFile) {
    List<X509Certificate> chain = Pem.certificates(chainPem, certificateFile);
    PrivateKey key = Pem.privateKey(keyPem, keyFile);
    try {
      return new KeyAndChain(key, chain);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(keyFile + ": " + e.getMessage() + " (the first in " + certificateFile
          + "; the node's own certificate comes first, its CA after it)", e);
    }
  }

  /** The one key, and its chain, of a PKCS#12 key store's content; errors name {@code source}. */
  static KeyAndChain fromPkcs12(byte[] bytes, char[] password, String source, String passwordSetting) {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(new ByteArrayInputStream(bytes), password);
      List<String> keys = new ArrayList<>();
      for (String alias : Collections.list(store.aliases())) {
        if (store.isKeyEntry(alias)) {
          keys.add(alias);
        }
      }
      if (keys.size() != 1) {
        throw new IllegalArgumentException("it holds " + keys.size() + " private keys, not one");
      }
      PrivateKey key = (PrivateKey) store.getKey(keys.get(0), password);
      Certificate[] chain = Optional.ofNullable(store.getCertificateChain(keys.get(0))).orElse(new Certificate[0]);
      List<X509Certificate> x509 = new ArrayList<>();
      for (Certificate c : chain) {
        x509.add((X509Certificate) c);
      }
      return new KeyAndChain(key, x509);
    } catch (IOException | GeneralSecurityException e) {
      throw new IllegalArgumentException(source + " cannot be read as PKCS#12 with " + passwordSetting + ": "
          + e.getMessage(), e);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
    }
  }

  /** The leaf: the certificate of this key. */
  public X509Certificate certificate() {
    return chain.get(0);
  }

  /**
   * Writes the chain (leaf first) and the key (unencrypted PKCS#8, readable by its owner only where
   * the file system has POSIX permissions) as PEM. Each file is written beside its final name and
   * moved into place, so a server that reloads on change never reads half a file.
   */
  public void writePem(Path chainFile, Path keyFile) {
    write(chainFile, Pem.text(chain).getBytes(StandardCharsets.US_ASCII), false);
    write(keyFile, Pem.text(privateKey).getBytes(StandardCharsets.US_ASCII), true);
  }

  /** Writes a PKCS#12 key store holding the key and chain under {@code alias}. */
  public void writePkcs12(Path file, char[] password, String alias) {
    try {
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      store.setKeyEntry(alias, privateKey, password, chain.toArray(X509Certificate[]::new));
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      store.store(out, password);
      write(file, out.toByteArray(), true);
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("cannot write the PKCS#12 key store " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Proves the key belongs to the certificate by signing with one and verifying with the other:
   * works for every key type the JDK signs with, without comparing key encodings.
   */
  static void requireMatch(PrivateKey key, PublicKey publicKey, X509Certificate certificate) {
    String mismatch = "the private key does not belong to the certificate "
        + certificate.getSubjectX500Principal().getName();
    if (!sameFamily(key.getAlgorithm(), publicKey.getAlgorithm())) {
      throw new IllegalArgumentException(mismatch + " (a " + key.getAlgorithm() + " key for a "
          + publicKey.getAlgorithm() + " certificate)");
    }
    String algorithm = switch (key.getAlgorithm()) {
      case "EC" -> "SHA256withECDSA";
      case "RSA" -> "SHA256withRSA";
      case "Ed25519", "Ed448", "EdDSA" -> "EdDSA";
      default -> throw new IllegalArgumentException("keys of type " + key.getAlgorithm()
          + " are not supported: use EC or RSA");
    };
    try {
      byte[] probe = new byte[32];
      new SecureRandom().nextBytes(probe);
      Signature signer = Signature.getInstance(algorithm);
      signer.initSign(key);
      signer.update(probe);
      byte[] signature = signer.sign();
      Signature verifier = Signature.getInstance(algorithm);
      verifier.initVerify(publicKey);
      verifier.update(probe);
      if (!verifier.verify(signature)) {
        throw new IllegalArgumentException(mismatch);
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException(mismatch + " (" + e.getMessage() + ")", e);
    }
  }

  private static boolean sameFamily(String keyAlgorithm, String publicKeyAlgorithm) {
    return keyAlgorithm.equals(publicKeyAlgorithm)
        || (keyAlgorithm.startsWith("Ed") && publicKeyAlgorithm.startsWith("Ed"));
  }

  static void write(Path file, byte[] content, boolean secret) {
    try {
      Path dir = file.toAbsolutePath().getParent();
      Files.createDirectories(dir);
      Path temp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp");
      try {
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
          Files.setPosixFilePermissions(temp, PosixFilePermissions.fromString(secret ? "rw-------" : "rw-r--r--"));
        }
        Files.write(temp, content);
        Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } finally {
        Files.deleteIfExists(temp);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot write " + file + ": " + e, e);
    }
  }
}
