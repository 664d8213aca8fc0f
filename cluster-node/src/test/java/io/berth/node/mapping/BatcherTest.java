package io.berth.node.mapping;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class BatcherTest {

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(Batcher.Cut c) {
    return new String(c.data(), StandardCharsets.UTF_8);
  }

  private static Mapping.Criteria criteria(int min, int max, int frames, String delimiter, int delayMs) {
    return new Mapping.Criteria(min, max, frames, delimiter == null ? null : b(delimiter), delayMs);
  }

  @Test
  void withoutLimitsEverythingBufferedGoes() {
    Batcher batcher = new Batcher(Mapping.Criteria.NONE);
    batcher.add(1, b("ab"), 0, 0);
    batcher.add(2, b("cd"), 0, 0);
    Batcher.Cut cut = batcher.ready(0, false).orElseThrow();
    assertThat(text(cut)).isEqualTo("abcd");
    assertThat(cut.seqFrom()).isEqualTo(1);
    assertThat(cut.seqTo()).isEqualTo(2);
    assertThat(cut.endsFrame()).isTrue();
    assertThat(batcher.isEmpty()).isTrue();
  }

  @Test
  void aClearedBatcherHoldsNothingSoTheSameNumbersAreTakenAgain() {
    Batcher batcher = new Batcher(criteria(100, 0, 0, null, 0));
    batcher.add(1, b("ab"), 0, 0);
    batcher.add(2, b("cd"), 0, 0);
    assertThat(batcher.highestSeq()).isEqualTo(2);
    batcher.clear();
    assertThat(batcher.isEmpty()).isTrue();
    assertThat(batcher.highestSeq()).isZero();
  }

  @Test
  void aDelimiterSplitAcrossFramesCutsRightAfterIt() {
    Batcher batcher = new Batcher(criteria(0, 0, 0, "\r\n", 0));
    batcher.add(1, b("temp=21\r"), 0, 0);
    assertThat(batcher.ready(0, false)).isEmpty();
    batcher.add(2, b("\nhum=40"), 0, 0);
    Batcher.Cut cut = batcher.ready(0, false).orElseThrow();
    assertThat(text(cut)).isEqualTo("temp=21\r\n");
    assertThat(cut.seqTo()).isEqualTo(2);
    assertThat(cut.offsetTo()).isEqualTo(1);
    assertThat(cut.endsFrame()).isFalse();
    // The rest of frame 2 starts the next batch.
    batcher.add(3, b("\r\n"), 0, 0);
    Batcher.Cut next = batcher.ready(0, false).orElseThrow();
    assertThat(text(next)).isEqualTo("hum=40\r\n");
    assertThat(next.seqFrom()).isEqualTo(2);
    assertThat(next.offsetFrom()).isEqualTo(1);
    assertThat(next.batchId("d1")).isEqualTo("d1:2.1");
  }

  @Test
  void eachDelimitedMessageIsItsOwnBatch() {
    Batcher batcher = new Batcher(criteria(0, 0, 0, "\n", 0));
    batcher.add(1, b("a\nb\nc"), 0, 0);
    assertThat(text(batcher.ready(0, false).orElseThrow())).isEqualTo("a\n");
    assertThat(text(batcher.ready(0, false).orElseThrow())).isEqualTo("b\n");
    assertThat(batcher.ready(0, false)).isEmpty();
  }

  @Test
  void maxBytesAlwaysSplits() {
    Batcher batcher = new Batcher(criteria(0, 4, 0, null, 0));
    batcher.add(1, b("abcdefghij"), 0, 0);
    assertThat(text(batcher.ready(0, false).orElseThrow())).isEqualTo("abcd");
    assertThat(text(batcher.ready(0, false).orElseThrow())).isEqualTo("efgh");
    assertThat(batcher.ready(0, false)).isEmpty();
    Batcher.Cut rest = batcher.ready(0, true).orElseThrow();
    assertThat(text(rest)).isEqualTo("ij");
    assertThat(rest.endsFrame()).isTrue();
  }

  @Test
  void maxDelayFlushesAShortBatch() {
    Batcher batcher = new Batcher(criteria(0, 1000, 0, null, 50));
    batcher.add(1, b("x"), 0, 0);
    assertThat(batcher.ready(49_000_000L, false)).isEmpty();
    assertThat(batcher.dueAtNanos()).isEqualTo(50_000_000L);
    assertThat(text(batcher.ready(50_000_000L, false).orElseThrow())).isEqualTo("x");
  }

  @Test
  void minBytesWaitsEvenPastTheDelay() {
    Batcher batcher = new Batcher(criteria(10, 0, 0, null, 50));
    batcher.add(1, b("12345"), 0, 0);
    assertThat(batcher.ready(1_000_000_000L, false)).isEmpty();
    batcher.add(2, b("67890"), 0, 0);
    assertThat(text(batcher.ready(1_000_000_000L, false).orElseThrow())).isEqualTo("1234567890");
  }

  @Test
  void maxFramesCutsAfterThatManyFrames() {
    Batcher batcher = new Batcher(criteria(0, 0, 2, null, 0));
    batcher.add(1, b("a"), 0, 0);
    assertThat(batcher.ready(0, false)).isEmpty();
    batcher.add(2, b("b"), 0, 0);
    batcher.add(3, b("c"), 0, 0);
    Batcher.Cut cut = batcher.ready(0, false).orElseThrow();
    assertThat(text(cut)).isEqualTo("ab");
    assertThat(cut.seqTo()).isEqualTo(2);
  }

  @Test
  void aRecordedBoundaryIsCutAgainExactly() {
    Batcher batcher = new Batcher(criteria(0, 0, 0, "\n", 0));
    batcher.add(4, b("xy"), 1, 0); // byte 0 of frame 4 was delivered before
    batcher.add(5, b("z\nw"), 0, 0);
    Optional<Batcher.Cut> cut = batcher.readyUpTo(5, 2);
    assertThat(cut).isPresent();
    assertThat(text(cut.get())).isEqualTo("yz\n");
    assertThat(cut.get().seqFrom()).isEqualTo(4);
    assertThat(cut.get().offsetFrom()).isEqualTo(1);
  }

  @Test
  void emptyFramesAreDeliveredWithTheirNeighbours() {
    Batcher batcher = new Batcher(Mapping.Criteria.NONE);
    batcher.add(1, b(""), 0, 0);
    Batcher.Cut cut = batcher.ready(0, false).orElseThrow();
    assertThat(cut.seqTo()).isEqualTo(1);
    assertThat(cut.endsFrame()).isTrue();
    assertThat(batcher.isEmpty()).isTrue();
  }
}
