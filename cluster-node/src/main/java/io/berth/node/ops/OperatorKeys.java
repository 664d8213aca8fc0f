package io.berth.node.ops;

import io.berth.persistence.BerthTables;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.RejectedExecutionException;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operator keys a node accepts (docs/operator-access.md#keys): those of its configuration
 * ({@code berth.management.keys}), fixed for its life, and those made through {@code /api/keys},
 * kept in {@code berth_operator_key} so that every node accepts them. A node reads that table when
 * it starts and every {@code key-poll-interval}; a key made or revoked on one node counts there at
 * once and on the others within that interval. A read that fails keeps the keys last read (logged
 * once per outage), so an outage of the database does not lock operators out.
 */
public final class OperatorKeys implements Extension {

  private static final Logger log = LoggerFactory.getLogger(OperatorKeys.class);

  private static final ExtensionId<OperatorKeys> ID = new ExtensionId<>() {
    @Override
    public OperatorKeys createExtension(ActorSystem<?> system) {
      return new OperatorKeys(system, ManagementSettings.fromConfig(system.settings().config()));
    }
  };

  /** SQLSTATE of a duplicate primary key, in PostgreSQL and H2 alike. */
  private static final String UNIQUE_VIOLATION = "23505";
  public static final int MAX_DESCRIPTION_LENGTH = 200;

  /** Who a request's key says it is. */
  public record Operator(String id, OperatorRole role) {}

  /** A key as {@code GET /api/keys} shows it: never its hash. */
  public record KeyInfo(String id, OperatorRole role, String description, String createdBy, Instant createdAt,
      boolean configured) {}

  /** A key just made: the key itself, shown this once, and what is stored of it. */
  public record Created(String key, KeyInfo info) {}

  /** A key id that exists already, in configuration or in the table. */
  public static final class KeyExists extends RuntimeException {
    KeyExists(String message) {
      super(message);
    }
  }

  private final ActorSystem<?> system;
  private final BerthTables tables;
  private final ManagementSettings settings;
  private final Map<String, OperatorKey> configured = new LinkedHashMap<>();
  /** The table's keys as last read, with this node's own changes since; replaced whole. */
  private volatile Map<String, OperatorKey> stored = Map.of();
  /**
   * Bumped by every change this node makes: a read of the table that started before a change may
   * end after it, and must not bring back a key just revoked (or drop one just made).
   */
  private long generation;
  private volatile boolean readFailing;

  private OperatorKeys(ActorSystem<?> system, ManagementSettings settings) {
    this.system = system;
    this.tables = BerthTables.get(system);
    this.settings = settings;
    settings.keys().forEach(k -> configured.put(k.id(), k));
    if (configured.isEmpty()) {
      log.warn("No operator key in berth.management.keys (BERTH_OPERATOR_KEYS): /api and /cluster answer 401 until a"
          + " key made through /api/keys is read from the database; make one with io.berth.node.ops.OperatorKeyCli");
    }
    poll();
  }

  public static OperatorKeys get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** The operator a presented key belongs to; empty for anything else, with no hint of why. */
  public Optional<Operator> authenticate(String presented) {
    Optional<String> id = OperatorKey.idOf(presented);
    if (id.isPresent() && presented.length() - id.get().length() - 1 < OperatorKey.MIN_SECRET_LENGTH) {
      return Optional.empty(); // too short to be a key of 256 random bits: not one of ours
    }
    if (id.isEmpty()) {
      return Optional.empty();
    }
    OperatorKey key = configured.get(id.get());
    if (key == null) {
      key = stored.get(id.get());
    }
    if (key == null || !key.matches(presented)) {
      return Optional.empty();
    }
    return Optional.of(new Operator(key.id(), key.role()));
  }

  /** Makes a key, stored hashed in the table: the key is in the answer and nowhere else. */
  public CompletionStage<Created> create(String id, OperatorRole role, String description, String createdBy) {
    if (description != null && description.length() > MAX_DESCRIPTION_LENGTH) {
      throw new IllegalArgumentException("a description has at most " + MAX_DESCRIPTION_LENGTH + " characters");
    }
    if (configured.containsKey(id)) {
      throw new KeyExists("the key '" + id + "' is in the nodes' configuration");
    }
    String key = OperatorKey.newKey(id);
    OperatorKey made = new OperatorKey(id, role, OperatorKey.hash(key));
    Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("INSERT INTO berth_operator_key"
          + " (id, role, sha256, description, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)")) {
        s.setString(1, id);
        s.setString(2, role.label());
        s.setString(3, HexFormat.of().formatHex(made.sha256()));
        s.setString(4, description);
        s.setString(5, createdBy);
        s.setTimestamp(6, Timestamp.from(now));
        s.executeUpdate();
      } catch (SQLException e) {
        if (UNIQUE_VIOLATION.equals(e.getSQLState())) {
          throw new KeyExists("the key '" + id + "' exists");
        }
        throw e;
      }
      return new Created(key, new KeyInfo(id, role, description, createdBy, now, false));
    }).thenApply(created -> {
      changeStored(next -> next.put(id, made));
      return created;
    });
  }

  /** Revokes a key made through the API, on every node; false when there was none. */
  public CompletionStage<Boolean> revoke(String id) {
    if (configured.containsKey(id)) {
      throw new KeyExists("the key '" + id + "' is in the nodes' configuration: remove it there");
    }
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("DELETE FROM berth_operator_key WHERE id = ?")) {
        s.setString(1, id);
        return s.executeUpdate() > 0;
      }
    }).thenApply(deleted -> {
      changeStored(next -> next.remove(id));
      return deleted;
    });
  }

  /** Every key: configuration's first, then the table's by id. */
  public CompletionStage<List<KeyInfo>> list() {
    return tables.run(c -> {
      List<KeyInfo> out = new ArrayList<>();
      configured.values().forEach(k -> out.add(new KeyInfo(k.id(), k.role(), "from configuration", null, null, true)));
      try (PreparedStatement s = c.prepareStatement(
          "SELECT id, role, description, created_by, created_at FROM berth_operator_key ORDER BY id");
           ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          out.add(new KeyInfo(rs.getString(1), OperatorRole.of(rs.getString(2)), rs.getString(3), rs.getString(4),
              rs.getTimestamp(5).toInstant(), false));
        }
      }
      return out;
    });
  }

  private synchronized void changeStored(java.util.function.Consumer<Map<String, OperatorKey>> change) {
    Map<String, OperatorKey> next = new HashMap<>(stored);
    change.accept(next);
    stored = Map.copyOf(next);
    generation++;
  }

  /** A read's result, unless a change of this node came after the read began (the next read has it). */
  private synchronized void applyRead(Map<String, OperatorKey> keys, long startedAt) {
    if (generation == startedAt) {
      stored = keys;
    }
  }

  private synchronized long generation() {
    return generation;
  }

  // ------------------------------------------------------------------ reading the table

  private void poll() {
    long startedAt = generation();
    CompletionStage<Map<String, OperatorKey>> read;
    try {
      read = tables.run(OperatorKeys::read);
    } catch (RejectedExecutionException e) {
      return; // the node is stopping
    }
    read.whenComplete((keys, failure) -> {
      if (system.whenTerminated().isCompleted()) {
        return;
      }
      if (failure == null) {
        applyRead(keys, startedAt);
        if (readFailing) {
          readFailing = false;
          log.info("Operator keys are read from the database again ({} stored)", keys.size());
        }
      } else if (!readFailing) {
        readFailing = true;
        log.warn("Cannot read the operator keys, keeping the {} last read: {}", stored.size(), failure.getMessage());
      }
      try {
        system.scheduler().scheduleOnce(settings.keyPollInterval(), this::poll, system.executionContext());
      } catch (IllegalStateException e) {
        log.debug("Not reading the operator keys again: the node is stopping");
      }
    });
  }

  private static Map<String, OperatorKey> read(Connection c) throws SQLException {
    Map<String, OperatorKey> keys = new HashMap<>();
    try (PreparedStatement s = c.prepareStatement("SELECT id, role, sha256 FROM berth_operator_key");
         ResultSet rs = s.executeQuery()) {
      while (rs.next()) {
        String id = rs.getString(1);
        try {
          keys.put(id, new OperatorKey(id, OperatorRole.of(rs.getString(2)), HexFormat.of().parseHex(rs.getString(3))));
        } catch (IllegalArgumentException e) {
          log.warn("Skipping the operator key '{}' in berth_operator_key: {}", id, e.getMessage());
        }
      }
    }
    return Map.copyOf(keys);
  }
}
