package io.berth.protocol;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link DeviceClient}'s side of the session (PROTOCOL.md#delivery-contract): the sequence
 * numbers, the unacknowledged frames and the window, the connection in use, and whether and why
 * the client stopped.
 *
 * <p>Threads: every field is guarded by {@link #lock}, and {@link #changed} is signalled whenever
 * one changes. The application's threads call the public API's side ({@link #send}, {@link
 * #awaitAllAcked}, {@link #close}, the getters); the supervisor thread ({@link ReconnectLoop} and
 * the {@link DeviceConnection} it reads) resumes the session, records acknowledgements and
 * downlink positions, and stops the client. Listener callbacks never run under the lock.
 */
final class ClientState {

  private final ClientSettings settings;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();

  // Guarded by lock.
  private final ArrayDeque<Frame.Data> unacked = new ArrayDeque<>();
  private long unackedBytes;
  private long nextSeq = 1;
  private long lastAcked;
  private long lastReceived;
  /**
   * The node refused a resume because it never sent frames up to {@link #lastReceived} (its
   * session lost them, e.g. a database restored from an older backup): the next HELLO resumes
   * without a downlink position and takes the WELCOME's as its own.
   */
  private boolean forgetDownlinkPosition;
  private boolean established;
  private boolean closing;
  private DeviceConnection current;
  private Frame.Welcome welcome;
  private DeviceException terminal;
  private String terminalCause;
  private int connections;
  private boolean terminationNotified;
  private Thread supervisor;

  ClientState(ClientSettings settings) {
    this.settings = settings;
  }

  // ------------------------------------------------------------------ the application's side

  /** Starts the supervisor thread and waits for the first handshake, or for the client to stop. */
  void start(Thread supervisor) {
    lock.lock();
    try {
      if (this.supervisor != null) {
        throw new IllegalStateException("connect() called twice");
      }
      this.supervisor = supervisor;
      supervisor.start();
      while (!established && terminalCause == null) {
        changed.awaitUninterruptibly();
      }
      if (terminalCause != null) {
        throw terminal != null ? terminal : new DeviceException(DeviceException.Reason.CLOSED, terminalCause);
      }
    } finally {
      lock.unlock();
    }
  }

  long send(byte[] payload) throws InterruptedException {
    Objects.requireNonNull(payload, "payload");
    lock.lockInterruptibly();
    try {
      checkPayloadSize(payload.length);
      if (!windowHasRoom(payload.length) && Thread.currentThread() == supervisor) {
        throw new IllegalStateException("send() from a listener callback with a full window would block the "
            + "thread that reads the acknowledgements; send from another thread");
      }
      while (terminal == null && !closing && !windowHasRoom(payload.length)) {
        changed.await();
      }
      failIfStopped();
      Frame.Data frame = new Frame.Data(nextSeq++, payload);
      unacked.addLast(frame);
      unackedBytes += payload.length;
      if (current != null) {
        current.enqueue(frame);
      }
      return frame.seq();
    } finally {
      lock.unlock();
    }
  }

  /**
   * The window is the smaller of this client's and the node's (WELCOME.window frames and
   * WELCOME.windowBytes of payload); one frame is always allowed when nothing is unacknowledged.
   */
  private boolean windowHasRoom(int payloadLength) {
    if (unacked.isEmpty()) {
      return true;
    }
    int frames = welcome != null ? Math.min(settings.window(), Math.max(1, welcome.window())) : settings.window();
    long bytes = welcome != null && welcome.windowBytes() > 0 ? welcome.windowBytes() : Long.MAX_VALUE;
    return unacked.size() < frames && unackedBytes + payloadLength <= bytes;
  }

  boolean awaitAllAcked(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lockInterruptibly();
    try {
      while (!unacked.isEmpty()) {
        failIfStopped();
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        changed.awaitNanos(left);
      }
      return true;
    } finally {
      lock.unlock();
    }
  }

  long lastAcked() {
    lock.lock();
    try {
      return lastAcked;
    } finally {
      lock.unlock();
    }
  }

  long lastReceived() {
    lock.lock();
    try {
      return lastReceived;
    } finally {
      lock.unlock();
    }
  }

  int unackedCount() {
    lock.lock();
    try {
      return unacked.size();
    } finally {
      lock.unlock();
    }
  }

  List<byte[]> unackedPayloads() {
    lock.lock();
    try {
      List<byte[]> out = new ArrayList<>(unacked.size());
      for (Frame.Data d : unacked) {
        out.add(d.payload().clone());
      }
      return out;
    } finally {
      lock.unlock();
    }
  }

  int connectionCount() {
    lock.lock();
    try {
      return connections;
    } finally {
      lock.unlock();
    }
  }

  Frame.Welcome welcome() {
    lock.lock();
    try {
      return welcome;
    } finally {
      lock.unlock();
    }
  }

  String terminatedCause() {
    lock.lock();
    try {
      return terminalCause;
    } finally {
      lock.unlock();
    }
  }

  /** Cuts the connection in use, if any, without a CLOSE. */
  void dropConnection() {
    DeviceConnection c;
    lock.lock();
    try {
      c = current;
    } finally {
      lock.unlock();
    }
    if (c != null) {
      c.shutdown();
    }
  }

  void close(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      if (supervisor == null) {
        terminate(null, "closed before connecting");
        deadline = System.nanoTime();
      }
      closing = true;
      changed.signalAll();
      if (current != null) {
        current.enqueue(new Frame.Close(CloseCode.NORMAL, "device closed"));
      }
      while (terminal == null && terminalCause == null) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        changed.awaitNanos(left);
      }
      if (terminalCause == null) {
        terminate(null, "closed without confirmation");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      terminate(null, "closed (interrupted)");
    } finally {
      lock.unlock();
    }
    notifyTerminated();
    Thread s = supervisor;
    if (s != null && s != Thread.currentThread()) {
      s.interrupt();
      try {
        s.join(TimeUnit.SECONDS.toMillis(5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private void failIfStopped() {
    if (terminal != null) {
      throw terminal;
    }
    if (terminalCause != null || closing) {
      throw new DeviceException(DeviceException.Reason.CLOSED, "client is closed");
    }
  }

  private void checkPayloadSize(int length) {
    int max = welcome != null ? welcome.maxFrameSize() : settings.maxFrameSize();
    if (length + FrameCodec.DATA_OVERHEAD > max) {
      throw new IllegalArgumentException("payload of " + length + " bytes exceeds the maximum of "
          + (max - FrameCodec.DATA_OVERHEAD) + " bytes per frame");
    }
  }

  // ------------------------------------------------------------------ the supervisor thread's side

  /** What the next HELLO says about the session: whether it resumes one, and from which downlink frame. */
  record Resume(boolean resume, long lastReceived) {}

  Resume resume() {
    lock.lock();
    try {
      return new Resume(established, forgetDownlinkPosition ? 0 : lastReceived);
    } finally {
      lock.unlock();
    }
  }

  /** See {@link #forgetDownlinkPosition}. */
  void forgetDownlinkPosition() {
    lock.lock();
    try {
      forgetDownlinkPosition = true;
    } finally {
      lock.unlock();
    }
  }

  /** Reconciles the session with the node's WELCOME and queues every unacknowledged frame. */
  void attach(DeviceConnection connection, Frame.Welcome w) {
    lock.lock();
    try {
      if (!established) {
        nextSeq = w.lastAccepted() + 1;
        lastAcked = w.lastAccepted();
        lastReceived = w.lastAcked();
      } else {
        if (w.lastAccepted() >= nextSeq) {
          throw new DeviceConnection.Fatal(DeviceException.Reason.SESSION_CONFLICT, 0,
              "the node accepted frames up to " + w.lastAccepted() + " but this client only sent up to "
                  + (nextSeq - 1) + ": another client is using this socket");
        }
        acknowledgeLocked(w.lastAccepted());
        if (forgetDownlinkPosition) {
          lastReceived = w.lastAcked();
          forgetDownlinkPosition = false;
        }
      }
      welcome = w;
      established = true;
      connections++;
      connection.welcomed = true;
      for (Frame.Data d : unacked) {
        connection.enqueue(d);
      }
      if (closing) {
        connection.enqueue(new Frame.Close(CloseCode.NORMAL, "device closed"));
      }
      current = connection;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  void detach(DeviceConnection connection) {
    if (connection == null) {
      return;
    }
    lock.lock();
    try {
      if (current == connection) {
        current = null;
      }
    } finally {
      lock.unlock();
    }
    connection.shutdown();
  }

  /** Records a downlink DATA frame; false when it was delivered before. */
  boolean receive(Frame.Data d) {
    lock.lock();
    try {
      if (d.seq() <= lastReceived) {
        return false;
      }
      lastReceived = d.seq();
      return true;
    } finally {
      lock.unlock();
    }
  }

  void acknowledge(long seq) {
    lock.lock();
    try {
      acknowledgeLocked(seq);
    } finally {
      lock.unlock();
    }
  }

  /** Drops every frame up to {@code seq}. Caller holds the lock. */
  private void acknowledgeLocked(long seq) {
    if (seq <= lastAcked) {
      return;
    }
    lastAcked = seq;
    while (!unacked.isEmpty() && unacked.peekFirst().seq() <= seq) {
      unackedBytes -= unacked.pollFirst().payload().length;
    }
    changed.signalAll();
  }

  /**
   * Waits {@code delayMillis} before the next connection attempt; false when the client stops
   * meanwhile (a close while disconnected stops it here: there is no connection to confirm it).
   */
  boolean pause(long delayMillis) {
    lock.lock();
    try {
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delayMillis);
      while (terminal == null && terminalCause == null && !closing) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return true;
        }
        changed.awaitNanos(left);
      }
      if (closing && terminalCause == null) {
        terminate(null, "closed while disconnected");
      }
      return false;
    } catch (InterruptedException e) {
      return false;
    } finally {
      lock.unlock();
      notifyTerminated();
    }
  }

  boolean isClosing() {
    lock.lock();
    try {
      return closing;
    } finally {
      lock.unlock();
    }
  }

  boolean stopped() {
    lock.lock();
    try {
      return terminal != null || terminalCause != null;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Stops the client for good. The listener is told outside the lock: when the caller holds it,
   * the notice goes out once the caller releases it ({@link #notifyTerminated}).
   */
  void terminate(DeviceException error, String cause) {
    DeviceConnection c;
    lock.lock();
    try {
      if (terminalCause != null) {
        return;
      }
      terminal = error;
      terminalCause = cause;
      c = current;
      current = null;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    if (c != null) {
      c.shutdown();
    }
    notifyTerminated();
  }

  private void notifyTerminated() {
    String cause;
    lock.lock();
    try {
      if (lock.getHoldCount() > 1 || terminalCause == null || terminationNotified) {
        return;
      }
      terminationNotified = true;
      cause = terminal != null ? terminal.getMessage() : terminalCause;
    } finally {
      lock.unlock();
    }
    settings.listener().onTerminated(cause);
  }
}
