package io.berth.node.edge;

import io.berth.protocol.Frame;

/**
 * Where a {@link ConnectionActor} keeps its {@link Connection}, which reaches it in a message: the
 * edge's {@code Attach}, or the first {@code Inbound} from the connection's event loop if that overtakes
 * it. What the actor asks of the connection before then (an abort, the end of its output) is done
 * when it arrives. Used on the actor's thread only.
 */
final class ConnectionSlot {

  /** Null until {@link #attach}. */
  private Connection connection;
  /** Set when the connection had to be aborted before the actor had it. */
  private String abortWhenAttached;
  private boolean completed;

  /** The connection arrived; only the first call counts. */
  void attach(Connection arrived) {
    if (connection != null) {
      return;
    }
    connection = arrived;
    if (abortWhenAttached != null) {
      connection.abort(new IllegalStateException(abortWhenAttached));
    } else if (completed) {
      connection.complete();
    }
  }

  /**
   * Queues a frame for the device, unless the output was completed. False when {@code
   * outbound-buffer} frames already wait: the device does not read.
   */
  boolean offer(Frame frame) {
    if (completed) {
      return true;
    }
    if (connection == null) {
      // Only an actor stalled for seconds before its Attach arrived gets here (a handshake
      // timeout): nothing was read yet, so there is nobody to answer.
      abort("connection not attached in time");
      return true;
    }
    return connection.offer(frame);
  }

  /** The session took the connection: an MQTT connection gets this before the WELCOME ({@link SessionOpened}). */
  void opened(SessionOpened opened) {
    if (connection != null) {
      connection.opened(opened);
    }
  }

  /** The actor took the last batch of frames read: the connection may read on. */
  void ready() {
    connection.ready();
  }

  /** Resets the connection, now or when it arrives. */
  void abort(String why) {
    if (connection == null) {
      abortWhenAttached = why;
    } else {
      connection.abort(new IllegalStateException(why));
    }
  }

  /** Writes what is queued, then a FIN; only the first call counts. */
  void complete() {
    if (!completed) {
      completed = true;
      if (connection != null) {
        connection.complete();
      }
    }
  }
}
