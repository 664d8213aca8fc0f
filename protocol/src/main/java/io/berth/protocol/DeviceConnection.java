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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLException;

/**
 * One connection of a {@link DeviceClient}, TLS over TCP or plain TCP: the HELLO/WELCOME handshake
 * (PROTOCOL.md#resuming), then the frames both ways until the connection ends, and how it ended
 * ({@link Outcome}).
 *
 * <p>Threads: {@link #open} and {@link #readLoop} run on the client's supervisor thread, which
 * also makes every listener callback. Frames go out on this connection's own writer thread; any
 * thread hands it frames through {@link #enqueue} ({@code queue} is guarded by {@code queueLock}).
 * Any thread may {@link #shutdown} the connection, hence the volatile {@code closed}.
 */
final class DeviceConnection {

  private static final int ACK_EVERY_FRAMES = 64;
  /** The bytes "HTTP" read as a length field: an HTTP server's status line. */
  private static final int HTTP = 0x48545450;
  /** The first two bytes of a TLS alert record (content type 21, version 3.x) read as a length field. */
  private static final int TLS_ALERT = 0x1503;

  private final ClientState state;
  private final ClientSettings settings;
  /**
   * The TCP socket. {@link #shutdown} closes it rather than {@link #socket}: closing a TLS socket
   * first sends a close_notify, which waits for a writer blocked on a node that stopped reading.
   */
  private final Socket tcp;
  /** What the frames travel over: {@code tcp} itself, or the TLS socket layered on it. */
  private final Socket socket;
  private final InetSocketAddress address;
  private final FrameReader reader;
  private final OutputStream out;
  private final ArrayDeque<Frame> queue = new ArrayDeque<>();
  private final ReentrantLock queueLock = new ReentrantLock();
  private final Condition queued = queueLock.newCondition();
  private volatile boolean closed;
  /** When the last frame came from the node. */
  private volatile long lastFrameNanos = System.nanoTime();
  /** Why the writer gave the connection up, when the node went silent; null otherwise. */
  private volatile String silentCause;
  /** Set by {@link ClientState#attach} once the WELCOME is taken; supervisor thread only. */
  boolean welcomed;
  private Thread writer;

  private DeviceConnection(ClientState state, ClientSettings settings, Socket tcp, Socket socket,
      InetSocketAddress address) throws IOException {
    this.state = state;
    this.settings = settings;
    this.tcp = tcp;
    this.socket = socket;
    this.address = address;
    this.reader = new FrameReader(new BufferedInputStream(socket.getInputStream(), 64 * 1024),
        settings.maxFrameSize());
    this.out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
  }

  // ------------------------------------------------------------------ handshake

