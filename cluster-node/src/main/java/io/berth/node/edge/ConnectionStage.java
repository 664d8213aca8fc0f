package io.berth.node.edge;

import io.berth.protocol.Decoded;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.FlowShape;
import org.apache.pekko.stream.Inlet;
import org.apache.pekko.stream.Outlet;
import org.apache.pekko.stream.SubscriptionWithCancelException;
import org.apache.pekko.stream.stage.AbstractGraphStageWithMaterializedValue;
import org.apache.pekko.stream.stage.AbstractInOutHandler;
import org.apache.pekko.stream.stage.AsyncCallback;
import org.apache.pekko.stream.stage.GraphStageLogic;
import org.apache.pekko.util.ByteString;

/**
 * All of a device connection's stream in one stage, between the TCP connection and its {@link
 * DeviceSession}: bytes in are cut into frames, decoded and handed to the session in batches;
 * frames the session queues on the {@link Connection} are encoded and written out.
 *
 * <p>Why one stage: the same work as a chain of stock operators (framing, decoding, batching,
 * an actor sink, a bounded queue, kill switches) cost about 18 stage logics per connection, each
 * with its own bookkeeping, and was most of an idle socket's memory (docs/edge.md).
 *
 * <p>Inbound: whatever was read while the session was busy goes in the next {@link
 * DeviceSession.Inbound}; one batch is with the session at a time, and reading stops while the
 * next one holds {@code max-batch-bytes}, so TCP slows the device down. A length field outside
 * 1..{@code max-frame-size} is reported as soon as its four bytes are in (before any body is
 * buffered) and, since the byte stream cannot be trusted after it, the rest of the input is read
 * and discarded: the device still gets the session's ERROR and our FIN instead of a reset.
 *
 * <p>Outbound: {@link Connection#offer} queues without blocking the session; ACKs are cumulative
 * and replace each other, so a device that reads slowly never makes them pile up. Each write
 * takes what waits, up to {@code max-batch-bytes}. Completing the outbound side writes what is
 * queued and then a FIN, while the input is still read (half-close).
 */
