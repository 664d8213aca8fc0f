package io.berth.persistence;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Reads by key, gathered into one query while earlier queries run: a read starts its own query
 * when fewer than {@code maxInFlight} are running, and otherwise waits for the next one to end,
 * which then reads every key that waited (up to {@code maxKeys} at a time). A lone read is
 * therefore never delayed, and under load the number of queries follows the database's pace
 * instead of the number of reads.
 *
 * <p>A read only joins a query that has not started, so it sees at least what was committed when
 * it was asked: a later write is never hidden by an earlier query's answer. Keys asked twice
 * before their query starts are read once.
 *
 * <p>Failures: a query that fails is run once more if {@code retryable} says so and time is
 * left (reads are idempotent, and one broken connection should not fail every read gathered
 * with it, each of which the journal's circuit breaker counts), then fails every read in it. A
 * batch that has no answer within {@code deadline}, its retry included, fails its reads and
 * gives its slot to the next batch: the query itself should have a shorter timeout of its own,
 * and the deadline is the backstop for a connection that never answers, so that one stuck query
 * cannot stop every later read.
 *
 * <p>Reads complete, and the next query starts, on {@code completions}: never on the thread
 * that asked, so a query that fails at once does not recurse through the waiting batches.
 */
final class CoalescedReads<K, V> {

  /**
   * Queries in flight for one kind of read: one, so that reads gather while it runs. With two,
   * 19,000 devices connecting gathered 7 ids a query instead of 13 (idle benchmarks,
   * docs/persistence.md). The pool (berth.db.pool-size) keeps its other connections for writes.
   */
  static final int IN_FLIGHT = 1;
  /** Keys per query: a bound on the statement's array, far above the recoveries run at once. */
  static final int KEYS = 500;
  /**
   * The statement's own timeout (the driver asks the server to cancel it), and the backstop for
   * a whole batch, retry included, after which its reads fail even if the connection never
   * answers. A read may wait for one batch before its own: both together stay below the 10 s
   * call timeout of Pekko's journal circuit breaker.
   */
  static final Duration QUERY_TIMEOUT = Duration.ofSeconds(3);
  static final Duration DEADLINE = Duration.ofSeconds(4);

  private final int maxInFlight;
  private final int maxKeys;
  private final Duration deadline;
  private final Executor completions;
  private final Predicate<Throwable> retryable;
  private final Function<List<K>, CompletionStage<Map<K, V>>> query;

  private final Object lock = new Object();
  private LinkedHashMap<K, List<CompletableFuture<V>>> waiting = new LinkedHashMap<>();
  private int inFlight;
  private final AtomicLong queries = new AtomicLong();

  /**
   * @param query reads the given distinct keys and answers with a value for each of them
   */
  CoalescedReads(int maxInFlight, int maxKeys, Duration deadline, Executor completions,
                 Predicate<Throwable> retryable, Function<List<K>, CompletionStage<Map<K, V>>> query) {
    if (maxInFlight < 1 || maxKeys < 1 || deadline.isNegative() || deadline.isZero()) {
      throw new IllegalArgumentException("maxInFlight, maxKeys and deadline must be positive");
    }
    this.maxInFlight = maxInFlight;
    this.maxKeys = maxKeys;
    this.deadline = deadline;
    this.completions = completions;
    this.retryable = retryable;
    this.query = query;
  }

  CompletionStage<V> read(K key) {
    CompletableFuture<V> value = new CompletableFuture<>();
    Map<K, List<CompletableFuture<V>>> batch = null;
    synchronized (lock) {
      waiting.computeIfAbsent(key, k -> new ArrayList<>(1)).add(value);
      if (inFlight < maxInFlight) {
        inFlight++;
        batch = take();
      }
    }
    if (batch != null) {
      run(batch, System.nanoTime() + deadline.toNanos(), true);
    }
    return value;
  }

  /** Queries started so far, retries included. */
  long queries() {
    return queries.get();
  }

  /** Up to {@code maxKeys} of the waiting keys, oldest first. Called holding the lock. */
  private Map<K, List<CompletableFuture<V>>> take() {
    if (waiting.size() <= maxKeys) {
      Map<K, List<CompletableFuture<V>>> all = waiting;
      waiting = new LinkedHashMap<>();
      return all;
    }
    Map<K, List<CompletableFuture<V>>> some = new LinkedHashMap<>();
    Iterator<Map.Entry<K, List<CompletableFuture<V>>>> it = waiting.entrySet().iterator();
    while (some.size() < maxKeys) {
      Map.Entry<K, List<CompletableFuture<V>>> next = it.next();
      some.put(next.getKey(), next.getValue());
      it.remove();
    }
    return some;
  }

  /**
   * Runs the batch's query, to be answered by {@code deadlineNanos} (System.nanoTime); its slot is
   * released (or handed on) whatever happens.
   */
  private void run(Map<K, List<CompletableFuture<V>>> batch, long deadlineNanos, boolean firstTry) {
    queries.incrementAndGet();
    // Our own future, so that the deadline never touches the query's.
    CompletableFuture<Map<K, V>> answer = new CompletableFuture<>();
    try {
      query.apply(List.copyOf(batch.keySet())).whenComplete((values, failure) -> {
        if (failure != null) {
          answer.completeExceptionally(failure);
        } else {
          answer.complete(values);
        }
      });
    } catch (Throwable t) {
      answer.completeExceptionally(t);
    }
    long left = Math.max(1, deadlineNanos - System.nanoTime());
    answer.orTimeout(left, TimeUnit.NANOSECONDS).whenComplete((values, failure) -> {
      Runnable settle = () -> settle(batch, deadlineNanos, firstTry, values, unwrap(failure));
      try {
        completions.execute(settle);
      } catch (RejectedExecutionException e) { // shutting down: settle here rather than never
        settle.run();
      }
    });
  }

  private void settle(Map<K, List<CompletableFuture<V>>> batch, long deadlineNanos, boolean firstTry,
                      Map<K, V> values, Throwable failure) {
    if (failure != null && firstTry && !(failure instanceof TimeoutException) && retryable.test(failure)
        && deadlineNanos - System.nanoTime() > 0) {
      run(batch, deadlineNanos, false); // keeps the slot: the retry's settling releases it
      return;
    }
    try {
      complete(batch, values, failure);
    } finally {
      Map<K, List<CompletableFuture<V>>> next;
      synchronized (lock) {
        if (waiting.isEmpty()) {
          inFlight--;
          next = null;
        } else {
          next = take();
        }
      }
      if (next != null) {
        run(next, System.nanoTime() + deadline.toNanos(), true);
      }
    }
  }

  private void complete(Map<K, List<CompletableFuture<V>>> batch, Map<K, V> values, Throwable failure) {
    batch.forEach((key, readers) -> {
      for (CompletableFuture<V> reader : readers) {
        if (failure != null) {
          reader.completeExceptionally(failure);
        } else if (values == null || !values.containsKey(key)) {
          reader.completeExceptionally(new IllegalStateException("the query did not answer for " + key));
        } else {
          reader.complete(values.get(key));
        }
      }
    });
  }

  private static Throwable unwrap(Throwable failure) {
    Throwable cause = failure;
    while (cause instanceof CompletionException && cause.getCause() != null) {
      cause = cause.getCause();
    }
    return cause;
  }
}
