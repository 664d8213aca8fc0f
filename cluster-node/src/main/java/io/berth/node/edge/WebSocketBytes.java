package io.berth.node.edge;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
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
import io.netty.handler.codec.http.websocketx.CorruptedWebSocketFrameException;
import io.netty.handler.codec.http.websocketx.WebSocketCloseStatus;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketFrameDecoder;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolConfig;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler;
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
 * binary; a message larger than a batch with 1009, and any other breach of RFC 6455 with the
 * code Netty's decoder names. A plain HTTP request that is not the WebSocket upgrade on the
 * configured path gets a 404 that says where devices connect, and is closed.
 *
 * <p>After a refusal the connection ends with a {@link LingeringClose}: the device may still be
 * writing (a large message is refused from its header), and our Close must reach it.
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
      if (refused) {
        ctx.close(); // the device answered our refusal
        return;
      }
      ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    } else if (msg instanceof WebSocketFrame) {
      // Text: not the protocol. (Pings are answered and pongs dropped before this handler.)
      ReferenceCountUtil.release(msg);
      refuse(ctx, WebSocketCloseStatus.INVALID_MESSAGE_TYPE, "binary messages only: each carries Berth frames");
    } else if (refused) {
      ReferenceCountUtil.release(msg); // the bytes of a message the decoder refused
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

  /** A breach of the WebSocket protocol, from the decoder (see {@link Upgrade}): refused with its code. */
  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof CorruptedWebSocketFrameException breach) {
      String reason = breach.getMessage() == null ? breach.closeStatus().reasonText() : breach.getMessage();
      refuse(ctx, breach.closeStatus(), reason);
      // A breach of the framing (1009, 1002): the decoder has lost the frames' boundaries for
      // good; in its place, a handler that drops bytes as they come (the corrupt decoder would skip
      // them one at a time). Refused first, so that any bytes the decoder hands on as it goes are
      // dropped here too. Text that is not UTF-8 (1007) leaves the framing intact: the decoder
      // stays, and the device's Close can still be read.
      if (breach.closeStatus().code() != WebSocketCloseStatus.INVALID_PAYLOAD_DATA.code()
          && ctx.pipeline().get(WebSocketFrameDecoder.class) != null) {
        ctx.pipeline().replace(WebSocketFrameDecoder.class, "berth-ws-refused", Drop.INSTANCE);
      }
    } else {
      ctx.fireExceptionCaught(cause);
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
    if (refused && event instanceof ChannelInputShutdownEvent) {
      ctx.close(); // the device closed its side after our refusal
    } else {
      ctx.fireUserEventTriggered(event);
    }
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (msg instanceof ByteBuf bytes && bytes.isReadable()) {
      if (closeSent) {
        // Our Close is out: nothing follows it (RFC 6455 5.5.1). The connection writes with a void
        // promise, whose failure would close the channel through the pipeline: dropped quietly.
        bytes.release();
        if (!promise.isVoid()) {
          promise.setFailure(new IllegalStateException("the WebSocket's Close was sent: nothing more is written"));
        }
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
    if (refused) {
      return;
    }
    refused = true;
    if (closeSent) {
      ctx.close();
      return;
    }
    closeSent = true;
    LingeringClose.after(ctx.writeAndFlush(new CloseWebSocketFrame(status, reason)));
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

  /** Where the decoder was after a breach: whatever the device still sends is released unread. */
  @ChannelHandler.Sharable
  private static final class Drop extends ChannelInboundHandlerAdapter {
    static final Drop INSTANCE = new Drop();

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ReferenceCountUtil.release(msg);
    }
  }

  /**
   * Netty's upgrade and protocol handler, except that a breach of the protocol found by the
   * decoder is passed on to {@link WebSocketBytes} (which refuses it with a Close and a lingering
   * end) instead of closing the channel at once. The decoder is configured not to close either.
   */
  static final class Upgrade extends WebSocketServerProtocolHandler {

    Upgrade(WebSocketServerProtocolConfig config) {
      super(config);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
      if (cause instanceof CorruptedWebSocketFrameException) {
        ctx.fireExceptionCaught(cause);
      } else {
        super.exceptionCaught(ctx, cause);
      }
    }
  }
}
