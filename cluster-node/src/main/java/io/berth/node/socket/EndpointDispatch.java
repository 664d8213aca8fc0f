package io.berth.node.socket;

import io.berth.node.mapping.Batcher;
import io.berth.node.mapping.EndpointCall;
import io.berth.node.mapping.Mapping;
import io.berth.node.mapping.MappingActor;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.List;

/**
 * What a socket session sends its HTTP endpoint, one call at a time (docs/ENDPOINTS.md#delivery):
 * the open event while the open waits for its answer, a batch recorded before this incarnation
 * sent again identically, new batches cut by the mapping's criteria, and, when the session is to
 * close, the rest of the buffer and the close event. Allocated only for a socket whose mapping
 * is HTTP; the entity keeps the endpoint's actor, the journal and the timer.
 */
final class EndpointDispatch {

  /** The next thing to do for the endpoint. */
  sealed interface Step {}

  /** Nothing now: a call is out, nothing is due, or the socket is not live. */
  enum Idle implements Step {
    INSTANCE
  }

  /** Call the endpoint: the open event, a batch sent again, or the close event. */
  record Call(String batchId, Mapping.Event event, long seqFrom, long seqTo, byte[] data) implements Step {}

  /** A new batch: record its boundaries, then call the endpoint with it. */
  record StartBatch(Batcher.Cut cut, Call call) implements Step {}

  /** Look again in {@code nanos}: the buffer's oldest byte will have waited the maximum delay. */
  record Wait(long nanos) implements Step {}

  /** The endpoint has seen everything, the close event included: end the session. */
  record Finish(Ending ending) implements Step {}

  /** What an answer of the endpoint comes to. */
  sealed interface Outcome {}

  /** An answer from a replaced endpoint actor: nothing. */
  enum Stale implements Outcome {
    INSTANCE
  }

  /**
   * The answer to this connection's open, which decides where the data held meanwhile goes;
   * {@code out}: its reply as downlink frames.
   */
  record OpenAnswered(String batchId, List<Frame.Data> out, EndpointCall.Answer answer) implements Outcome {}

  /**
   * The endpoint took (or the mapping parked) a batch: the event that moves the watermark, and
   * the next batch to record in the same write (null: none).
   */
  record BatchDone(Accepted event, StartBatch next, EndpointCall.Answer answer) implements Outcome {}

  /** Any other answer (the close event's, an earlier connection's open): its reply goes down. */
  record Replied(String batchId, List<Frame.Data> out, EndpointCall.Answer answer) implements Outcome {}

  private final String socketId;
  private long version;
  private Batcher batcher;
  /** The batch id of the call that is out, or null. */
  private String invoking;
  /** The batch that call carries, until its answer is recorded. */
  private Batcher.Cut currentCut;
  /** The open's event is to be sent (again). */
  private boolean openDue;
  /** A {@code Dispatch} message is on its way to the entity. */
  private boolean scheduled;
  /** The session is to end once the endpoint has seen the rest of the buffer and the close event. */
  private Ending closing;
  private boolean closeEventSent;

  /** For a socket whose mapping is {@code mapping}, an HTTP one. */
  EndpointDispatch(String socketId, Mapping mapping) {
    this.socketId = socketId;
    newEndpoint(mapping);
  }

  /** Whether the endpoint's actor must be created again: the mapping changed since. */
  boolean needsEndpoint(Mapping mapping) {
    return version != mapping.version();
  }

  /**
   * A new endpoint actor for {@code mapping}: the call that was out went with the old one, and
   * the buffer starts again (the edge sends what was not acknowledged).
   */
  void newEndpoint(Mapping mapping) {
    invoking = null;
    currentCut = null;
    version = mapping.version();
    batcher = new Batcher(mapping.criteria());
  }

  /** The highest frame the endpoint has or holds: the watermark, or the last one buffered. */
  long taken(SocketState s) {
    return Math.max(s.lastAccepted(), batcher.highestSeq());
  }

  /**
   * Buffers the frame if it is the next one the endpoint has not had (from where an earlier
   * batch cut it, for the first after the watermark).
   */
  void offer(SocketState s, Frame.Data frame, long nowNanos) {
    if (frame.seq() == taken(s) + 1) {
      int from = frame.seq() == s.lastAccepted() + 1 ? (int) s.partialOffset() : 0;
      batcher.add(frame.seq(), frame.payload(), from, nowNanos);
    }
  }

  /** Buffers the frames numbered up to {@code upTo}, in order after what the buffer has. */
  void offerAll(SocketState s, Iterable<Frame.Data> frames, long upTo, long nowNanos) {
    for (Frame.Data frame : frames) {
      if (frame.seq() <= upTo) {
        offer(s, frame, nowNanos);
      }
    }
  }

  /** True if a {@code Dispatch} message must be sent: none is on its way. */
  boolean schedule() {
    if (scheduled) {
      return false;
    }
    scheduled = true;
    return true;
  }

  /** The open's event is to be sent (a new connection, or its answer was lost with the last incarnation). */
  void openDue() {
    openDue = true;
  }

  /** The session ends once the endpoint has seen the rest of the data and the close event. */
  void close(Ending ending) {
    closing = ending;
  }

  boolean isClosing() {
    return closing != null;
  }

  /** The endpoint closed the session itself: nothing buffered goes to it any more. */
  void closedByEndpoint() {
    batcher.clear();
    closing = null;
  }

