package io.berth.node.mapping;

import io.berth.persistence.BerthTables;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;

/** Parked batches ({@code berth_parked}): what an endpoint refused or kept failing on. */
public final class ParkedStore {

  public record Parked(
      String id,
      String socketId,
      String deviceId,
      String mapping,
      long mappingVersion,
      String endpoint,
      String event,
      String batchId,
      long seqFrom,
      long seqTo,
      byte[] data,
      String error,
      int attempts,
      Instant parkedAt,
      Instant replayedAt) {}

  private final BerthTables tables;

  public ParkedStore(ActorSystem<?> system) {
    this.tables = BerthTables.get(system);
  }

  public CompletionStage<Void> insert(Parked p) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("INSERT INTO berth_parked (id, socket_id, device_id, mapping,"
          + " mapping_version, endpoint, event, batch_id, seq_from, seq_to, data, error, attempts, parked_at)"
          + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
        s.setString(1, p.id());
        s.setString(2, p.socketId());
        s.setString(3, p.deviceId());
        s.setString(4, p.mapping());
        s.setLong(5, p.mappingVersion());
        s.setString(6, p.endpoint());
        s.setString(7, p.event());
        s.setString(8, p.batchId());
        s.setLong(9, p.seqFrom());
        s.setLong(10, p.seqTo());
        s.setBytes(11, p.data());
        s.setString(12, p.error().length() > 4000 ? p.error().substring(0, 4000) : p.error());
        s.setInt(13, p.attempts());
        s.setTimestamp(14, Timestamp.from(p.parkedAt()));
        s.executeUpdate();
      }
      return null;
    });
  }

  /** Newest first; {@code socketId} may be null for all sockets. */
  public CompletionStage<List<Parked>> list(int limit, String socketId) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("SELECT " + COLUMNS + " FROM berth_parked"
          + (socketId == null ? "" : " WHERE socket_id = ?") + " ORDER BY parked_at DESC LIMIT ?")) {
        int i = 1;
        if (socketId != null) {
          s.setString(i++, socketId);
        }
        s.setInt(i, limit);
        List<Parked> out = new ArrayList<>();
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            out.add(read(rs));
          }
        }
        return out;
      }
    });
  }

  public CompletionStage<Optional<Parked>> get(String id) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("SELECT " + COLUMNS + " FROM berth_parked WHERE id = ?")) {
        s.setString(1, id);
        try (ResultSet rs = s.executeQuery()) {
          return rs.next() ? Optional.of(read(rs)) : Optional.empty();
        }
      }
    });
  }

  public CompletionStage<Boolean> delete(String id) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("DELETE FROM berth_parked WHERE id = ?")) {
        s.setString(1, id);
        return s.executeUpdate() > 0;
      }
    });
  }

  public CompletionStage<Void> markReplayed(String id, Instant at) {
    return tables.run(c -> {
      try (PreparedStatement s = c.prepareStatement("UPDATE berth_parked SET replayed_at = ? WHERE id = ?")) {
        s.setTimestamp(1, Timestamp.from(at));
        s.setString(2, id);
        s.executeUpdate();
      }
      return null;
    });
  }

  private static final String COLUMNS = "id, socket_id, device_id, mapping, mapping_version, endpoint, event, batch_id,"
      + " seq_from, seq_to, data, error, attempts, parked_at, replayed_at";

  private static Parked read(ResultSet rs) throws SQLException {
    Timestamp replayed = rs.getTimestamp(15);
    return new Parked(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getLong(5),
        rs.getString(6), rs.getString(7), rs.getString(8), rs.getLong(9), rs.getLong(10), rs.getBytes(11),
        rs.getString(12), rs.getInt(13), rs.getTimestamp(14).toInstant(), replayed == null ? null : replayed.toInstant());
  }
}
