package io.berth.bench;

import io.berth.protocol.Frame;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Many idle clients driven by one Netty event loop, over plaintext or TLS: each connects, completes
 * its TLS handshake where there is TLS, sends its {@link Greeting} (a Berth HELLO, or an MQTT
 * CONNECT) and waits for the answer (WELCOME, CONNACK); then it stays connected and silent. The
 * tls scenario's counterpart of {@link IdleDevices}, which speaks plaintext Berth only: Netty's
 * {@link SslHandler} runs the TLS of thousands of connections on one thread, one file descriptor
 * each, where an {@code SSLSocket} would need a thread for each handshake under way.
 *
 * <p>Every TLS connection makes a full handshake. Its handler is made without the server's address
 * ({@link SslContext#newHandler(io.netty.buffer.ByteBufAllocator)}), and without one neither
 * BoringSSL's client nor the JDK's keeps or offers a session to resume: each connection pays for
 * the key exchange and the certificate, as a fleet of devices that each connect once does.
 *
 * <p>At most {@code inFlight} connections are between their connect and their answer at once,
 * below the servers' accept backlogs, so that the rate measured is the servers' and not the
 * kernel dropping connections.
 */
final class IdleClients implements AutoCloseable {

  /** What a client sends once connected, and how it knows the server's answer. */
  interface Greeting {
    /** The exchange, for the report: "HELLO → WELCOME". */
    String exchange();

    /** The first bytes client {@code clientId} sends. */
    byte[] request(String clientId);

    /**
     * Whether {@code in} (the bytes read so far, from 0 to its position) holds the whole answer;
     * false while it does not.
     *
     * @throws IOException when the bytes are not the answer expected
     */
    boolean answered(ByteBuffer in) throws IOException;
  }

  /** The largest answer a greeting may have: a WELCOME is well under it, a CONNACK is 4 bytes. */
  private static final int ANSWER_LIMIT = 1024;
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
  private static final Duration PROGRESS_EVERY = Duration.ofSeconds(3);
  private static final Duration CLOSE_LIMIT = Duration.ofSeconds(30);
  private static final int MQTT_CONNECT = 0x10;
  private static final int MQTT_CONNACK = 0x20;
  private static final int MQTT_3_1_1 = 4;
  private static final int MQTT_CLEAN_SESSION = 0x02;

  private final Greeting greeting;
  private final SslContext tls;
  private final EventLoopGroup group;
  private final Queue<Channel> held = new ConcurrentLinkedQueue<>();
  private final AtomicInteger dropped = new AtomicInteger();
  private final AtomicReference<String> session = new AtomicReference<>();
  private volatile boolean closing;

  /** Clients that greet with {@code greeting}, over TLS with {@code tls}, or plaintext when it is null. */
  IdleClients(Greeting greeting, SslContext tls) {
    this.greeting = greeting;
    this.tls = tls;
    this.group = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("bench-idle-clients", true),
        NioIoHandler.newFactory());
  }

  /** A Berth device's HELLO (token from {@code secret}, mapping discard), answered by a WELCOME. */
  static Greeting berthHello(byte[] secret, Duration tokenTtl) {
    Instant expiry = Instant.now().plus(tokenTtl);
    return new Greeting() {
      @Override
      public String exchange() {
        return "HELLO → WELCOME";
      }

      @Override
      public byte[] request(String clientId) {
        return IdleDevices.hello(secret, clientId, expiry);
      }

      @Override
      public boolean answered(ByteBuffer in) throws IOException {
        Frame frame = IdleDevices.answer(in);
        if (frame == null) {
          return false;
        }
        if (frame instanceof Frame.Welcome) {
          return true;
        }
        throw new IOException("answered HELLO with " + frame);
      }
    };
  }

  /**
   * An MQTT 3.1.1 client's CONNECT (clean session, no credentials, keep-alive {@code keepAlive}),
   * answered by a CONNACK that accepts it.
   */
  static Greeting mqttConnect(Duration keepAlive) {
    int seconds = (int) keepAlive.toSeconds();
    if (seconds < 1 || seconds > 0xFFFF) {
      throw new IllegalArgumentException("an MQTT keep-alive is 1 to 65535 s, not " + keepAlive);
    }
    return new Greeting() {
      @Override
      public String exchange() {
        return "CONNECT → CONNACK";
      }

      @Override
      public byte[] request(String clientId) {
        return mqttConnect(clientId, seconds);
      }

      @Override
      public boolean answered(ByteBuffer in) throws IOException {
        if (in.position() < 4) {
          return false;
        }
        if ((in.get(0) & 0xFF) != MQTT_CONNACK || in.get(1) != 2) {
          throw new IOException(String.format(Locale.ROOT, "expected CONNACK (0x20 0x02), got 0x%02x 0x%02x",
              in.get(0), in.get(1)));
        }
        if (in.get(3) != 0) {
          throw new IOException("CONNACK refused the connection: return code " + in.get(3));
        }
        return true;
      }
    };
  }

  /** CONNECT (MQTT 3.1.1 §3.1): fixed header, protocol name and level, flags, keep-alive, client id. */
  static byte[] mqttConnect(String clientId, int keepAliveSeconds) {
    byte[] id = clientId.getBytes(StandardCharsets.UTF_8);
    int remaining = 10 + 2 + id.length;
    ByteBuffer b = ByteBuffer.allocate(5 + remaining);
    b.put((byte) MQTT_CONNECT);
    // The remaining length: 7 bits a byte, least significant first, the top bit saying "more".
    int left = remaining;
    do {
      int digit = left % 128;
      left /= 128;
      b.put((byte) (left > 0 ? digit | 0x80 : digit));
    } while (left > 0);
    b.putShort((short) 4).put("MQTT".getBytes(StandardCharsets.US_ASCII)).put((byte) MQTT_3_1_1)
        .put((byte) MQTT_CLEAN_SESSION).putShort((short) keepAliveSeconds).putShort((short) id.length).put(id);
    byte[] bytes = new byte[b.position()];
    b.flip().get(bytes);
    return bytes;
  }

  /**
   * Opens {@code count} clients named {@code prefix-0 ...} on {@code target}, at most {@code
   * inFlight} at a time and within {@code limit}, and holds those answered until {@link #close};
   * stops starting new ones after the first connect that fails. May be called again to open more.
   */
  IdleDevices.Opening open(InetSocketAddress target, String prefix, int count, int inFlight, Duration limit,
      String label, PrintStream progress) {
    Run run = new Run(count, new Semaphore(inFlight));
    long deadline = run.start + limit.toNanos();
    long nextReport = run.start + PROGRESS_EVERY.toNanos();
    Bootstrap bootstrap = new Bootstrap().group(group).channel(NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) CONNECT_TIMEOUT.toMillis());
    int started = 0;
    try {
      while (started < count && !run.exhausted && System.nanoTime() < deadline) {
        if (!run.permits.tryAcquire(100, TimeUnit.MILLISECONDS)) {
          nextReport = run.report(nextReport, label, progress);
          continue;
        }
        Greeter client = new Greeter(run, greeting.request(prefix + "-" + started));
        InetAddress source = IdleDevices.LOOPBACK_SOURCES.get(started % IdleDevices.LOOPBACK_SOURCES.size());
        started++;
        run.pending.add(client);
        bootstrap.clone().handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            if (tls != null) {
              ch.pipeline().addLast(tls.newHandler(ch.alloc()));
            }
            ch.pipeline().addLast(client);
          }
        }).connect(target, target.getAddress().isLoopbackAddress() ? new InetSocketAddress(source, 0) : null)
            .addListener(f -> {
              if (!f.isSuccess()) {
                run.exhausted = true;
                run.fail(client, "connect: " + f.cause());
              }
            });
        nextReport = run.report(nextReport, label, progress);
      }
      while (run.settled() < started && System.nanoTime() < deadline) {
        LocalCluster.pause(20);
        nextReport = run.report(nextReport, label, progress);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    // Clients still waiting at the deadline are failures.
    for (Greeter client : run.pending) {
      run.fail(client, "no answer within " + limit.toSeconds() + " s");
    }
    return run.result();
  }

  /** Connections the server ended while they were held (an idle client is sent nothing otherwise). */
  int dropped() {
    return dropped.get();
  }

  /** The TLS version and cipher suite of the first handshake, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256"; null before. */
  String session() {
    return session.get();
  }

  /**
   * Closes every connection with a reset (SO_LINGER 0), as {@link IdleDevices#close} does: the
   * clients just go away, and the harness's ports are free at once. Then stops the event loop.
   */
  @Override
  public void close() {
    closing = true;
    List<ChannelFuture> closed = held.stream().map(ch -> {
      try {
        ch.config().setOption(ChannelOption.SO_LINGER, 0);
      } catch (ChannelException e) {
        // The server ended it already (a dropped connection): closing it is all there is to do.
      }
      return ch.close();
    }).toList();
    long deadline = System.nanoTime() + CLOSE_LIMIT.toNanos();
    for (ChannelFuture f : closed) {
      f.awaitUninterruptibly(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
    }
    held.clear();
    group.shutdownGracefully(0, 5, TimeUnit.SECONDS).awaitUninterruptibly(CLOSE_LIMIT.toMillis());
  }

  /** The state of one opening: what was answered and failed, and when. */
  private final class Run {
    final int count;
    final Semaphore permits;
    final long start = System.nanoTime();
    /** Clients started and neither answered nor failed. */
    final Set<Greeter> pending = ConcurrentHashMap.newKeySet();
    final AtomicInteger opened = new AtomicInteger();
    final AtomicInteger failed = new AtomicInteger();
    final AtomicLong lastAnswer = new AtomicLong(start);
    final AtomicLong halfAt = new AtomicLong();
    final AtomicReference<String> firstFailure = new AtomicReference<>();
    /** Set by the first connect that fails (out of ports or files, or nobody listening). */
    volatile boolean exhausted;

    Run(int count, Semaphore permits) {
      this.count = count;
      this.permits = permits;
    }

    int settled() {
      return opened.get() + failed.get();
    }

    void answered(Greeter client) {
      if (pending.remove(client)) {
        held.add(client.channel);
        long now = System.nanoTime();
        lastAnswer.accumulateAndGet(now, Math::max);
        if (opened.incrementAndGet() == count / 2) {
          halfAt.set(now);
        }
        permits.release();
      }
    }

    /** Counts a client as failed once, whoever sees it first (its handler, its connect, the deadline). */
    void fail(Greeter client, String why) {
      if (pending.remove(client)) {
        failed.incrementAndGet();
        firstFailure.compareAndSet(null, why);
        permits.release();
        Channel ch = client.channel;
        if (ch != null) {
          ch.close();
        }
      }
    }

    long report(long nextReport, String label, PrintStream progress) {
      long now = System.nanoTime();
      if (now < nextReport) {
        return nextReport;
      }
      progress.printf(Locale.ROOT, "tls: %s: %,d of %,d answered (%,.0f/s), %d failed%n", label, opened.get(), count,
          opened.get() / ((now - start) / 1e9), failed.get());
      return nextReport + PROGRESS_EVERY.toNanos();
    }

    IdleDevices.Opening result() {
      int n = opened.get();
      double seconds = Math.max(1, lastAnswer.get() - start) / 1e9;
      long half = halfAt.get();
      double secondHalf = half == 0 ? Double.NaN : (n - count / 2) / (Math.max(1, lastAnswer.get() - half) / 1e9);
      return new IdleDevices.Opening(n, failed.get(), firstFailure.get(), n / seconds, secondHalf);
    }
  }

  /**
   * One client: sends the greeting once connected (over TLS: once the handshake is done), reads
   * the answer, then holds still. Runs on the event loop.
   */
  private final class Greeter extends ChannelInboundHandlerAdapter {
    private final Run run;
    private final byte[] request;
    private final ByteBuffer in = ByteBuffer.allocate(ANSWER_LIMIT);
    private final AtomicBoolean lost = new AtomicBoolean();
    /** Set once the handler is in the channel's pipeline; null for a client whose channel never opened. */
    private volatile Channel channel;
    private boolean answered;

    Greeter(Run run, byte[] request) {
      this.run = run;
      this.request = request;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      channel = ctx.channel();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
      if (tls == null) {
        ctx.writeAndFlush(ctx.alloc().buffer(request.length).writeBytes(request));
      }
      super.channelActive(ctx);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
      if (evt instanceof SslHandshakeCompletionEvent done) {
        if (done.isSuccess()) {
          var s = ctx.pipeline().get(SslHandler.class).engine().getSession();
          session.compareAndSet(null, s.getProtocol() + " " + s.getCipherSuite());
          ctx.writeAndFlush(ctx.alloc().buffer(request.length).writeBytes(request));
        } else {
          run.fail(this, "TLS handshake: " + done.cause());
        }
      }
      super.userEventTriggered(ctx, evt);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf bytes = (ByteBuf) msg;
      try {
        if (answered) {
          lose();
        } else if (bytes.readableBytes() > in.remaining()) {
          run.fail(this, "answer longer than " + ANSWER_LIMIT + " bytes");
        } else {
          // readBytes(ByteBuffer) fills the buffer up to its limit: just what arrived, then open again.
          in.limit(in.position() + bytes.readableBytes());
          bytes.readBytes(in);
          in.limit(in.capacity());
          if (greeting.answered(in)) {
            answered = true;
            run.answered(this);
          }
        }
      } catch (IOException e) {
        run.fail(this, e.getMessage());
      } finally {
        bytes.release();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      if (!answered) {
        run.fail(this, "closed before the answer");
      } else if (!closing) {
        lose();
      }
      super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (answered) {
        ctx.close();
      } else {
        run.fail(this, cause.toString());
      }
    }

    /** A held client the server ended: counted once, whether it was told something or just closed. */
    private void lose() {
      if (!closing && lost.compareAndSet(false, true)) {
        dropped.incrementAndGet();
      }
    }
  }
}
