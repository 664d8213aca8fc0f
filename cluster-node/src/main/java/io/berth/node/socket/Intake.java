package io.berth.node.socket;

import io.berth.node.mapping.BuiltinEndpoint;
import io.berth.node.mapping.Mapping;
import io.berth.protocol.Frame;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * How a socket session takes a {@code Deliver}'s uplink frames (docs/delivery.md): in seq order,
 * once each, frames at or below what it has dropped as replays, and a gap (frames lost while the
 * entity restarted) ending what is taken, so that the edge sends them again.
 */
final class Intake {

  private Intake() {}

  /** Where a socket's data goes now (docs/delivery.md#where-data-goes). */
  enum Destination {
    /** Held for the peer, or until the link or the endpoint's answer to open decides. */
    HOLD,
    /** The HTTP endpoint's batcher. */
    ENDPOINT,
    /** A built-in endpoint, frame by frame. */
    BUILTIN,
    /** Nothing takes it: refused, never acknowledged. */
    REFUSED
  }

  /** The destination, the built-in endpoint that takes the data, or why nothing does. */
  record Route(Destination to, BuiltinEndpoint builtin, String refusal) {}

  private static final Route HOLD = new Route(Destination.HOLD, null, null);
  private static final Route ENDPOINT = new Route(Destination.ENDPOINT, null, null);

  static Route route(SocketState s) {
    if (s.holdsData()) {
      return HOLD;
    }
    if (s.usesHttp()) {
      return s.mapping().receives(Mapping.Event.DATA) ? ENDPOINT
          : new Route(Destination.REFUSED, null, "mapping '" + s.mapping().name() + "' receives no data events");
    }
    Optional<BuiltinEndpoint> builtin = s.mapping() == null ? Optional.empty()
        : BuiltinEndpoint.named(s.mapping().builtinName());
    if (builtin.isEmpty() || !builtin.get().takesData()) {
      return new Route(Destination.REFUSED, null,
          builtin.map(b -> "builtin:" + b.mappingName() + " takes no data of its own").orElse("the socket has no endpoint"));
    }
    return new Route(Destination.BUILTIN, builtin.get(), null);
  }

  /** Frames taken to hold (for the peer, or the HTTP endpoint's batcher): up to {@code upTo}. */
  record Held(long upTo, int frames, long bytes, boolean gap) {}

  /**
   * Hands the frames that follow {@code held} without a gap to {@code holder}, in order; what
   * is at or below {@code held} is skipped.
   */
  static Held hold(List<Frame.Data> frames, long held, Consumer<Frame.Data> holder) {
    long next = held;
    int count = 0;
    long bytes = 0;
    boolean gap = false;
    for (Frame.Data frame : frames) {
      if (frame.seq() <= next) {
        continue;
      }
      if (frame.seq() != next + 1) {
        gap = true;
        break;
      }
      holder.accept(frame);
      next = frame.seq();
      count++;
      bytes += frame.payload().length;
    }
    return new Held(next, count, bytes, gap);
  }

  /**
   * What frames delivered to a built-in endpoint came to: the new watermark, the frames taken
   * and their bytes, the replays dropped, the endpoint's answers numbered as downlink frames;
   * {@code stalled}: a frame was refused because its answers would not fit the outbox;
   * {@code gap}: a frame was missing.
   */
  record Delivery(long watermark, int frames, long bytes, int duplicates, List<Frame.Data> outbound,
                  boolean stalled, boolean gap) {}

  /**
   * Runs the frames through a built-in endpoint ({@code answers}: its answers to one frame),
   * frame by frame, as one event will record them. A frame whose answers do not fit the outbox
   * is not taken, unless the outbox is empty (an answer larger than the bound still goes).
   */
  static Delivery toBuiltin(SocketState s, DownlinkWindow window, List<Frame.Data> frames,
      Function<Frame.Data, List<byte[]>> answers) {
    int boxFrames = window.outboxFrames(s);
    long boxBytes = window.outboxBytes(s);
    long watermark = s.lastAccepted();
    long nextOut = s.lastDownlinkSeq();
    int taken = 0;
    long bytes = 0;
    int duplicates = 0;
    boolean stalled = false;
    boolean gap = false;
    List<Frame.Data> outbound = new ArrayList<>();
    for (Frame.Data frame : frames) {
      if (frame.seq() <= watermark) {
        duplicates++;
        continue;
      }
      if (frame.seq() != watermark + 1) {
        gap = true;
        break;
      }
      List<byte[]> answer = answers.apply(frame);
      long answerBytes = 0;
      for (byte[] a : answer) {
        answerBytes += a.length;
      }
      if (!answer.isEmpty() && boxFrames > 0 && window.overflows(boxFrames + answer.size(), boxBytes + answerBytes)) {
        stalled = true;
        break;
      }
      for (byte[] a : answer) {
        outbound.add(new Frame.Data(++nextOut, a));
      }
      boxFrames += answer.size();
      boxBytes += answerBytes;
      watermark = frame.seq();
      taken++;
      bytes += frame.payload().length;
    }
    return new Delivery(watermark, taken, bytes, duplicates, outbound, stalled, gap);
  }

  /** Whether any of the frames (in seq order) is above the watermark. */
  static boolean anyNew(List<Frame.Data> frames, long watermark) {
    return !frames.isEmpty() && frames.get(frames.size() - 1).seq() > watermark;
  }
}
