package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Batcher;
import io.berth.node.mapping.EndpointCall;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingActor;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.protocol.CloseCode;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** What a socket sends its HTTP endpoint next, one call at a time, with the clock passed in. */
class EndpointDispatchTest {

  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");
  private static final long MS = 1_000_000;

  private static Mapping http(Mapping.Criteria criteria, Mapping.Event... events) {
    return new Mapping("hook", 1, "http://127.0.0.1:9/hook", EnumSet.of(Mapping.Event.DATA, events), criteria, 1000,
        Mapping.Retry.DEFAULT, "s", 30_000, false);
  }

  private static final Mapping DATA_ONLY = http(Mapping.Criteria.NONE);
  private static final Mapping WITH_CLOSE = http(Mapping.Criteria.NONE, Mapping.Event.CLOSE);
  /** Batches of at least 100 bytes, or after 50 ms. */
  private static final Mapping DELAYED = http(new Mapping.Criteria(0, 100, 0, null, 50));

  private static SocketState opened(Mapping mapping, boolean asksEndpoint) {
    return SocketEntity.apply(SocketState.EMPTY, new SocketEvent.Opened("d", mapping, null, "e", 0, AT, asksEndpoint));
  }

  private static List<Frame.Data> frames(long from, long to) {
    return LongStream.rangeClosed(from, to)
        .mapToObj(s -> new Frame.Data(s, ("f" + s).getBytes(StandardCharsets.UTF_8))).toList();
  }

  /** The endpoint's answer to {@code batchId}: nothing to say. */
  private static MappingActor.Result ok(String batchId) {
    return new MappingActor.Delivered(batchId, EndpointCall.Answer.NOTHING);
  }

  private static MappingActor.Result replying(String batchId, String reply, String link, String close) {
    return new MappingActor.Delivered(batchId, new EndpointCall.Answer(
        reply == null ? null : reply.getBytes(StandardCharsets.UTF_8), link, close, null));
  }

  private static String text(byte[] data) {
    return new String(data, StandardCharsets.UTF_8);
  }

  @Test
  void anOpenWaitingForItsAnswerIsSentFirstWithTheConnectionsBatchId() {
    SocketState s = opened(http(Mapping.Criteria.NONE, Mapping.Event.OPEN), true);
    EndpointDispatch d = new EndpointDispatch("sock", s.mapping());
    d.openDue();
    d.offerAll(s, frames(1, 2), Long.MAX_VALUE, 0);
    EndpointDispatch.Call open = (EndpointDispatch.Call) d.next(s, 0);
    assertThat(open.event()).isEqualTo(Mapping.Event.OPEN);
    assertThat(open.batchId()).isEqualTo("sock:open:1").isEqualTo(d.openBatchId(1));
    assertThat(d.next(s, 0)).as("one call at a time").isEqualTo(EndpointDispatch.Idle.INSTANCE);
    EndpointDispatch.OpenAnswered answered = (EndpointDispatch.OpenAnswered) d.answered(s,
        replying("sock:open:1", "hi", "other/sock", null), 0, 0, AT);
    assertThat(answered.answer().link()).isEqualTo("other/sock");
    assertThat(answered.out()).extracting(Frame.Data::seq).as("numbered after the outbox").containsExactly(1L);
    assertThat(d.next(s, 0)).isInstanceOf(EndpointDispatch.StartBatch.class);
  }

