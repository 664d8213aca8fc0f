package io.berth.node.socket;

import io.berth.node.edge.api.ToEdge.Delivered;
import io.berth.node.mapping.Batcher;
import io.berth.node.mapping.EndpointCall;
import io.berth.node.mapping.MappingActor;
import io.berth.node.socket.SocketEntity.CloseByEndpoint;
import io.berth.node.socket.SocketEntity.Dispatch;
import io.berth.node.socket.SocketEntity.EndpointAnswered;
import io.berth.node.socket.SocketEntity.RequestLink;
import io.berth.node.socket.SocketEvent.Accepted;
import io.berth.node.socket.SocketEvent.Answered;
import io.berth.node.socket.SocketEvent.BatchStarted;
import io.berth.node.socket.SocketEvent.LinkRequested;
import io.berth.node.socket.SocketState.Status;
import io.berth.node.socket.api.SocketCommand.Deliver;
import io.berth.protocol.Frame;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.typed.javadsl.EffectFactories;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;

/**
 * The part of a {@link SocketEntity} that runs its HTTP endpoint: the effects of
 * {@link EndpointDispatch}'s decisions (the endpoint's actor, the batches written before they are
 * sent, the answers), on the entity's behalf and in its order. It exists only while the socket's
 * mapping uses an HTTP endpoint, or something of the endpoint's is left (see
 * {@link SocketEntity#prepareEndpoint}).
 */
final class SessionEndpoint {

  private final SocketEntity entity;
  /** What the endpoint gets next; with its actor and the adapter of its answers. */
  EndpointDispatch dispatch;
  private ActorRef<MappingActor.Command> endpoint;
  private ActorRef<MappingActor.Result> endpointReplies;

  SessionEndpoint(SocketEntity entity) {
    this.entity = entity;
  }

  /** The entity's effects: the handlers below read as they would in the entity. */
  private EffectFactories<SocketEvent, SocketState> Effect() {
    return entity.Effect();
  }

  /**
   * Makes sure an HTTP mapping's endpoint actor and dispatch match the socket's mapping; a
   * mapping that is no longer HTTP lets them go once nothing of theirs is left.
   */
  void prepareEndpoint(SocketState s) {
    if (!s.usesHttp()) {
      if (dispatch != null && dispatch.isSpent()) {
        entity.context.stop(endpoint);
        dispatch = null;
        endpoint = null;
      }
      return;
    }
    if (dispatch == null) {
      dispatch = new EndpointDispatch(entity.socketId, s.mapping());
    } else if (dispatch.needsEndpoint(s.mapping())) {
      entity.context.stop(endpoint);
      dispatch.newEndpoint(s.mapping());
    } else {
      return;
    }
    if (endpointReplies == null) {
      endpointReplies = entity.context.messageAdapter(MappingActor.Result.class, EndpointAnswered::new);
    }
    endpoint = entity.context.spawnAnonymous(MappingActor.create(s.mapping(), entity.socketId, s.deviceId()));
  }

  /** Frames for an HTTP endpoint wait in the batcher; the edge may send more, ACKs come later. */
  ReplyEffect<SocketEvent, SocketState> bufferForEndpoint(SocketState state, Deliver cmd) {
    prepareEndpoint(state);
    long now = System.nanoTime();
    entity.hold(state, cmd, dispatch.taken(state), frame -> dispatch.offer(state, frame, now));
    dispatch();
    return Effect().noReply();
  }

  /**
   * Hands the frames numbered up to {@code upTo} to the HTTP endpoint's batcher, in order after
   * what it has, and looks whether a batch is due.
   */
  void toBatcher(SocketState state, Iterable<Frame.Data> frames, long upTo) {
    prepareEndpoint(state);
    dispatch.offerAll(state, frames, upTo, System.nanoTime());
    dispatch();
  }

  void dispatch() {
    if (dispatch.schedule()) {
      entity.context.getSelf().tell(Dispatch.INSTANCE);
    }
  }

  /** Sends the next thing the endpoint should see, if the endpoint is free: one at a time. */
  ReplyEffect<SocketEvent, SocketState> onDispatch(SocketState s) {
    EndpointDispatch.Step step = dispatch == null ? EndpointDispatch.Idle.INSTANCE
        : dispatch.next(s, System.nanoTime());
    if (step instanceof EndpointDispatch.Call call) {
      invoke(call);
    } else if (step instanceof EndpointDispatch.StartBatch batch) {
      return Effect().persist(batchStarted(batch, Instant.now())).thenRun(st -> invoke(batch.call())).thenNoReply();
    } else if (step instanceof EndpointDispatch.Wait wait) {
      entity.timers.startSingleTimer(Dispatch.INSTANCE, Duration.ofNanos(wait.nanos()));
    } else if (step instanceof EndpointDispatch.Finish finish) {
      return entity.close(s, finish.ending());
    }
    return Effect().noReply();
  }

