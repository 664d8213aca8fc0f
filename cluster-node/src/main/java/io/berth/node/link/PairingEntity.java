package io.berth.node.link;

import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.CborSerializable;
import java.time.Instant;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * The meeting point of {@code builtin:pair} (entity type {@code pairing}, id = pairing key): the
 * first socket to present a key waits here; the next one is told to link to it.
 */
public final class PairingEntity
    extends EventSourcedBehavior<PairingEntity.Command, PairingEntity.Event, PairingEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "pairing");

  public sealed interface Command extends CborSerializable {}

  public record Join(String socketId) implements Command {}

  public record Leave(String socketId) implements Command {}

  public sealed interface Event extends CborSerializable {}

  public record Waiting(String socketId, Instant at) implements Event {}

  public record Cleared(Instant at) implements Event {}

  public record State(String waiting) implements CborSerializable {}

  public static void init(ActorSystem<?> system, ShardCoordinator.ShardAllocationStrategy allocation) {
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY, ctx -> create(ctx.getEntityId(), system))
        .withAllocationStrategy(allocation));
  }

  public static Behavior<Command> create(String key, ActorSystem<?> system) {
    return new PairingEntity(key, ClusterSharding.get(system));
  }

  private final ClusterSharding sharding;

  private PairingEntity(String key, ClusterSharding sharding) {
    super(PersistenceId.of(ENTITY_KEY.name(), key));
    this.sharding = sharding;
  }

  @Override
  public State emptyState() {
    return new State(null);
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Join.class, (s, j) -> {
          if (s.waiting() != null && !s.waiting().equals(j.socketId())) {
            String partner = s.waiting();
            return Effect().persist(new Cleared(Instant.now())).thenRun(st ->
                socket(j.socketId()).tell(new SocketCommand.Paired(partner)));
          }
          // The socket already waits (it did from its open): nothing to tell it until a partner comes.
          return Effect().persist(new Waiting(j.socketId(), Instant.now()));
        })
        .onCommand(Leave.class, (s, l) -> l.socketId().equals(s.waiting())
            ? Effect().persist(new Cleared(Instant.now())) : Effect().none())
        .build();
  }

  private EntityRef<SocketCommand> socket(String id) {
    return sharding.entityRefFor(Sockets.ENTITY_KEY, id);
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(Waiting.class, (s, e) -> new State(e.socketId()))
        .onEvent(Cleared.class, (s, e) -> new State(null))
        .build();
  }
}
