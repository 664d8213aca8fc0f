package io.berth.protocol;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * How a {@link DeviceClient} protects its connections: TLS (the default, with the JDK's trust
 * store) or, only when asked for by name, {@link #PLAINTEXT}. The files are read when the client is
 * built, so a missing or malformed one is an error then rather than on every reconnect.
 *
 * <p>The node's certificate must chain to a trusted CA and, unless {@link #verifyHostname} is off,
 * name the host the client connects to (a DNS or IP subject alternative name): the same check an
 * HTTPS client makes, so a certificate issued for another node or service is refused.
 *
 * @param enabled false for {@link #PLAINTEXT}: the token then crosses the network in clear text
 * @param trustedCas PEM files with the CA certificates to trust; empty trusts the JDK's default
 *     trust store (the public CAs of {@code cacerts})
 * @param certificateChain PEM file with the client's certificate, then its intermediates, for a
 *     node that asks for one (mutual TLS); {@code null} presents none
 * @param privateKey the client certificate's key: an unencrypted PKCS#8 PEM ({@code BEGIN PRIVATE
 *     KEY}), EC or RSA; {@code null} exactly when {@code certificateChain} is
 * @param protocols the TLS versions offered, from {@code TLSv1.3} and {@code TLSv1.2}
 * @param verifyHostname whether the node's certificate must name the host connected to
 */
public record ClientTls(
    boolean enabled,
    List<Path> trustedCas,
    Path certificateChain,
    Path privateKey,
    List<String> protocols,
    boolean verifyHostname) {

  /** The TLS versions a client may offer: older ones have known weaknesses and no Berth node takes them. */
  static final Set<String> SUPPORTED_PROTOCOLS = Set.of("TLSv1.3", "TLSv1.2");

  private static final List<String> DEFAULT_PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");

  /**
   * No TLS: the frames, the token with them, travel unprotected. For an edge that is plaintext on
   * purpose (a local test node, or a network that protects the traffic itself).
   */
  public static final ClientTls PLAINTEXT = new ClientTls(false, List.of(), null, null, List.of(), false);

  public ClientTls {
    trustedCas = List.copyOf(trustedCas);
    protocols = List.copyOf(protocols);
    if ((certificateChain == null) != (privateKey == null)) {
      throw new IllegalArgumentException("a client certificate needs its private key and the other way round "
          + "(certificate: " + certificateChain + ", key: " + privateKey + ")");
    }
    if (!enabled) {
      if (!trustedCas.isEmpty() || certificateChain != null) {
        throw new IllegalArgumentException("CA files and a client certificate are TLS settings: "
            + "they do not go with plaintext");
      }
    } else {
      if (protocols.isEmpty()) {
        throw new IllegalArgumentException("at least one TLS version is required, from " + DEFAULT_PROTOCOLS);
      }
      for (String p : protocols) {
        if (!SUPPORTED_PROTOCOLS.contains(p)) {
          throw new IllegalArgumentException("unsupported TLS version '" + p + "': expected one of "
              + DEFAULT_PROTOCOLS);
        }
      }
    }
  }

  /** TLS trusting the JDK's default trust store; the default of {@link DeviceClient.Builder}. */
  public static ClientTls jdkTrust() {
    return new ClientTls(true, List.of(), null, null, DEFAULT_PROTOCOLS, true);
  }

  /** TLS trusting only the CA certificates in these PEM files (a private CA, as Berth clusters use). */
  public static ClientTls trusting(List<Path> caFiles) {
    if (caFiles.isEmpty()) {
      throw new IllegalArgumentException("no CA file given: use jdkTrust() for the JDK's default trust store");
    }
    return new ClientTls(true, caFiles, null, null, DEFAULT_PROTOCOLS, true);
  }

  public static ClientTls trusting(Path caFile) {
    return trusting(List.of(caFile));
  }

  /** The same, presenting this certificate when the node asks for one (mutual TLS). */
  public ClientTls withClientCertificate(Path certificateChain, Path privateKey) {
    requireTls("a client certificate");
    return new ClientTls(true, trustedCas, Objects.requireNonNull(certificateChain, "certificateChain"),
        Objects.requireNonNull(privateKey, "privateKey"), protocols, verifyHostname);
  }

  /** The same, offering only these TLS versions. */
  public ClientTls withProtocols(List<String> protocols) {
    requireTls("TLS versions");
    return new ClientTls(true, trustedCas, certificateChain, privateKey, protocols, verifyHostname);
  }

  /**
   * The same, with or without the check that the node's certificate names the host connected to.
   * Without it, any certificate from a trusted CA is accepted, including one issued to another
   * service: only for a private CA that issues node certificates and nothing else.
   */
  public ClientTls withHostnameVerification(boolean verify) {
    requireTls("hostname verification");
    return new ClientTls(true, trustedCas, certificateChain, privateKey, protocols, verify);
  }

  /** Whether the client presents a certificate of its own. */
  public boolean presentsCertificate() {
    return certificateChain != null;
  }

  private void requireTls(String what) {
    if (!enabled) {
      throw new IllegalArgumentException(what + " needs TLS, and these settings are plaintext");
    }
  }

  /** Which CAs are trusted, in words for an error message. */
  String trustInWords() {
    return trustedCas.isEmpty() ? "the JDK's default trust store" : "the CAs in " + String.join(", ",
        trustedCas.stream().map(Path::toString).toList());
  }
}
