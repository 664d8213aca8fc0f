package io.berth.node.mapping;

import io.berth.node.secrets.SecretSealer;
import io.berth.persistence.BerthTables;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The durable registry of mappings ({@code berth_mapping}), with a node-local cache. Every save
 * or delete bumps the mapping's version and announces it through Distributed Data
 * ({@link MappingWatcher}); every node drops cached versions older than announced, so an open
 * after a change sees the new version. Opens hit the cache; the database only on a miss.
 */
public final class MappingRegistry implements Extension {

  private static final Logger log = LoggerFactory.getLogger(MappingRegistry.class);

  private static final ExtensionId<MappingRegistry> ID = new ExtensionId<>() {
    @Override
    public MappingRegistry createExtension(ActorSystem<?> system) {
      return new MappingRegistry(system);
    }
  };

  private final BerthTables tables;
  private final SecretSealer sealer;
  private final ConcurrentHashMap<String, Mapping> cache = new ConcurrentHashMap<>();
  private volatile ActorRef<MappingWatcher.Command> watcher;

  private MappingRegistry(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
    this.sealer = SecretSealer.get(system);
  }

  public static MappingRegistry get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** The current version of a mapping, if it exists. */
  public CompletionStage<Optional<Mapping>> find(String name) {
    Mapping cached = cache.get(name);
    if (cached != null) {
      return CompletableFuture.completedFuture(Optional.of(cached));
    }
    return tables.run(c -> load(c, name)).thenApply(found -> {
      found.ifPresent(m -> cache.merge(name, m, (a, b) -> a.version() >= b.version() ? a : b));
      return found;
    });
  }

