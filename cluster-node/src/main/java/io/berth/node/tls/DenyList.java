package io.berth.node.tls;

import io.berth.protocol.SocketId;
import java.math.BigInteger;
import java.security.cert.X509Certificate;
import java.util.HashSet;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * Client certificates the edge refuses although they chain to a trusted CA: a device's key leaked,
 * or the device was retired before its certificate expired (docs/tls.md#deny-list). An entry names
 * a certificate by its serial number or by its SHA-256 fingerprint. Serials are unique per issuer
 * only; the edge trusts one CA bundle, whose CAs draw serials at random, so a serial names one
 * certificate there. A fingerprint names exactly one certificate anywhere.
 *
 * <p>Thread-safe: the handshake reads it on the event loops while operators change it. Readers see
 * an immutable snapshot; a change replaces it. Listeners hear each change, on the thread that made
 * it, after it is visible: the edge closes open connections whose certificates are now denied.
 * A listener must not block, and should read {@link #denies} (always current) rather than rely on
 * the order in which concurrent changes are reported.
 */
public final class DenyList {

  private static final Pattern HEX = Pattern.compile("[0-9a-f]+");
  /** RFC 5280 4.1.2.2: serials are at most 20 octets. */
  private static final int MAX_SERIAL_HEX = 40;
  private static final int FINGERPRINT_HEX = 64;

  private volatile Set<Entry> entries = Set.of();
  private final CopyOnWriteArrayList<Consumer<Set<Entry>>> listeners = new CopyOnWriteArrayList<>();

  /**
   * What an entry names: a certificate by its serial or fingerprint, or a device by its id
   * (every connection of that device, token or certificate, docs/operator-api.md#the-deny-list).
   */
  public enum Kind {
    SERIAL, FINGERPRINT, DEVICE;

    /** The kind's name where operators and the table write it: {@code serial}, {@code fingerprint}. */
    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** The kind {@code label} names; anything else is an error that says what is expected. */
    public static Kind ofLabel(String label) {
      for (Kind kind : values()) {
        if (kind.label().equals(label)) {
          return kind;
        }
      }
      throw new IllegalArgumentException("a deny list entry is a serial, a fingerprint or a device, got '" + label
          + "'");
    }
  }

  /** One denied certificate, in canonical form: lowercase hex, no colons, a serial without leading zeros. */
  public record Entry(Kind kind, String value) {

    /** Puts {@code value} in canonical form, so that equal entries are equal records. */
    public Entry {
      value = canonical(kind, value);
    }

    /** A serial in hex, as openssl prints it: any case, colons allowed, leading zeros ignored. */
    public static Entry serial(String hex) {
      return new Entry(Kind.SERIAL, hex);
    }

    /** A SHA-256 fingerprint: 64 hex digits, any case, colons allowed. */
    public static Entry fingerprint(String hex) {
      return new Entry(Kind.FINGERPRINT, hex);
    }

    /** A device id, as devices send it in HELLO (case matters). */
    public static Entry device(String deviceId) {
      return new Entry(Kind.DEVICE, deviceId);
    }

    /** The entry that names this certificate by {@code kind}, a serial or a fingerprint. */
    public static Entry of(Kind kind, X509Certificate certificate) {
      return switch (kind) {
        case SERIAL -> new Entry(Kind.SERIAL, CertificateIdentity.serial(certificate));
        case FINGERPRINT -> new Entry(Kind.FINGERPRINT, CertificateIdentity.fingerprint(certificate));
        case DEVICE -> throw new IllegalArgumentException("a certificate is named by its serial or fingerprint");
      };
    }

    private static String canonical(Kind kind, String text) {
      if (kind == Kind.DEVICE) {
        if (!SocketId.isValidDeviceId(text)) {
          throw new IllegalArgumentException("a device id is 1 to " + SocketId.MAX_ID_LENGTH
              + " characters of A-Z a-z 0-9 . _ -, got '" + text + "'");
        }
        return text;
      }
      String hex = text.replace(":", "").toLowerCase(Locale.ROOT);
      if (!HEX.matcher(hex).matches()) {
        throw new IllegalArgumentException("a certificate " + kind.name().toLowerCase(Locale.ROOT)
            + " is hex digits (colons allowed), got '" + text + "'");
      }
      if (kind == Kind.FINGERPRINT) {
        if (hex.length() != FINGERPRINT_HEX) {
          throw new IllegalArgumentException("a SHA-256 fingerprint has 64 hex digits, got " + hex.length()
              + " in '" + text + "'");
        }
        return hex;
      }
      String serial = new BigInteger(hex, 16).toString(16);
      if (serial.length() > MAX_SERIAL_HEX) {
        throw new IllegalArgumentException("a certificate serial has at most 40 hex digits (20 octets), got '"
            + text + "'");
      }
      return serial;
    }
  }

  /** Whether the certificate is denied, by its serial or its fingerprint. */
  public boolean denies(X509Certificate certificate) {
    return match(certificate).isPresent();
  }

  /** The entry that denies the certificate, if one does: for the log line that says why. */
  public Optional<Entry> match(X509Certificate certificate) {
    Set<Entry> now = entries;
    if (now.isEmpty()) {
      return Optional.empty();
    }
    Entry serial = Entry.of(Kind.SERIAL, certificate);
    if (now.contains(serial)) {
      return Optional.of(serial);
    }
    Entry fingerprint = Entry.of(Kind.FINGERPRINT, certificate);
    return now.contains(fingerprint) ? Optional.of(fingerprint) : Optional.empty();
  }

  /** The entry that denies every connection of this device, if there is one. */
  public Optional<Entry> matchDevice(String deviceId) {
    Set<Entry> now = entries;
    if (now.isEmpty()) {
      return Optional.empty();
    }
    Entry device = Entry.device(deviceId);
    return now.contains(device) ? Optional.of(device) : Optional.empty();
  }

  /** Denies a certificate or a device; false if it already was (and listeners hear nothing). */
  public boolean add(Entry entry) {
    return change(entry, true);
  }

  /** Stops denying a certificate; false if it was not denied. */
  public boolean remove(Entry entry) {
    return change(entry, false);
  }

  /** Every entry, as of now; an immutable copy. */
  public Set<Entry> entries() {
    return entries;
  }

  /**
   * Calls {@code listener} with the entries after each change. Returns what removes it again.
   */
  public Runnable addListener(Consumer<Set<Entry>> listener) {
    listeners.add(listener);
    return () -> listeners.remove(listener);
  }

  private boolean change(Entry entry, boolean add) {
    Set<Entry> after;
    synchronized (this) {
      if (entries.contains(entry) == add) {
        return false;
      }
      Set<Entry> next = new HashSet<>(entries);
      if (add) {
        next.add(entry);
      } else {
        next.remove(entry);
      }
      after = Set.copyOf(next);
      entries = after;
    }
    for (Consumer<Set<Entry>> listener : listeners) {
      listener.accept(after);
    }
    return true;
  }
}
