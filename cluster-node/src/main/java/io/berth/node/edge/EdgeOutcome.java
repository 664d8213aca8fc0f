package io.berth.node.edge;

import io.netty.handler.codec.haproxy.HAProxyProtocolException;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.security.cert.CertificateExpiredException;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Why a connection ended before it carried its first frame: the PROXY header or the TLS
 * handshake. Each is counted ({@link Counts}), for the operator routes and metrics, and logged
 * in one line with its label.
 */
enum EdgeOutcome {
  /** Bytes that are not TLS on a TLS port: a plaintext client. */
  TLS_NOT_TLS,
  /** The device presented a certificate past its validity. */
  TLS_CERT_EXPIRED,
  /** The device presented a certificate no configured CA vouches for. */
  TLS_CERT_UNTRUSTED,
  /** {@code client-auth = required} and the device presented no certificate. */
  TLS_CERT_MISSING,
  /** The device's certificate is on the deny list. */
  TLS_CERT_DENIED,
  /** The device asked to renegotiate, which is refused. */
  TLS_RENEGOTIATION,
  /** Any other handshake failure: no common protocol or cipher, a bad record, a reset. */
  TLS_FAILED,
  /** A PROXY protocol header that could not be parsed. */
  PROXY_HEADER_INVALID,
  /** The PROXY header or the TLS handshake was not done within {@code handshake-timeout}. */
  SETUP_TIMEOUT;

  String label() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** The outcome a failure before the first frame stands for. */
  static EdgeOutcome ofSetupFailure(Throwable failure) {
    String messages = "";
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof NotSslRecordException) {
        return TLS_NOT_TLS;
      }
      if (t instanceof SslHandshakeTimeoutException) {
        return SETUP_TIMEOUT;
      }
      if (t instanceof CertificateExpiredException) {
        return TLS_CERT_EXPIRED;
      }
      if (t instanceof HAProxyProtocolException) {
        return PROXY_HEADER_INVALID;
      }
      messages += " " + t.getMessage();
      if (t.getCause() == t) {
        break;
      }
    }
    String m = messages.toLowerCase(Locale.ROOT);
    if (m.contains(" is denied (")) {
      return TLS_CERT_DENIED; // DenyingTrustManager's refusal
    }
    if (m.contains("expired")) {
      return TLS_CERT_EXPIRED; // BoringSSL says CERTIFICATE_EXPIRED in its message
    }
    if (m.contains("renegotiat")) {
      return TLS_RENEGOTIATION;
    }
    if (m.contains("did not return a certificate") || m.contains("peer_did_not_return_a_certificate")
        || m.contains("empty client certificate chain") || m.contains("empty server certificate chain")
        || m.contains("certificate_required")) {
      return TLS_CERT_MISSING;
    }
    if (m.contains("pkix") || m.contains("certificate_verify_failed") || m.contains("unable to find valid certification")
        || m.contains("certificate_unknown") || m.contains("unknown_ca") || m.contains("bad_certificate")) {
      return TLS_CERT_UNTRUSTED;
    }
    return TLS_FAILED;
  }

  /** The innermost message of a failure, for one log line. */
  static String rootMessage(Throwable failure) {
    Throwable root = failure;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getClass().getSimpleName() + ": " + root.getMessage();
  }

  /** How many connections ended with each outcome on one edge. */
  static final class Counts {
    private final Map<EdgeOutcome, LongAdder> counts = new EnumMap<>(EdgeOutcome.class);

    Counts() {
      for (EdgeOutcome o : values()) {
        counts.put(o, new LongAdder());
      }
    }

    void count(EdgeOutcome outcome) {
      counts.get(outcome).increment();
    }

    long get(EdgeOutcome outcome) {
      return counts.get(outcome).sum();
    }

    /** Every outcome by its label, zeros included. */
    Map<String, Long> snapshot() {
      Map<String, Long> out = new java.util.LinkedHashMap<>();
      counts.forEach((o, n) -> out.put(o.label(), n.sum()));
      return out;
    }
  }
}
