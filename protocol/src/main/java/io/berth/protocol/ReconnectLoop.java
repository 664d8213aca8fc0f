package io.berth.protocol;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * A {@link DeviceClient}'s supervisor: connects, reads until the connection ends, and connects
 * again (PROTOCOL.md#resuming) until the client stops. Addresses are tried in turn, a REDIRECT
 * names the next one, failed attempts back off exponentially with jitter, and the client gives up
 * when no connection completed a handshake for {@code giveUpAfter}.
 *
 * <p>Threads: {@link #run} is the body of the supervisor thread and its only user; everything it
 * shares with the application's threads lives in {@link ClientState}.
 */
final class ReconnectLoop implements Runnable {

  private final ClientState state;
  private final ClientSettings settings;

  ReconnectLoop(ClientState state, ClientSettings settings) {
    this.state = state;
    this.settings = settings;
  }

  @Override
  public void run() {
    List<InetSocketAddress> addresses = settings.addresses();
    int index = 0;
    // Failures in a row since the last handshake, counted before each pause: the first pause
    // (after a drop, or after a first connect that failed) is the backoff's first, 50-100 ms by
    // default. A REDIRECT after the WELCOME reconnects without a pause; one answering the HELLO
    // (a draining node's) is a failed attempt.
    int attempt = 0;
    int failedAttempts = 0;
    long giveUpAt = deadlineFromNow();
    InetSocketAddress redirect = null;
    while (!state.stopped()) {
      // A throttled HELLO (ERROR 303) says how long to wait at least: longer than the backoff
      // would, or the next HELLO is refused again (PROTOCOL.md#errors). Never past giving up.
      long waitAtLeast = 0;
      InetSocketAddress target = redirect != null ? redirect : addresses.get(index % addresses.size());
      redirect = null;
      DeviceConnection.Outcome outcome;
      DeviceConnection connection = null;
      try {
        connection = DeviceConnection.open(state, settings, target);
        attempt = 0;
        outcome = connection.readLoop();
      } catch (DeviceConnection.Fatal f) {
        state.terminate(new DeviceException(f.reason, f.code, f.getMessage()), f.getMessage());
        break;
      } catch (IOException | DeviceConnection.Retry e) {
        outcome = DeviceConnection.Outcome.backoff(DeviceConnection.describe(e, target, settings));
        if (e instanceof DeviceConnection.Retry r) {
          redirect = r.redirectTo;
          waitAtLeast = Math.min(r.waitMillis, settings.giveUpAfter().toMillis());
        }
      } catch (RuntimeException e) {
        // A listener callback threw: stop cleanly rather than leave callers blocked forever.
        state.terminate(new DeviceException(DeviceException.Reason.LISTENER_FAILED, "listener failed: " + e, e),
            "listener failed");
        break;
      } finally {
        state.detach(connection);
      }
      if (outcome.terminalCause() != null) {
        state.terminate(outcome.error(), outcome.terminalCause());
        break;
      }
      boolean wasUp = connection != null && connection.welcomed;
      if (wasUp) {
        settings.listener().onDisconnected(target.toString(), outcome.cause());
        failedAttempts = 0;
      } else {
        settings.listener().onConnectFailed(DeviceConnection.address(target), outcome.cause(), ++failedAttempts);
      }
      if (outcome.redirected()) {
        redirect = outcome.redirectTo();
        giveUpAt = deadlineFromNow();
        continue;
      }
      if (connection != null && connection.welcomed) {
        // A session that was up gets a fresh reconnect budget and starts with a short backoff.
        giveUpAt = deadlineFromNow();
        attempt = 0;
      }
      index++;
      attempt++;
      if (System.nanoTime() > giveUpAt) {
        state.terminate(new DeviceException(DeviceException.Reason.UNREACHABLE,
            "no node accepted a connection in " + DurationText.of(settings.giveUpAfter()) + " (" + failedAttempts
                + (failedAttempts == 1 ? " attempt" : " attempts") + "); the last one: " + outcome.cause()),
            "gave up reconnecting");
        break;
      }
      if (!state.pause(Math.max(settings.backoff().delayMillis(attempt), waitAtLeast))) {
        break;
      }
    }
  }

  private long deadlineFromNow() {
    return System.nanoTime() + settings.giveUpAfter().toNanos();
  }
}
