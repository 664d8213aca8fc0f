package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.node.mapping.Mapping;
import io.berth.protocol.Frame;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** Taking a Deliver's frames: replays, gaps, a built-in endpoint's answers and the outbox bound. */
class IntakeTest {

  /** Outbox bound 4 frames / 1 MiB. */
  private static final SocketSettings SETTINGS = new SocketSettings("echo", 4, 1 << 20, 4, 128 * 1024,
      Duration.ofSeconds(30), 1000, Duration.ofSeconds(3), Duration.ZERO);
  private static final Instant AT = Instant.parse("2026-12-02T10:00:00Z");
  private static final Function<Frame.Data, List<byte[]>> ECHO = f -> List.of(f.payload());
  private static final Function<Frame.Data, List<byte[]>> DISCARD = f -> List.of();

  private static List<Frame.Data> frames(long from, long to) {
    return LongStream.rangeClosed(from, to)
        .mapToObj(s -> new Frame.Data(s, ("f" + s).getBytes(StandardCharsets.UTF_8))).toList();
  }

  private static SocketState open() {
    return SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("echo"), null, "e", 0, AT, false));
  }

  /** The state after a built-in delivery was recorded. */
  private static SocketState accepted(SocketState s, Intake.Delivery d) {
    return SocketEntity.apply(s, new SocketEvent.Accepted(d.watermark(), 0, d.frames(), d.bytes(), d.duplicates(),
        d.outbound(), 0, null, null, AT));
  }

  @Test
  void framesAfterTheWatermarkAreTakenInOrderAndAnsweredAsDownlinkFrames() {
    Intake.Delivery d = Intake.toBuiltin(open(), new DownlinkWindow(SETTINGS), frames(1, 3), ECHO);
    assertThat(d.watermark()).isEqualTo(3);
    assertThat(d.frames()).isEqualTo(3);
    assertThat(d.bytes()).isEqualTo(6);
    assertThat(d.outbound()).extracting(Frame.Data::seq).containsExactly(1L, 2L, 3L);
    assertThat(d.stalled()).isFalse();
    assertThat(d.gap()).isFalse();
  }

  @Test
  void replaysAreCountedAndDroppedAndAnswersAreNumberedAfterTheOutbox() {
    DownlinkWindow window = new DownlinkWindow(SETTINGS);
    SocketState s = accepted(open(), Intake.toBuiltin(open(), window, frames(1, 2), ECHO));
    Intake.Delivery again = Intake.toBuiltin(s, window, frames(1, 3), ECHO);
    assertThat(again.duplicates()).isEqualTo(2);
    assertThat(again.frames()).isEqualTo(1);
    assertThat(again.outbound()).extracting(Frame.Data::seq).containsExactly(3L);
  }

  @Test
  void aGapEndsWhatIsTakenAtTheFrameBeforeIt() {
    List<Frame.Data> withGap = new ArrayList<>(frames(1, 2));
    withGap.addAll(frames(4, 5));
    Intake.Delivery d = Intake.toBuiltin(open(), new DownlinkWindow(SETTINGS), withGap, DISCARD);
    assertThat(d.watermark()).isEqualTo(2);
    assertThat(d.gap()).isTrue();
  }

  @Test
  void aFrameWhoseAnswersDoNotFitTheOutboxIsNotTaken() {
    Intake.Delivery d = Intake.toBuiltin(open(), new DownlinkWindow(SETTINGS), frames(1, 6), ECHO);
    assertThat(d.watermark()).as("four answers fit").isEqualTo(4);
    assertThat(d.stalled()).isTrue();
    assertThat(Intake.toBuiltin(open(), new DownlinkWindow(SETTINGS), frames(1, 6), DISCARD).stalled())
        .as("frames without answers always fit").isFalse();
  }

  @Test
  void anAnswerLargerThanTheBoundStillGoesIntoAnEmptyOutbox() {
    Function<Frame.Data, List<byte[]>> five = f -> List.of(new byte[1], new byte[1], new byte[1], new byte[1],
        new byte[1]);
    Intake.Delivery d = Intake.toBuiltin(open(), new DownlinkWindow(SETTINGS), frames(1, 2), five);
    assertThat(d.watermark()).isEqualTo(1);
    assertThat(d.outbound()).hasSize(5);
    assertThat(d.stalled()).isTrue();
  }

  @Test
  void holdingTakesWhatFollowsWithoutAGap() {
    List<Frame.Data> held = new ArrayList<>();
    Intake.Held h = Intake.hold(frames(2, 5), 3, held::add);
    assertThat(held).extracting(Frame.Data::seq).containsExactly(4L, 5L);
    assertThat(h.upTo()).isEqualTo(5);
    assertThat(h.frames()).isEqualTo(2);
    assertThat(h.bytes()).isEqualTo(4);
    assertThat(h.gap()).isFalse();

    held.clear();
    Intake.Held gap = Intake.hold(frames(7, 8), 5, held::add);
    assertThat(held).isEmpty();
    assertThat(gap.upTo()).isEqualTo(5);
    assertThat(gap.gap()).isTrue();
  }

  @Test
  void onlyAFrameAboveTheWatermarkIsNew() {
    assertThat(Intake.anyNew(frames(1, 3), 3)).isFalse();
    assertThat(Intake.anyNew(frames(1, 4), 3)).isTrue();
    assertThat(Intake.anyNew(List.of(), 0)).isFalse();
  }

  @Test
  void dataGoesToThePeerToTheMappingOrIsRefused() {
    assertThat(Intake.route(open()).to()).isEqualTo(Intake.Destination.BUILTIN);
    assertThat(Intake.route(open()).builtin()).isEqualTo(io.berth.node.mapping.BuiltinEndpoint.ECHO);
    SocketState waiting = SocketEntity.apply(open(), new SocketEvent.LinkRequested("a+b", "b", 0, false, AT));
    assertThat(Intake.route(waiting).to()).isEqualTo(Intake.Destination.HOLD);
    SocketState pair = SocketEntity.apply(SocketState.EMPTY,
        new SocketEvent.Opened("d", Mapping.builtinDefault("pair"), null, "e", 0, AT, false));
    assertThat(Intake.route(pair).refusal()).isEqualTo("builtin:pair takes no data of its own");
    Mapping openOnly = new Mapping("decider", 1, "http://127.0.0.1:9/hook", java.util.EnumSet.of(Mapping.Event.OPEN),
        Mapping.Criteria.NONE, 1000, Mapping.Retry.DEFAULT, "s", 5_000, false);
    SocketState http = SocketEntity.apply(SocketState.EMPTY, new SocketEvent.Opened("d", openOnly, null, "e", 0, AT,
        true));
    assertThat(Intake.route(http).to()).as("until the open is answered").isEqualTo(Intake.Destination.HOLD);
    SocketState answered = SocketEntity.apply(http, new SocketEvent.Answered("d:open:1", List.of(), AT, 1));
    assertThat(Intake.route(answered).to()).isEqualTo(Intake.Destination.REFUSED);
    assertThat(Intake.route(answered).refusal()).isEqualTo("mapping 'decider' receives no data events");
    assertThat(Intake.route(SocketState.EMPTY).refusal()).isEqualTo("the socket has no endpoint");
  }
}
