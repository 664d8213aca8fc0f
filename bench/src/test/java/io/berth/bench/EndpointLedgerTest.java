package io.berth.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.junit.jupiter.api.Test;

class EndpointLedgerTest {

  private final EndpointLedger ledger = new EndpointLedger();

  @Test
  void framesOfABatchCountOncePerSocketAndTheRestIsMissing() throws Exception {
    ledger.take(data("d1", "d1:1.0", 0, 1, 2));
    ledger.take(data("d1", "d1:4.0", 3));
    ledger.take(data("d2", "d2:1.0", 0));

    assertThat(ledger.invocations()).isEqualTo(3);
    assertThat(ledger.received("d1")).isEqualTo(4);
    assertThat(ledger.received("d2")).isEqualTo(1);
    assertThat(ledger.received("d3")).isZero();
    assertThat(ledger.duplicates()).isZero();
    assertThat(ledger.outOfOrder()).isZero();
  }

  @Test
  void aBatchIdTakenBeforeIsARedeliveryNotADuplicate() throws Exception {
    ledger.take(data("d1", "d1:1.0", 0, 1));
    ledger.take(data("d1", "d1:1.0", 0, 1));

    assertThat(ledger.redelivered()).isEqualTo(1);
    assertThat(ledger.duplicates()).isZero();
    assertThat(ledger.received("d1")).isEqualTo(2);
  }

  @Test
  void aFrameInTwoBatchesIsADuplicateAndAnEarlierOneLateIsReordered() throws Exception {
    ledger.take(data("d1", "d1:1.0", 0, 1));
    ledger.take(data("d1", "d1:2.0", 1, 3));
    ledger.take(data("d1", "d1:3.0", 2));

    assertThat(ledger.duplicates()).isEqualTo(1);
    assertThat(ledger.outOfOrder()).isEqualTo(1);
    assertThat(ledger.received("d1")).isEqualTo(4);
  }

  @Test
  void dataThatIsNotWholeFramesIsCountedAsCutAndOpenAndCloseAreNotInvocations() throws Exception {
    String cut = Base64.getEncoder().encodeToString(new byte[EndpointLedger.FRAME_BYTES + 3]);
    ledger.take(json("{\"event\":\"data\",\"socketId\":\"d1\",\"batchId\":\"d1:1.0\",\"data\":\"" + cut + "\"}"));
    ledger.take(json("{\"event\":\"open\",\"socketId\":\"d1\"}"));
    ledger.take(json("{\"event\":\"close\",\"socketId\":\"d1\"}"));

    assertThat(ledger.malformed()).isEqualTo(1);
    assertThat(ledger.invocations()).isEqualTo(1);
    assertThat(ledger.received("d1")).isZero();
  }

  private static byte[] data(String socketId, String batchId, long... frames) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (long n : frames) {
      bytes.writeBytes(EndpointLedger.frame(n));
    }
    return json("{\"event\":\"data\",\"socketId\":\"" + socketId + "\",\"batchId\":\"" + batchId + "\",\"data\":\""
        + Base64.getEncoder().encodeToString(bytes.toByteArray()) + "\"}");
  }

  private static byte[] json(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
