package io.berth.node.metrics;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.Map;
import java.util.function.DoubleSupplier;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * The node's metrics (docs/metrics.md), in a registry of its own (several nodes may share a JVM
 * in tests), exported by {@code GET /metrics} on the management port in the Prometheus text
 * format.
 *
 * <p>Two kinds. What the node already counts (open connections, refused handshakes, frames and
 * bytes taken, entities, breakers) is read when Prometheus scrapes, through callbacks: nothing is
 * added to the paths that count it. What happens at a moment (a handshake, an ACK, an endpoint
 * call, a migration) is counted where it happens, on instruments made here once, their label
 * values resolved once where they are fixed: an increment is an add to a striped counter, with
 * no message and no allocation. No label ever carries a socket or device id: per-socket figures
 * stay under {@code /api/sockets}. Exemplars are off (they would sample the hot paths).
 *
 * <p>This package uses no other package of the node; the others use it.
 */
public final class Metrics implements Extension {

  private static final ExtensionId<Metrics> ID = new ExtensionId<>() {
    @Override
    public Metrics createExtension(ActorSystem<?> system) {
      return new Metrics();
    }
  };

  /** Latency buckets in seconds, from a millisecond to a minute. */
  private static final double[] LATENCY = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
      60};

  private final PrometheusRegistry registry = new PrometheusRegistry();

  private final Counter handshakes = Counter.builder().name("berth_handshakes_total")
      .help("HELLOs answered, by result: welcome, or the ERROR name (auth_failed, throttled, ...)")
      .labelNames("result").withoutExemplars().register(registry);
  private final Counter disconnects = Counter.builder().name("berth_disconnects_total")
      .help("Connections of opened sockets that ended, by reason: device (it closed or vanished), "
          + "or the ERROR or CLOSE the node sent")
      .labelNames("reason").withoutExemplars().register(registry);
  private final Counter downlink = Counter.builder().name("berth_downlink_frames_total")
      .help("DATA frames written to devices").withoutExemplars().register(registry);
  private final Counter downlinkBytes = Counter.builder().name("berth_downlink_bytes_total")
      .help("Payload bytes of DATA frames written to devices").withoutExemplars().register(registry);
  private final CounterDataPoint downlinkFrames = downlink.labelValues();
  private final CounterDataPoint downlinkPayload = downlinkBytes.labelValues();
  private final Histogram ackLatency = Histogram.builder().name("berth_ack_latency_seconds")
      .help("From a read of DATA frames to the ACK that confirms them (their destination took them)")
      .classicOnly().classicUpperBounds(LATENCY).withoutExemplars().register(registry);
  private final DistributionDataPoint ackLatencyPoint = ackLatency.labelValues();
  private final Counter endpointCalls = Counter.builder().name("berth_endpoint_calls_total")
      .help("HTTP endpoint calls, by mapping and outcome (delivered, refused, failed)")
      .labelNames("mapping", "outcome").withoutExemplars().register(registry);
  private final Histogram endpointLatency = Histogram.builder().name("berth_endpoint_call_seconds")
      .help("HTTP endpoint call time, answer read, by mapping")
      .labelNames("mapping").classicOnly().classicUpperBounds(LATENCY).withoutExemplars().register(registry);
  private final Counter endpointRetries = Counter.builder().name("berth_endpoint_retries_total")
      .help("Endpoint calls made again after a failure, by mapping")
      .labelNames("mapping").withoutExemplars().register(registry);
  private final Counter parked = Counter.builder().name("berth_parked_batches_total")
      .help("Batches parked after their endpoint refused them or kept failing, by mapping")
      .labelNames("mapping").withoutExemplars().register(registry);
  private final Counter migrations = Counter.builder().name("berth_migrations_total")
      .help("Migrations this node decided or was asked for, by cause (auto, manual, drain)")
      .labelNames("cause").withoutExemplars().register(registry);
  private final Histogram migrationPause = Histogram.builder().name("berth_migration_pause_seconds")
      .help("How long a migrated socket's deliveries paused, measured where it arrived")
      .classicOnly().classicUpperBounds(LATENCY).withoutExemplars().register(registry);
  private final Counter links = Counter.builder().name("berth_link_events_total")
      .help("Peer link changes this node made, by new state (linked, unlinked, timeout, refused)")
      .labelNames("state").withoutExemplars().register(registry);
  private final Counter relayed = Counter.builder().name("berth_relayed_frames_total")
      .help("Frames taken from a linked peer for a device on this node").withoutExemplars().register(registry);
  private final CounterDataPoint relayedFrames = relayed.labelValues();
  private final Histogram journalWrite = Histogram.builder().name("berth_journal_write_seconds")
      .help("Time of one batch insert into the event journal (a batch gathers the events of many sockets)")
      .classicOnly().classicUpperBounds(LATENCY).withoutExemplars().register(registry);
  private final DistributionDataPoint journalWritePoint = journalWrite.labelValues();
  private final Histogram journalBatch = Histogram.builder().name("berth_journal_batch_events")
      .help("Events in one batch insert into the event journal")
      .classicOnly().classicUpperBounds(1, 2, 5, 10, 20, 50, 100, 200, 400, 1000).withoutExemplars()
      .register(registry);
  private final DistributionDataPoint journalBatchPoint = journalBatch.labelValues();
  private final Counter journalFailures = Counter.builder().name("berth_journal_write_failures_total")
      .help("Batch inserts into the event journal that failed (their writers stopped and recover)")
      .withoutExemplars().register(registry);
  private final CounterDataPoint journalFailuresPoint = journalFailures.labelValues();

  private Metrics() {
    JvmMetrics.builder().register(registry);
  }

  public static Metrics get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  public PrometheusRegistry registry() {
    return registry;
  }

  // ------------------------------------------------------------------ at the moment

  public void handshake(String result) {
    handshakes.labelValues(result).inc();
  }

  public void disconnect(String reason) {
    disconnects.labelValues(reason).inc();
  }

  public void downlink(int frames, long bytes) {
    downlinkFrames.inc(frames);
    downlinkPayload.inc(bytes);
  }

  /** Where the edge reports each read's ACK latency, in nanoseconds. */
  public void ackLatency(long nanos) {
    ackLatencyPoint.observe(nanos / 1e9);
  }

  public void endpointCall(String mapping, String outcome, long nanos) {
    endpointCalls.labelValues(mapping, outcome).inc();
    endpointLatency.labelValues(mapping).observe(nanos / 1e9);
  }

  public void endpointRetry(String mapping) {
    endpointRetries.labelValues(mapping).inc();
  }

  public void parked(String mapping) {
    parked.labelValues(mapping).inc();
  }

  public void migrationStarted(String cause) {
    migrations.labelValues(cause).inc();
  }

  public void migrationCompleted(double pauseSeconds) {
    migrationPause.labelValues().observe(Math.max(0, pauseSeconds));
  }

  public void link(String state) {
    links.labelValues(state).inc();
  }

  public void relayed(int frames) {
    relayedFrames.inc(frames);
  }

  /** Where the journal reports each batch it inserted (one call per batch, not per event). */
  public void journalWrite(int events, long nanos, boolean failed) {
    journalWritePoint.observe(nanos / 1e9);
    journalBatchPoint.observe(events);
    if (failed) {
      journalFailuresPoint.inc();
    }
  }

  // ------------------------------------------------------------------ read when scraped

  /** A gauge read at each scrape. */
  public void gauge(String name, String help, DoubleSupplier value) {
    GaugeWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.getAsDouble())).register(registry);
  }

  /** A gauge with one label, its values read at each scrape. */
  public void gauge(String name, String help, String label, Supplier<Map<String, ? extends Number>> values) {
    GaugeWithCallback.builder().name(name).help(help).labelNames(label)
        .callback(cb -> values.get().forEach((k, v) -> cb.call(v.doubleValue(), k))).register(registry);
  }

  /** A counter kept elsewhere, read at each scrape. */
  public void counter(String name, String help, DoubleSupplier value) {
    CounterWithCallback.builder().name(name).help(help).callback(cb -> cb.call(value.getAsDouble()))
        .register(registry);
  }

  /** Counters with one label, kept elsewhere, read at each scrape. */
  public void counter(String name, String help, String label, Supplier<Map<String, ? extends Number>> values) {
    CounterWithCallback.builder().name(name).help(help).labelNames(label)
        .callback(cb -> values.get().forEach((k, v) -> cb.call(v.doubleValue(), k))).register(registry);
  }
}
