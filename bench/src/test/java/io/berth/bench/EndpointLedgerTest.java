package io.berth.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
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
    assertThat(ledger.malformed()).isZero();
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
    ledger.take(data("d1", "d1:2.0", 1, 2));
    ledger.take(data("d1", "d1:5.0", 4));
    ledger.take(data("d1", "d1:4.0", 3));

    assertThat(ledger.duplicates()).isEqualTo(1);
    assertThat(ledger.outOfOrder()).isEqualTo(1);
    assertThat(ledger.received("d1")).isEqualTo(5);
    assertThat(ledger.malformed()).isZero();
  }

  @Test
  void dataThatIsNotTheFramesItsSequenceNumbersNameIsMalformedAndNotTaken() throws Exception {
    String cut = Base64.getEncoder().encodeToString(new byte[EndpointLedger.FRAME_BYTES + 3]);
    ledger.take(json("{\"event\":\"data\",\"socketId\":\"d1\",\"batchId\":\"d1:1.0\",\"seqFrom\":1,\"seqTo\":1,"
        + "\"data\":\"" + cut + "\"}"));
    // Whole frames, but not the ones seqFrom..seqTo name (frames 5 and 6 as sequence numbers 1 and 2).
    ledger.take(json("{\"event\":\"data\",\"socketId\":\"d1\",\"batchId\":\"d1:2.0\",\"seqFrom\":1,\"seqTo\":2,"
        + "\"data\":\"" + frames(5, 6) + "\"}"));

    assertThat(ledger.malformed()).isEqualTo(2);
    assertThat(ledger.invocations()).isEqualTo(2);
    assertThat(ledger.received("d1")).isZero();
  }

  @Test
  void openAndCloseAreNotInvocationsAndABodyOutsideTheContractIsRefusedWithoutKeepingItsId() throws Exception {
    ledger.take(json("{\"event\":\"open\",\"socketId\":\"d1\"}"));
    ledger.take(json("{\"event\":\"close\",\"socketId\":\"d1\"}"));
    assertThatThrownBy(() -> ledger.take(json("{\"event\":\"data\",\"socketId\":\"d1\",\"batchId\":\"d1:1.0\","
        + "\"data\":\"" + frames(0) + "\"}"))).isInstanceOf(IOException.class).hasMessageContaining("contract");
    assertThatThrownBy(() -> ledger.take(json("{not json"))).isInstanceOf(IOException.class);

    ledger.take(data("d1", "d1:1.0", 0));

    assertThat(ledger.invocations()).isEqualTo(1);
    assertThat(ledger.redelivered()).isZero();
    assertThat(ledger.received("d1")).isEqualTo(1);
  }

  /** A data event as Berth sends it: frames numbered n carry sequence number n + 1. */
  private static byte[] data(String socketId, String batchId, long... numbers) {
    return json("{\"event\":\"data\",\"socketId\":\"" + socketId + "\",\"batchId\":\"" + batchId + "\",\"seqFrom\":"
        + (numbers[0] + 1) + ",\"seqTo\":" + (numbers[numbers.length - 1] + 1) + ",\"data\":\"" + frames(numbers)
        + "\"}");
  }

  private static String frames(long... numbers) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (long n : numbers) {
      bytes.writeBytes(EndpointLedger.frame(n));
    }
    return Base64.getEncoder().encodeToString(bytes.toByteArray());
  }

  private static byte[] json(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
