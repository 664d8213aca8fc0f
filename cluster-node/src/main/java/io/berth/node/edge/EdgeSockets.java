package io.berth.node.edge;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Iterator;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import io.berth.protocol.FrameCodec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The edge's sockets: one thread and one selector accept every device connection and do all of
 * their reading and writing (docs/edge.md). A connection costs its channel and a {@link
 * Connection}; there is no actor, stream or timer per connection on this side.
 *
 * <p>Everything else talks to the thread through {@link #execute}: a task queue and a selector
 * wake-up, skipped while a wake-up is already pending, so a burst of frames offered to busy
 * connections costs one wake-up, not one each.
 *
 * <p>At {@code max-connections} open connections the thread stops accepting (the kernel's backlog
 * holds the next ones) and starts again when one closes; when accepting fails, typically for want
 * of file descriptors, it pauses for {@link #ACCEPT_PAUSE_MS} instead of spinning on the error.
 */
final class EdgeSockets implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(EdgeSockets.class);

  static final long ACCEPT_PAUSE_MS = 100;
  /** Read room beyond the largest partial frame a connection can carry over to its next read. */
  private static final int READ_ROOM = 64 * 1024;

  private final ServerSocketChannel server;
  private final Selector selector;
  private final SelectionKey acceptKey;
  private final Consumer<SocketChannel> acceptor;
  private final Consumer<Throwable> onFailure;
  private final int maxConnections;
  private final Thread thread;
  private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();
  /** A wake-up is pending or the thread is awake: {@link #execute} need not wake it. */
  private final AtomicBoolean awake = new AtomicBoolean(true);
  private final CompletableFuture<Void> terminated = new CompletableFuture<>();
  private volatile boolean closing;

  // The thread's own.
  /** One read buffer for every connection: only a partial frame stays with its connection. */
  final ByteBuffer readBuffer;
  private int open;
  private boolean unbound;
  private boolean atLimit;
  /** {@code System.nanoTime()} when accepting resumes after a failure; 0 when not paused. */
  private long acceptPausedUntil;

  private EdgeSockets(ServerSocketChannel server, Selector selector, Consumer<SocketChannel> acceptor,
      Consumer<Throwable> onFailure, int maxConnections, int maxFrameSize) throws IOException {
    this.server = server;
    this.selector = selector;
    this.acceptor = acceptor;
    this.onFailure = onFailure;
    this.maxConnections = maxConnections;
    this.readBuffer = ByteBuffer.allocateDirect(FrameCodec.HEADER_SIZE + maxFrameSize + READ_ROOM);
    this.acceptKey = server.register(selector, SelectionKey.OP_ACCEPT);
    this.thread = new Thread(this::run, "berth-edge-io");
    this.thread.setDaemon(true);
  }

  /**
   * Listens on {@code host:port} and hands each accepted connection, non-blocking and with
   * {@code TCP_NODELAY}, to {@code acceptor}, on the sockets' thread; the acceptor must {@link
   * #register} it (or {@link #reject} it). Should the thread fail, every connection is closed
   * and {@code onFailure} is told.
   */
  static EdgeSockets bind(String host, int port, int backlog, int maxConnections, int maxFrameSize,
      Consumer<SocketChannel> acceptor, Consumer<Throwable> onFailure) throws IOException {
    Selector selector = Selector.open();
    ServerSocketChannel server = ServerSocketChannel.open();
    try {
      server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      server.bind(new InetSocketAddress(host, port), backlog);
      server.configureBlocking(false);
      EdgeSockets sockets = new EdgeSockets(server, selector, acceptor, onFailure, maxConnections, maxFrameSize);
      sockets.thread.start();
      return sockets;
    } catch (IOException | RuntimeException e) {
      server.close();
      selector.close();
      throw e;
    }
  }

  InetSocketAddress localAddress() throws IOException {
    return (InetSocketAddress) server.getLocalAddress();
  }

  /** Runs {@code task} on the sockets' thread, soon; dropped once the sockets are closed. */
  void execute(Runnable task) {
    tasks.add(task);
    if (!awake.get() && awake.compareAndSet(false, true)) {
      selector.wakeup();
    }
  }

  /** Starts serving an accepted connection: reading from it, writing what is offered to it. */
  void register(Connection connection) {
    execute(() -> {
      if (closing) {
        connection.failed(new IOException("the node's edge stopped"));
        return;
      }
      try {
        connection.started(connection.channel().register(selector, SelectionKey.OP_READ, connection));
      } catch (ClosedChannelException e) {
        connection.failed(e);
      }
    });
  }

  /** An accepted channel that gets no connection after all (its actor could not start). */
  void reject(SocketChannel channel) {
    execute(() -> {
      closeQuietly(channel);
      closed();
    });
  }

  /** Stops accepting; connections already open are served on. */
  CompletionStage<Void> unbind() {
    CompletableFuture<Void> done = new CompletableFuture<>();
    if (terminated.isDone()) {
      done.complete(null);
      return done;
    }
    execute(() -> {
      unbound = true;
      acceptKey.cancel();
      try {
        server.close();
        // A channel registered with a selector closes when its key is flushed, at the next select.
        selector.selectNow();
        done.complete(null);
      } catch (IOException e) {
        done.completeExceptionally(e);
      }
    });
    return done;
  }

  /** Stops accepting, resets every connection and ends the thread; waits for it a little. */
  @Override
  public void close() {
    closing = true;
    selector.wakeup();
    if (Thread.currentThread() != thread) {
      try {
        terminated.get(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        log.warn("The edge's socket thread did not end within 5 s");
      }
    }
  }

  /** Called by a connection, on the sockets' thread, once its channel is closed. */
  void closed() {
    open--;
    if (closing) {
      return; // the accept key is gone with the server channel
    }
    if (atLimit && open < maxConnections && !unbound) {
      atLimit = false;
      if (acceptPausedUntil == 0) {
        acceptKey.interestOps(SelectionKey.OP_ACCEPT);
      }
    }
  }

  private void run() {
    try {
      while (!closing) {
        awake.set(false);
        long timeout = acceptPausedUntil == 0 ? 0
            : Math.max(1, TimeUnit.NANOSECONDS.toMillis(acceptPausedUntil - System.nanoTime()));
        if (tasks.isEmpty()) {
          selector.select(timeout);
        } else {
          selector.selectNow();
        }
        awake.set(true);
        resumeAcceptingIfDue();
        Iterator<SelectionKey> keys = selector.selectedKeys().iterator();
        while (keys.hasNext()) {
          SelectionKey key = keys.next();
          keys.remove();
          if (!key.isValid()) {
            continue;
          }
          if (key == acceptKey) {
            acceptAll();
          } else {
            Connection connection = (Connection) key.attachment();
            try {
              connection.onSelected(key.readyOps());
            } catch (RuntimeException e) {
              log.error("Serving a device connection failed: closing it", e);
              connection.failed(new IOException("the edge failed to serve the connection", e));
            }
          }
        }
        runTasks();
      }
    } catch (Throwable e) {
      log.error("The edge's socket thread failed: closing every device connection", e);
      shutdown();
      onFailure.accept(e);
      return;
    }
    shutdown();
  }

  /** Runs what {@link #execute} queued; one task failing does not stop the others. */
  private void runTasks() {
    Runnable task;
    while ((task = tasks.poll()) != null) {
      try {
        task.run();
      } catch (RuntimeException e) {
        log.error("A task of the edge's socket thread failed", e);
      }
    }
  }

  private void acceptAll() {
    while (open < maxConnections) {
      SocketChannel channel;
      try {
        channel = server.accept();
      } catch (IOException e) {
        log.warn("Cannot accept a device connection ({}): pausing accepts for {} ms", e.getMessage(), ACCEPT_PAUSE_MS);
        acceptPausedUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ACCEPT_PAUSE_MS);
        acceptKey.interestOps(0);
        return;
      }
      if (channel == null) {
        return;
      }
      try {
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
      } catch (IOException e) {
        closeQuietly(channel);
        continue;
      }
      open++;
      acceptor.accept(channel);
    }
    atLimit = true;
    acceptKey.interestOps(0);
    log.warn("Edge at its limit of {} connections: not accepting until one ends", maxConnections);
  }

  private void resumeAcceptingIfDue() {
    if (acceptPausedUntil != 0 && System.nanoTime() - acceptPausedUntil >= 0) {
      acceptPausedUntil = 0;
      if (!atLimit && !unbound) {
        acceptKey.interestOps(SelectionKey.OP_ACCEPT);
      }
    }
  }

  private void shutdown() {
    closing = true;
    closeQuietly(server);
    // Connections accepted but not registered yet are failed by their registration task.
    runTasks();
    for (SelectionKey key : selector.keys()) {
      if (key.attachment() instanceof Connection connection) {
        try {
          connection.failed(new IOException("the node's edge stopped"));
        } catch (RuntimeException e) {
          log.debug("Closing a device connection while the edge stopped", e);
        }
      }
    }
    try {
      selector.close();
    } catch (IOException e) {
      log.debug("Closing the edge's selector", e);
    }
    terminated.complete(null);
  }

  static void closeQuietly(java.io.Closeable closeable) {
    try {
      closeable.close();
    } catch (IOException e) {
      log.debug("Closing {}", closeable, e);
    }
  }
}
