package io.berth.node.tls;

import com.typesafe.config.Config;
import io.berth.node.tls.DenyList.Entry;
import io.berth.persistence.BerthTables;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's {@link DenyList}, kept in {@code berth_certificate_deny} so that it is the same on
 * every node and survives restarts (docs/tls.md#deny-list). An operator's change is written to
 * the table and applied on the node that made it at once; every node reads the whole table when it
 * starts and again every {@code berth.edge.tls.deny-list-poll-interval}, and applies what changed,
 * which the list's listeners hear as they hear a local change. The table is small (certificates
 * denied by hand), so reading all of it is cheaper than any change feed would be to keep.
 *
 * <p>A read that fails leaves the list as it was last read: a database outage must not let denied
 * certificates back in. It is logged once per outage, and once when reading works again.
 */
public final class DenyListStore implements Extension {

  private static final Logger log = LoggerFactory.getLogger(DenyListStore.class);

  private static final ExtensionId<DenyListStore> ID = new ExtensionId<>() {
    @Override
    public DenyListStore createExtension(ActorSystem<?> system) {
      return new DenyListStore(system);
    }
  };

  /** SQLSTATE of a duplicate primary key, in PostgreSQL and H2 alike. */
  private static final String UNIQUE_VIOLATION = "23505";
  /** Inserts tried when the row found in the way is deleted before it can be read. */
  private static final int INSERT_ATTEMPTS = 3;
  /** The {@code reason} column's width. */
  public static final int MAX_REASON_LENGTH = 1000;

  /** {@code berth.edge.tls.deny-list-poll-interval} in reference.conf. */
  public record Settings(Duration pollInterval) {

    public Settings {
      if (pollInterval.isNegative() || pollInterval.isZero()) {
        throw new IllegalArgumentException(EdgeTlsSettings.PREFIX + "deny-list-poll-interval must be positive, got "
            + pollInterval);
      }
    }

    public static Settings fromConfig(Config config) {
      return new Settings(config.getDuration(EdgeTlsSettings.PREFIX + "deny-list-poll-interval"));
    }

    /**
     * A read of the table gives up after one interval (JDBC counts whole seconds, at least one): a
     * read that hangs would otherwise hold back every later one without a failure to log.
     */
    int readTimeoutSeconds() {
      return (int) Math.max(1, (pollInterval.toMillis() + 999) / 1000);
    }
  }

  /** One row of the table: a denied certificate, why (may be null) and since when. */
  public record Row(Entry entry, String reason, Instant addedAt) {}

  /** What {@link #add} found: the row now stored, and whether this call created it. */
  public record Added(Row row, boolean created) {}

  private final ActorSystem<?> system;
  private final BerthTables tables;
  private final Settings settings;
  private final DenyList denyList = new DenyList();
  private final DenyListSync sync = new DenyListSync(denyList);
  private final CompletableFuture<Void> loaded = new CompletableFuture<>();
  /** Rows that name no certificate (written by hand), each logged once. */
  private final Set<String> reportedInvalid = ConcurrentHashMap.newKeySet();
  /** Reads failed in a row; only the chain of reads writes it, one read after the other. */
  private volatile int failedReads;

  private DenyListStore(ActorSystem<?> system) {
    this.system = system;
    this.tables = BerthTables.get(system);
    this.settings = Settings.fromConfig(system.settings().config());
    poll();
  }

  /** The node's store, reading the table from the first call on. */
  public static DenyListStore get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** The node's one deny list: the edge's handshakes consult it, this store keeps it current. */
  public DenyList denyList() {
    return denyList;
  }

  /**
   * Completes once the table has been read and applied for the first time; stays pending while
   * the database cannot be read. Until then the list holds only what this node added since it
   * started.
   */
  public CompletionStage<Void> loaded() {
    return loaded;
  }

  /** Reads of the table that failed since the last one that worked: 0 while reading works. */
  int failedReads() {
    return failedReads;
  }

