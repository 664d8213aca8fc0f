package io.berth.node.mapping;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Optional;

/**
 * Buffers a socket's uplink bytes and cuts them into batches by the mapping's receive criteria
 * (docs/ENDPOINTS.md#criteria). A batch is a byte range over consecutive frames: it may start or
 * end inside a frame (a delimiter or {@code maxBytes} can cut anywhere), so boundaries are
 * (seq, offset) pairs and the socket's watermark only covers frames delivered to their last byte.
 */
public final class Batcher {

  /** A batch: from (seqFrom, offsetFrom) to (seqTo, offsetTo), end exclusive. */
  public record Cut(long seqFrom, int offsetFrom, long seqTo, int offsetTo, boolean endsFrame, byte[] data) {
    public String batchId(String socketId) {
      return socketId + ":" + seqFrom + "." + offsetFrom;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Cut c && c.seqFrom == seqFrom && c.offsetFrom == offsetFrom && c.seqTo == seqTo
          && c.offsetTo == offsetTo && c.endsFrame == endsFrame && Arrays.equals(c.data, data);
    }

    @Override
    public int hashCode() {
      return Long.hashCode(seqFrom * 31 + seqTo) + offsetFrom + offsetTo;
    }

    @Override
    public String toString() {
      return "Cut[" + seqFrom + "." + offsetFrom + " .. " + seqTo + "." + offsetTo + ", " + data.length + " bytes]";
    }
  }

  private static final class Segment {
    final long seq;
    final byte[] payload;
    int start;

    Segment(long seq, byte[] payload, int start) {
      this.seq = seq;
      this.payload = payload;
      this.start = start;
    }

    int length() {
      return payload.length - start;
    }
  }

  private final Mapping.Criteria criteria;
  private final ArrayDeque<Segment> segments = new ArrayDeque<>();
  private int bytes;
  private long highestSeq;
  private long firstAtNanos;

  public Batcher(Mapping.Criteria criteria) {
    this.criteria = criteria;
  }

  /** Appends a frame's payload from {@code fromOffset} (bytes before it were delivered already). */
  public void add(long seq, byte[] payload, int fromOffset, long nowNanos) {
    if (segments.isEmpty()) {
      firstAtNanos = nowNanos;
    }
    segments.addLast(new Segment(seq, payload, Math.min(fromOffset, payload.length)));
    bytes += payload.length - Math.min(fromOffset, payload.length);
    highestSeq = seq;
  }

  public long highestSeq() {
    return highestSeq;
  }

  public boolean isEmpty() {
    return segments.isEmpty();
  }

  public int bytes() {
    return bytes;
  }

  /**
   * Drops everything buffered (the socket closed): nothing is held any more, so frames with the
   * same numbers that come later, from the next connection, are taken.
   */
  public void clear() {
    segments.clear();
    bytes = 0;
    highestSeq = 0;
  }

  /** When the oldest buffered byte has waited {@code maxDelayMs}, or -1. */
  public long dueAtNanos() {
    if (segments.isEmpty() || criteria.maxDelayMs() <= 0) {
      return -1;
    }
    return firstAtNanos + criteria.maxDelayMs() * 1_000_000L;
  }

  /**
   * The next batch if the criteria call for one. {@code force} (the socket is closing): send what
   * is buffered regardless of minBytes and limits, still split by maxBytes.
   */
  public Optional<Cut> ready(long nowNanos, boolean force) {
    if (segments.isEmpty()) {
      return Optional.empty();
    }
    int max = criteria.maxBytes() > 0 ? criteria.maxBytes() : Integer.MAX_VALUE;
    if (force) {
      return Optional.of(cut(Math.min(bytes, max)));
    }
    if (bytes < criteria.minBytes()) {
      return Optional.empty();
    }
    if (!criteria.hasLimit()) {
      return Optional.of(cut(bytes));
    }
    if (criteria.delimiter() != null && criteria.delimiter().length > 0) {
      int end = firstDelimiterEnd();
      if (end > 0) {
        return Optional.of(cut(Math.min(end, max)));
      }
    }
    if (bytes >= max) {
      return Optional.of(cut(max));
    }
    if (criteria.maxFrames() > 0 && segments.size() >= criteria.maxFrames()) {
      int upTo = 0;
      int n = 0;
      for (Segment s : segments) {
        upTo += s.length();
        if (++n == criteria.maxFrames()) {
          break;
        }
      }
      return Optional.of(cut(Math.min(upTo, max)));
    }
    if (criteria.maxDelayMs() > 0 && nowNanos >= dueAtNanos()) {
      return Optional.of(cut(Math.min(bytes, max)));
    }
    return Optional.empty();
  }

  /**
   * The batch that ends exactly at (seqTo, offsetTo), if the buffer holds it: the boundary of a
   * batch that was recorded before a crash, sent again identically.
   */
  public Optional<Cut> readyUpTo(long seqTo, int offsetTo) {
    int upTo = 0;
    for (Segment s : segments) {
      if (s.seq == seqTo) {
        return Optional.of(cut(upTo + (offsetTo - s.start)));
      }
      upTo += s.length();
    }
    return Optional.empty();
  }

  /** Takes the first {@code length} buffered bytes out as a batch. */
  private Cut cut(int length) {
    byte[] data = new byte[length];
    Segment first = segments.peekFirst();
    long seqFrom = first.seq;
    int offsetFrom = first.start;
    int copied = 0;
    long seqTo = seqFrom;
    int offsetTo = offsetFrom;
    boolean endsFrame = false;
    while (copied < length) {
      Segment s = segments.peekFirst();
      int take = Math.min(s.length(), length - copied);
      System.arraycopy(s.payload, s.start, data, copied, take);
      copied += take;
      s.start += take;
      seqTo = s.seq;
      offsetTo = s.start;
      if (s.length() == 0) {
        segments.pollFirst();
        endsFrame = true;
      } else {
        endsFrame = false;
      }
    }
    // Empty frames right after the cut (or at the head of an empty cut) carry nothing: they
    // belong to this batch, or nothing would ever deliver them.
    while (!segments.isEmpty() && segments.peekFirst().length() == 0 && (endsFrame || length == 0)) {
      Segment s = segments.pollFirst();
      seqTo = s.seq;
      offsetTo = s.payload.length;
      endsFrame = true;
    }
    bytes -= length;
    if (!segments.isEmpty()) {
      firstAtNanos = System.nanoTime();
    }
    return new Cut(seqFrom, offsetFrom, seqTo, offsetTo, endsFrame, data);
  }

  /**
   * End position (exclusive, in buffered bytes) of the first complete delimiter, or -1: each
   * delimited message is its own batch.
   */
  private int firstDelimiterEnd() {
    byte[] d = criteria.delimiter();
    int pos = 0;
    int matched = 0;
    Iterator<Segment> it = segments.iterator();
    while (it.hasNext()) {
      Segment s = it.next();
      for (int i = s.start; i < s.payload.length; i++) {
        byte b = s.payload[i];
        pos++;
        // Delimiters are short: restart the match naively on a mismatch.
        if (b == d[matched]) {
          matched++;
        } else {
          matched = b == d[0] ? 1 : 0;
        }
        if (matched == d.length) {
          return pos;
        }
      }
    }
    return -1;
  }
}