  private static BatchStarted batchStarted(EndpointDispatch.StartBatch batch, Instant at) {
    Batcher.Cut c = batch.cut();
    return new BatchStarted(batch.call().batchId(), c.seqFrom(), c.offsetFrom(), c.seqTo(), c.offsetTo(),
        c.endsFrame(), at);
  }

  private void invoke(EndpointDispatch.Call call) {
    endpoint.tell(new MappingActor.Invoke(call.batchId(), call.event(), call.seqFrom(), call.seqTo(), call.data(),
        endpointReplies));
  }

  ReplyEffect<SocketEvent, SocketState> onEndpointAnswered(SocketState s, MappingActor.Result result) {
    EndpointDispatch.Outcome outcome = dispatch == null ? EndpointDispatch.Stale.INSTANCE
        : dispatch.answered(s, result, entity.window.acked(s), System.nanoTime(), Instant.now());
    if (outcome instanceof EndpointDispatch.OpenAnswered open) {
      return settleOpen(s, open.batchId(), open.out(), open.answer());
    }
    if (outcome instanceof EndpointDispatch.Replied replied) {
      requestLinkIfNamed(replied.answer());
      return replied.out().isEmpty() ? afterAnswer(replied.answer())
          : Effect().persist(new Answered(replied.batchId(), replied.out(), Instant.now(), 0)).thenRun(st -> {
            entity.pump(st);
            afterAnswer(replied.answer());
          }).thenNoReply();
    }
    if (!(outcome instanceof EndpointDispatch.BatchDone done)) {
      return Effect().noReply(); // from a replaced endpoint actor
    }
    requestLinkIfNamed(done.answer());
    boolean resumedAfterMove = entity.resumedAfterMove(s);
    Accepted event = entity.tagged(s, done.event());
    EndpointDispatch.StartBatch next = done.next();
    return Effect().persist(next == null ? List.of(event) : List.of(event, batchStarted(next, event.at())))
        .thenRun(st -> {
          if (resumedAfterMove) {
            entity.reportMoveCompleted(s, event.at());
          }
          if (st.edge() != null && st.status() == Status.OPEN) {
            st.edge().tell(new Delivered(st.lastAccepted(), dispatch.taken(st), false));
          }
          entity.pump(st);
          if (next != null) {
            invoke(next.call());
          } else {
            afterAnswer(done.answer());
          }
        }).thenNoReply();
  }

  private void requestLinkIfNamed(EndpointCall.Answer answer) {
    if (answer.link() != null && !answer.link().isBlank()) {
      entity.context.getSelf().tell(new RequestLink(answer.link()));
    }
  }

  /**
   * The endpoint answered this connection's open, which decides where the data held meanwhile
   * goes: a link it names is requested in the same write as the answer, and the held frames go
   * to the peer; without a link they go to the mapping (or are refused if it takes no data).
   * A parked open answers nothing: no link.
   */
  private ReplyEffect<SocketEvent, SocketState> settleOpen(SocketState s, String batchId, List<Frame.Data> out,
      EndpointCall.Answer answer) {
    Instant now = Instant.now();
    Answered answered = new Answered(batchId, out, now, s.openPending());
    Optional<LinkRequested> link = answer.link() == null || answer.link().isBlank() ? Optional.empty()
        : entity.links().linkRequest(s, answer.link(), now);
    return Effect().persist(link.isEmpty() ? List.of(answered) : List.of(answered, link.get())).thenRun(st -> {
      entity.pump(st);
      link.ifPresent(l -> entity.links().linkRequested(st, l));
      if (answer.close() == null && !st.holdsData()) {
        entity.links().releaseHeld(st);
      }
      afterAnswer(answer);
    }).thenNoReply();
  }

  private ReplyEffect<SocketEvent, SocketState> afterAnswer(EndpointCall.Answer answer) {
    if (answer.close() != null) {
      entity.context.getSelf().tell(
          new CloseByEndpoint(answer.close().isBlank() ? "closed by the endpoint" : answer.close()));
    } else {
      dispatch();
    }
    return Effect().noReply();
  }
}
