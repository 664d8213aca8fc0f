package io.berth.node.edge;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.socket.DuplexChannel;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Ends a connection after a refusal (a WebSocket Close, an MQTT CONNACK or DISCONNECT with its
 * reason) so that the device reads it. Closing a socket whose input has unread bytes makes the
 * kernel answer with a reset, and a reset can destroy what we wrote while it still waits in the
 * device's receive buffer: a device that was refused in the middle of a large write would learn
 * only that the connection broke, not why. So from the refusal on, the channel goes on reading
 * and its handlers drop what comes, until the device closes its side or {@link #MILLIS} pass, as
 * HTTP servers do in a lingering close.
 */
final class LingeringClose {

  /** How long a refused device's input is read and dropped, at most. */
  static final long MILLIS = 2_000;

  /**
   * The user event that announces a lingering close to the handlers after the one that refused:
   * {@link Connection} then reads and drops (it must not stop reading, or the input is left unread
   * again) and writes nothing that matters, since the refusing handler drops its writes.
   */
  static final Object STARTED = new Object() {
    @Override
    public String toString() {
      return "LingeringClose.STARTED";
    }
  };

  private LingeringClose() {}

  /**
   * Closes {@code written}'s channel {@link #MILLIS} after now, or at once if the refusal cannot
   * be written or the device has closed its side already. The handler that refused drops what it
   * reads and writes meanwhile, and closes the channel at the end of the input. Called on the
   * channel's event loop.
   */
  static void after(ChannelFuture written) {
    Channel channel = written.channel();
    channel.pipeline().fireUserEventTriggered(STARTED);
    channel.config().setAutoRead(true);
    // From the refusal, not from its write: a device that reads nothing must not hold us longer.
    ScheduledFuture<?> deadline = channel.eventLoop().schedule(() -> channel.close(), MILLIS, TimeUnit.MILLISECONDS);
    channel.closeFuture().addListener(closed -> deadline.cancel(false));
    written.addListener(done -> {
      if (!done.isSuccess() || !channel.isActive()
          || (channel instanceof DuplexChannel duplex && duplex.isInputShutdown())) {
        channel.close();
      }
    });
  }
}
