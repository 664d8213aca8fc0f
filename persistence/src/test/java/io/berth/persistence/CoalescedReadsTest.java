package io.berth.persistence;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/**
 * How reads are gathered, with queries the test answers by hand so that it decides what is in
 * flight (the SQL of the two DAOs that use it runs on PostgreSQL in {@link CoalescedRecoveryTest}).
 */
class CoalescedReadsTest {

  /** Each query the reads started: its keys, and the answer the test completes. */
  private record Query(List<String> keys, CompletableFuture<Map<String, Integer>> answer) {
    void answerWithLengths() {
      Map<String, Integer> lengths = new HashMap<>();
      keys.forEach(k -> lengths.put(k, k.length()));
      answer.complete(lengths);
    }
  }

  private final List<Query> queries = new CopyOnWriteArrayList<>();

  private CoalescedReads<String, Integer> reads(int inFlight, int maxKeys) {
    return new CoalescedReads<>(inFlight, maxKeys, Duration.ofSeconds(30), Runnable::run, t -> false, keys -> {
      Query q = new Query(keys, new CompletableFuture<>());
      queries.add(q);
      return q.answer();
    });
  }

  private static int value(CompletionStage<Integer> read) throws Exception {
    return read.toCompletableFuture().getNow(-1);
  }

  @Test
  void aLoneReadIsQueriedAtOnce() throws Exception {
    CoalescedReads<String, Integer> reads = reads(2, 10);
    CompletionStage<Integer> a = reads.read("abc");
    assertThat(queries).hasSize(1);
    assertThat(queries.get(0).keys()).containsExactly("abc");
    queries.get(0).answerWithLengths();
    assertThat(value(a)).isEqualTo(3);
  }

  @Test
  void readsThatWaitForTheQueriesInFlightGoTogetherInTheNextOneDuplicatesOnce() throws Exception {
    CoalescedReads<String, Integer> reads = reads(2, 10);
    CompletionStage<Integer> a = reads.read("a");
    CompletionStage<Integer> b = reads.read("bb");
    List<CompletionStage<Integer>> waiting = new ArrayList<>();
    for (String key : List.of("ccc", "dddd", "ccc", "eeeee")) {
      waiting.add(reads.read(key));
    }
    assertThat(queries).hasSize(2); // both slots taken: the rest wait
    assertThat(waiting).allMatch(w -> !w.toCompletableFuture().isDone());

    queries.get(0).answerWithLengths();
    assertThat(value(a)).isEqualTo(1);
    assertThat(queries).hasSize(3);
    assertThat(queries.get(2).keys()).containsExactly("ccc", "dddd", "eeeee");
    queries.get(2).answerWithLengths();
    assertThat(waiting.stream().map(w -> w.toCompletableFuture().getNow(-1)).toList()).containsExactly(3, 4, 3, 5);

    assertThat(b.toCompletableFuture().isDone()).isFalse();
    queries.get(1).answerWithLengths();
    assertThat(value(b)).isEqualTo(2);
    reads.read("f");
    assertThat(queries).hasSize(4); // nothing waited, so both slots were free again
  }

  @Test
  void aReadOfAKeyAlreadyInFlightWaitsForAQueryThatStartsAfterIt() {
    CoalescedReads<String, Integer> reads = reads(1, 10);
    CompletionStage<Integer> first = reads.read("k");
    CompletionStage<Integer> second = reads.read("k");
    queries.get(0).answer().complete(Map.of("k", 1)); // read before "second" was asked
    assertThat(first.toCompletableFuture().getNow(-1)).isEqualTo(1);
    assertThat(second.toCompletableFuture().isDone()).isFalse();
    assertThat(queries).hasSize(2);
    queries.get(1).answer().complete(Map.of("k", 2));
    assertThat(second.toCompletableFuture().getNow(-1)).isEqualTo(2);
  }

  @Test
  void aQueryTakesAtMostMaxKeysTheOldestFirst() {
    CoalescedReads<String, Integer> reads = reads(1, 2);
    reads.read("x");
    for (String key : List.of("a", "b", "c", "d", "e")) {
      reads.read(key);
    }
    queries.get(0).answerWithLengths();
    assertThat(queries.get(1).keys()).containsExactly("a", "b");
    queries.get(1).answerWithLengths();
    assertThat(queries.get(2).keys()).containsExactly("c", "d");
    queries.get(2).answerWithLengths();
    assertThat(queries.get(3).keys()).containsExactly("e");
  }

