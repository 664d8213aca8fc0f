package io.berth.node.tls;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.ssl.SslHandler;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A Netty server on loopback whose pipeline is what the edge's will start with: the handler from
 * {@link EdgeTls}, then (here) an echo. Each accepted connection is kept for the test to inspect:
 * its handshake, the errors that reached the end of the pipeline, whether it closed.
 */
final class TlsEchoServer implements AutoCloseable {

  private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
  private final Channel server;
  private final BlockingQueue<Accepted> accepted = new LinkedBlockingQueue<>();

  /** One connection the server accepted. */
  record Accepted(SocketChannel channel, SslHandler ssl, List<Throwable> errors) {

    /** Waits for the handshake's outcome: true if it completed. */
    boolean handshakeSucceeds() throws InterruptedException {
      if (!ssl.handshakeFuture().await(5, TimeUnit.SECONDS)) {
        throw new AssertionError("the server's handshake neither completed nor failed within 5 s");
      }
      return ssl.handshakeFuture().isSuccess();
    }

    /** Waits for the connection to be closed: true if it was within 5 s. */
    boolean closes() throws InterruptedException {
      return channel.closeFuture().await(5, TimeUnit.SECONDS);
    }
  }

  TlsEchoServer(EdgeTls tls) throws InterruptedException {
    server = new ServerBootstrap()
        .group(group)
        .channel(NioServerSocketChannel.class)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            SslHandler ssl = tls.newHandler(ch.alloc());
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            ch.pipeline().addLast(ssl, new Echo(errors));
            accepted.add(new Accepted(ch, ssl, errors));
          }
        })
        .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
  }

  int port() {
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  /** The next connection accepted, within 5 s. */
  Accepted next() throws InterruptedException {
    Accepted a = accepted.poll(5, TimeUnit.SECONDS);
    if (a == null) {
      throw new AssertionError("the server accepted no connection within 5 s");
    }
    return a;
  }

  @Override
  public void close() {
    server.close().syncUninterruptibly();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  /** Writes back what it reads; records errors and leaves closing to the TLS handler. */
  private static final class Echo extends ChannelInboundHandlerAdapter {

    private final List<Throwable> errors;

    Echo(List<Throwable> errors) {
      this.errors = errors;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ctx.writeAndFlush(msg);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      errors.add(cause);
    }
  }
}
