package io.berth.node.edge;

import java.time.Duration;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.FlowShape;
import org.apache.pekko.stream.Inlet;
import org.apache.pekko.stream.Outlet;
import org.apache.pekko.stream.stage.AbstractInHandler;
import org.apache.pekko.stream.stage.AbstractOutHandler;
import org.apache.pekko.stream.stage.GraphStage;
import org.apache.pekko.stream.stage.GraphStageLogic;
import org.apache.pekko.stream.stage.TimerGraphStageLogic;

/**
 * Keeps reading (and discarding) the connection's input for a bounded time after everything
 * downstream stopped, instead of cancelling it at once.
 *
 * <p>Why: when the framing stage meets a bad length it fails, which cancels the TCP read side;
 * cancelling it while the device is still writing tears the connection down before the ERROR
 * frame is flushed, and unread input makes the kernel answer with a reset. Draining for {@code
 * linger} lets the ERROR and the FIN reach the device first.
 */
final class DrainOnCancel<T> extends GraphStage<FlowShape<T, T>> {

  private final Inlet<T> in = Inlet.create("DrainOnCancel.in");
  private final Outlet<T> out = Outlet.create("DrainOnCancel.out");
  private final FlowShape<T, T> shape = FlowShape.of(in, out);
  private final Duration linger;

  DrainOnCancel(Duration linger) {
    this.linger = linger;
  }

  @Override
  public FlowShape<T, T> shape() {
    return shape;
  }

  @Override
  public GraphStageLogic createLogic(Attributes inheritedAttributes) {
    return new TimerGraphStageLogic(shape) {
      private boolean draining;

      {
        setHandler(in, new AbstractInHandler() {
          @Override
          public void onPush() {
            T element = grab(in);
            if (draining) {
              pull(in);
            } else {
              push(out, element);
            }
          }
        });
        setHandler(out, new AbstractOutHandler() {
          @Override
          public void onPull() {
            pull(in);
          }

          @Override
          public void onDownstreamFinish(Throwable cause) {
            draining = true;
            setKeepGoing(true);
            scheduleOnce("linger", linger);
            if (!hasBeenPulled(in) && !isClosed(in)) {
              pull(in);
            }
          }
        });
      }

      @Override
      public void onTimer(Object key) {
        completeStage();
      }
    };
  }
}