  @Test
  void bufferedFramesBecomeABatchToRecordThenSend() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 3), Long.MAX_VALUE, 0);
    assertThat(d.taken(s)).isEqualTo(3);
    EndpointDispatch.StartBatch batch = (EndpointDispatch.StartBatch) d.next(s, 0);
    assertThat(batch.call().batchId()).isEqualTo("sock:1.0");
    assertThat(batch.call().event()).isEqualTo(Mapping.Event.DATA);
    assertThat(text(batch.call().data())).isEqualTo("f1f2f3");
    assertThat(batch.cut().seqTo()).isEqualTo(3);
    assertThat(d.isQuiet()).isFalse();
  }

  @Test
  void onlyTheNextFrameAfterWhatTheEndpointHasIsBuffered() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offer(s, frames(2, 2).get(0), 0);
    assertThat(d.taken(s)).as("frame 1 is missing").isZero();
    d.offerAll(s, frames(1, 5), 3, 0);
    assertThat(d.taken(s)).isEqualTo(3);
    d.offerAll(s, frames(1, 5), Long.MAX_VALUE, 0);
    assertThat(d.taken(s)).isEqualTo(5);
  }

  @Test
  void aBatchRecordedBeforeTheRestartIsSentAgainIdenticalOnceItsBytesAreBack() {
    SocketState s = opened(DATA_ONLY, false);
    s = SocketEntity.apply(s, new SocketEvent.BatchStarted("sock:1.0", 1, 0, 2, 2, true, AT));
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 1), Long.MAX_VALUE, 0);
    assertThat(d.next(s, 0)).as("frame 2 is not back yet").isEqualTo(EndpointDispatch.Idle.INSTANCE);
    d.offerAll(s, frames(1, 3), Long.MAX_VALUE, 0);
    EndpointDispatch.Call again = (EndpointDispatch.Call) d.next(s, 0);
    assertThat(again.batchId()).isEqualTo("sock:1.0");
    assertThat(text(again.data())).isEqualTo("f1f2");
    assertThat(again.seqTo()).isEqualTo(2);
  }

  @Test
  void theAnswerToABatchCompletesItAndTheNextOneGoesInTheSameWrite() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 2), Long.MAX_VALUE, 0);
    EndpointDispatch.StartBatch first = (EndpointDispatch.StartBatch) d.next(s, 0);
    s = SocketEntity.apply(s, new SocketEvent.BatchStarted(first.call().batchId(), 1, 0, 2, 2, true, AT));
    d.offerAll(s, frames(3, 3), Long.MAX_VALUE, 0);
    assertThat(d.answered(s, ok("someone-else:1.0"), 0, 0, AT)).as("an answer from a replaced endpoint actor")
        .isEqualTo(EndpointDispatch.Stale.INSTANCE);
    EndpointDispatch.BatchDone done = (EndpointDispatch.BatchDone) d.answered(s,
        replying("sock:1.0", "ok", null, null), 7, 0, AT);
    Accepted accepted = done.event();
    assertThat(accepted.lastAccepted()).isEqualTo(2);
    assertThat(accepted.frames()).isEqualTo(2);
    assertThat(accepted.bytes()).isEqualTo(4);
    assertThat(accepted.batchId()).isEqualTo("sock:1.0");
    assertThat(accepted.downlinkAcked()).isEqualTo(7);
    assertThat(accepted.outbound()).hasSize(1);
    assertThat(done.next().call().batchId()).isEqualTo("sock:3.0");
    assertThat(d.next(s, 0)).as("one call at a time").isEqualTo(EndpointDispatch.Idle.INSTANCE);
  }

  @Test
  void anEndpointThatClosesGetsNoNextBatch() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 1), Long.MAX_VALUE, 0);
    EndpointDispatch.StartBatch first = (EndpointDispatch.StartBatch) d.next(s, 0);
    s = SocketEntity.apply(s, new SocketEvent.BatchStarted(first.call().batchId(), 1, 0, 1, 2, true, AT));
    d.offerAll(s, frames(2, 2), Long.MAX_VALUE, 0);
    EndpointDispatch.BatchDone done = (EndpointDispatch.BatchDone) d.answered(s,
        replying("sock:1.0", null, null, "enough"), 0, 0, AT);
    assertThat(done.next()).isNull();
    assertThat(done.answer().close()).isEqualTo("enough");
  }

  @Test
  void aParkedBatchCompletesLikeADeliveredOneWithItsParkedId() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 1), Long.MAX_VALUE, 0);
    EndpointDispatch.StartBatch first = (EndpointDispatch.StartBatch) d.next(s, 0);
    s = SocketEntity.apply(s, new SocketEvent.BatchStarted(first.call().batchId(), 1, 0, 1, 2, true, AT));
    EndpointDispatch.BatchDone done = (EndpointDispatch.BatchDone) d.answered(s,
        new MappingActor.Parked("sock:1.0", "parked-9", "503"), 0, 0, AT);
    assertThat(done.event().parkedId()).isEqualTo("parked-9");
    assertThat(done.event().lastAccepted()).isEqualTo(1);
  }

  @Test
  void aBatchEndingInsideAFrameLeavesTheWatermarkBeforeItAndRecordsTheOffset() {
    SocketState s = opened(DATA_ONLY, false);
    Batcher.Cut cut = new Batcher.Cut(1, 0, 3, 1, false, new byte[5]);
    Accepted a = EndpointDispatch.accepted(s, cut, List.of(), 0, "sock:1.0", "parked-1", AT);
    assertThat(a.lastAccepted()).isEqualTo(2);
    assertThat(a.partialOffset()).isEqualTo(1);
    assertThat(a.parkedId()).isEqualTo("parked-1");
  }

  @Test
  void aShortBufferWaitsForTheMaximumDelayWithTheClockPassedIn() {
    SocketState s = opened(DELAYED, false);
    EndpointDispatch d = new EndpointDispatch("sock", DELAYED);
    d.offerAll(s, frames(1, 1), Long.MAX_VALUE, 10 * MS);
    EndpointDispatch.Wait wait = (EndpointDispatch.Wait) d.next(s, 20 * MS);
    assertThat(wait.nanos()).isEqualTo(40 * MS);
    assertThat(((EndpointDispatch.Wait) d.next(s, 59_500_000)).nanos()).as("at least a millisecond").isEqualTo(MS);
    assertThat(d.next(s, 60 * MS)).isInstanceOf(EndpointDispatch.StartBatch.class);
  }

  @Test
  void aCloseFlushesTheBufferThenSendsTheCloseEventThenFinishes() {
    SocketState s = opened(WITH_CLOSE, false);
    EndpointDispatch d = new EndpointDispatch("sock", WITH_CLOSE);
    d.offerAll(s, frames(1, 1), Long.MAX_VALUE, 0);
    Ending ending = Ending.byDevice(CloseCode.NORMAL.wire, "bye");
    d.close(ending);
    assertThat(d.isClosing()).isTrue();
    EndpointDispatch.StartBatch flush = (EndpointDispatch.StartBatch) d.next(s, 0);
    SocketState flushing = SocketEntity.apply(s,
        new SocketEvent.BatchStarted(flush.call().batchId(), 1, 0, 1, 2, true, AT));
    EndpointDispatch.BatchDone flushed = (EndpointDispatch.BatchDone) d.answered(flushing,
        ok(flush.call().batchId()), 0, 0, AT);
    assertThat(flushed.next()).as("closing: no next batch in the same write").isNull();
    EndpointDispatch.Call closeEvent = (EndpointDispatch.Call) d.next(s, 0);
    assertThat(closeEvent.event()).isEqualTo(Mapping.Event.CLOSE);
    assertThat(closeEvent.batchId()).isEqualTo("sock:close:0");
    EndpointDispatch.Replied replied = (EndpointDispatch.Replied) d.answered(s,
        replying(closeEvent.batchId(), "bye", null, null), 0, 0, AT);
    assertThat(replied.out()).hasSize(1);
    assertThat(d.next(s, 0)).isEqualTo(new EndpointDispatch.Finish(ending));
    assertThat(d.isClosing()).isFalse();
    assertThat(d.isSpent()).isTrue();
  }

  @Test
  void aMappingWithoutTheCloseEventFinishesOnceTheBufferIsEmpty() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    Ending ending = Ending.byOperator("maintenance", null);
    d.close(ending);
    assertThat(d.next(s, 0)).isEqualTo(new EndpointDispatch.Finish(ending));
  }

  @Test
  void aSocketThatIsNotLiveOrNotHttpCallsNothing() {
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    SocketState closed = SocketEntity.apply(opened(DATA_ONLY, false), new SocketEvent.Closed(1000, "bye", 0, AT));
    d.offerAll(closed, frames(1, 1), Long.MAX_VALUE, 0);
    assertThat(d.next(closed, 0)).isEqualTo(EndpointDispatch.Idle.INSTANCE);
    assertThat(d.next(opened(Mapping.builtinDefault("echo"), false), 0)).isEqualTo(EndpointDispatch.Idle.INSTANCE);
  }

  @Test
  void theEndpointClosingDropsTheBufferAndTheCloseRequest() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 2), Long.MAX_VALUE, 0);
    d.close(Ending.byDevice(CloseCode.NORMAL.wire, "bye"));
    d.closedByEndpoint();
    assertThat(d.isClosing()).isFalse();
    assertThat(d.taken(s)).as("the same numbers are taken again").isZero();
    assertThat(d.isQuiet()).isTrue();
  }

  @Test
  void oneDispatchMessageIsOnItsWayAtATime() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    assertThat(d.schedule()).isTrue();
    assertThat(d.schedule()).isFalse();
    assertThat(d.isQuiet()).isFalse();
    d.next(s, 0);
    assertThat(d.isQuiet()).isTrue();
    assertThat(d.schedule()).isTrue();
  }

  @Test
  void aNewVersionOfTheMappingNeedsANewEndpointAndForgetsTheCallThatWasOut() {
    SocketState s = opened(DATA_ONLY, false);
    EndpointDispatch d = new EndpointDispatch("sock", DATA_ONLY);
    d.offerAll(s, frames(1, 1), Long.MAX_VALUE, 0);
    EndpointDispatch.StartBatch out = (EndpointDispatch.StartBatch) d.next(s, 0);
    Mapping v2 = new Mapping("hook", 2, "http://127.0.0.1:9/v2", EnumSet.of(Mapping.Event.DATA),
        Mapping.Criteria.NONE, 1000, Mapping.Retry.DEFAULT, "s", 30_000, false);
    assertThat(d.needsEndpoint(DATA_ONLY)).isFalse();
    assertThat(d.needsEndpoint(v2)).isTrue();
    d.newEndpoint(v2);
    assertThat(d.answered(s, ok(out.call().batchId()), 0, 0, AT)).isEqualTo(EndpointDispatch.Stale.INSTANCE);
    assertThat(d.isSpent()).isTrue();
  }
}