  /** Every row of the table, oldest first. */
  public CompletionStage<List<Row>> list() {
    return tables.run(c -> {
      List<Row> rows = new ArrayList<>();
      try (PreparedStatement s = c.prepareStatement(
          "SELECT kind, hex, reason, added_at FROM berth_certificate_deny ORDER BY added_at, kind, hex");
           ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          row(rs).ifPresent(rows::add);
        }
      }
      return rows;
    });
  }

  /**
   * Denies a certificate on every node: written to the table, then applied here. An entry already
   * stored keeps its reason and time ({@link Added#created} false), and is applied here too.
   */
  public CompletionStage<Added> add(Entry entry, String reason) {
    if (reason != null && reason.length() > MAX_REASON_LENGTH) {
      throw new IllegalArgumentException("a reason has at most " + MAX_REASON_LENGTH + " characters, got "
          + reason.length());
    }
    return tables.run(c -> insert(c, entry, reason)).thenApply(added -> {
      sync.added(entry);
      return added;
    });
  }

  /** Stops denying a certificate on every node; false when the table did not hold it. */
  public CompletionStage<Boolean> remove(Entry entry) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("DELETE FROM berth_certificate_deny WHERE kind = ? AND hex = ?")) {
        s.setString(1, entry.kind().label());
        s.setString(2, entry.value());
        return s.executeUpdate() > 0;
      }
    }).thenApply(deleted -> {
      sync.removed(entry);
      return deleted;
    });
  }

  // ------------------------------------------------------------------ reading the table

  /** One read of the table, applied; the next is scheduled when it is done, whatever its outcome. */
  private void poll() {
    long token = sync.readStarting();
    CompletionStage<Set<Entry>> read;
    try {
      read = tables.run(this::readEntries);
    } catch (RejectedExecutionException e) {
      return; // the blocking dispatcher is gone: the node is stopping
    }
    read.whenComplete((stored, failure) -> {
      if (system.whenTerminated().isCompleted()) {
        return; // the pool closes with the node: not an outage
      }
      if (failure == null) {
        applied(sync.applyRead(token, stored), stored.size());
      } else {
        failed(failure);
      }
      try {
        system.scheduler().scheduleOnce(settings.pollInterval(), this::poll, system.executionContext());
      } catch (IllegalStateException e) {
        log.debug("Not reading the deny list again: the node is stopping ({})", e.getMessage());
      }
    });
  }

  private Set<Entry> readEntries(Connection c) throws SQLException {
    Set<Entry> entries = new HashSet<>();
    try (PreparedStatement s = c.prepareStatement("SELECT kind, hex, reason, added_at FROM berth_certificate_deny")) {
      s.setQueryTimeout(settings.readTimeoutSeconds());
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          row(rs).ifPresent(r -> entries.add(r.entry()));
        }
      }
    }
    return entries;
  }

  private void applied(DenyListSync.Applied applied, int stored) {
    if (failedReads > 0) {
      log.info("Read the certificate deny list again after {} failed reads: {} entries", failedReads, stored);
      failedReads = 0;
    }
    if (!applied.stale()) {
      loaded.complete(null);
    }
    if (applied.changed()) {
      log.info("Certificate deny list read from berth_certificate_deny: {} denied, {} no longer denied, {} in all",
          applied.added(), applied.removed(), stored);
    }
  }

  private void failed(Throwable failure) {
    if (failedReads++ == 0) {
      Throwable cause = failure instanceof CompletionException && failure.getCause() != null
          ? failure.getCause() : failure;
      log.warn("Cannot read the certificate deny list (berth_certificate_deny): {}. Keeping the {} entries read"
          + " before, and trying again every {} ms", cause.getMessage(), denyList.entries().size(),
          settings.pollInterval().toMillis());
    }
  }

  /** A row as stored; empty (and logged once) when it names no certificate. */
  private Optional<Row> row(ResultSet rs) throws SQLException {
    String kind = rs.getString(1);
    String hex = rs.getString(2);
    Entry entry;
    try {
      entry = new Entry(DenyList.Kind.ofLabel(kind), hex);
    } catch (IllegalArgumentException e) {
      if (reportedInvalid.add(kind + "/" + hex)) {
        log.warn("Ignoring the row ({}, {}) of berth_certificate_deny: {}", kind, hex, e.getMessage());
      }
      return Optional.empty();
    }
    return Optional.of(new Row(entry, rs.getString(3), rs.getTimestamp(4).toInstant()));
  }

  // ------------------------------------------------------------------ writing

  private static Added insert(Connection c, Entry entry, String reason) throws SQLException {
    for (int attempt = 1; ; attempt++) {
      Instant now = Instant.now().truncatedTo(ChronoUnit.MILLIS);
      try (PreparedStatement s = c.prepareStatement(
          "INSERT INTO berth_certificate_deny (kind, hex, reason, added_at) VALUES (?, ?, ?, ?)")) {
        s.setString(1, entry.kind().label());
        s.setString(2, entry.value());
        s.setString(3, reason);
        s.setTimestamp(4, Timestamp.from(now));
        s.executeUpdate();
        return new Added(new Row(entry, reason, now), true);
      } catch (SQLException e) {
        if (!UNIQUE_VIOLATION.equals(e.getSQLState())) {
          throw e;
        }
      }
      Optional<Row> existing = find(c, entry);
      if (existing.isPresent()) {
        return new Added(existing.get(), false);
      }
      if (attempt == INSERT_ATTEMPTS) {
        throw new SQLException("the deny list entry " + entry + " was added and removed again " + attempt
            + " times while being added: try again");
      }
    }
  }

  private static Optional<Row> find(Connection c, Entry entry) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(
        "SELECT reason, added_at FROM berth_certificate_deny WHERE kind = ? AND hex = ?")) {
      s.setString(1, entry.kind().label());
      s.setString(2, entry.value());
      try (ResultSet rs = s.executeQuery()) {
        return rs.next() ? Optional.of(new Row(entry, rs.getString(1), rs.getTimestamp(2).toInstant()))
            : Optional.empty();
      }
    }
  }
}
