package io.berth.bench;

import io.berth.node.socket.SocketEvent;
import io.berth.protocol.Frame;
import java.time.Instant;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * The least an event-sourced socket can do on the node's journal: persist, one write at a time
 * and back to back, the event a socket writes for one 64-byte DATA frame through {@code echo}
 * ({@link SocketEvent.Accepted} carrying the frame's answer), serialized as the node
 * serializes it. No edge, sharding, snapshots or commands from outside while it runs: what the
 * journal scenario measures is Pekko Persistence JDBC and PostgreSQL.
 */
final class JournalWriter extends EventSourcedBehavior<JournalWriter.Command, SocketEvent, Long> {

  /** The payload every event carries: a 64-byte DATA frame's worth. */
  static final int PAYLOAD_BYTES = 64;

  sealed interface Command {}

  /** Writes until {@code untilNanos} ({@code System.nanoTime()}), then replies with the count. */
  record Run(long untilNanos, ActorRef<Long> replyTo) implements Command {}

  enum Stop implements Command {
    INSTANCE
  }

  private enum Next implements Command {
    INSTANCE
  }

  private final ActorContext<Command> ctx;
  private final byte[] payload = new byte[PAYLOAD_BYTES];
  private long untilNanos;
  private ActorRef<Long> replyTo;
  private long written;

  private JournalWriter(ActorContext<Command> ctx, String persistenceId) {
    super(PersistenceId.ofUniqueId(persistenceId));
    this.ctx = ctx;
  }

  static Behavior<Command> create(String persistenceId) {
    return Behaviors.setup(ctx -> new JournalWriter(ctx, persistenceId));
  }

  /** The event a socket persists when one 64-byte frame reached echo: the new watermark and the echo. */
  static SocketEvent.Accepted event(long seq, byte[] payload) {
    return new SocketEvent.Accepted(seq, 0, 1, payload.length, 0, List.of(new Frame.Data(seq, payload)), seq - 1,
        null, null, Instant.now());
  }

  @Override
  public Long emptyState() {
    return 0L;
  }

  @Override
  public CommandHandler<Command, SocketEvent, Long> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Run.class, (state, run) -> {
          untilNanos = run.untilNanos();
          replyTo = run.replyTo();
          written = 0;
          return write(state);
        })
        .onCommand(Next.class, (state, next) -> {
          if (System.nanoTime() < untilNanos) {
            return write(state);
          }
          replyTo.tell(written);
          return Effect().none();
        })
        .onCommand(Stop.class, (state, stop) -> Effect().stop())
        .build();
  }

  private Effect<SocketEvent, Long> write(long state) {
    return Effect().persist(event(state + 1, payload)).thenRun(s -> {
      written++;
      ctx.getSelf().tell(Next.INSTANCE);
    });
  }

  @Override
  public EventHandler<Long, SocketEvent> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onAnyEvent((state, event) -> state + 1);
  }
}
