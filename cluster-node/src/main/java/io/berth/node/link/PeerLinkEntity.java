package io.berth.node.link;

import io.berth.node.metrics.Metrics;
import io.berth.node.socket.api.SocketCommand;
import io.berth.node.socket.api.Sockets;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.LinkStatus;
import java.time.Duration;
import java.time.Instant;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.ShardCoordinator;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.Effect;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * A link between two sockets (entity type {@code link}, id = the two socket ids in order, so the
 * same link whichever side asks first): waiting (who waits for whom, since when) → linked →
 * ended (timeout, refused, unlinked). The sockets carry the data; this entity only decides and
 * tells both sides, and records the link for operators.
 */
public final class PeerLinkEntity
    extends EventSourcedBehavior<PeerLinkEntity.Command, PeerLinkEntity.Event, PeerLinkEntity.State> {

  public static final EntityTypeKey<Command> ENTITY_KEY = EntityTypeKey.create(Command.class, "link");

  /**
   * The link's id: both socket ids in order, joined by {@code +} (a character socket ids cannot
   * hold; {@code |} would be nicer to read but is the persistence id separator).
   */
  public static String idOf(String a, String b) {
    return a.compareTo(b) <= 0 ? a + "+" + b : b + "+" + a;
  }

  // ------------------------------------------------------------------ protocol

  public sealed interface Command extends CborSerializable {}

  /** {@code from}'s endpoint linked it to {@code to}; {@code from} waits until {@code deadline}. */
  public record Request(String from, String to, long deadlineMillis) implements Command {}

  /** The other side is open and takes the link. */
  public record Accept(String by) implements Command {}

  /** The other side is linked to someone else. */
  public record Busy(String by, String reason) implements Command {}

  /** The waiting side's wait is over. */
  public record Expire(String by) implements Command {}

  /**
   * One side ends the link ({@code by} is a socket id, or {@code operator}); {@code accepted}:
   * the highest seq of the other side's frames that {@code by} took, so that the other side
   * acknowledges exactly those.
   */
  public record Unlink(String by, String reason, long accepted) implements Command {}

  public record Get(ActorRef<Info> replyTo) implements Command {}

  public record Info(String id, String a, String b, String state, String waiter, String reason, Instant since)
      implements CborSerializable {}

  public sealed interface Event extends CborSerializable {}

  public record Requested(String from, String to, long deadlineMillis, Instant at) implements Event {}

  public record Linked(Instant at) implements Event {}

  public record Ended(String how, String by, String reason, Instant at) implements Event {}

  public record State(String status, String a, String b, String waiter, String target, String reason, Instant since)
      implements CborSerializable {
    static final State NONE = new State("none", null, null, null, null, null, null);
  }

  // ------------------------------------------------------------------ wiring

  public static void init(ActorSystem<?> system, ShardCoordinator.ShardAllocationStrategy allocation) {
    ClusterSharding.get(system).init(Entity.of(ENTITY_KEY, ctx -> create(ctx.getEntityId()))
        .withAllocationStrategy(allocation));
  }

  public static Behavior<Command> create(String linkId) {
    return Behaviors.setup(ctx -> new PeerLinkEntity(ctx, linkId));
  }

  private final ActorContext<Command> ctx;
  private final String linkId;
  private final ClusterSharding sharding;
  private final LinkStore store;
  private final Metrics metrics;

  private PeerLinkEntity(ActorContext<Command> ctx, String linkId) {
    super(PersistenceId.of(ENTITY_KEY.name(), linkId),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(5), 0.2));
    this.ctx = ctx;
    this.linkId = linkId;
    this.sharding = ClusterSharding.get(ctx.getSystem());
    this.store = new LinkStore(ctx.getSystem());
    this.metrics = Metrics.get(ctx.getSystem());
  }

  @Override
  public State emptyState() {
    return State.NONE;
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder().forAnyState()
        .onCommand(Request.class, this::onRequest)
        .onCommand(Accept.class, this::onAccept)
        .onCommand(Busy.class, this::onBusy)
        .onCommand(Expire.class, this::onExpire)
        .onCommand(Unlink.class, this::onUnlink)
        .onCommand(Get.class, (s, c) -> {
          c.replyTo().tell(new Info(linkId, s.a(), s.b(), s.status(), s.waiter(), s.reason(), s.since()));
          return Effect().none();
        })
        .build();
  }

  private Effect<Event, State> onRequest(State s, Request r) {
    if (s.status().equals("linked")) {
      // Asked again (the requester reopened): both sides are told again, which is idempotent.
      socket(r.from()).tell(new SocketCommand.LinkUp(linkId, r.to()));
      return Effect().none();
    }
    if (s.status().equals("waiting") && r.from().equals(s.target())) {
      // Both sides' endpoints asked for the same link: that settles it.
      return link(s);
    }
    return Effect().persist(new Requested(r.from(), r.to(), r.deadlineMillis(), Instant.now()))
        .thenRun(st -> {
          socket(r.to()).tell(new SocketCommand.LinkOffer(linkId, r.from()));
          record(st);
        });
  }

  private Effect<Event, State> onAccept(State s, Accept a) {
    if (s.status().equals("waiting") && a.by().equals(s.target())) {
      return link(s);
    }
    answerStale(s, a.by(), LinkStatus.UNLINKED);
    return Effect().none();
  }

  /**
   * A side asks about a link that is no longer waiting for it: it missed the news (a message
   * lost with a node), and it holds its device's data for this link until told, so tell it
   * again. {@code asked}: what its question ends in if the link ended without a verdict for it
   * (an accept: unlinked; a waiter's expiry: timeout).
   */
  private void answerStale(State s, String by, LinkStatus asked) {
    if (s.status().equals("linked")) {
      socket(by).tell(new SocketCommand.LinkUp(linkId, other(s, by)));
    } else if (!s.status().equals("waiting")) {
      boolean ended = s.status().equals("unlinked") || s.status().equals("refused");
      LinkStatus status = ended ? LinkStatus.UNLINKED : asked;
      socket(by).tell(new SocketCommand.LinkDown(linkId, s.a() == null ? "" : other(s, by), status.wire,
          s.reason() == null ? "the link is not waiting any more" : s.reason(), 0));
    }
  }

  private Effect<Event, State> link(State s) {
    return Effect().persist(new Linked(Instant.now())).thenRun(st -> {
      socket(st.a()).tell(new SocketCommand.LinkUp(linkId, st.b()));
      socket(st.b()).tell(new SocketCommand.LinkUp(linkId, st.a()));
      record(st);
    });
  }

  private Effect<Event, State> onBusy(State s, Busy b) {
    if (!s.status().equals("waiting") || !b.by().equals(s.target())) {
      return Effect().none();
    }
    String waiter = s.waiter();
    return Effect().persist(new Ended("refused", b.by(), b.reason(), Instant.now())).thenRun(st -> {
      socket(waiter).tell(new SocketCommand.LinkDown(linkId, b.by(), LinkStatus.UNLINKED.wire, b.reason(), 0));
      record(st);
    });
  }

  private Effect<Event, State> onExpire(State s, Expire e) {
    if (!s.status().equals("waiting") || !e.by().equals(s.waiter())) {
      answerStale(s, e.by(), LinkStatus.TIMEOUT);
      return Effect().none();
    }
    String target = s.target();
    return Effect().persist(new Ended("timeout", e.by(), "peer never came", Instant.now())).thenRun(st -> {
      socket(e.by()).tell(new SocketCommand.LinkDown(linkId, target, LinkStatus.TIMEOUT.wire,
          target + " did not open in time", 0));
      socket(target).tell(new SocketCommand.LinkDown(linkId, e.by(), LinkStatus.UNLINKED.wire,
          "the offer was withdrawn", 0));
      record(st);
    });
  }

  private Effect<Event, State> onUnlink(State s, Unlink u) {
    if (!s.status().equals("waiting") && !s.status().equals("linked")) {
      return Effect().none();
    }
    return Effect().persist(new Ended("unlinked", u.by(), u.reason(), Instant.now())).thenRun(st -> {
      for (String side : new String[] {st.a(), st.b()}) {
        if (!side.equals(u.by())) {
          // The other side acknowledges what `by` took; an operator unlink tells both.
          long accepted = u.by().equals("operator") ? 0 : u.accepted();
          socket(side).tell(new SocketCommand.LinkDown(linkId, other(st, side), LinkStatus.UNLINKED.wire,
              u.reason(), accepted));
        }
      }
      record(st);
    });
  }

  private static String other(State s, String side) {
    return side.equals(s.a()) ? s.b() : s.a();
  }

  private EntityRef<SocketCommand> socket(String id) {
    return sharding.entityRefFor(Sockets.ENTITY_KEY, id);
  }

  private void record(State st) {
    metrics.link(st.status());
    store.save(new LinkStore.Row(linkId, st.a(), st.b(), st.status(), st.waiter(), st.reason(), st.since(),
        Instant.now()));
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState()
        .onEvent(Requested.class, (s, e) -> {
          String a = e.from().compareTo(e.to()) <= 0 ? e.from() : e.to();
          String b = a.equals(e.from()) ? e.to() : e.from();
          return new State("waiting", a, b, e.from(), e.to(), null, e.at());
        })
        .onEvent(Linked.class, (s, e) -> new State("linked", s.a(), s.b(), null, null, null, e.at()))
        .onEvent(Ended.class, (s, e) -> new State(e.how(), s.a(), s.b(), null, null, e.reason(), s.since()))
        .build();
  }
}
