package io.berth.node.edge;

import io.berth.protocol.Decoded;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import java.net.InetSocketAddress;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A device's connection, between its Netty channel and its {@link ConnectionActor}: the last
 * handler of the channel's pipeline (after the PROXY header and TLS, when configured; on the
 * WebSocket port after the upgrade and {@link WebSocketBytes}, on the MQTT port after {@link
 * MqttFrames}). Bytes in are cut into frames, decoded and handed to the actor in batches; frames
 * the actor offers are encoded and written out.
 *
 * <p>Setup: the connection is announced to the edge ({@link EdgeSockets}' acceptor) once it is
 * ready to carry frames: at once on a plain device port, after the PROXY header, the TLS
 * handshake, the WebSocket upgrade or the MQTT CONNECT where those apply, which must all be done
 * within {@code handshake-timeout}. The edge gives it its actor with {@link #start}; frames read
 * before that wait in the first batch.
 *
 * <p>Inbound: whatever was read while the actor was busy goes in the next {@link
 * ConnectionActor.Inbound}; one batch is with the actor at a time, and reading stops ({@code
 * autoRead} off) while the next one holds {@code max-batch-bytes}, so TCP slows the device down.
 * A length field outside 1..{@code max-frame-size} is reported as soon as its four bytes are in
 * (before any body is buffered), an undefined type as soon as its byte is in, and, since the
 * byte stream cannot be trusted after them, the rest of the input is read and discarded: the
 * device still gets the actor's ERROR and our FIN instead of a reset.
 *
 * <p>Outbound: {@link #offer} queues without blocking the actor; ACKs are cumulative and
 * replace each other, so a device that reads slowly never makes them pile up. Each write takes
 * what waits, up to {@code max-batch-bytes}, while the channel is writable. {@link #complete}
 * writes what is queued and then ends the output (TLS close_notify, then a FIN), while the
 * input is still read (half-close); the channel closes once both directions ended.
 *
 * <p>The actor's side may be called from any thread; the rest runs on the channel's event loop.
 * An idle connection holds no buffer: a partial frame is kept only between two reads.
 */
final class Connection extends ChannelInboundHandlerAdapter {

  private static final Logger log = LoggerFactory.getLogger(Connection.class);

  private final Channel channel;
  private final EdgeSockets sockets;
  private final EdgeSockets.Options options;
  private final EdgeBacklog backlog;

  // Shared with the actor: guarded by this.
  /**
   * Frames waiting to be written; null while none wait, which is most of an idle connection's
   * life: the empty deque cost 48 bytes on every one of them.
   */
  private ArrayDeque<Frame> queue;
  /** The newest ACK not yet written, and how many queued frames go before it. */
  private Frame.Ack ack;
  private int framesBeforeAck;
  private boolean completed;
  /** Aborted: what is offered or asked from now on is ignored. */
  private boolean aborted;
  /** The event loop found nothing to write: the next offer must wake it. */
  private boolean waiting = true;
  private boolean stopped;
  /** Null until {@link #start}. */
  private volatile ActorRef<ConnectionActor.Command> actor;

  // The event loop's own.
  /** The device's address: the peer's, or the PROXY header's source. */
  private InetSocketAddress remote;
  private X509Certificate clientCertificate;
  /** Announced to the edge: the PROXY header and the TLS handshake are behind it. */
  private boolean announced;
  /** Bytes read and not yet a whole frame. */
  private byte[] partial;
  /** Frames read and not yet handed to the actor; null when none. */
  private List<Decoded> batch;
  private long batchWeight;
  /** A batch is with the actor, which has not called {@link #ready} yet. */
  private boolean withActor;
  /** A bad length field: the input is read and discarded from here on. */
  private boolean discarding;
  /** A handler in front refused the device and lingers ({@link LingeringClose}): reading never stops. */
  private boolean lingering;
  private boolean inputEnded;
  private boolean outputEnded;
  /** The actor was told that the input ended. */
  private boolean endTold;
  private boolean closed;
  /** Counted in the backlog as a connection whose send buffer is full. */
  private boolean countedBlocked;
  /** For {@link MqttFrames}, with the next batch written: set by the actor, guarded by this. */
  private SessionOpened sessionOpened;
  /** MQTT port: pairs of seq and packet id of the DATA frames in {@link #batch}, or null. */
  private long[] packetIds;
  private int packetIdCount;

  Connection(Channel channel, EdgeSockets sockets) {
    this.channel = channel;
    this.sockets = sockets;
    this.options = sockets.options();
    this.backlog = sockets.backlog();
  }

  /** The device's address: the TCP peer's, or the one a PROXY header gave. */
  InetSocketAddress remote() {
    return remote;
  }

  /** The certificate the device presented in the TLS handshake, verified; null without one. */
  X509Certificate clientCertificate() {
    return clientCertificate;
  }

  // ------------------------------------------------------------------ the actor's side

  /** The connection's actor: frames read go to it from now on. */
  void start(ActorRef<ConnectionActor.Command> owner) {
    actor = owner;
    channel.eventLoop().execute(() -> {
      if (closed) {
        tellEnd(new IllegalStateException("the connection closed before its actor started"));
        return;
      }
      dispatch();
      updateRead();
      write(); // what the actor offered before (a redirect while draining)
    });
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
          framesBeforeAck = queued();
        } else if (a.seq() > ack.seq()) {
          ack = a;
        }
      } else if (queued() >= options.outboundBuffer()) {
        return false;
      } else {
        if (queue == null) {
          queue = new ArrayDeque<>(ConnectionActor.EMPTY_QUEUE);
        }
        queue.add(frame);
        backlog.queued(1);
      }
      wake = waiting;
      waiting = false;
    }
    if (wake) {
      channel.eventLoop().execute(this::write);
    }
    return true;
  }

  /**
   * The session took the connection: on the MQTT port, {@link MqttFrames} gets {@code opened}
   * before the WELCOME, which the actor offers next (it goes out with the batch that holds it).
   */
  void opened(SessionOpened opened) {
    if (kind() == EdgeKind.MQTT) {
      synchronized (this) {
        sessionOpened = opened;
      }
    }
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
      channel.eventLoop().execute(this::write);
    }
  }

  /** The actor took the last {@link ConnectionActor.Inbound}: the next one may come. */
  void ready() {
    if (!isStopped()) {
      channel.eventLoop().execute(this::actorReady);
    }
  }

  /** Tears the connection down at once (a TCP reset), unwritten frames included; only the first call counts. */
  void abort(Throwable cause) {
    synchronized (this) {
      if (stopped || aborted) {
        return;
      }
      aborted = true;
      dropQueue();
      ack = null;
    }
    channel.eventLoop().execute(() -> close(cause, true));
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

  /** The edge stopped: close the connection (a FIN) and tell the actor. */
  void edgeStopped() {
    channel.eventLoop().execute(() -> close(new IllegalStateException("the node's edge stopped"), false));
  }

  private synchronized boolean isStopped() {
    return stopped;
  }

  private synchronized void stop() {
    stopped = true;
    dropQueue();
  }

  /** Forgets the frames that wait (the connection ends without writing them); under this. */
  private void dropQueue() {
    backlog.taken(queued());
    queue = null;
  }

  private int queued() {
    return queue == null ? 0 : queue.size();
  }

  /**
   * What waits, in order, up to about {@code maxBytes}; null if nothing does (the next offer then
   * wakes the event loop, unless the outbound side is complete).
   */
  private synchronized OutboundBatch take(long maxBytes) {
    if (queued() == 0 && ack == null) {
      queue = null;
      waiting = !completed;
      return null;
    }
    OutboundBatch next = new OutboundBatch();
    next.before = sessionOpened;
    sessionOpened = null;
    long bytes = 0;
    int frames = 0;
    while (true) {
      if (ack != null && framesBeforeAck == 0) {
        next.add(ack);
        ack = null;
      }
      if (queued() == 0 || bytes >= maxBytes) {
        backlog.taken(frames);
        return next;
      }
      Frame frame = queue.poll();
      frames++;
      next.add(frame);
      bytes += OutboundBatch.weight(frame);
      framesBeforeAck--;
    }
  }

  private synchronized boolean isDone() {
    return completed && queued() == 0 && ack == null;
  }

  // ------------------------------------------------------------------ the event loop

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    if (remote == null) {
      remote = (InetSocketAddress) channel.remoteAddress();
    }
    if (options.tls() == null && !options.proxyProtocol() && kind() == EdgeKind.DEVICE) {
      announce();
    } else {
      channel.eventLoop().schedule(this::setupTimedOut, options.setupTimeout().toMillis(), TimeUnit.MILLISECONDS);
    }
    ctx.fireChannelActive();
  }

  /** The PROXY header named the device's address. */
  void proxied(InetSocketAddress source) {
    if (source != null) {
      remote = source;
    }
    if (options.tls() == null && kind() == EdgeKind.DEVICE) {
      announce();
    }
  }

  /** Served on the WebSocket port: frames travel in binary messages (docs/edges.md). */
  boolean websocket() {
    return kind() == EdgeKind.WEBSOCKET;
  }

  /** The listener the device came through. */
  EdgeKind kind() {
    return options.kind();
  }

  private void setupTimedOut() {
    if (!announced && !closed) {
      sockets.outcomes().count(EdgeOutcome.SETUP_TIMEOUT);
      log.info("Connection from {} closed: no {} within {} ms", remote, setupSteps(), options.setupTimeout().toMillis());
      close(null, false);
    }
  }

  private String setupSteps() {
    List<String> steps = new ArrayList<>();
    if (options.proxyProtocol()) {
      steps.add("PROXY header");
    }
    if (options.tls() != null) {
      steps.add("TLS handshake");
    }
    if (websocket()) {
      steps.add("WebSocket upgrade");
    }
    if (kind() == EdgeKind.MQTT) {
      steps.add("MQTT CONNECT");
    }
    return String.join(" and ", steps);
  }

  private void announce() {
    if (announced || closed) {
      return;
    }
    announced = true;
    sockets.announce(this);
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
    if (event instanceof SslHandshakeCompletionEvent handshake) {
      if (handshake.isSuccess()) {
        clientCertificate = peerCertificate(ctx);
        if (kind() == EdgeKind.DEVICE) {
          announce();
        }
      } else {
        refused(handshake.cause());
      }
    } else if (event instanceof WebSocketServerProtocolHandler.HandshakeComplete || event == MqttFrames.CONNECTED) {
      announce();
    } else if (event instanceof ChannelInputShutdownEvent || event instanceof SslCloseCompletionEvent) {
      inputEnded();
    } else if (event == LingeringClose.STARTED) {
      // The WebSocket or MQTT handler refused the device and lingers: keep reading, drop it all,
      // whatever else ends (LingeringClose closes the channel, at the latest after its deadline).
      discarding = true;
      lingering = true;
      updateRead();
    }
    if (lingering && event instanceof SslCloseCompletionEvent) {
      channel.close(); // TLS closed by the device while we lingered: nothing more will come
    }
    ctx.fireUserEventTriggered(event);
  }

  private static X509Certificate peerCertificate(ChannelHandlerContext ctx) {
    SslHandler ssl = ctx.pipeline().get(SslHandler.class);
    try {
      Certificate[] chain = ssl.engine().getSession().getPeerCertificates();
      return chain.length > 0 && chain[0] instanceof X509Certificate x ? x : null;
    } catch (SSLPeerUnverifiedException e) {
      return null; // client-auth optional, and the device presented none
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof Frame.Data data) {
      fromMqtt(data, -1);
      return;
    }
    if (msg instanceof MqttFrames.Qos1Data qos1) {
      fromMqtt(qos1.data(), qos1.packetId());
      return;
    }
    ByteBuf in = (ByteBuf) msg;
    try {
      if (!discarding && !inputEnded && !closed) {
        if (partial != null) {
          ByteBuf joined = Unpooled.buffer(partial.length + in.readableBytes());
          joined.writeBytes(partial).writeBytes(in);
          partial = null;
          cutFrames(joined);
        } else {
          cutFrames(in);
        }
      }
    } finally {
      in.release();
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    dispatch();
    updateRead();
    ctx.fireChannelReadComplete();
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    boolean writable = channel.isWritable();
    if (writable == countedBlocked) {
      countedBlocked = !writable;
      backlog.blocked(countedBlocked);
    }
    if (writable) {
      write();
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (countedBlocked) {
      countedBlocked = false;
      backlog.blocked(false);
    }
    close(null, false);
    sockets.closed();
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (!announced) {
      refused(cause);
      return;
    }
    if (!closed && EdgeOutcome.ofSetupFailure(cause) == EdgeOutcome.TLS_RENEGOTIATION) {
      // Refused by the TLS provider: counted and logged as the refusals before the first frame are.
      sockets.outcomes().count(EdgeOutcome.TLS_RENEGOTIATION);
      log.info("Connection from {} closed: it asked to renegotiate TLS ({})", remote, EdgeOutcome.rootMessage(cause));
    }
    close(cause, false);
  }

  /**
   * The PROXY header or the TLS handshake failed: counted by outcome, logged in one line, closed.
   * Netty reports a failed handshake twice (an exception and an event): the first one counts.
   */
  private void refused(Throwable cause) {
    if (closed) {
      return;
    }
    EdgeOutcome outcome = EdgeOutcome.ofSetupFailure(cause);
    sockets.outcomes().count(outcome);
    log.info("Connection from {} refused before its first frame ({}): {}", remote, outcome.label(),
        EdgeOutcome.rootMessage(cause));
    close(null, false);
  }

  /**
   * A PUBLISH's frame from MqttFrames, as it is (not encoded to be cut again), its size judged
   * as a declared length would be; a QoS 1 PUBLISH's packet id goes to the actor beside it.
   */
  private void fromMqtt(Frame.Data data, int packetId) {
    if (discarding || inputEnded || closed) {
      return;
    }
    Decoded tooLarge = FrameCodec.checkDeclaredLength(FrameCodec.DATA_OVERHEAD + data.payload().length,
        options.maxFrameSize());
    if (tooLarge != null) {
      add(tooLarge);
      discarding = true;
      return;
    }
    add(new Decoded.Ok(data));
    if (packetId > 0) {
      if (packetIds == null) {
        packetIds = new long[16];
      } else if (packetIdCount == packetIds.length) {
        packetIds = Arrays.copyOf(packetIds, 2 * packetIds.length);
      }
      packetIds[packetIdCount++] = data.seq();
      packetIds[packetIdCount++] = packetId;
    }
  }

  private void cutFrames(ByteBuf buffer) {
    int maxFrameSize = options.maxFrameSize();
    while (buffer.readableBytes() >= FrameCodec.HEADER_SIZE) {
      int at = buffer.readerIndex();
      long declared = buffer.getUnsignedInt(at);
      Decoded badLength = FrameCodec.checkDeclaredLength(declared, maxFrameSize);
      if (badLength != null) {
        add(badLength);
        discarding = true;
        return;
      }
      if (buffer.readableBytes() > FrameCodec.HEADER_SIZE) {
        // The type byte is judged as soon as it is in, like the length: no body is waited for
        // behind a type that cannot be decoded (PROTOCOL.md#frame-layout).
        Decoded badType = FrameCodec.checkType(buffer.getUnsignedByte(at + FrameCodec.HEADER_SIZE));
        if (badType != null) {
          add(badType);
          discarding = true;
          return;
        }
      }
      int size = FrameCodec.HEADER_SIZE + (int) declared;
      if (buffer.readableBytes() < size) {
        break;
      }
      add(FrameCodec.decode(buffer.nioBuffer(at, size), maxFrameSize));
      buffer.readerIndex(at + size);
    }
    if (buffer.isReadable()) {
      partial = new byte[buffer.readableBytes()];
      buffer.readBytes(partial);
    }
  }

  private void add(Decoded decoded) {
    if (batch == null) {
      batch = new ArrayList<>();
    }
    batch.add(decoded);
    batchWeight += weight(decoded);
  }

  private void inputEnded() {
    if (inputEnded) {
      return;
    }
    // A frame cut short by the end of the input is dropped: nobody is left to answer.
    inputEnded = true;
    partial = null;
    dispatch();
    if (outputEnded) {
      close(null, false);
    } else {
      updateRead();
    }
  }

  /** Hands the batch to the actor if it has none; tells it the input ended once all is handed. */
  private void dispatch() {
    ActorRef<ConnectionActor.Command> owner = actor;
    if (owner == null || closed) {
      return;
    }
    if (!withActor && batch != null) {
      long[] ids = packetIds == null ? null : Arrays.copyOf(packetIds, packetIdCount);
      owner.tell(new ConnectionActor.Inbound(this, batch, ids));
      batch = null;
      batchWeight = 0;
      packetIds = null;
      packetIdCount = 0;
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
    updateRead();
  }

  private void write() {
    if (closed || actor == null) {
      return; // not started yet: start() writes
    }
    boolean wrote = false;
    while (channel.isWritable()) {
      OutboundBatch next = take(options.maxBatchBytes());
      if (next == null) {
        if (!outputEnded && isDone()) {
          endOutput();
        }
        break;
      }
      if (next.before != null) {
        channel.write(next.before, channel.voidPromise());
      }
      channel.write(Unpooled.wrappedBuffer(next.encode()), channel.voidPromise());
      wrote = true;
    }
    if (wrote) {
      channel.flush();
    }
  }

  /**
   * Once what was written is out: TLS close_notify where TLS is on, then our FIN. On the
   * WebSocket port: our Close message instead; the channel closes once the device's Close came.
   */
  private void endOutput() {
    outputEnded = true;
    WebSocketBytes ws = channel.pipeline().get(WebSocketBytes.class);
    if (ws != null) {
      ws.closeOutput().addListener(written -> {
        if (!written.isSuccess()) {
          close(written.cause(), false);
        } else if (inputEnded) {
          close(null, false);
        }
      });
      return;
    }
    channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(written -> {
      SslHandler ssl = channel.pipeline().get(SslHandler.class);
      if (ssl != null && !written.isSuccess()) {
        close(written.cause(), false);
      } else if (ssl != null) {
        ssl.closeOutbound().addListener(notified -> shutdownOutput());
      } else {
        shutdownOutput();
      }
    });
  }

  private void shutdownOutput() {
    if (closed) {
      return;
    }
    ChannelFuture shut = ((DuplexChannel) channel).shutdownOutput();
    shut.addListener(f -> {
      if (inputEnded) {
        close(null, false);
      }
    });
  }

  private void updateRead() {
    if (closed) {
      return;
    }
    boolean read = lingering || (!inputEnded && (discarding || batchWeight < options.maxBatchBytes()));
    if (channel.config().isAutoRead() != read) {
      channel.config().setAutoRead(read);
    }
  }

  private void close(Throwable cause, boolean reset) {
    if (closed) {
      return;
    }
    closed = true;
    if (cause == null && sockets.stopping()) {
      cause = new IllegalStateException("the node's edge stopped");
    }
    stop();
    batch = null;
    partial = null;
    if (reset && channel.isOpen()) {
      try {
        channel.config().setOption(ChannelOption.SO_LINGER, 0);
      } catch (RuntimeException e) {
        // Closed already: nothing to reset.
      }
    }
    channel.close();
    if (announced) {
      tellEnd(cause);
    }
  }

  private void tellEnd(Throwable cause) {
    ActorRef<ConnectionActor.Command> owner = actor;
    if (!endTold && owner != null) {
      endTold = true;
      owner.tell(cause == null ? ConnectionActor.StreamCompleted.INSTANCE : new ConnectionActor.StreamFailed(cause));
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
