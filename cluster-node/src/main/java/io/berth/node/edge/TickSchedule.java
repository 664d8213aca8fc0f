package io.berth.node.edge;

import java.time.Duration;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * When a connection's actor wakes to check its timeouts: its one timer, which sends it the tick.
 *
 * <p>A quiet open connection (nothing unconfirmed by the entity, nothing unacknowledged by the
 * device) has only two deadlines, the idle timeout and the entity heartbeat, both seconds away.
 * Once its device has been silent for {@link #TICKS_BEFORE_SLEEP} ticks the actor sleeps until the
 * nearer deadline instead of waking every tick: at 19,000 silent sockets the tick kept a fifth of
 * a core busy. Anything else — a handshake, frames in flight, a close — ticks at {@code
 * berth.edge.tick}, and a sleeping actor that has something in flight again ticks at once.
 */
final class TickSchedule<T> {

  /** Values of {@code wakeAt} besides a due time. */
  private static final long TICKING = 0;
  private static final long NO_TIMER = -1;

  /**
   * How many ticks a connection must have been quiet, its device silent, before its actor sleeps:
   * a device that talks every few seconds keeps ticking (its traffic costs more than the tick), so
   * that timers are not rescheduled on every frame.
   */
  private static final int TICKS_BEFORE_SLEEP = 10;

  private final TimerScheduler<T> timers;
  private final T tick;
  private final Duration every;
  /**
   * {@link #TICKING}: the tick runs every {@code berth.edge.tick}; {@link #NO_TIMER}: a quiet
   * connection's single wake-up fired; otherwise the {@code System.nanoTime()} it is due at.
   */
  private long wakeAt = TICKING;

  /** Starts ticking every {@code every}. */
  TickSchedule(TimerScheduler<T> timers, T tick, Duration every) {
    this.timers = timers;
    this.tick = tick;
    this.every = every;
    timers.startTimerWithFixedDelay(tick, every);
  }

  /** After a message: a sleeping actor whose connection is no longer quiet ticks again. */
  void afterMessage(boolean quiet) {
    if (wakeAt != TICKING && !quiet) {
      tickEvery();
    }
  }

  /** The tick arrived: a single wake-up is spent. */
  void ticked() {
    if (wakeAt != TICKING) {
      wakeAt = NO_TIMER;
    }
  }

  /**
   * After a tick: sleep if quiet long enough; after a wake-up that finds activity, tick again.
   *
   * @param deadline when the nearer of the connection's two deadlines is due
   */
  void afterTick(long now, boolean quiet, long lastInboundAt, long deadline) {
    boolean silent = now - lastInboundAt >= TICKS_BEFORE_SLEEP * every.toNanos();
    if (quiet && silent) {
      if (wakeAt == TICKING || wakeAt == NO_TIMER) {
        // While quiet both deadlines only move later, so a wake-up already set stays early enough
        // (an entity that wakes brings the heartbeat forward, and wakeWithin re-arms for it).
        long delay = Math.max(every.toNanos(), deadline - now);
        timers.startSingleTimer(tick, Duration.ofNanos(delay));
        wakeAt = now + delay;
      }
    } else if (wakeAt != TICKING) {
      tickEvery();
    }
  }

  /** A deadline {@code in} from now came nearer than the wake-up planned: wake for it. */
  void wakeWithin(long now, Duration in) {
    long due = now + in.toNanos();
    if (wakeAt > due) {
      timers.startSingleTimer(tick, in);
      wakeAt = due;
    }
  }

  /**
   * Sends {@code message} once after {@code delayNanos}, unless it is on its way already: the
   * release of frames held for the uplink's rate limit (docs/limits.md), a timer of its own.
   */
  void once(T message, long delayNanos) {
    if (!timers.isTimerActive(message)) {
      timers.startSingleTimer(message, Duration.ofNanos(delayNanos));
    }
  }

  private void tickEvery() {
    timers.startTimerWithFixedDelay(tick, every);
    wakeAt = TICKING;
  }
}
