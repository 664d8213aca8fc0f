package io.berth.node.link;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonValue;
import io.berth.persistence.CborSerializable;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The socket's link: {@link Status#WAITING waiting} for a peer, {@link Status#OFFERED offered} by
 * a peer (accepted once open), or {@link Status#LINKED linked}. {@code relayIn}: highest of the
 * peer's seqs taken; {@code ackedBase}: highest of the peer's seqs this socket's device
 * acknowledged, from marks already trimmed; {@code framesIn}: the peer's frames taken on this link.
 */
public record Link(String linkId, String peer, Status status, Instant since, long deadlineMillis,
                   boolean closeOnTimeout, long relayIn, long ackedBase, List<RelayMark> marks, long framesIn)
    implements CborSerializable {

  /**
   * Where the socket's link stands. Snapshots hold it as the lowercase word ({@code "linked"}),
   * as they did when it was a string: {@link #json()} and {@link #fromJson} keep that form.
   */
  public enum Status {
    /** Waiting for a peer (a link answer, or at the pairing point). */
    WAITING,
    /** Offered by a peer: accepted once the socket is open. */
    OFFERED,
    /** Linked: data goes to the peer. */
    LINKED;

    @JsonValue
    public String json() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** The word, as messages and logs said it when the status was a string ("b is linked with ..."). */
    @Override
    public String toString() {
      return json();
    }

    @JsonCreator
    public static Status fromJson(String value) {
      for (Status s : values()) {
        if (s.json().equals(value)) {
          return s;
        }
      }
      throw new IllegalArgumentException("unknown link status '" + value + "': expected waiting, offered or linked");
    }
  }

  /** A new link of this socket, nothing relayed on it yet. */
  public static Link fresh(String linkId, String peer, Status status, Instant since, long deadlineMillis,
      boolean closeOnTimeout) {
    return new Link(linkId, peer, status, since, deadlineMillis, closeOnTimeout, 0, 0, List.of(), 0);
  }

  public Link withStatus(Status newStatus, String newLinkId, String newPeer, Instant at) {
    return new Link(newLinkId, newPeer, newStatus, at, deadlineMillis, closeOnTimeout, relayIn, ackedBase, marks,
        framesIn);
  }

  public Link relayed(long newRelayIn, RelayMark mark) {
    List<RelayMark> all = new ArrayList<>(marks);
    all.add(mark);
    return new Link(linkId, peer, status, since, deadlineMillis, closeOnTimeout, newRelayIn, ackedBase,
        List.copyOf(all), framesIn + mark.dTo() - mark.dFrom() + 1);
  }

  /** Drops marks the device acknowledged completely, remembering how far they went. */
  public Link trimmed(long acked) {
    if (marks.isEmpty() || marks.get(0).dTo() > acked) {
      return this;
    }
    long base = ackedBase;
    List<RelayMark> rest = new ArrayList<>();
    for (RelayMark m : marks) {
      if (m.dTo() <= acked) {
        base = Math.max(base, m.peerFrom() + (m.dTo() - m.dFrom()));
      } else {
        rest.add(m);
      }
    }
    return new Link(linkId, peer, status, since, deadlineMillis, closeOnTimeout, relayIn, base, List.copyOf(rest),
        framesIn);
  }

  /** Highest of the peer's seqs acknowledged by this socket's device. */
  public long peerAcked(long acked) {
    long best = ackedBase;
    for (RelayMark m : marks) {
      if (acked >= m.dFrom()) {
        best = Math.max(best, m.peerFrom() + (Math.min(acked, m.dTo()) - m.dFrom()));
      }
    }
    return best;
  }

  @JsonIgnore
  public boolean isLinked() {
    return status == Status.LINKED;
  }
}
