package io.berth.node;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;

/**
 * Says on the console which test is running, so that a long one is not taken for a hang: Maven
 * shows nothing of a test class until it ends (the plugins keep test output in files,
 * {@code redirectTestOutputToFile}), and ProcessClusterIT runs for minutes. Every test gets a line
 * when it ends, with its duration; one still running after {@link #FIRST_NOTICE_S} s gets a line
 * then and every {@link #REPEAT_NOTICE_S} s after, so fast tests cost one line each.
 *
 * <p>The lines go to the JVM's own stderr, which surefire and failsafe copy to Maven's console,
 * not to {@code System.err}, which they capture with the test output. Registered in
 * {@code META-INF/services/org.junit.platform.launcher.TestExecutionListener}.
 */
public final class TestProgress implements TestExecutionListener {

  private static final long FIRST_NOTICE_S = 5;
  private static final long REPEAT_NOTICE_S = 30;

  private final PrintStream console = new PrintStream(new FileOutputStream(FileDescriptor.err), true,
      StandardCharsets.UTF_8);
  private final ScheduledExecutorService clock = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "test-progress");
    t.setDaemon(true);
    return t;
  });
  private final Map<String, Running> running = new ConcurrentHashMap<>();

  private record Running(long startedNanos, ScheduledFuture<?> notices) {}

  @Override
  public void executionStarted(TestIdentifier test) {
    if (!test.isTest()) {
      return;
    }
    long started = System.nanoTime();
    String name = nameOf(test);
    ScheduledFuture<?> notices = clock.scheduleAtFixedRate(
        () -> print("%s: running for %d s", name, seconds(started)), FIRST_NOTICE_S, REPEAT_NOTICE_S, TimeUnit.SECONDS);
    running.put(test.getUniqueId(), new Running(started, notices));
  }

  @Override
  public void executionFinished(TestIdentifier test, TestExecutionResult result) {
    Running r = running.remove(test.getUniqueId());
    if (r == null) {
      return;
    }
    r.notices().cancel(false);
    String outcome = switch (result.getStatus()) {
      case SUCCESSFUL -> "passed";
      case FAILED -> "FAILED";
      case ABORTED -> "aborted";
    };
    print("%s: %s in %.1f s", nameOf(test), outcome, (System.nanoTime() - r.startedNanos()) / 1e9);
  }

  @Override
  public void executionSkipped(TestIdentifier test, String reason) {
    if (test.isTest()) {
      print("%s: skipped (%s)", nameOf(test), reason);
    }
  }

  /** {@code ProcessClusterIT.theDefaultLaunchRunsOnTheEmbeddedDatabase}, with the invocation of a parameterized test. */
  private static String nameOf(TestIdentifier test) {
    if (test.getSource().orElse(null) instanceof MethodSource m) {
      String className = m.getClassName().substring(m.getClassName().lastIndexOf('.') + 1);
      String invocation = test.getDisplayName().startsWith("[") ? " " + test.getDisplayName() : "";
      return className + "." + m.getMethodName() + invocation;
    }
    return test.getDisplayName();
  }

  private static long seconds(long startedNanos) {
    return TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - startedNanos);
  }

  private void print(String format, Object... args) {
    console.println("[test] " + String.format(Locale.ROOT, format, args));
  }
}
