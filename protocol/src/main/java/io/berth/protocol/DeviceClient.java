package io.berth.protocol;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.NoRouteToHostException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * The reference device client and Java device SDK (PROTOCOL.md#delivery-contract).
 *
 * <p>{@link #send} numbers each frame and keeps it until the node acknowledges it; at most {@code
 * window} frames are unacknowledged, so a sender blocks while the node (or its endpoint) is slower
 * than it. When a connection drops, the client reconnects to its addresses in turn with
 * exponential backoff, resumes the session and resends every unacknowledged frame; the node drops
 * the ones it already had. Downlink frames are handed to the listener once per sequence number.
 *
 * <p>Threads: one supervisor thread per client (connects and reads) and one writer thread per
 * connection. Listener callbacks run on the supervisor thread: a callback that calls {@link #send}
 * while the window is full would wait for an acknowledgement only that thread can read, so it
 * gets an {@link IllegalStateException} instead; send replies from another thread. A callback
 * that throws stops the client.
 */
public final class DeviceClient implements AutoCloseable {

  private static final int ACK_EVERY_FRAMES = 64;
  /** The bytes "HTTP" read as a length field: an HTTP server's status line. */
  private static final int HTTP = 0x48545450;

  private final Builder settings;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final ArrayDeque<Frame.Data> unacked = new ArrayDeque<>();
  private long unackedBytes;

  // Guarded by lock.
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
  private Connection current;
  private Frame.Welcome welcome;
  private DeviceException terminal;
  private String terminalCause;
  private int connections;
  private boolean terminationNotified;

  private volatile InetSocketAddress redirect;
  private Thread supervisor;

  private DeviceClient(Builder settings) {
    this.settings = settings;
  }

  public static Builder builder() {
    return new Builder();
  }

  // ------------------------------------------------------------------ public API

  /**
   * Connects and completes the handshake, trying the addresses in turn until one accepts or the
   * give-up time passes.
   *
   * @throws DeviceException when the node refuses the device (bad token, invalid id, unknown
   *     mapping) or no address could be reached in time
   */
  public DeviceClient connect() {
    lock.lock();
    try {
      if (supervisor != null) {
        throw new IllegalStateException("connect() called twice");
      }
      supervisor = new Thread(this::supervise, "berth-device-" + settings.deviceId);
      supervisor.setDaemon(true);
      supervisor.start();
      while (!established && terminalCause == null) {
        changed.awaitUninterruptibly();
      }
      if (terminalCause != null) {
        throw terminal != null ? terminal : new DeviceException(DeviceException.Reason.CLOSED, terminalCause);
      }
      return this;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Sends one DATA frame and returns its sequence number. Blocks while {@code window} frames are
   * unacknowledged. While disconnected the frame is kept and sent after the reconnect.
   */
  public long send(byte[] payload) throws InterruptedException {
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
    int frames = welcome != null ? Math.min(settings.window, Math.max(1, welcome.window())) : settings.window;
    long bytes = welcome != null && welcome.windowBytes() > 0 ? welcome.windowBytes() : Long.MAX_VALUE;
    return unacked.size() < frames && unackedBytes + payloadLength <= bytes;
  }

  /** Waits until every frame sent so far is acknowledged; false when the time ran out. */
  public boolean awaitAllAcked(Duration timeout) throws InterruptedException {
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

  /** Highest sequence number the node acknowledged (cumulative). */
  public long lastAcked() {
    lock.lock();
    try {
      return lastAcked;
    } finally {
      lock.unlock();
    }
  }

  /** Highest downlink sequence number received. */
  public long lastReceived() {
    lock.lock();
    try {
      return lastReceived;
    } finally {
      lock.unlock();
    }
  }

  /** Number of frames sent but not yet acknowledged. */
  public int unackedCount() {
    lock.lock();
    try {
      return unacked.size();
    } finally {
      lock.unlock();
    }
  }

  /**
   * The payloads sent but not acknowledged, oldest first. After the client stopped on an error
   * (ERROR 204: nothing took them, PROTOCOL.md#error-codes) these are what did not reach a
   * destination; a new client for the socket can send them again.
   */
  public List<byte[]> unackedPayloads() {
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

  /** How many connections completed a handshake (1 + reconnects). */
  public int connectionCount() {
    lock.lock();
    try {
      return connections;
    } finally {
      lock.unlock();
    }
  }

  /** The WELCOME of the current (or last) connection. */
  public Frame.Welcome welcome() {
    lock.lock();
    try {
      return welcome;
    } finally {
      lock.unlock();
    }
  }

  /** Whether the client stopped for good, and why ({@code null} while running). */
  public String terminatedCause() {
    lock.lock();
    try {
      return terminalCause;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Cuts the current connection without a CLOSE, as a network failure would. The client
   * reconnects and resumes by itself. Meant for fault drills.
   */
  public void dropConnection() {
    Connection c;
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

  /**
   * Ends the session: sends CLOSE, waits up to {@code timeout} for the node to confirm, then
   * releases everything. Unacknowledged frames are abandoned: call {@link #awaitAllAcked} first.
   */
  public void close(Duration timeout) {
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

  @Override
  public void close() {
    close(Duration.ofSeconds(5));
  }

  // ------------------------------------------------------------------ supervision

  private void supervise() {
    List<InetSocketAddress> addresses = settings.addresses;
    int index = 0;
    int attempt = 0;
    int failedAttempts = 0;
    long giveUpAt = deadlineFromNow();
    while (!stopped()) {
      InetSocketAddress target = redirect != null ? redirect : addresses.get(index % addresses.size());
      redirect = null;
      Outcome outcome;
      Connection connection = null;
      try {
        connection = handshake(target);
        attempt = 0;
        outcome = readLoop(connection);
      } catch (Fatal f) {
        terminate(new DeviceException(f.reason, f.code, f.getMessage()), f.getMessage());
        break;
      } catch (IOException | Retry e) {
        outcome = Outcome.backoff(describe(e, target));
      } catch (RuntimeException e) {
        // A listener callback threw: stop cleanly rather than leave callers blocked forever.
        terminate(new DeviceException(DeviceException.Reason.LISTENER_FAILED, "listener failed: " + e, e),
            "listener failed");
        break;
      } finally {
        detach(connection);
      }
      if (outcome.terminalCause != null) {
        terminate(outcome.error, outcome.terminalCause);
        break;
      }
      boolean wasUp = connection != null && connection.welcomed;
      if (wasUp) {
        settings.listener.onDisconnected(target.toString(), outcome.cause);
        failedAttempts = 0;
      } else {
        settings.listener.onConnectFailed(address(target), outcome.cause, ++failedAttempts);
      }
      if (outcome.redirected) {
        giveUpAt = deadlineFromNow();
        continue;
      }
      if (connection != null && connection.welcomed) {
        // A session that was up gets a fresh reconnect budget and starts with a short backoff.
        giveUpAt = deadlineFromNow();
        attempt = 0;
      }
      index++;
      attempt++;
      if (System.nanoTime() > giveUpAt) {
        terminate(new DeviceException(DeviceException.Reason.UNREACHABLE,
            "no node accepted a connection in " + DurationText.of(settings.giveUpAfter) + " (" + failedAttempts
                + (failedAttempts == 1 ? " attempt" : " attempts") + "); the last one: " + outcome.cause),
            "gave up reconnecting");
        break;
      }
      if (!sleepBackoff(attempt)) {
        break;
      }
    }
  }

  private long deadlineFromNow() {
    return System.nanoTime() + settings.giveUpAfter.toNanos();
  }

  private boolean sleepBackoff(int attempt) {
    long max = settings.maxBackoff.toMillis();
    long base = Math.min(max, settings.minBackoff.toMillis() << Math.min(attempt - 1, 20));
    long delay = base / 2 + ThreadLocalRandom.current().nextLong(base / 2 + 1);
    lock.lock();
    try {
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delay);
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

  private Connection handshake(InetSocketAddress target) throws IOException {
    Socket socket = new Socket();
    Connection connection = null;
    try {
      socket.setTcpNoDelay(true);
      socket.setKeepAlive(true);
      socket.connect(target, (int) settings.connectTimeout.toMillis());
      socket.setSoTimeout((int) settings.handshakeTimeout.toMillis());
      connection = new Connection(socket, target, settings.maxFrameSize);
      boolean resume;
      long received;
      lock.lock();
      try {
        resume = established;
        received = forgetDownlinkPosition ? 0 : lastReceived;
      } finally {
        lock.unlock();
      }
      connection.writeNow(new Frame.Hello(FrameCodec.VERSION, resume, received, settings.deviceId,
          settings.tokenSupplier.get(), settings.socketName, settings.mapping));
      Frame first;
      try {
        first = connection.readFirst();
      } catch (SocketTimeoutException e) {
        throw new Retry("no answer to the HELLO from " + address(target) + " within "
            + DurationText.of(settings.handshakeTimeout));
      }
      if (first instanceof Frame.Error e) {
        if (resume && received > 0 && e.code() == ErrorCode.BAD_SEQUENCE.wire) {
          // PROTOCOL.md#resuming: the only BAD_SEQUENCE a HELLO gets; keep the uplink state.
          lock.lock();
          try {
            forgetDownlinkPosition = true;
          } finally {
            lock.unlock();
          }
          throw new Retry("the node never sent downlink frames up to " + received
              + " (its session is older than this client's state): resuming without a downlink position");
        }
        throw errorOutcome(e);
      }
      if (first instanceof Frame.Redirect r) {
        redirect = new InetSocketAddress(r.host(), r.port());
        throw new Retry("redirected to " + r.host() + ":" + r.port() + " during handshake");
      }
      if (first instanceof Frame.Close c) {
        throw closeOutcome(c);
      }
      if (!(first instanceof Frame.Welcome w)) {
        throw new Retry("expected WELCOME, got " + first.type());
      }
      attach(connection, w);
      connection.reader.setMaxFrameSize(Math.max(w.maxFrameSize(), settings.maxFrameSize));
      int idle = w.idleTimeoutSeconds();
      socket.setSoTimeout(idle > 0 ? (int) TimeUnit.SECONDS.toMillis(idle) : 0);
      connection.startWriter(idle > 0 ? Duration.ofMillis(TimeUnit.SECONDS.toMillis(idle) / 3) : null);
      settings.listener.onConnected(w, target.toString());
      return connection;
    } catch (IOException | RuntimeException e) {
      if (connection != null) {
        connection.shutdown();
      } else {
        closeQuietly(socket);
      }
      throw e;
    }
  }

  /** Reconciles the session with the node's WELCOME and queues every unacknowledged frame. */
  private void attach(Connection connection, Frame.Welcome w) {
    lock.lock();
    try {
      if (!established) {
        nextSeq = w.lastAccepted() + 1;
        lastAcked = w.lastAccepted();
        lastReceived = w.lastAcked();
      } else {
        if (w.lastAccepted() >= nextSeq) {
          throw new Fatal(DeviceException.Reason.SESSION_CONFLICT, 0, "the node accepted frames up to "
              + w.lastAccepted() + " but this client only sent up to " + (nextSeq - 1)
              + ": another client is using this socket");
        }
        acknowledge(w.lastAccepted());
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

  private void detach(Connection connection) {
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

  private Outcome readLoop(Connection connection) {
    int sinceAck = 0;
    try {
      while (true) {
        Frame frame = connection.read();
        if (frame instanceof Frame.Data d) {
          if (d.seq() > lastReceived() + 1) {
            // Never hand the application a gap: resume, and the node sends from lastReceived.
            return Outcome.backoff("downlink gap: DATA " + d.seq() + " after " + lastReceived());
          }
          if (receive(d)) {
            settings.listener.onData(d.seq(), d.payload());
          }
          sinceAck++;
        } else if (frame instanceof Frame.Ack a) {
          lock.lock();
          try {
            acknowledge(a.seq());
          } finally {
            lock.unlock();
          }
        } else if (frame instanceof Frame.Ping p) {
          connection.enqueue(new Frame.Pong(p.nonce()));
        } else if (frame instanceof Frame.Link l) {
          settings.listener.onLink(l.status(), l.peer(), l.reason());
        } else if (frame instanceof Frame.Redirect r) {
          redirect = new InetSocketAddress(r.host(), r.port());
          return Outcome.redirect("redirected to " + r.host() + ":" + r.port() + " (" + r.reason() + ")");
        } else if (frame instanceof Frame.Close c) {
          return closeOutcomeOf(c);
        } else if (frame instanceof Frame.Error e) {
          ErrorCode code = ErrorCode.fromWire(e.code());
          if (code != null && code.retryable) {
            return Outcome.backoff("ERROR " + e.code() + ": " + e.message());
          }
          return Outcome.terminal(new DeviceException(DeviceException.Reason.NODE_ERROR, e.code(),
              "ERROR " + e.code() + (code == null ? "" : " " + code) + ": " + e.message()));
        }
        // PONG and WELCOME after the handshake carry nothing the client needs.
        // Acknowledge once nothing more is waiting to be read (whatever frame came last), and
        // at least every ACK_EVERY_FRAMES frames during a long burst.
        if (sinceAck > 0 && (sinceAck >= ACK_EVERY_FRAMES || connection.reader.available() == 0)) {
          connection.enqueue(new Frame.Ack(lastReceived()));
          sinceAck = 0;
        }
      }
    } catch (SocketTimeoutException e) {
      return Outcome.backoff("no frame from the node within the idle timeout");
    } catch (IOException e) {
      if (isClosing()) {
        return Outcome.done("closed");
      }
      return Outcome.backoff(describe(e, connection.address));
    } catch (Retry e) {
      return Outcome.backoff(e.getMessage());
    } catch (Fatal e) {
      return Outcome.terminal(new DeviceException(e.reason, e.code, e.getMessage()));
    }
  }

  private boolean receive(Frame.Data d) {
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

  /** Drops every frame up to {@code seq}. Caller holds the lock. */
  private void acknowledge(long seq) {
    if (seq <= lastAcked) {
      return;
    }
    lastAcked = seq;
    while (!unacked.isEmpty() && unacked.peekFirst().seq() <= seq) {
      unackedBytes -= unacked.pollFirst().payload().length;
    }
    changed.signalAll();
  }

  private Outcome closeOutcomeOf(Frame.Close c) {
    CloseCode code = CloseCode.fromWire(c.code());
    if (code != null && code.resumable && !isClosing()) {
      return Outcome.backoff("node closed the connection: " + code + " " + c.reason());
    }
    if (isClosing() && code == CloseCode.NORMAL) {
      return Outcome.done("closed");
    }
    return Outcome.terminal(new DeviceException(DeviceException.Reason.NODE_CLOSE, c.code(),
        "CLOSE " + c.code() + (code == null ? "" : " " + code) + ": " + c.reason()));
  }

  private RuntimeException closeOutcome(Frame.Close c) {
    Outcome o = closeOutcomeOf(c);
    if (o.error != null) {
      return new Fatal(DeviceException.Reason.NODE_CLOSE, c.code(), o.error.getMessage());
    }
    return new Retry(o.cause);
  }

  private static RuntimeException errorOutcome(Frame.Error e) {
    ErrorCode code = ErrorCode.fromWire(e.code());
    String message = "ERROR " + e.code() + (code == null ? "" : " " + code) + ": " + e.message();
    return code != null && code.retryable ? new Retry(message)
        : new Fatal(DeviceException.Reason.NODE_ERROR, e.code(), message);
  }

  private boolean isClosing() {
    lock.lock();
    try {
      return closing;
    } finally {
      lock.unlock();
    }
  }

  private boolean stopped() {
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
  private void terminate(DeviceException error, String cause) {
    Connection c;
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
    settings.listener.onTerminated(cause);
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
    int max = welcome != null ? welcome.maxFrameSize() : settings.maxFrameSize;
    if (length + FrameCodec.DATA_OVERHEAD > max) {
      throw new IllegalArgumentException("payload of " + length + " bytes exceeds the maximum of "
          + (max - FrameCodec.DATA_OVERHEAD) + " bytes per frame");
    }
  }

  /** What went wrong with {@code target}, in words a person can act on. */
  private String describe(Exception e, InetSocketAddress target) {
    String at = address(target);
    if (e instanceof EOFException) {
      return "connection to " + at + " closed by the other side";
    } else if (e instanceof UnknownHostException || target.isUnresolved()) {
      return "unknown host '" + target.getHostString() + "'";
    } else if (e instanceof ConnectException && String.valueOf(e.getMessage()).contains("refused")) {
      return "connection refused: nothing listens on " + at;
    } else if (e instanceof SocketTimeoutException) {
      // The handshake's read timeout becomes a Retry of its own: this one is the connect's.
      return "no answer from " + at + " within " + DurationText.of(settings.connectTimeout) + " (connect timeout)";
    } else if (e instanceof NoRouteToHostException) {
      return "no route to " + at;
    } else if (e instanceof Retry) {
      return e.getMessage();
    }
    return at + ": " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
  }

  /** {@code host:port} as the user wrote it, without the resolved address. */
  static String address(InetSocketAddress a) {
    return a.getHostString() + ":" + a.getPort();
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // Nothing to do: the socket is being discarded.
    }
  }

  // ------------------------------------------------------------------ connection

  /** One TCP connection: reads on the supervisor thread, writes on its own writer thread. */
  private final class Connection {
    private final Socket socket;
    private final InetSocketAddress address;
    private final FrameReader reader;
    private final OutputStream out;
    private final ArrayDeque<Frame> queue = new ArrayDeque<>();
    private final ReentrantLock queueLock = new ReentrantLock();
    private final Condition queued = queueLock.newCondition();
    private volatile boolean closed;
    private boolean welcomed;
    private Thread writer;

    Connection(Socket socket, InetSocketAddress address, int maxFrameSize) throws IOException {
      this.socket = socket;
      this.address = address;
      this.reader = new FrameReader(new BufferedInputStream(socket.getInputStream(), 64 * 1024), maxFrameSize);
      this.out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
    }

    Frame read() throws IOException {
      Decoded d = reader.next();
      if (d instanceof Decoded.Malformed m) {
        throw new Retry("node sent a malformed frame: " + m.reason());
      }
      return ((Decoded.Ok) d).frame();
    }

    /**
     * The answer to the HELLO. A Berth node never answers with bytes that are not a frame, so
     * such an answer means the address is some other service: retrying it cannot help.
     */
    Frame readFirst() throws IOException {
      Decoded d = reader.next();
      if (d instanceof Decoded.Malformed m) {
        String at = DeviceClient.address(address);
        if (reader.lastLengthField() == HTTP) {
          throw new Fatal(DeviceException.Reason.NOT_A_NODE, 0, at + " answers HTTP: this is probably a node's "
              + "management port; devices connect to the edge port (berth.edge.port, 7000 by default)");
        }
        throw new Fatal(DeviceException.Reason.NOT_A_NODE, 0, at + " does not answer with Berth frames ("
            + m.reason() + "): is it a Berth node's edge port?");
      }
      return ((Decoded.Ok) d).frame();
    }

    void writeNow(Frame frame) throws IOException {
      out.write(FrameCodec.encode(frame));
      out.flush();
    }

    void enqueue(Frame frame) {
      queueLock.lock();
      try {
        queue.addLast(frame);
        queued.signal();
      } finally {
        queueLock.unlock();
      }
    }

    void startWriter(Duration keepAlive) {
      writer = new Thread(() -> writeLoop(keepAlive), "berth-device-writer-" + settings.deviceId);
      writer.setDaemon(true);
      writer.start();
    }

    private void writeLoop(Duration keepAlive) {
      List<Frame> batch = new ArrayList<>();
      long nonce = 0;
      try {
        while (!closed) {
          queueLock.lock();
          try {
            if (queue.isEmpty()) {
              if (keepAlive != null) {
                if (!queued.await(keepAlive.toNanos(), TimeUnit.NANOSECONDS) && queue.isEmpty()) {
                  queue.addLast(new Frame.Ping(++nonce));
                }
              } else {
                queued.await();
              }
            }
            while (!queue.isEmpty()) {
              batch.add(queue.pollFirst());
            }
          } finally {
            queueLock.unlock();
          }
          for (Frame f : batch) {
            out.write(FrameCodec.encode(f));
          }
          batch.clear();
          out.flush();
        }
      } catch (InterruptedException | IOException e) {
        // The reader sees the broken socket and reconnects; nothing else to do here.
        shutdown();
      }
    }

    void shutdown() {
      closed = true;
      closeQuietly(socket);
      Thread w = writer;
      if (w != null && w != Thread.currentThread()) {
        w.interrupt();
      }
    }

    @Override
    public String toString() {
      return address.toString();
    }
  }

  // ------------------------------------------------------------------ outcomes

  /** How one connection ended: reconnect (after a redirect, at once), or stop for good. */
  private record Outcome(String cause, boolean redirected, DeviceException error, String terminalCause) {
    static Outcome backoff(String cause) {
      return new Outcome(cause, false, null, null);
    }

    static Outcome redirect(String cause) {
      return new Outcome(cause, true, null, null);
    }

    static Outcome terminal(DeviceException error) {
      return new Outcome(error.getMessage(), false, error, error.getMessage());
    }

    static Outcome done(String cause) {
      return new Outcome(cause, false, null, cause);
    }
  }

  /** A connection attempt failed in a way that another attempt may fix. */
  private static final class Retry extends RuntimeException {
    Retry(String message) {
      super(message, null, false, false);
    }
  }

  /** The node refused the device for good, or the client found it cannot go on. */
  private static final class Fatal extends RuntimeException {
    final DeviceException.Reason reason;
    final int code;

    Fatal(DeviceException.Reason reason, int code, String message) {
      super(message, null, false, false);
      this.reason = reason;
      this.code = code;
    }
  }

  // ------------------------------------------------------------------ builder

  public static final class Builder {
    private List<InetSocketAddress> addresses = new ArrayList<>();
    private String deviceId;
    private Supplier<String> tokenSupplier;
    private String socketName = "";
    private String mapping = "";
    private int window = 256;
    private int maxFrameSize = FrameCodec.DEFAULT_MAX_FRAME_SIZE;
    private Duration minBackoff = Duration.ofMillis(100);
    private Duration maxBackoff = Duration.ofSeconds(5);
    private Duration giveUpAfter = Duration.ofMinutes(5);
    private Duration connectTimeout = Duration.ofSeconds(5);
    private Duration handshakeTimeout = Duration.ofSeconds(15);
    private DeviceListener listener = new DeviceListener() {};

    private Builder() {}

    /** Node addresses, tried in turn on every (re)connect. */
    public Builder addresses(List<InetSocketAddress> addresses) {
      this.addresses = List.copyOf(addresses);
      return this;
    }

    public Builder address(String host, int port) {
      this.addresses = List.of(new InetSocketAddress(host, port));
      return this;
    }

    public Builder deviceId(String deviceId) {
      this.deviceId = deviceId;
      return this;
    }

    /** A fixed token (PROTOCOL.md#authentication). */
    public Builder token(String token) {
      this.tokenSupplier = () -> token;
      return this;
    }

    /** Mints a fresh token with the fleet secret on every connection attempt. */
    public Builder secret(byte[] secret, Duration ttl) {
      byte[] copy = secret.clone();
      this.tokenSupplier = () -> DeviceToken.mint(copy, deviceId, Instant.now().plus(ttl));
      return this;
    }

    /** Socket name; empty (the default) opens the device's default socket. */
    public Builder socketName(String socketName) {
      this.socketName = socketName;
      return this;
    }

    /** Mapping name; empty (the default) lets the node choose its default mapping. */
    public Builder mapping(String mapping) {
      this.mapping = mapping;
      return this;
    }

    /** Maximum number of unacknowledged frames before {@link DeviceClient#send} blocks. */
    public Builder window(int window) {
      if (window < 1) {
        throw new IllegalArgumentException("window must be at least 1");
      }
      this.window = window;
      return this;
    }

    public Builder maxFrameSize(int maxFrameSize) {
      this.maxFrameSize = maxFrameSize;
      return this;
    }

    public Builder reconnectBackoff(Duration min, Duration max) {
      this.minBackoff = min;
      this.maxBackoff = max;
      return this;
    }

    /** Stop reconnecting when no connection could be established for this long. */
    public Builder giveUpAfter(Duration giveUpAfter) {
      this.giveUpAfter = giveUpAfter;
      return this;
    }

    public Builder connectTimeout(Duration connectTimeout) {
      this.connectTimeout = connectTimeout;
      return this;
    }

    public Builder handshakeTimeout(Duration handshakeTimeout) {
      this.handshakeTimeout = handshakeTimeout;
      return this;
    }

    public Builder listener(DeviceListener listener) {
      this.listener = listener;
      return this;
    }

    public DeviceClient build() {
      if (addresses.isEmpty()) {
        throw new IllegalArgumentException("at least one node address is required");
      }
      if (deviceId == null || !SocketId.isValidDeviceId(deviceId)) {
        throw new IllegalArgumentException("invalid device id: " + deviceId);
      }
      if (!SocketId.isValidSocketName(socketName)) {
        throw new IllegalArgumentException("invalid socket name: " + socketName);
      }
      if (tokenSupplier == null) {
        throw new IllegalArgumentException("a token or a secret is required");
      }
      return new DeviceClient(this);
    }
  }
}