  /**
   * Connects to {@code target} (with TLS, the TLS handshake is part of connecting and shares its
   * timeout), sends the HELLO and takes the WELCOME: the session is attached to the new connection
   * and its writer runs.
   *
   * @throws IOException when the connection failed, the TLS handshake included
   * @throws Retry when another attempt may succeed (with {@link Retry#redirectTo} after a REDIRECT)
   * @throws Fatal when the node refused the device for good, or {@code target} is not a node
   */
  static DeviceConnection open(ClientState state, ClientSettings settings, InetSocketAddress target)
      throws IOException {
    Socket tcp = new Socket();
    DeviceConnection connection = null;
    try {
      tcp.setTcpNoDelay(true);
      tcp.setKeepAlive(true);
      long deadline = System.nanoTime() + settings.connectTimeout().toNanos();
      tcp.connect(target, (int) settings.connectTimeout().toMillis());
      Socket socket = settings.tls().handshake(tcp, target, deadline, settings.connectTimeout());
      socket.setSoTimeout((int) settings.handshakeTimeout().toMillis());
      connection = new DeviceConnection(state, settings, tcp, socket, target);
      ClientState.Resume resume = state.resume();
      long received = resume.lastReceived();
      connection.writeHello(new Frame.Hello(FrameCodec.VERSION, resume.resume(), received, settings.deviceId(),
          settings.token(), settings.socketName(), settings.mapping()));
      Frame first;
      try {
        first = connection.readFirst();
      } catch (SocketTimeoutException e) {
        throw new Retry("no answer to the HELLO from " + address(target) + " within "
            + DurationText.of(settings.handshakeTimeout()));
      } catch (EOFException e) {
        throw new Retry(address(target) + " closed the connection without answering the HELLO"
            + (settings.tls().config().enabled() ? "" : " (as an edge requiring TLS does with a plaintext client)"));
      }
      if (first instanceof Frame.Error e) {
        if (resume.resume() && received > 0 && e.code() == ErrorCode.BAD_SEQUENCE.wire) {
          // PROTOCOL.md#resuming: the only BAD_SEQUENCE a HELLO gets; keep the uplink state.
          state.forgetDownlinkPosition();
          throw new Retry("the node never sent downlink frames up to " + received
              + " (its session is older than this client's state): resuming without a downlink position");
        }
        throw errorOutcome(e);
      }
      if (first instanceof Frame.Redirect r) {
        throw new Retry("redirected to " + r.host() + ":" + r.port() + " during handshake",
            new InetSocketAddress(r.host(), r.port()));
      }
      if (first instanceof Frame.Close c) {
        throw connection.closeOutcome(c);
      }
      if (!(first instanceof Frame.Welcome w)) {
        throw new Retry("expected WELCOME, got " + first.type());
      }
      state.attach(connection, w);
      connection.reader.setMaxFrameSize(Math.max(w.maxFrameSize(), settings.maxFrameSize()));
      int idle = w.idleTimeoutSeconds();
      socket.setSoTimeout(idle > 0 ? (int) TimeUnit.SECONDS.toMillis(idle) : 0);
      connection.startWriter(idle > 0 ? Duration.ofMillis(TimeUnit.SECONDS.toMillis(idle) / 3) : null);
      settings.listener().onConnected(w, target.toString());
      return connection;
    } catch (IOException | RuntimeException e) {
      if (connection != null) {
        connection.shutdown();
      } else {
        closeQuietly(tcp);
      }
      throw e;
    }
  }

  /**
   * Sends the HELLO. In TLS 1.3 a node that refuses the client's certificate says so after the
   * client's handshake completed, in an alert, and closes: the HELLO then meets a closed
   * connection, and the alert, still waiting to be read, is the failure worth reporting.
   */
  private void writeHello(Frame.Hello hello) throws IOException {
    try {
      writeNow(hello);
    } catch (IOException e) {
      if (socket != tcp && !(e instanceof SSLException)) {
        try {
          reader.next();
        } catch (SSLException alert) {
          throw alert;
        } catch (IOException ignored) {
          // No alert: the write's failure is the one to report.
        }
      }
      throw e;
    }
  }

  /**
   * The answer to the HELLO. A Berth node never answers with bytes that are not a frame, so such
   * an answer means the address is some other service: retrying it cannot help.
   */
  private Frame readFirst() throws IOException {
    Decoded d = reader.next();
    if (d instanceof Decoded.Malformed m) {
      String at = address(address);
      if (reader.lastLengthField() == HTTP) {
        throw new Fatal(DeviceException.Reason.NOT_A_NODE, 0, at + " answers HTTP: this is probably a node's "
            + "management port; devices connect to the edge port (berth.edge.port, 7000 by default)");
      }
      if (reader.lastLengthField() >>> 16 == TLS_ALERT && !settings.tls().config().enabled()) {
        throw new Fatal(DeviceException.Reason.NOT_A_NODE, 0, at + " answers with a TLS alert: its edge "
            + "requires TLS, and this client is set to plaintext");
      }
      throw new Fatal(DeviceException.Reason.NOT_A_NODE, 0, at + " does not answer with Berth frames ("
          + m.reason() + "): is it a Berth node's edge port?");
    }
    return ((Decoded.Ok) d).frame();
  }

  // ------------------------------------------------------------------ reading