  @Test
  void aFailedQueryFailsItsReadsAndTheNextQueryStillRuns() throws Exception {
    CoalescedReads<String, Integer> reads = reads(1, 10);
    CompletionStage<Integer> a = reads.read("a");
    CompletionStage<Integer> b = reads.read("bb");
    queries.get(0).answer().completeExceptionally(new IllegalStateException("database gone"));
    assertThatThrownBy(() -> a.toCompletableFuture().get()).isInstanceOf(ExecutionException.class)
        .hasMessageContaining("database gone");
    queries.get(1).answerWithLengths();
    assertThat(value(b)).isEqualTo(2);
  }

  @Test
  void aQueryThatThrowsOrForgetsAKeyFailsThoseReadsWithoutStoppingTheRest() throws Exception {
    List<Integer> calls = new ArrayList<>();
    CoalescedReads<String, Integer> reads = new CoalescedReads<>(1, 10, Duration.ofSeconds(30), Runnable::run,
        t -> false, keys -> {
      calls.add(keys.size());
      if (calls.size() == 1) {
        throw new IllegalArgumentException("cannot build the query");
      }
      return CompletableFuture.completedFuture(Map.of("known", 5));
    });
    assertThatThrownBy(() -> reads.read("a").toCompletableFuture().get()).hasMessageContaining("cannot build");
    assertThat(value(reads.read("known"))).isEqualTo(5);
    assertThatThrownBy(() -> reads.read("unknown").toCompletableFuture().get())
        .hasMessageContaining("did not answer for unknown");
    assertThat(calls).containsExactly(1, 1, 1);
  }

