package io.berth.node.lease;

import io.berth.persistence.JournalFence;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * This node's lease, and the watch on the others' (docs/failover.md).
 *
 * <p>Its own: taken at start, renewed every {@code renew-interval}; from the moment it is taken
 * the journal checks it with every batch ({@link JournalFence}). A renewal that finds it revoked
 * means the cluster took this node for dead (it was paused, or cut off) and its sessions were
 * started elsewhere: the node downs itself and leaves (exit code 3).
 *
 * <p>The others': while a member is unreachable, its lease is looked at every {@code
 * check-interval}; once it lapsed (the member has not renewed for a {@code ttl}: killed, paused
 * or cut off from the database as well as from this node), it is revoked and the member downed,
 * without waiting for the split brain resolver, whose stable-after and removal margin exist for
 * the case this rules out, a member that still works on the other side of a partition. A member
 * downed any other way (the resolver, an operator) has its lease revoked at once, so that the
 * fence holds for it too.
 */
public final class NodeLease {

  public interface Command {}

  /**
   * Answered once no downed member's lease is being revoked, or waits to be revoked again, on this
   * node ({@link FencedAllocation}): the member's journal writes are refused by then.
   */
  public record AwaitFence(ActorRef<Done> replyTo) implements Command {}

  private enum Tick implements Command { RENEW, CHECK }

  private record Taken(Throwable failure) implements Command {}

  private record Renewed(boolean standing, Throwable failure) implements Command {}

  private record Looked(Member member, LeaseStore.Look look, Throwable failure) implements Command {}

  private record Revoked(Member member, Throwable failure) implements Command {}

  private record Reachability(ClusterEvent.ReachabilityEvent event) implements Command {}

  private record Membership(ClusterEvent.MemberEvent event) implements Command {}

  private final ActorContext<Command> ctx;
  private final LeaseSettings settings;
  private final LeaseStore store;
  private final Cluster cluster;
  private final String self;
  private boolean taken;
  private boolean renewing;
  private boolean revoked;
  /** Renewals that failed in a row (the database did not answer). */
  private int failedRenewals;
  /**
   * Since when ({@link System#nanoTime}) this node's renewals have all succeeded; 0 while the
   * last one failed. Others' leases are judged only once it is a {@code ttl} old: after the
   * database was away, every lease has lapsed, and the others need a ttl to renew theirs.
   */
  private long renewingSince;
  /** Downed members whose lease is still to be revoked (an attempt failed): tried again on each check. */
  private final Map<UniqueAddress, Member> toRevoke = new HashMap<>();
  private final Map<UniqueAddress, Member> unreachable = new HashMap<>();
  /** Members whose lease is being looked at (lapsed?) right now. */
  private final Set<UniqueAddress> looking = new HashSet<>();
  /** Downed members whose revocation is in flight. */
  private final Set<UniqueAddress> revoking = new HashSet<>();
  private final Set<UniqueAddress> downedHere = new HashSet<>();
  private final Set<UniqueAddress> revokedForDown = new HashSet<>();
  /** Waiting for every downed member's revocation to be done ({@link AwaitFence}). */
  private final List<ActorRef<Done>> fenceWaiters = new ArrayList<>();

  private NodeLease(ActorContext<Command> ctx, LeaseSettings settings) {
    this.ctx = ctx;
    this.settings = settings;
    this.store = new LeaseStore(ctx.getSystem(), settings.ttl());
    this.cluster = Cluster.get(ctx.getSystem());
    this.self = key(cluster.selfMember().uniqueAddress());
  }

