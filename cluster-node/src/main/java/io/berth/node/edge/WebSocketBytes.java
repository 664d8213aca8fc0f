package io.berth.node.edge;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.CloseWebSocketFrame;
import io.netty.handler.codec.http.websocketx.ContinuationWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketCloseStatus;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;

/**
 * Between a WebSocket and the device's {@link Connection}: the connection reads and writes the
 * native protocol's byte stream, and WebSocket binary messages carry it (docs/edges.md). Bytes in
 * are the payloads of binary messages and their continuations, in order, wherever a message
 * ends: a device may send one frame per message or several, or split one over messages. Bytes
 * out become one binary message per write (the connection writes whole frames, a batch at a
 * time).
 *
 * <p>Ends: the device's Close message is the end of its input, as a FIN is on the native port
 * (the connection then finishes as it does there); {@link #closeOutput} sends ours, after which
 * nothing more is written. A text message is refused with Close 1003, since the protocol is
 * binary. A plain HTTP request that is not the WebSocket upgrade on the configured path gets a
 * 404 that says where devices connect, and is closed.
 */
final class WebSocketBytes extends ChannelDuplexHandler {

  private final String path;
  private ChannelHandlerContext ctx;
  private boolean closeSent;
  /** A message was refused: what follows is not read. */
  private boolean refused;

  WebSocketBytes(String path) {
    this.path = path;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (refused && msg instanceof WebSocketFrame && !(msg instanceof CloseWebSocketFrame)) {
      // After a refusal (a text message's continuations among it): nothing more is read.
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof BinaryWebSocketFrame || msg instanceof ContinuationWebSocketFrame) {
      // The frame's content is passed on, and released by the connection.
      ctx.fireChannelRead(((WebSocketFrame) msg).content());
    } else if (msg instanceof CloseWebSocketFrame) {
      ReferenceCountUtil.release(msg);
      ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    } else if (msg instanceof WebSocketFrame) {
      // Text: not the protocol. (Pings are answered and pongs dropped before this handler.)
      ReferenceCountUtil.release(msg);
      refuse(ctx, WebSocketCloseStatus.INVALID_MESSAGE_TYPE, "binary messages only: each carries Berth frames");
    } else if (msg instanceof FullHttpRequest request) {
      try {
        notFound(ctx);
      } finally {
        request.release();
      }
    } else {
      ReferenceCountUtil.release(msg);
      ctx.close();
    }
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (msg instanceof ByteBuf bytes && bytes.isReadable()) {
      if (closeSent) {
        bytes.release();
        promise.setFailure(new IllegalStateException("the WebSocket's Close was sent: nothing more is written"));
        return;
      }
      ctx.write(new BinaryWebSocketFrame(bytes), promise);
    } else {
      // An empty buffer (the connection's flush marker) or a WebSocket frame: as it is.
      ctx.write(msg, promise);
    }
  }

  /**
   * Sends our Close (1000) after what was written before it, once; the future completes when it
   * is written. Called on the channel's event loop.
   */
  ChannelFuture closeOutput() {
    if (closeSent) {
      return ctx.newSucceededFuture();
    }
    closeSent = true;
    return ctx.writeAndFlush(new CloseWebSocketFrame(WebSocketCloseStatus.NORMAL_CLOSURE));
  }

  private void refuse(ChannelHandlerContext ctx, WebSocketCloseStatus status, String reason) {
    refused = true;
    if (closeSent) {
      ctx.close();
      return;
    }
    closeSent = true;
    ctx.writeAndFlush(new CloseWebSocketFrame(status, reason)).addListener(ChannelFutureListener.CLOSE);
  }

  private void notFound(ChannelHandlerContext ctx) {
    ByteBuf body = Unpooled.copiedBuffer("Berth: devices connect here with a WebSocket upgrade at " + path + "\n",
        StandardCharsets.UTF_8);
    DefaultFullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.NOT_FOUND,
        body);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8")
        .setInt(HttpHeaderNames.CONTENT_LENGTH, body.readableBytes())
        .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
  }
}
