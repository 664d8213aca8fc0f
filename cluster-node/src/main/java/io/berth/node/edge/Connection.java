package io.berth.node.edge;

import io.berth.protocol.Decoded;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * A device's TCP connection, between its channel, served by the {@link EdgeSockets} thread, and
 * its {@link ConnectionActor}: bytes in are cut into frames, decoded and handed to the actor in
 * batches; frames the actor offers are encoded and written out.
 *
 * <p>Inbound: whatever was read while the actor was busy goes in the next {@link
 * ConnectionActor.Inbound}; one batch is with the actor at a time, and reading stops while the
 * next one holds {@code max-batch-bytes}, so TCP slows the device down. A length field outside
 * 1..{@code max-frame-size} is reported as soon as its four bytes are in (before any body is
 * buffered), an undefined type as soon as its byte is in, and, since the byte stream cannot be
 * trusted after them, the rest of the input is read and discarded: the device still gets the
 * actor's ERROR and our FIN instead of a reset.
 *
 * <p>Outbound: {@link #offer} queues without blocking the actor; ACKs are cumulative and
 * replace each other, so a device that reads slowly never makes them pile up. Each write takes
 * what waits, up to {@code max-batch-bytes}. {@link #complete} writes what is queued and then a
 * FIN, while the input is still read (half-close); the channel closes once both directions ended.
 *
 * <p>The actor's side may be called from any thread; the rest runs on the sockets' thread.
 * An idle connection holds no buffer: a partial frame is kept only between two reads.
 */
final class Connection {

  private final EdgeSockets sockets;
  private final SocketChannel channel;
  private final ActorRef<ConnectionActor.Command> actor;
  private final int maxFrameSize;
  private final long maxBatchBytes;
  private final int capacity;

  // Shared with the actor: guarded by this.
  private final ArrayDeque<Frame> queue = new ArrayDeque<>(ConnectionActor.EMPTY_QUEUE);
  /** The newest ACK not yet written, and how many queued frames go before it. */
  private Frame.Ack ack;
  private int framesBeforeAck;
  private boolean completed;
  /** Aborted: what is offered or asked from now on is ignored. */
  private boolean aborted;
  /** The sockets' thread found nothing to write: the next offer must wake it. */
  private boolean waiting = true;
  private boolean stopped;

  // The sockets' thread's own.
  private SelectionKey key;
  private int interest = -1;
  /** Bytes read and not yet a whole frame. */
  private byte[] partial;
  /** Frames read and not yet handed to the actor; null when none. */
  private List<Decoded> batch;
  private long batchWeight;
  /** A batch is with the actor, which has not called {@link #ready} yet. */
  private boolean withActor;
  /** A bad length field: the input is read and discarded from here on. */
  private boolean discarding;
  private boolean inputEnded;
  private boolean outputEnded;
  /** The actor was told that the input ended. */
  private boolean endTold;
  private ByteBuffer unwritten;
  private boolean closed;

  Connection(EdgeSockets sockets, SocketChannel channel, ActorRef<ConnectionActor.Command> actor,
      int maxFrameSize, long maxBatchBytes, int outboundBuffer) {
    this.sockets = sockets;
    this.channel = channel;
    this.actor = actor;
    this.maxFrameSize = maxFrameSize;
    this.maxBatchBytes = maxBatchBytes;
    this.capacity = outboundBuffer;
  }

  SocketChannel channel() {
    return channel;
  }

  // ------------------------------------------------------------------ the actor's side

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
      sockets.execute(this::write);
    }
    return true;
  }

  /** Writes what is queued, then ends the outbound side (FIN); the input is still read. */
  void complete() {
    boolean wake;
    synchronized (this) {
      if (completed || stopped || aborted) {
        return;
      }
      completed = true;
      wake = waiting;
      waiting = false;
    }
    if (wake) {
      sockets.execute(this::write);
    }
  }

  /** The actor took the last {@link ConnectionActor.Inbound}: the next one may come. */
  void ready() {
    if (!isStopped()) {
      sockets.execute(this::actorReady);
    }
  }

  /** Tears the connection down at once (a TCP reset), unwritten frames included; only the first call counts. */
  void abort(Throwable cause) {
    synchronized (this) {
      if (stopped || aborted) {
        return;
      }
      aborted = true;
      queue.clear();
      ack = null;
    }
    sockets.execute(() -> close(cause, true));
  }

  /** The actor is gone: abort, unless it completed the outbound side first (then it flushes). */
  void ownerStopped() {
    synchronized (this) {
      if (completed) {
        return;
      }
    }
    abort(new IllegalStateException("the connection's actor stopped"));
  }

  private synchronized boolean isStopped() {
    return stopped;
  }

  private synchronized void stop() {
    stopped = true;
    queue.clear();
  }

  /**
   * What waits, in order, up to about {@code maxBytes}; null if nothing does (the next offer then
   * wakes the sockets' thread, unless the outbound side is complete).
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

  // ------------------------------------------------------------------ the sockets' thread

  /** Registered with the selector: reading starts. */
  void started(SelectionKey key) {
    this.key = key;
    interest = SelectionKey.OP_READ;
    write(); // what the actor offered before (a redirect while draining)
  }

  /** The selector found the channel ready for {@code ops}. */
  void onSelected(int ops) {
    if ((ops & SelectionKey.OP_WRITE) != 0) {
      write();
    }
    if (!closed && (ops & SelectionKey.OP_READ) != 0) {
      read();
    }
  }

  /** The channel broke, or the edge stopped: close it and tell the actor. */
  void failed(IOException cause) {
    close(cause, false);
  }

  private void read() {
    ByteBuffer buffer = sockets.readBuffer;
    buffer.clear();
    if (partial != null) {
      buffer.put(partial);
      partial = null;
    }
    // Drains what the socket holds, up to a buffer: the more each batch carries, the fewer
    // messages and journal writes a frame costs.
    int n;
    try {
      while ((n = channel.read(buffer)) > 0 && buffer.hasRemaining()) {
        // each read adds to the buffer; stop when the socket is empty or the buffer full
      }
    } catch (IOException e) {
      failed(e);
      return;
    }
    buffer.flip();
    if (!discarding) {
      cutFrames(buffer);
    }
    if (n < 0) {
      // A frame cut short by the end of the input is dropped: nobody is left to answer.
      inputEnded = true;
      partial = null;
      dispatch();
      if (outputEnded) {
        close(null, false);
      } else {
        updateInterest();
      }
      return;
    }
    dispatch();
    updateInterest();
  }

  private void cutFrames(ByteBuffer buffer) {
    while (buffer.remaining() >= FrameCodec.HEADER_SIZE) {
      int at = buffer.position();
      long declared = Integer.toUnsignedLong(buffer.getInt(at));
      Decoded badLength = FrameCodec.checkDeclaredLength(declared, maxFrameSize);
      if (badLength != null) {
        add(badLength);
        discarding = true;
        return;
      }
      if (buffer.remaining() > FrameCodec.HEADER_SIZE) {
        // The type byte is judged as soon as it is in, like the length: no body is waited for
        // behind a type that cannot be decoded (PROTOCOL.md#frame-layout).
        Decoded badType = FrameCodec.checkType(buffer.get(at + FrameCodec.HEADER_SIZE) & 0xFF);
        if (badType != null) {
          add(badType);
          discarding = true;
          return;
        }
      }
      int size = FrameCodec.HEADER_SIZE + (int) declared;
      if (buffer.remaining() < size) {
        break;
      }
      add(FrameCodec.decode(buffer.slice(at, size), maxFrameSize));
      buffer.position(at + size);
    }
    if (buffer.hasRemaining()) {
      partial = new byte[buffer.remaining()];
      buffer.get(partial);
    }
  }

  private void add(Decoded decoded) {
    if (batch == null) {
      batch = new ArrayList<>();
    }
    batch.add(decoded);
    batchWeight += weight(decoded);
  }

  /** Hands the batch to the actor if it has none; tells it the input ended once all is handed. */
  private void dispatch() {
    if (!withActor && batch != null) {
      actor.tell(new ConnectionActor.Inbound(this, batch));
      batch = null;
      batchWeight = 0;
      withActor = true;
    }
    if (batch == null && inputEnded) {
      tellEnd(null);
    }
  }

  private void actorReady() {
    if (closed) {
      return;
    }
    withActor = false;
    dispatch();
    updateInterest();
  }

  private void write() {
    if (closed || key == null) {
      return; // not registered yet: started() writes
    }
    try {
      while (true) {
        if (unwritten == null) {
          OutboundBatch next = take(maxBatchBytes);
          if (next == null) {
            if (!outputEnded && isDone()) {
              outputEnded = true;
              channel.shutdownOutput();
              if (inputEnded) {
                close(null, false);
                return;
              }
            }
            break;
          }
          unwritten = ByteBuffer.wrap(next.encode());
        }
        channel.write(unwritten);
        if (unwritten.hasRemaining()) {
          break; // the socket's buffer is full: on with OP_WRITE
        }
        unwritten = null;
      }
    } catch (IOException e) {
      failed(e);
      return;
    }
    updateInterest();
  }

  private void updateInterest() {
    if (closed) {
      return;
    }
    int ops = 0;
    if (!inputEnded && (discarding || batchWeight < maxBatchBytes)) {
      ops |= SelectionKey.OP_READ;
    }
    if (unwritten != null) {
      ops |= SelectionKey.OP_WRITE;
    }
    if (ops != interest) {
      interest = ops;
      key.interestOps(ops);
    }
  }

  private void close(Throwable cause, boolean reset) {
    if (closed) {
      return;
    }
    closed = true;
    stop();
    batch = null;
    partial = null;
    unwritten = null;
    if (key != null) {
      key.cancel();
    }
    if (reset) {
      try {
        channel.setOption(StandardSocketOptions.SO_LINGER, 0);
      } catch (IOException e) {
        // Closed already: nothing to reset.
      }
    }
    EdgeSockets.closeQuietly(channel);
    tellEnd(cause);
    sockets.closed();
  }

  private void tellEnd(Throwable cause) {
    if (!endTold) {
      endTold = true;
      actor.tell(cause == null ? ConnectionActor.StreamCompleted.INSTANCE : new ConnectionActor.StreamFailed(cause));
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