final class ConnectionStage
    extends AbstractGraphStageWithMaterializedValue<FlowShape<ByteString, ByteString>, ConnectionStage.Connection> {

  private static final Object WAKE = "wake";
  private static final Object READY = "ready";

  private final Inlet<ByteString> in = Inlet.create("Connection.in");
  private final Outlet<ByteString> out = Outlet.create("Connection.out");
  private final FlowShape<ByteString, ByteString> shape = FlowShape.of(in, out);
  private final ActorRef<DeviceSession.Command> session;
  private final int maxFrameSize;
  private final long maxBatchBytes;
  private final int outboundBuffer;

  ConnectionStage(ActorRef<DeviceSession.Command> session, int maxFrameSize, long maxBatchBytes, int outboundBuffer) {
    this.session = session;
    this.maxFrameSize = maxFrameSize;
    this.maxBatchBytes = maxBatchBytes;
    this.outboundBuffer = outboundBuffer;
  }

  @Override
  public FlowShape<ByteString, ByteString> shape() {
    return shape;
  }

  @Override
  public Pair<GraphStageLogic, Connection> createLogicAndMaterializedValuePair(Attributes attributes) {
    Logic logic = new Logic();
    return Pair.create(logic, logic.connection);
  }

  /**
   * The session's side of its connection. Every method may be called from the session's thread
   * while the stage runs on its own.
   */
  static final class Connection {

    private final AsyncCallback<Object> signal;
    private final int capacity;
    // Guarded by this.
    private final ArrayDeque<Frame> queue = new ArrayDeque<>(DeviceSession.EMPTY_QUEUE);
    /** The newest ACK not yet written, and how many queued frames go before it. */
    private Frame.Ack ack;
    private int framesBeforeAck;
    private boolean completed;
    /** Aborted: what is offered or asked from now on is ignored. */
    private boolean aborted;
    /** The stage found nothing to write and waits for a {@link #WAKE}. */
    private boolean waiting;
    private boolean stopped;

    private Connection(AsyncCallback<Object> signal, int capacity) {
      this.signal = signal;
      this.capacity = capacity;
    }

    /**
     * Queues a frame for the device. False when {@code outbound-buffer} frames already wait: the
     * device does not read. Frames offered after {@link #complete} or the end are ignored.
     */
    boolean offer(Frame frame) {
      boolean wake;
      synchronized (this) {
        if (completed || stopped || aborted) {
          return true;
        }
        if (frame instanceof Frame.Ack a) {
          if (ack == null) {
            ack = a;
            framesBeforeAck = queue.size();
          } else if (a.seq() > ack.seq()) {
            ack = a;
          }
        } else if (queue.size() >= capacity) {
          return false;
        } else {
          queue.add(frame);
        }
        wake = waiting;
        waiting = false;
      }
      if (wake) {
        signal.invoke(WAKE);
      }
      return true;
    }

    /** Writes what is queued, then ends the outbound side (FIN); the input is still read. */
    void complete() {
      boolean wake;
      synchronized (this) {
        if (completed || stopped) {
          return;
        }
        completed = true;
        wake = waiting;
        waiting = false;
      }
      if (wake) {
        signal.invoke(WAKE);
      }
    }

    /** The session took the last {@link DeviceSession.Inbound}: the next one may come. */
    void ready() {
      if (!isStopped()) {
        signal.invoke(READY);
      }
    }

    /** Tears the connection down at once, unwritten frames included; only the first call counts. */
    void abort(Throwable cause) {
      synchronized (this) {
        if (stopped || aborted) {
          return;
        }
        aborted = true;
        queue.clear();
        ack = null;
      }
      signal.invoke(cause);
    }

    /** The session is gone: abort, unless it completed the outbound side first (then it flushes). */
    void ownerStopped() {
      synchronized (this) {
        if (completed) {
          return;
        }
      }
      abort(new IllegalStateException("the connection's session stopped"));
    }

    private synchronized boolean isStopped() {
      return stopped;
    }

    private synchronized void stop() {
      stopped = true;
      queue.clear();
    }

    /**
     * What waits, in order, up to about {@code maxBytes}; null if nothing does (the stage then
     * waits for a wake-up, unless the outbound side is complete).
     */
    private synchronized OutboundBatch take(long maxBytes) {
      if (queue.isEmpty() && ack == null) {
        waiting = !completed;
        return null;
      }
      OutboundBatch batch = new OutboundBatch();
      long bytes = 0;
      while (true) {
        if (ack != null && framesBeforeAck == 0) {
          batch.add(ack);
          ack = null;
        }
        if (queue.isEmpty() || bytes >= maxBytes) {
          return batch;
        }
        Frame next = queue.poll();
        batch.add(next);
        bytes += OutboundBatch.weight(next);
        framesBeforeAck--;
      }
    }

    private synchronized boolean isDone() {
      return completed && queue.isEmpty() && ack == null;
    }
  }

  private final class Logic extends GraphStageLogic {

    private final Connection connection;
    /** Bytes read and not yet a whole frame. */
    private ByteString buffer = ByteString.emptyByteString();
    private List<Decoded> batch = new ArrayList<>();
    private long batchWeight;
    /** A batch is with the session, which has not called {@link Connection#ready} yet. */
    private boolean withSession;
    /** A bad length field: the input is read and discarded from here on. */
    private boolean discarding;
    /** The session was told that the input ended. */
    private boolean endTold;

    Logic() {
      super(shape);
      connection = new Connection(createAsyncCallback(this::onSignal), outboundBuffer);
      setHandlers(in, out, new AbstractInOutHandler() {
        @Override
        public void onPush() {
          ByteString chunk = grab(in);
          if (!discarding) {
            buffer = buffer.concat(chunk);
            cutFrames();
          }
          dispatch();
          pullIfRoom();
        }

        @Override
        public void onUpstreamFinish() {
          // A frame cut short by the end of the input is dropped: nobody is left to answer.
          buffer = ByteString.emptyByteString();
          dispatch();
        }

        @Override
        public void onUpstreamFailure(Throwable cause) {
          batch = new ArrayList<>();
          tellEnd(cause);
        }

        @Override
        public void onPull() {
          write();
        }

        @Override
        public void onDownstreamFinish(Throwable cause) {
          // TCP's write side went away: a failure unless it is an orderly cancellation.
          tellEnd(cause instanceof SubscriptionWithCancelException.NonFailureCancellation ? null : cause);
          cancelStage(cause);
        }
      });
    }

    @Override
    public void preStart() {
      pull(in);
    }

    @Override
    public void postStop() {
      connection.stop();
      tellEnd(null);
    }

    private void onSignal(Object signal) {
      if (signal == WAKE) {
        if (isAvailable(out)) {
          write();
        }
      } else if (signal == READY) {
        withSession = false;
        dispatch();
        pullIfRoom();
      } else {
        Throwable cause = (Throwable) signal;
        tellEnd(cause);
        failStage(cause);
      }
    }

    private void cutFrames() {
      while (buffer.size() >= FrameCodec.HEADER_SIZE) {
        long declared = ((buffer.apply(0) & 0xFFL) << 24) | ((buffer.apply(1) & 0xFF) << 16)
            | ((buffer.apply(2) & 0xFF) << 8) | (buffer.apply(3) & 0xFF);
        Decoded badLength = FrameCodec.checkDeclaredLength(declared, maxFrameSize);
        if (badLength != null) {
          add(badLength);
          discarding = true;
          buffer = ByteString.emptyByteString();
          return;
        }
        int size = FrameCodec.HEADER_SIZE + (int) declared;
        if (buffer.size() < size) {
          return;
        }
        add(FrameCodec.decode(buffer.slice(0, size).asByteBuffer(), maxFrameSize));
        buffer = buffer.drop(size);
      }
    }

    private void add(Decoded decoded) {
      batch.add(decoded);
      batchWeight += weight(decoded);
    }

    /** Hands the batch to the session if it has none; tells it the input ended once all is handed. */
    private void dispatch() {
      if (!withSession && !batch.isEmpty()) {
        session.tell(new DeviceSession.Inbound(connection, batch));
        batch = new ArrayList<>();
        batchWeight = 0;
        withSession = true;
      }
      if (batch.isEmpty() && isClosed(in)) {
        tellEnd(null);
      }
    }

    private void pullIfRoom() {
      if (!isClosed(in) && !hasBeenPulled(in) && (discarding || batchWeight < maxBatchBytes)) {
        pull(in);
      }
    }

    private void write() {
      OutboundBatch next = connection.take(maxBatchBytes);
      if (next != null) {
        push(out, next.encode());
      } else if (connection.isDone()) {
        complete(out);
      }
    }

    private void tellEnd(Throwable cause) {
      if (!endTold) {
        endTold = true;
        session.tell(cause == null ? DeviceSession.StreamCompleted.INSTANCE : new DeviceSession.StreamFailed(cause));
      }
    }
  }

  /** Bytes a decoded frame holds on to, so that a batch stays bounded whatever the frame size. */
  private static long weight(Decoded decoded) {
    if (decoded instanceof Decoded.Ok ok && ok.frame() instanceof Frame.Data d) {
      return FrameCodec.HEADER_SIZE + FrameCodec.DATA_OVERHEAD + d.payload().length;
    }
    return 64;
  }
}
