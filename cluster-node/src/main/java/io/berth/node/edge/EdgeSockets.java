package io.berth.node.edge;

import io.berth.protocol.FrameCodec;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.ServerChannelRecvByteBufAllocator;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.haproxy.HAProxyCommand;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageDecoder;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.websocketx.WebSocketDecoderConfig;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolConfig;
import io.netty.handler.codec.mqtt.MqttDecoder;
import io.netty.handler.codec.mqtt.MqttEncoder;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The edge's sockets on Netty (docs/edge.md): event loops accept every device connection and do
 * its reading, writing and TLS; each connection's pipeline is the PROXY header decoder (when
 * {@code proxy-protocol} is on), the {@link SslHandler} (when TLS is on) and its {@link
 * Connection}. A connection is handed to {@code acceptor} once it is ready to carry frames.
 *
 * <p>Accepting is backpressured: at {@code max-connections} open connections, or when the
 * connect-rate bucket is empty, the server channel stops reading, so new connections wait in the
 * kernel's accept backlog (instead of being refused) until one closes or a token is due. One
 * connection is accepted per read for the count to be exact. When accepting fails (out of file
 * descriptors) Netty pauses accepts for a second instead of spinning on the error.
 */
final class EdgeSockets implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(EdgeSockets.class);
  /** The WebSocket upgrade request, headers included: a GET with no body. */
  private static final int UPGRADE_REQUEST_BYTES = 8 * 1024;
  /** Read room beyond the largest frame: what one read can take of a busy device's bytes. */
  private static final int READ_ROOM = 64 * 1024;

  /**
   * What the sockets need to know.
   *
   * @param ioThreads event loops; 0 for half the processors, at least one
   * @param setupTimeout bound on the PROXY header and TLS handshake together
   * @param tls a new TLS handler for each connection; null on a plaintext port
   * @param connectsPerSecond new connections accepted per second past the burst; 0 for no limit
   * @param websocketPath the WebSocket upgrade's path on a WebSocket port; null elsewhere
   * @param mqtt the MQTT port's settings; null elsewhere
   */
  record Options(String host, int port, int backlog, int maxConnections, int maxFrameSize, long maxBatchBytes,
      int outboundBuffer, int ioThreads, Duration setupTimeout, boolean proxyProtocol,
      Function<ByteBufAllocator, SslHandler> tls, double connectsPerSecond, int connectBurst, String websocketPath,
      MqttFrames.Settings mqtt) {

    /** Which listener these options describe. */
    EdgeKind kind() {
      return websocketPath != null ? EdgeKind.WEBSOCKET : mqtt != null ? EdgeKind.MQTT : EdgeKind.DEVICE;
    }
  }

  private final Options options;
  private final Consumer<Connection> acceptor;
  private final EventLoopGroup group;
  private final EdgeOutcome.Counts outcomes;
  private final EdgeBacklog backlog;
  private final AcceptGate gate;
  private final String transport;
  private final FixedRecvByteBufAllocator readBuffers;
  private Channel server;
  private volatile boolean stopping;

  private EdgeSockets(Options options, EdgeOutcome.Counts outcomes, EdgeBacklog backlog,
                      Consumer<Connection> acceptor) {
    this.options = options;
    this.outcomes = outcomes;
    this.backlog = backlog;
    this.acceptor = acceptor;
    boolean epoll = Epoll.isAvailable();
    IoHandlerFactory io = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
    int threads = options.ioThreads() > 0 ? options.ioThreads()
        : Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
    this.group = new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory("berth-edge-io", true), io);
    this.transport = (epoll ? "epoll" : "NIO (" + Epoll.unavailabilityCause() + ")") + ", " + threads
        + " I/O thread" + (threads == 1 ? "" : "s");
    this.readBuffers = new FixedRecvByteBufAllocator(FrameCodec.HEADER_SIZE + options.maxFrameSize() + READ_ROOM);
    this.gate = new AcceptGate(options.maxConnections(), options.connectsPerSecond(), options.connectBurst());
  }

  /**
   * Listens on {@code host:port} and hands each connection, once ready (after its PROXY header
   * and TLS handshake), to {@code acceptor}, which must {@link Connection#start} it or abort it;
   * connections that end before that are counted in {@code outcomes}; what waits for devices is
   * counted in {@code backlog}.
   */
  static EdgeSockets bind(Options options, EdgeOutcome.Counts outcomes, EdgeBacklog backlog,
                          Consumer<Connection> acceptor) throws IOException {
    EdgeSockets sockets = new EdgeSockets(options, outcomes, backlog, acceptor);
    try {
      sockets.server = sockets.bootstrap().bind(options.host(), options.port()).sync().channel();
      return sockets;
    } catch (Exception e) {
      sockets.group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      throw e instanceof IOException io ? io : new IOException("cannot listen on " + options.host() + ":"
          + options.port() + ": " + e.getMessage(), e);
    }
  }

  private ServerBootstrap bootstrap() {
    Class<? extends ServerChannel> serverClass = Epoll.isAvailable() ? EpollServerSocketChannel.class
        : NioServerSocketChannel.class;
    return new ServerBootstrap()
        .group(group)
        .channel(serverClass)
        .option(ChannelOption.SO_BACKLOG, options.backlog())
        .option(ChannelOption.SO_REUSEADDR, true)
        .option(ChannelOption.RCVBUF_ALLOCATOR, new ServerChannelRecvByteBufAllocator().maxMessagesPerRead(1))
        .handler(gate)
        .childOption(ChannelOption.TCP_NODELAY, true)
        // One allocator for every connection: the default is a new adaptive one per channel,
        // with a calculator of its own (about 70 bytes on each idle socket). Each read takes a
        // buffer of a frame and 64 KiB from the pool and gives it back once cut into frames.
        .childOption(ChannelOption.RCVBUF_ALLOCATOR, readBuffers)
        .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
        .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK,
            new WriteBufferWaterMark((int) options.maxBatchBytes(), 2 * (int) options.maxBatchBytes()))
        .childHandler(new ChannelInitializer<>() {
          @Override
          protected void initChannel(Channel channel) {
            if (options.proxyProtocol()) {
              channel.pipeline().addLast(new HAProxyMessageDecoder(), ProxyHeader.INSTANCE);
            }
            if (options.tls() != null) {
              channel.pipeline().addLast(options.tls().apply(channel.alloc()));
            }
            if (options.websocketPath() != null) {
              channel.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(UPGRADE_REQUEST_BYTES),
                  new WebSocketBytes.Upgrade(websocketConfig()), new WebSocketBytes(options.websocketPath()));
            }
            if (options.mqtt() != null) {
              // A PUBLISH holds a frame's payload and its topic and headers: room of a frame again.
              channel.pipeline().addLast(new MqttDecoder(2 * options.maxFrameSize()), MqttEncoder.INSTANCE,
                  new MqttFrames(options.mqtt()));
            }
            channel.pipeline().addLast(new Connection(channel, EdgeSockets.this));
          }
        });
  }

  /**
   * The upgrade on the configured path only; the device's Close reaches the connection (as the
   * end of its input), pings are answered and pongs dropped here. A message may be as large as a
   * batch of frames, and no extension (compression) is negotiated.
   */
  private WebSocketServerProtocolConfig websocketConfig() {
    return WebSocketServerProtocolConfig.newBuilder()
        .websocketPath(options.websocketPath())
        .checkStartsWith(false)
        .handshakeTimeoutMillis(options.setupTimeout().toMillis())
        .handleCloseFrames(false)
        .dropPongFrames(true)
        .decoderConfig(WebSocketDecoderConfig.newBuilder()
            .maxFramePayloadLength((int) Math.max(options.maxBatchBytes(),
                FrameCodec.HEADER_SIZE + (long) options.maxFrameSize()))
            .allowExtensions(false)
            .closeOnProtocolViolation(false) // WebSocketBytes refuses, and lingers
            .build())
        .build();
  }

  Options options() {
    return options;
  }

  /** Why connections ended before their first frame, counted. */
  EdgeOutcome.Counts outcomes() {
    return outcomes;
  }

  /** What waits for devices, counted. */
  EdgeBacklog backlog() {
    return backlog;
  }

  /** Which transport serves the sockets (epoll or NIO) and on how many threads. */
  String transport() {
    return transport;
  }

  InetSocketAddress localAddress() {
    return (InetSocketAddress) server.localAddress();
  }

  /** A connection is ready to carry frames; called on its event loop. */
  void announce(Connection connection) {
    if (stopping) {
      connection.edgeStopped();
      return;
    }
    acceptor.accept(connection);
  }

  /** A connection's channel closed; called on its event loop. */
  void closed() {
    gate.childClosed();
  }

  /** True once {@link #close} began: connections closing now close because the edge stopped. */
  boolean stopping() {
    return stopping;
  }

  /** Stops accepting; connections already open are served on. */
  CompletionStage<Void> unbind() {
    CompletableFuture<Void> done = new CompletableFuture<>();
    server.close().addListener(f -> done.complete(null));
    return done;
  }

  /** Stops accepting, closes every connection (each actor is told) and ends the event loops. */
  @Override
  public void close() {
    stopping = true;
    server.close();
    if (!group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS)) {
      log.warn("The edge's event loops did not end within 5 s");
    }
  }

  /**
   * On the server channel: counts open connections and spends connect-rate tokens, and stops
   * reading accepts (autoRead off) while either says no.
   */
  private static final class AcceptGate extends ChannelInboundHandlerAdapter {
    private final int maxConnections;
    private final double perNano;
    private final double burst;
    // The server channel's event loop's own.
    private ChannelHandlerContext ctx;
    private int open;
    private double tokens;
    private long refilledAt = System.nanoTime();
    private boolean atLimit;
    private boolean waitingForToken;

    AcceptGate(int maxConnections, double connectsPerSecond, int burst) {
      this.maxConnections = maxConnections;
      this.perNano = connectsPerSecond / 1e9;
      this.burst = Math.max(1, burst);
      this.tokens = this.burst;
    }

    @Override
    public boolean isSharable() {
      return false;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object child) {
      open++;
      if (open >= maxConnections && !atLimit) {
        atLimit = true;
        log.warn("Edge at its limit of {} connections: not accepting until one ends", maxConnections);
      }
      if (perNano > 0) {
        refill();
        tokens -= 1;
        if (tokens < 1) {
          waitingForToken = true;
          long nanos = (long) Math.ceil((1 - tokens) / perNano);
          ctx.executor().schedule(() -> {
            waitingForToken = false;
            refill();
            updateAccepting();
          }, nanos, TimeUnit.NANOSECONDS);
        }
      }
      updateAccepting();
      ctx.fireChannelRead(child);
    }

    private void refill() {
      long now = System.nanoTime();
      tokens = Math.min(burst, tokens + (now - refilledAt) * perNano);
      refilledAt = now;
    }

    void childClosed() {
      ChannelHandlerContext c = ctx;
      if (c == null) {
        return;
      }
      c.executor().execute(() -> {
        open--;
        if (atLimit && open < maxConnections) {
          atLimit = false;
        }
        updateAccepting();
      });
    }

    private void updateAccepting() {
      boolean accept = !atLimit && !waitingForToken;
      if (ctx.channel().config().isAutoRead() != accept) {
        ctx.channel().config().setAutoRead(accept);
      }
    }
  }

  /** Reads the PROXY protocol header (v1 or v2) and gives the connection the device's address. */
  @ChannelHandler.Sharable
  private static final class ProxyHeader extends ChannelInboundHandlerAdapter {
    static final ProxyHeader INSTANCE = new ProxyHeader();

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof HAProxyMessage header)) {
        ctx.fireChannelRead(msg);
        return;
      }
      try {
        ctx.pipeline().remove(this);
        Connection connection = ctx.pipeline().get(Connection.class);
        InetSocketAddress source = null;
        // LOCAL is the balancer's own health check: the peer's address is the right one.
        if (header.command() == HAProxyCommand.PROXY && header.sourceAddress() != null) {
          try {
            source = new InetSocketAddress(InetAddress.getByName(header.sourceAddress()), header.sourcePort());
          } catch (UnknownHostException e) {
            // The decoder checked the address literal; not reached.
          }
        }
        connection.proxied(source);
      } finally {
        header.release();
      }
    }
  }
}
