package io.berth.node.socket.api;

import com.fasterxml.jackson.annotation.JsonAlias;
import io.berth.persistence.CborSerializable;
import io.berth.protocol.Frame;
import java.util.List;

/**
 * What a socket counted over its life (docs/operator-api.md#a-socket). {@code
 * downlinkDiscarded}: downlink frames the device had not acknowledged when the socket closed,
 * dropped with the session (PROTOCOL.md, CLOSE); rows written before it had this name call it
 * {@code discarded}.
 */
public record Counters(
    long framesIn, long bytesIn, long duplicates, long framesOut, long bytesOut, long connections,
    @JsonAlias("discarded") long downlinkDiscarded, long batches, long parked, long relayedIn)
    implements CborSerializable {
  public static final Counters ZERO = new Counters(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

  public Counters in(int frames, long bytes, int dups, List<Frame.Data> out, boolean batch, boolean wasParked) {
    long outBytes = 0;
    for (Frame.Data d : out) {
      outBytes += d.payload().length;
    }
    return new Counters(framesIn + frames, bytesIn + bytes, duplicates + dups, framesOut + out.size(),
        bytesOut + outBytes, connections, downlinkDiscarded, batches + (batch ? 1 : 0),
        parked + (wasParked ? 1 : 0), relayedIn);
  }

  public Counters relaying(long in) {
    return new Counters(framesIn, bytesIn, duplicates, framesOut, bytesOut, connections, downlinkDiscarded, batches,
        parked, relayedIn + in);
  }

  public Counters out(List<Frame.Data> out) {
    return in(0, 0, 0, out, false, false);
  }

  public Counters connected() {
    return new Counters(framesIn, bytesIn, duplicates, framesOut, bytesOut, connections + 1, downlinkDiscarded,
        batches, parked, relayedIn);
  }

  public Counters discarding(long n) {
    return new Counters(framesIn, bytesIn, duplicates, framesOut, bytesOut, connections, downlinkDiscarded + n,
        batches, parked, relayedIn);
  }
}
