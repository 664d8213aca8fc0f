package io.berth.node.edge;

import java.time.Duration;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.DeadLetterSuppression;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Scheduler;
import org.apache.pekko.dispatch.ExecutionContexts;
import scala.concurrent.ExecutionContext;

/**
 * When a connection's actor wakes to check its timeouts: one wake-up at a time, on the actor
 * system's scheduler, which sends the actor a {@link Wake}.
 *
 * <p>A quiet open connection (nothing unconfirmed by the entity, nothing unacknowledged by the
 * device) has only two deadlines, the idle timeout and the entity heartbeat, both seconds away.
 * Once its device has been silent for {@link #TICKS_BEFORE_SLEEP} ticks the actor sleeps until the
 * nearer deadline instead of waking every tick: at 19,000 silent sockets the tick kept a fifth of
 * a core busy. Anything else — a handshake, frames in flight, a close — ticks at {@code
 * berth.edge.tick}, and a sleeping actor that has something in flight again ticks at once.
 *
 * <p>Why not the actor's own timers ({@code Behaviors.withTimers}): they cost every connection,
 * idle ones included, an interceptor around its behavior, a timer scheduler with its map, and a
 * timer record and message per timer, some 230 bytes (docs/edge.md); what they add, a timer's
 * message never arriving once cancelled, a connection does not need, since a check of its
 * timeouts is harmless at any time. A wake-up that was replaced by a nearer one still arrives, and
 * is only not taken for the one planned ({@link #woke}).
 */
final class TickSchedule {

  /**
   * How many ticks a connection must have been quiet, its device silent, before its actor sleeps:
   * a device that talks every few seconds keeps ticking (its traffic costs more than the tick), so
   * that wake-ups are not planned again on every frame.
   */
  private static final int TICKS_BEFORE_SLEEP = 10;
  /** A wake-up only tells the actor: on the scheduler's thread, as the actors' own timers do. */
  private static final ExecutionContext SAME_THREAD = ExecutionContexts.fromExecutor(Runnable::run);

  /**
   * A wake-up: the scheduler runs it, and it sends itself to the actor, its own identity, told
   * apart from a wake-up that a nearer one replaced.
   */
  static final class Wake implements Runnable, DeadLetterSuppression {
    private final ActorRef<Object> actor;

    private Wake(ActorRef<Object> actor) {
      this.actor = actor;
    }

    @Override
    public void run() {
      actor.tell(this);
    }
  }

  private final Scheduler scheduler;
  private final ActorRef<Object> actor;
  private final long every;
  /** The quiet connection's actor waits for one wake-up rather than ticking every {@link #every}. */
  private boolean sleeping;
  /** The wake-up planned, or null after it arrived (or the actor stopped). */
  private Wake next;
  private Cancellable nextTask;
  /** When {@link #next} is due ({@code System.nanoTime()}). */
  private long nextAt;
  /** A message sent once after a delay ({@link #once}) is on its way. */
  private boolean onceScheduled;

  /** Starts ticking every {@code every}. */
  TickSchedule(Scheduler scheduler, ActorRef<Object> actor, Duration every) {
    this.scheduler = scheduler;
    this.actor = actor;
    this.every = every.toNanos();
    wakeIn(System.nanoTime(), this.every);
  }

  /**
   * A {@link Wake} arrived: true if it is the one planned (it is spent), false for one that a
   * nearer wake-up replaced. Either way the actor may check its timeouts.
   */
  boolean woke(Wake wake) {
    if (wake != next) {
      return false;
    }
    next = null;
    nextTask = null;
    return true;
  }

  /** After a message: a sleeping actor whose connection is no longer quiet ticks again. */
  void afterMessage(boolean quiet) {
    if (sleeping && !quiet) {
      sleeping = false;
      wakeIn(System.nanoTime(), every);
    }
  }

  /**
   * After a tick: sleep if quiet long enough; after a wake-up that finds activity, tick again.
   *
   * @param deadline when the nearer of the connection's two deadlines is due
   */
  void afterTick(long now, boolean quiet, long lastInboundAt, long deadline) {
    boolean silent = now - lastInboundAt >= TICKS_BEFORE_SLEEP * every;
    sleeping = quiet && silent;
    // While quiet both deadlines only move later, so a wake-up already set stays early enough
    // (an entity that wakes brings the heartbeat forward, and wakeWithin re-arms for it).
    wakeIn(now, sleeping ? Math.max(every, deadline - now) : every);
  }

  /** A deadline {@code in} from now came nearer than the wake-up planned: wake for it. */
  void wakeWithin(long now, Duration in) {
    wakeIn(now, in.toNanos());
  }

  /**
   * Sends {@code message} once after {@code delayNanos}, unless it is on its way already: the
   * release of frames held for the uplink's rate limit (docs/limits.md). The actor calls {@link
   * #onceArrived} when it comes; a message that may find the actor stopped should be a {@link
   * DeadLetterSuppression}.
   */
  void once(Object message, long delayNanos) {
    if (!onceScheduled) {
      onceScheduled = true;
      scheduler.scheduleOnce(Duration.ofNanos(delayNanos), () -> actor.tell(message), SAME_THREAD);
    }
  }

  void onceArrived() {
    onceScheduled = false;
  }

  /** The actor stops: the wake-up planned is not needed. */
  void cancel() {
    if (nextTask != null) {
      nextTask.cancel();
    }
    next = null;
    nextTask = null;
  }

  /** Plans a wake-up {@code delay} from now unless one is planned no later than that. */
  private void wakeIn(long now, long delay) {
    long due = now + delay;
    if (next != null && nextAt <= due) {
      return;
    }
    if (nextTask != null) {
      // It may be on its way already: it will arrive as a replaced wake-up.
      nextTask.cancel();
    }
    Wake wake = new Wake(actor);
    next = wake;
    nextAt = due;
    nextTask = scheduler.scheduleOnce(Duration.ofNanos(delay), wake, SAME_THREAD);
  }
}
