package io.berth.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the endpoint scenario's webhook took, frame by frame. Each frame a device sends is
 * {@value #FRAME_BYTES} bytes whose first eight are its number on that device (0, 1, 2, ...);
 * with no delimiter and no {@code maxBytes} a batch holds whole frames, so the webhook can split
 * a batch's {@code data} back into them and count each number per socket in a
 * {@link SequenceCheck}, after checking that they are the frames the batch's {@code seqFrom} and
 * {@code seqTo} name. A batch whose {@code batchId} was taken before is a redelivery, which the
 * endpoint contract says to answer without processing again (docs/ENDPOINTS.md): it is counted
 * apart and not checked again. So, per socket: a number taken from two different batches is a
 * duplicate, a number the device sent and had acknowledged but never taken here is lost.
 */
final class EndpointLedger {

  static final int FRAME_BYTES = 64;

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Map<String, SequenceCheck> sockets = new ConcurrentHashMap<>();
  private final Set<String> batches = ConcurrentHashMap.newKeySet();
  private final AtomicLong invocations = new AtomicLong();
  private final AtomicLong redelivered = new AtomicLong();
  private final AtomicLong malformed = new AtomicLong();

  /** A frame for this ledger: {@code number} in its first eight bytes, zeros after. */
  static byte[] frame(long number) {
    return ByteBuffer.allocate(FRAME_BYTES).putLong(number).array();
  }

  /**
   * Takes one request body; only {@code data} events count as invocations. A batch must hold
   * exactly the frames its {@code seqFrom}..{@code seqTo} name (a fresh device's frame numbered
   * {@code n} has sequence number {@code n + 1}); one that does not is counted as malformed and its
   * frames are not taken. A body that is not the endpoint contract's JSON throws, and its batch id
   * is not kept: a redelivery of it is taken as new.
   */
  void take(byte[] body) throws IOException {
    JsonNode event = JSON.readTree(body);
    if (!"data".equals(event.path("event").asText())) {
      return;
    }
    String batchId = event.path("batchId").asText();
    String socketId = event.path("socketId").asText();
    long seqFrom = event.path("seqFrom").asLong(-1);
    long seqTo = event.path("seqTo").asLong(-1);
    byte[] data = Base64.getDecoder().decode(event.path("data").asText());
    if (batchId.isEmpty() || socketId.isEmpty() || seqFrom < 1 || seqTo < seqFrom) {
      throw new IOException("not a data event of the endpoint contract: " + new String(body, StandardCharsets.UTF_8));
    }
    invocations.incrementAndGet();
    if (!batches.add(batchId)) {
      redelivered.incrementAndGet();
      return;
    }
    if (!holdsExactly(data, seqFrom, seqTo)) {
      malformed.incrementAndGet();
      return;
    }
    // The batch holds exactly the frames numbered seqFrom - 1 .. seqTo - 1: count those.
    SequenceCheck check = sockets.computeIfAbsent(socketId, id -> new SequenceCheck());
    for (long n = seqFrom - 1; n < seqTo; n++) {
      check.accept(n);
    }
  }

  /** Whether {@code data} is the whole frames numbered {@code seqFrom - 1} to {@code seqTo - 1}, in order. */
  private static boolean holdsExactly(byte[] data, long seqFrom, long seqTo) {
    if (data.length != (seqTo - seqFrom + 1) * FRAME_BYTES) {
      return false;
    }
    ByteBuffer frames = ByteBuffer.wrap(data);
    for (int i = 0; i * FRAME_BYTES < data.length; i++) {
      if (frames.getLong(i * FRAME_BYTES) != seqFrom - 1 + i) {
        return false;
      }
    }
    return true;
  }

  long invocations() {
    return invocations.get();
  }

  /** Batches delivered again under an id already taken (after a retry or a recovery). */
  long redelivered() {
    return redelivered.get();
  }

  /**
   * Batches whose data was not the whole frames their sequence numbers name: a batch cut inside a
   * frame (which the scenario's criteria rule out) or holding other bytes than the device sent.
   */
  long malformed() {
    return malformed.get();
  }

  /** Distinct frames taken from {@code socketId}. */
  long received(String socketId) {
    SequenceCheck check = sockets.get(socketId);
    return check == null ? 0 : check.received();
  }

  long duplicates() {
    return sockets.values().stream().mapToLong(SequenceCheck::duplicates).sum();
  }

  long outOfOrder() {
    return sockets.values().stream().mapToLong(SequenceCheck::outOfOrder).sum();
  }
}