  /**
   * The session is closed, whichever way: nothing buffered goes to the endpoint any more, and a
   * close that was under way through it is over. Returns that close (null: none), whose operator,
   * if one asked, is still to be answered.
   */
  Ending sessionClosed() {
    Ending pending = closing;
    batcher.clear();
    closing = null;
    closeEventSent = false;
    return pending;
  }

  /**
   * The next step, when the {@code Dispatch} message arrives: one call at a time, the open
   * first, a recorded batch before any new one, the close event after the last batch.
   */
  Step next(SocketState s, long nowNanos) {
    scheduled = false;
    boolean live = s.status() == SocketState.Status.OPEN || s.status() == SocketState.Status.DETACHED;
    if (!s.usesHttp() || invoking != null || !live) {
      return Idle.INSTANCE;
    }
    if (openDue) {
      openDue = false;
      if (s.openPending() != 0) {
        return call(openBatchId(s.openPending()), Mapping.Event.OPEN, s.lastAccepted(), s.lastAccepted(), null);
      }
    }
    if (s.inFlight() != null) {
      // A batch recorded before this incarnation: sent again, identical, once its bytes are back.
      return batcher.readyUpTo(s.inFlight().seqTo(), s.inFlight().offsetTo())
          .<Step>map(again -> {
            currentCut = again;
            return call(s.inFlight().batchId(), Mapping.Event.DATA, again.seqFrom(), again.seqTo(), again.data());
          })
          .orElse(Idle.INSTANCE);
    }
    Step batch = startBatch(nowNanos, closing != null);
    if (batch != null) {
      return batch;
    }
    long due = batcher.dueAtNanos();
    if (due > 0) {
      return new Wait(Math.max(1_000_000, due - nowNanos));
    }
    if (closing != null && batcher.isEmpty()) {
      if (s.mapping().receives(Mapping.Event.CLOSE) && !closeEventSent) {
        closeEventSent = true;
        return call(socketId + ":close:" + s.lastAccepted(), Mapping.Event.CLOSE, s.lastAccepted(),
            s.lastAccepted(), null);
      }
      Ending ending = closing;
      closing = null;
      closeEventSent = false;
      return new Finish(ending);
    }
    return Idle.INSTANCE;
  }

  /**
   * What the endpoint's answer (or the mapping's parking of a call) comes to. An answer for the
   * call that is out frees the endpoint; one that completes the recorded batch moves the
   * watermark, and the next batch, if one is due, is recorded in the same journal write as its
   * result (one write per batch instead of two), unless the session is to close.
   */
  Outcome answered(SocketState s, MappingActor.Result result, long downlinkAcked, long nowNanos, Instant at) {
    String batchId = result instanceof MappingActor.Delivered d ? d.batchId() : ((MappingActor.Parked) result).batchId();
    if (!batchId.equals(invoking)) {
      return Stale.INSTANCE;
    }
    invoking = null;
    EndpointCall.Answer answer = result instanceof MappingActor.Delivered d ? d.answer() : EndpointCall.Answer.NOTHING;
    List<Frame.Data> out = answer.reply() == null ? List.of()
        : DownlinkWindow.frames(s.lastDownlinkSeq(), answer.reply());
    if (s.openPending() != 0 && batchId.equals(openBatchId(s.openPending()))) {
      return new OpenAnswered(batchId, out, answer);
    }
    if (currentCut == null || s.inFlight() == null || !s.inFlight().batchId().equals(batchId)) {
      return new Replied(batchId, out, answer);
    }
    Batcher.Cut done = currentCut;
    currentCut = null;
    String parkedId = result instanceof MappingActor.Parked p ? p.parkedId() : null;
    Accepted event = accepted(s, done, out, downlinkAcked, batchId, parkedId, at);
    StartBatch next = answer.close() != null || closing != null ? null : startBatch(nowNanos, false);
    return new BatchDone(event, next, answer);
  }

  /** The watermark event for a batch the endpoint took (or parked), with the endpoint's answer. */
  static Accepted accepted(SocketState s, Batcher.Cut cut, List<Frame.Data> answer, long downlinkAcked,
      String batchId, String parkedId, Instant at) {
    long watermark = cut.endsFrame() ? cut.seqTo() : cut.seqTo() - 1;
    long partial = cut.endsFrame() ? 0 : cut.offsetTo();
    return new Accepted(watermark, partial, (int) (watermark - s.lastAccepted()), cut.data().length, 0, answer,
        downlinkAcked, batchId, parkedId, at);
  }

  String openBatchId(long connection) {
    return socketId + ":open:" + connection;
  }

  /** Nothing out, buffered, due or under way: the socket may sleep as far as its endpoint goes. */
  boolean isQuiet() {
    return invoking == null && batcher.isEmpty() && !openDue && !scheduled && closing == null;
  }

  /** Quiet, and nothing of a call or a close left: forgetting it changes nothing. */
  boolean isSpent() {
    return isQuiet() && currentCut == null && !closeEventSent;
  }

  private StartBatch startBatch(long nowNanos, boolean force) {
    return batcher.ready(nowNanos, force).map(c -> {
      currentCut = c;
      return new StartBatch(c, call(c.batchId(socketId), Mapping.Event.DATA, c.seqFrom(), c.seqTo(), c.data()));
    }).orElse(null);
  }

  private Call call(String batchId, Mapping.Event event, long seqFrom, long seqTo, byte[] data) {
    invoking = batchId;
    return new Call(batchId, event, seqFrom, seqTo, data);
  }
}