  @Test
  void aQueryThatNeverAnswersFailsItsReadsAtTheDeadlineAndFreesItsSlot() throws Exception {
    // The first query never answers; any later one answers at once.
    CoalescedReads<String, Integer> reads = new CoalescedReads<>(1, 10, Duration.ofMillis(200), Runnable::run,
        t -> true, keys -> {
          Query q = new Query(keys, new CompletableFuture<>());
          queries.add(q);
          if (queries.size() > 1) {
            q.answerWithLengths();
          }
          return q.answer();
        });
    CompletableFuture<Integer> stuck = reads.read("a").toCompletableFuture();
    CompletableFuture<Integer> behind = reads.read("bb").toCompletableFuture();
    assertThatThrownBy(() -> stuck.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
        .cause().isInstanceOf(TimeoutException.class);
    // The read that waited behind it got the slot: its query ran and answered.
    assertThat(behind.get(10, TimeUnit.SECONDS)).isEqualTo(2);
    assertThat(queries).hasSize(2); // a timed-out query is not tried again
    queries.get(0).answerWithLengths(); // a late answer changes nothing
    assertThat(stuck).isCompletedExceptionally();
  }

  @Test
  void aRetryGetsWhatIsLeftOfItsBatchsDeadline() throws Exception {
    // The first try fails after most of the deadline; the retry never answers: the reads fail
    // when the batch's deadline is up, not a whole deadline after the retry started.
    CoalescedReads<String, Integer> reads = new CoalescedReads<>(1, 10, Duration.ofMillis(1000), Runnable::run,
        t -> true, keys -> {
          Query q = new Query(keys, new CompletableFuture<>());
          queries.add(q);
          if (queries.size() == 1) {
            CompletableFuture.delayedExecutor(700, TimeUnit.MILLISECONDS)
                .execute(() -> q.answer().completeExceptionally(new IllegalStateException("connection reset")));
          }
          return q.answer();
        });
    long started = System.nanoTime();
    CompletableFuture<Integer> read = reads.read("a").toCompletableFuture();
    assertThatThrownBy(() -> read.get(10, TimeUnit.SECONDS)).cause().isInstanceOf(TimeoutException.class);
    long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    assertThat(queries).hasSize(2);
    // With a fresh deadline for the retry it would take 1,700 ms.
    assertThat(tookMs).isGreaterThanOrEqualTo(990).isLessThan(1_600);
  }

  @Test
  void aSettlingThatCannotBeHandedToItsExecutorHappensAnyway() throws Exception {
    // An executor that refuses work, as one does while the actor system shuts down.
    CoalescedReads<String, Integer> reads = new CoalescedReads<>(1, 10, Duration.ofSeconds(30), task -> {
      throw new java.util.concurrent.RejectedExecutionException("shut down");
    }, t -> false, keys -> CompletableFuture.completedFuture(Map.of("a", 1, "bb", 2)));
    assertThat(value(reads.read("a"))).isEqualTo(1);
    assertThat(value(reads.read("bb"))).isEqualTo(2);
    assertThat(reads.queries()).isEqualTo(2);
  }

  @Test
  void aRetryableFailureIsTriedOnceMoreBeforeItFailsTheReads() throws Exception {
    List<List<String>> tried = new CopyOnWriteArrayList<>();
    CoalescedReads<String, Integer> reads = new CoalescedReads<>(1, 10, Duration.ofSeconds(30), Runnable::run,
        t -> t.getMessage().startsWith("connection reset"), keys -> {
          tried.add(keys);
          return tried.size() == 1 || tried.size() >= 3
              ? CompletableFuture.failedFuture(new IllegalStateException("connection reset " + tried.size()))
              : CompletableFuture.completedFuture(Map.of("a", 1));
        });
    assertThat(value(reads.read("a"))).isEqualTo(1); // failed, tried again, answered
    assertThat(tried).hasSize(2);
    assertThatThrownBy(() -> reads.read("a").toCompletableFuture().get())
        .hasMessageContaining("connection reset 4"); // failed twice: the reads fail
    assertThat(tried).hasSize(4);
    assertThat(reads.queries()).isEqualTo(4);
  }

  @Test
  void manyThreadsReadingWhileQueriesAnswerOnOtherThreadsAllGetTheirValues() throws Exception {
    ExecutorService database = Executors.newFixedThreadPool(2);
    ExecutorService completions = Executors.newFixedThreadPool(2);
    ExecutorService devices = Executors.newFixedThreadPool(8);
    try {
      CoalescedReads<String, Integer> reads = new CoalescedReads<>(1, 50, Duration.ofSeconds(30),
          completions, t -> false, keys -> CompletableFuture.supplyAsync(() -> {
            Map<String, Integer> lengths = new HashMap<>();
            keys.forEach(k -> lengths.put(k, k.length()));
            return lengths;
          }, database));
      List<Future<List<CompletableFuture<Integer>>>> asked = new ArrayList<>();
      for (int d = 0; d < 8; d++) {
        int device = d;
        asked.add(devices.submit(() -> {
          List<CompletableFuture<Integer>> mine = new ArrayList<>();
          for (int i = 0; i < 2_000; i++) {
            mine.add(reads.read("k".repeat(1 + (device * 7 + i) % 40)).toCompletableFuture());
          }
          return mine;
        }));
      }
      int answered = 0;
      for (int d = 0; d < 8; d++) {
        List<CompletableFuture<Integer>> mine = asked.get(d).get(30, TimeUnit.SECONDS);
        for (int i = 0; i < mine.size(); i++) {
          assertThat(mine.get(i).get(30, TimeUnit.SECONDS)).isEqualTo(1 + (d * 7 + i) % 40);
          answered++;
        }
      }
      assertThat(answered).isEqualTo(16_000);
      assertThat(reads.queries()).isLessThan(16_000);
      // Everything answered, the slot is free: a lone read is queried at once.
      long before = reads.queries();
      assertThat(reads.read("x").toCompletableFuture().get(30, TimeUnit.SECONDS)).isEqualTo(1);
      assertThat(reads.queries()).isEqualTo(before + 1);
    } finally {
      devices.shutdownNow();
      database.shutdownNow();
      completions.shutdownNow();
    }
  }

  @Test
  void refusesNonsenseBounds() {
    assertThatThrownBy(() -> reads(0, 1)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> reads(1, 0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new CoalescedReads<String, Integer>(1, 1, Duration.ZERO, Runnable::run, t -> false,
        keys -> CompletableFuture.completedFuture(Map.of()))).isInstanceOf(IllegalArgumentException.class);
  }
}