  public static Behavior<Command> create(LeaseSettings settings) {
    return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new NodeLease(ctx, settings).start(timers)));
  }

  /** A lease's row: one per incarnation of a node (its address and the uid of this start). */
  static String key(UniqueAddress node) {
    return node.address() + "#" + node.longUid();
  }

  private Behavior<Command> start(TimerScheduler<Command> timers) {
    timers.startTimerWithFixedDelay(Tick.RENEW, settings.renewInterval());
    timers.startTimerWithFixedDelay(Tick.CHECK, settings.checkInterval());
    ActorRef<ClusterEvent.ReachabilityEvent> reach = ctx.messageAdapter(ClusterEvent.ReachabilityEvent.class,
        Reachability::new);
    ActorRef<ClusterEvent.MemberEvent> members = ctx.messageAdapter(ClusterEvent.MemberEvent.class, Membership::new);
    cluster.subscriptions().tell(Subscribe.create(reach, ClusterEvent.ReachabilityEvent.class));
    cluster.subscriptions().tell(Subscribe.create(members, ClusterEvent.MemberEvent.class));
    take();
    return Behaviors.receive(Command.class)
        .onMessageEquals(Tick.RENEW, this::onRenewTick)
        .onMessageEquals(Tick.CHECK, this::onCheckTick)
        .onMessage(Taken.class, this::onTaken)
        .onMessage(Renewed.class, this::onRenewed)
        .onMessage(Looked.class, this::onLooked)
        .onMessage(Revoked.class, this::onRevoked)
        .onMessage(Reachability.class, this::onReachability)
        .onMessage(Membership.class, this::onMembership)
        .onMessage(AwaitFence.class, this::onAwaitFence)
        .build();
  }

  // ------------------------------------------------------------------ its own

  private void take() {
    renewing = true;
    ctx.pipeToSelf(store.take(self), (ok, failure) -> new Taken(failure));
  }

  private Behavior<Command> onTaken(Taken m) {
    renewing = false;
    if (m.failure() != null) {
      ctx.getLog().warn("Cannot take this node's lease ({}): trying again; until then its journal writes are "
          + "not fenced", m.failure().getMessage());
      return Behaviors.same();
    }
    taken = true;
    renewingSince = System.nanoTime();
    JournalFence.get(Adapter.toClassic(ctx.getSystem())).hold(self);
    ctx.getLog().info("Took the node lease {} (valid {} from each renewal)", self, settings.ttl());
    return Behaviors.same();
  }

  private Behavior<Command> onRenewTick() {
    if (renewing || revoked) {
      return Behaviors.same();
    }
    if (!taken) {
      take();
      return Behaviors.same();
    }
    renewing = true;
    ctx.pipeToSelf(store.renew(self), (standing, failure) -> new Renewed(standing != null && standing, failure));
    return Behaviors.same();
  }

  private Behavior<Command> onRenewed(Renewed m) {
    renewing = false;
    if (m.failure() != null) {
      failedRenewals++;
      renewingSince = 0;
      // Once per lapse, not once a second.
      if (failedRenewals * settings.renewInterval().toMillis() >= settings.ttl().toMillis()
          && (failedRenewals - 1) * settings.renewInterval().toMillis() < settings.ttl().toMillis()) {
        ctx.getLog().warn("This node's lease lapsed: {} renewals failed in a row ({}); the other nodes may take "
            + "its sessions if they cannot reach it either", failedRenewals, m.failure().getMessage());
      }
      return Behaviors.same();
    }
    if (failedRenewals * settings.renewInterval().toMillis() >= settings.ttl().toMillis() && m.standing()) {
      ctx.getLog().info("This node's lease is renewed again after {} failed renewals", failedRenewals);
    }
    failedRenewals = 0;
    if (renewingSince == 0) {
      renewingSince = System.nanoTime();
    }
    if (!m.standing()) {
      revoked = true;
      ctx.getLog().error("This node's lease was revoked: the cluster took it for dead (it was paused or cut off) "
          + "and serves its sessions elsewhere; the journal refuses its writes. Leaving the cluster.");
      cluster.manager().tell(new Down(cluster.selfMember().address()));
    }
    return Behaviors.same();
  }

  // ------------------------------------------------------------------ the others'

  private Behavior<Command> onReachability(Reachability m) {
    if (m.event() instanceof ClusterEvent.UnreachableMember u) {
      if (!u.member().uniqueAddress().equals(cluster.selfMember().uniqueAddress())) {
        unreachable.put(u.member().uniqueAddress(), u.member());
      }
    } else if (m.event() instanceof ClusterEvent.ReachableMember r) {
      unreachable.remove(r.member().uniqueAddress());
    }
    return Behaviors.same();
  }

  private Behavior<Command> onMembership(Membership m) {
    Member member = m.event().member();
    UniqueAddress node = member.uniqueAddress();
    if (m.event() instanceof ClusterEvent.MemberRemoved) {
      unreachable.remove(node);
      downedHere.remove(node);
      if (!toRevoke.containsKey(node) && !revoking.contains(node)) {
        revokedForDown.remove(node);
      }
      // A revocation not done yet goes on after the removal: a member removed while it still runs
      // (a partition) must still be stopped from writing, and its row is its incarnation's alone.
    } else if (m.event() instanceof ClusterEvent.MemberDowned && !node.equals(cluster.selfMember().uniqueAddress())
        && revokedForDown.add(node)) {
      // Downed by the resolver or an operator: its sessions will start elsewhere, so it must write
      // no more, whether it is dead or not. Tried until it succeeds, the removal notwithstanding.
      revokeDowned(member);
    }
    return Behaviors.same();
  }

  private void revokeDowned(Member member) {
    UniqueAddress node = member.uniqueAddress();
    toRevoke.remove(node);
    revoking.add(node);
    ctx.pipeToSelf(store.revoke(key(node), self, "downed"), (look, failure) -> new Revoked(member, failure));
  }

  private Behavior<Command> onRevoked(Revoked m) {
    UniqueAddress node = m.member().uniqueAddress();
    revoking.remove(node);
    if (m.failure() != null && revokedForDown.contains(node)) {
      ctx.getLog().warn("Cannot revoke the lease of downed member {} yet ({}): trying again", node.address(),
          m.failure().getMessage());
      toRevoke.put(node, m.member());
    } else if (m.failure() == null && !isMember(node)) {
      revokedForDown.remove(node);
    }
    if (fenced()) {
      fenceWaiters.forEach(w -> w.tell(Done.getInstance()));
      fenceWaiters.clear();
    }
    return Behaviors.same();
  }

  private Behavior<Command> onAwaitFence(AwaitFence m) {
    if (fenced()) {
      m.replyTo().tell(Done.getInstance());
    } else {
      fenceWaiters.add(m.replyTo());
    }
    return Behaviors.same();
  }

  /** Whether every member this node saw downed has its lease revoked (or never had one). */
  private boolean fenced() {
    return revoking.isEmpty() && toRevoke.isEmpty();
  }

  /** Whether {@code node} is still in the membership (any status but removed). */
  private boolean isMember(UniqueAddress node) {
    for (Member member : cluster.state().getMembers()) {
      if (member.uniqueAddress().equals(node)) {
        return true;
      }
    }
    return false;
  }

  private Behavior<Command> onCheckTick() {
    for (Member member : java.util.List.copyOf(toRevoke.values())) {
      if (!revoking.contains(member.uniqueAddress())) {
        revokeDowned(member);
      }
    }
    long now = System.nanoTime();
    if (renewingSince == 0 || now - renewingSince < settings.ttl().toNanos()) {
      // This node's own renewals have not stood for a ttl (the database was away): the others
      // may not have had the time to renew theirs either.
      return Behaviors.same();
    }
    for (Member member : unreachable.values()) {
      UniqueAddress node = member.uniqueAddress();
      if (!downedHere.contains(node) && member.status() != MemberStatus.down() && !revoking.contains(node)
          && looking.add(node)) {
        ctx.pipeToSelf(store.revokeIfLapsed(key(node), self), (look, failure) -> new Looked(member, look, failure));
      }
    }
    return Behaviors.same();
  }

  private Behavior<Command> onLooked(Looked m) {
    UniqueAddress node = m.member().uniqueAddress();
    looking.remove(node);
    if (m.failure() != null) {
      ctx.getLog().debug("Cannot look at the lease of unreachable member {}: {}", node.address(),
          m.failure().getMessage());
      return Behaviors.same();
    }
    // Revoked here: the member must be downed, reachable again or not (it would find its lease
    // revoked and leave anyway). Revoked by another node: that node downs it too, so only while
    // it is unreachable from here.
    if ((m.look() == LeaseStore.Look.REVOKED_NOW
        || m.look() == LeaseStore.Look.REVOKED_BEFORE && unreachable.containsKey(node)) && downedHere.add(node)) {
      ctx.getLog().warn("Member {} is unreachable and its lease lapsed ({}): downing it now, without waiting for "
          + "the split brain resolver", node.address(),
          m.look() == LeaseStore.Look.REVOKED_NOW ? "revoked here" : "revoked by another node");
      revokedForDown.add(node);
      cluster.manager().tell(new Down(node.address()));
    }
    return Behaviors.same();
  }
}