  /**
   * Reads frames until the connection ends, handing downlink DATA to the listener once per
   * sequence number and acknowledging it. A listener callback that throws ends the loop with its
   * exception.
   */
  Outcome readLoop() {
    int sinceAck = 0;
    try {
      while (true) {
        Frame frame = read();
        if (frame instanceof Frame.Data d) {
          if (d.seq() > state.lastReceived() + 1) {
            // Never hand the application a gap: resume, and the node sends from lastReceived.
            return Outcome.backoff("downlink gap: DATA " + d.seq() + " after " + state.lastReceived());
          }
          if (state.receive(d)) {
            settings.listener().onData(d.seq(), d.payload());
          }
          sinceAck++;
        } else if (frame instanceof Frame.Ack a) {
          state.acknowledge(a.seq());
        } else if (frame instanceof Frame.Ping p) {
          enqueue(new Frame.Pong(p.nonce()));
        } else if (frame instanceof Frame.Link l) {
          settings.listener().onLink(l.status(), l.peer(), l.reason());
        } else if (frame instanceof Frame.Redirect r) {
          return Outcome.redirect("redirected to " + r.host() + ":" + r.port() + " (" + r.reason() + ")",
              new InetSocketAddress(r.host(), r.port()));
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
        if (sinceAck > 0 && (sinceAck >= ACK_EVERY_FRAMES || reader.available() == 0)) {
          enqueue(new Frame.Ack(state.lastReceived()));
          sinceAck = 0;
        }
      }
    } catch (SocketTimeoutException e) {
      return Outcome.backoff("no frame from the node within the idle timeout");
    } catch (IOException e) {
      if (state.isClosing()) {
        return Outcome.done("closed");
      }
      if (silentCause != null) {
        return Outcome.backoff(silentCause);
      }
      if (e instanceof SSLException) {
        // Past the handshake: no certificate to blame, the JDK's words are all there is.
        return Outcome.backoff("TLS failed on the connection to " + address(address) + ": " + e.getMessage());
      }
      return Outcome.backoff(describe(e, address, settings));
    } catch (Retry e) {
      return Outcome.backoff(e.getMessage());
    } catch (Fatal e) {
      return Outcome.terminal(new DeviceException(e.reason, e.code, e.getMessage()));
    }
  }

  private Frame read() throws IOException {
    Decoded d = reader.next();
    lastFrameNanos = System.nanoTime();
    if (d instanceof Decoded.Malformed m) {
      throw new Retry("node sent a malformed frame: " + m.reason());
    }
    return ((Decoded.Ok) d).frame();
  }

  private Outcome closeOutcomeOf(Frame.Close c) {
    CloseCode code = CloseCode.fromWire(c.code());
    if (code != null && code.resumable && !state.isClosing()) {
      return Outcome.backoff("node closed the connection: " + code + " " + c.reason());
    }
    if (state.isClosing() && code == CloseCode.NORMAL) {
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
    if (code == ErrorCode.THROTTLED) {
      return new Retry(message, null, Math.max(0, RetryAfter.millis(e.message())));
    }
    return code != null && code.retryable ? new Retry(message)
        : new Fatal(DeviceException.Reason.NODE_ERROR, e.code(), message);
  }

  // ------------------------------------------------------------------ writing

  private void writeNow(Frame frame) throws IOException {
    out.write(FrameCodec.encode(frame));
    out.flush();
  }

  /** Queues a frame for the writer thread; any thread. */
  void enqueue(Frame frame) {
    queueLock.lock();
    try {
      queue.addLast(frame);
      queued.signal();
    } finally {
      queueLock.unlock();
    }
  }

  private void startWriter(Duration keepAlive) {
    writer = new Thread(() -> writeLoop(keepAlive), "berth-device-writer-" + settings.deviceId());
    writer.setDaemon(true);
    writer.start();
  }

  /**
   * Writes what is queued. With {@code keepAlive}, a PING goes out when nothing was written for
   * that long; with a silence timeout, a node that sends nothing while frames wait for its ACK
   * gets a PING, and is left if it does not answer within the timeout either.
   */
  private void writeLoop(Duration keepAlive) {
    List<Frame> batch = new ArrayList<>();
    long nonce = 0;
    long silence = settings.silenceTimeout().toNanos();
    long tick = silence > 0 ? Math.max(silence / 5, TimeUnit.MILLISECONDS.toNanos(100)) : Long.MAX_VALUE;
    long nextPingAt = keepAlive != null ? System.nanoTime() + keepAlive.toNanos() : Long.MAX_VALUE;
    boolean probing = false;
    long probeSentAt = 0;
    try {
      while (!closed) {
        long now = System.nanoTime();
        boolean probe = false;
        if (probing && probeSentAt - lastFrameNanos < 0) {
          probing = false; // the node answered (a frame came after the PING)
        }
        if (silence > 0 && now - lastFrameNanos > silence && state.unackedCount() > 0) {
          if (!probing) {
            probe = true;
            probing = true;
            probeSentAt = now;
          } else if (now - probeSentAt > silence) {
            silentCause = "the node sent nothing for " + DurationText.of(Duration.ofNanos(now - lastFrameNanos))
                + " while frames waited for its ACK, and did not answer a PING: reconnecting elsewhere";
            shutdown();
            return;
          }
        }
        queueLock.lock();
        try {
          if (probe || now >= nextPingAt) {
            queue.addLast(new Frame.Ping(++nonce));
          } else if (queue.isEmpty()) {
            long wait = Math.min(tick, nextPingAt == Long.MAX_VALUE ? Long.MAX_VALUE : nextPingAt - now);
            if (wait == Long.MAX_VALUE) {
              queued.await();
            } else {
              queued.await(wait, TimeUnit.NANOSECONDS);
            }
          }
          while (!queue.isEmpty()) {
            batch.add(queue.pollFirst());
          }
        } finally {
          queueLock.unlock();
        }
        if (batch.isEmpty()) {
          continue;
        }
        for (Frame f : batch) {
          out.write(FrameCodec.encode(f));
        }
        batch.clear();
        out.flush();
        if (keepAlive != null) {
          nextPingAt = System.nanoTime() + keepAlive.toNanos();
        }
      }
    } catch (InterruptedException | IOException e) {
      // The reader sees the broken socket and reconnects; nothing else to do here.
      shutdown();
    }
  }

  /** Closes the socket and stops the writer; any thread, any number of times. */
  void shutdown() {
    closed = true;
    closeQuietly(tcp);
    Thread w = writer;
    if (w != null && w != Thread.currentThread()) {
      w.interrupt();
    }
  }

  @Override
  public String toString() {
    return address.toString();
  }

  // ------------------------------------------------------------------ failures in words

  /** What went wrong with {@code target}, in words a person can act on. */
  static String describe(Exception e, InetSocketAddress target, ClientSettings settings) {
    String at = address(target);
    if (e instanceof EOFException) {
      return "connection to " + at + " closed by the other side";
    } else if (e instanceof UnknownHostException || target.isUnresolved()) {
      return "unknown host '" + target.getHostString() + "'";
    } else if (e instanceof ConnectException && String.valueOf(e.getMessage()).contains("refused")) {
      return "connection refused: nothing listens on " + at;
    } else if (e instanceof SocketTimeoutException) {
      // The handshake's read timeout becomes a Retry of its own: this one is the connect's.
      return "no answer from " + at + " within " + DurationText.of(settings.connectTimeout()) + " (connect timeout)";
    } else if (e instanceof NoRouteToHostException) {
      return "no route to " + at;
    } else if (e instanceof SSLException ssl) {
      return TlsConnector.describe(ssl, target, settings.tls().config());
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

  // ------------------------------------------------------------------ outcomes

  /**
   * How one connection ended: reconnect after a backoff, reconnect at once to {@code redirectTo},
   * or stop for good ({@code terminalCause} set).
   */
  record Outcome(String cause, InetSocketAddress redirectTo, DeviceException error, String terminalCause) {
    static Outcome backoff(String cause) {
      return new Outcome(cause, null, null, null);
    }

    static Outcome redirect(String cause, InetSocketAddress to) {
      return new Outcome(cause, to, null, null);
    }

    static Outcome terminal(DeviceException error) {
      return new Outcome(error.getMessage(), null, error, error.getMessage());
    }

    static Outcome done(String cause) {
      return new Outcome(cause, null, null, cause);
    }

    boolean redirected() {
      return redirectTo != null;
    }
  }

  /**
   * A connection attempt failed in a way that another attempt may fix; after a REDIRECT during
   * the handshake, {@code redirectTo} is where the next attempt goes.
   */
  static final class Retry extends RuntimeException {
    final InetSocketAddress redirectTo;
    /** The least the node asked the device to wait before its next HELLO (ERROR 303), 0 for none. */
    final long waitMillis;

    Retry(String message) {
      this(message, null);
    }

    Retry(String message, InetSocketAddress redirectTo) {
      this(message, redirectTo, 0);
    }

    Retry(String message, InetSocketAddress redirectTo, long waitMillis) {
      super(message, null, false, false);
      this.redirectTo = redirectTo;
      this.waitMillis = waitMillis;
    }
  }

  /** The node refused the device for good, or the client found it cannot go on. */
  static final class Fatal extends RuntimeException {
    final DeviceException.Reason reason;
    final int code;

    Fatal(DeviceException.Reason reason, int code, String message) {
      super(message, null, false, false);
      this.reason = reason;
      this.code = code;
    }
  }
}
