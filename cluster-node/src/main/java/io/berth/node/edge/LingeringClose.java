package io.berth.node.edge;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.socket.DuplexChannel;
import java.util.concurrent.TimeUnit;

/**
 * Ends a connection after a refusal (a WebSocket Close, an MQTT CONNACK or DISCONNECT with its
 * reason) so that the device reads it. Closing a socket whose input has unread bytes makes the
 * kernel answer with a reset, and a reset can destroy what we wrote while it still waits in the
 * device's receive buffer: a device that was refused in the middle of a large write would learn
 * only that the connection broke, not why. So once the refusal is written the channel goes on
 * reading (its handler drops what comes) until the device closes its side or {@link #MILLIS}
 * pass, as HTTP servers do in a lingering close.
 */
final class LingeringClose {

  /** How long a refused device's input is read and dropped, at most. */
  static final long MILLIS = 2_000;

  private LingeringClose() {}

  /**
   * Closes {@code written}'s channel once it is out and the device has closed its side, or
   * {@link #MILLIS} after. The handler that refused drops what it reads meanwhile and closes the
   * channel at the end of the input.
   */
  static void after(ChannelFuture written) {
    Channel channel = written.channel();
    written.addListener(done -> {
      if (!done.isSuccess() || !channel.isActive()
          || (channel instanceof DuplexChannel duplex && duplex.isInputShutdown())) {
        channel.close();
        return;
      }
      channel.config().setAutoRead(true);
      channel.eventLoop().schedule(() -> channel.close(), MILLIS, TimeUnit.MILLISECONDS);
    });
  }
}