  public CompletionStage<List<Mapping>> list() {
    return tables.run(c -> {
      List<Mapping> out = new ArrayList<>();
      try (PreparedStatement s = c.prepareStatement(
          "SELECT name, version, definition FROM berth_mapping WHERE deleted = FALSE ORDER BY name");
           ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          out.add(MappingJson.fromStored(rs.getString(1), rs.getString(3), rs.getLong(2), sealer));
        }
      }
      return out;
    });
  }

  /** Creates or replaces a mapping; the stored version is one more than the previous one. */
  public CompletionStage<Mapping> save(Mapping definition) {
    return tables.run(c -> upsert(c, definition, false)).thenApply(saved -> {
      announce(saved.name(), saved.version());
      return saved;
    });
  }

  /** Deletes a mapping; false when there was none. Open sockets keep the version they have. */
  public CompletionStage<Boolean> delete(String name) {
    return tables.run(c -> {
      Optional<Mapping> current = load(c, name);
      if (current.isEmpty()) {
        return Optional.<Mapping>empty();
      }
      return Optional.of(upsert(c, current.get(), true));
    }).thenApply(deleted -> {
      deleted.ifPresent(m -> announce(m.name(), m.version()));
      return deleted.isPresent();
    });
  }

  /** Creates the built-in mappings when the registry has never had them (also not deleted). */
  public CompletionStage<Void> ensureDefaults() {
    return tables.run(c -> {
      for (String name : List.of("echo", "discard", "log", "pair")) {
        try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM berth_mapping WHERE name = ?")) {
          s.setString(1, name);
          try (ResultSet rs = s.executeQuery()) {
            if (rs.next()) {
              continue;
            }
          }
        }
        try (PreparedStatement s = c.prepareStatement(
            "INSERT INTO berth_mapping (name, version, definition, deleted, updated_at) VALUES (?, 1, ?, FALSE, ?)")) {
          s.setString(1, name);
          s.setString(2, MappingJson.toStored(Mapping.builtinDefault(name), sealer));
          s.setTimestamp(3, Timestamp.from(Instant.now()));
          s.executeUpdate();
        } catch (SQLException e) {
          // Another node created it at the same moment: fine.
          log.debug("Default mapping {} not inserted: {}", name, e.getMessage());
        }
      }
      return null;
    });
  }

  /**
   * Seals every stored secret that is not sealed with the newest key: plaintext from before secrets
   * were sealed, or a key that a rotation put second (docs/secrets.md#rotation). One transaction
   * holding the rows' locks, so that nodes starting together do it once: the next one finds the
   * rows sealed. The definition's version stays: the mapping is the same. A row sealed with a key
   * the node does not hold is left as it is (its mapping cannot be used until the key is back).
   * Answers how many rows were resealed.
   */
  public CompletionStage<Integer> sealStoredSecrets() {
    return tables.run(c -> {
      boolean auto = c.getAutoCommit();
      c.setAutoCommit(false);
      try {
        int resealed = 0;
        try (PreparedStatement select = c.prepareStatement(
                "SELECT name, definition FROM berth_mapping WHERE definition LIKE '%\"secret\"%' ORDER BY name "
                    + "FOR UPDATE");
             PreparedStatement update = c.prepareStatement("UPDATE berth_mapping SET definition = ? WHERE name = ?");
             ResultSet rs = select.executeQuery()) {
          while (rs.next()) {
            String sealed;
            try {
              sealed = MappingJson.resealed(rs.getString(2), sealer);
            } catch (IllegalStateException e) {
              log.error("Mapping {} keeps its secret as stored: {}", rs.getString(1), e.getMessage());
              continue;
            }
            if (sealed != null) {
              update.setString(1, sealed);
              update.setString(2, rs.getString(1));
              update.executeUpdate();
              resealed++;
            }
          }
        }
        c.commit();
        return resealed;
      } catch (SQLException | RuntimeException e) {
        c.rollback();
        throw e;
      } finally {
        c.setAutoCommit(auto);
      }
    });
  }

  /** Called by the watcher when a node announced versions. */
  void versionsChanged(Map<String, Long> versions) {
    versions.forEach((name, version) -> cache.computeIfPresent(name, (n, m) -> m.version() < version ? null : m));
  }

  void setWatcher(ActorRef<MappingWatcher.Command> watcher) {
    this.watcher = watcher;
  }

  private void announce(String name, long version) {
    cache.remove(name);
    ActorRef<MappingWatcher.Command> w = watcher;
    if (w != null) {
      w.tell(new MappingWatcher.Announce(name, version));
    }
  }

  private Optional<Mapping> load(Connection c, String name) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(
        "SELECT version, definition FROM berth_mapping WHERE name = ? AND deleted = FALSE")) {
      s.setString(1, name);
      try (ResultSet rs = s.executeQuery()) {
        return rs.next() ? Optional.of(MappingJson.fromStored(name, rs.getString(2), rs.getLong(1), sealer)) : Optional.empty();
      }
    }
  }

  private Mapping upsert(Connection c, Mapping m, boolean delete) throws SQLException {
    boolean auto = c.getAutoCommit();
    c.setAutoCommit(false);
    try {
      long version = 0;
      boolean exists = false;
      try (PreparedStatement s = c.prepareStatement("SELECT version FROM berth_mapping WHERE name = ? FOR UPDATE")) {
        s.setString(1, m.name());
        try (ResultSet rs = s.executeQuery()) {
          if (rs.next()) {
            exists = true;
            version = rs.getLong(1);
          }
        }
      }
      Mapping saved = m.withVersion(version + 1);
      String sql = exists
          ? "UPDATE berth_mapping SET version = ?, definition = ?, deleted = ?, updated_at = ? WHERE name = ?"
          : "INSERT INTO berth_mapping (version, definition, deleted, updated_at, name) VALUES (?, ?, ?, ?, ?)";
      try (PreparedStatement s = c.prepareStatement(sql)) {
        s.setLong(1, saved.version());
        s.setString(2, MappingJson.toStored(saved, sealer));
        s.setBoolean(3, delete);
        s.setTimestamp(4, Timestamp.from(Instant.now()));
        s.setString(5, m.name());
        s.executeUpdate();
      }
      c.commit();
      return saved;
    } catch (SQLException e) {
      c.rollback();
      throw e;
    } finally {
      c.setAutoCommit(auto);
    }
  }
}
