package io.berth.node.socket;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** The socket index's writes: the upsert on both databases, and how flushes follow each other. */
class SocketIndexTest {

  private static final SocketIndex.Settings SETTINGS = new SocketIndex.Settings(Duration.ofMillis(500), 100, 1000);

  /** Writes the test holds and completes by hand. */
  private final List<List<SocketIndex.Row>> written = new ArrayList<>();
  private final List<CompletableFuture<Void>> writes = new ArrayList<>();
  /** Scheduled flushes, run when the test says. */
  private final List<Runnable> due = new ArrayList<>();
  private final SocketIndex index = new SocketIndex(SETTINGS, rows -> {
    CompletableFuture<Void> f = new CompletableFuture<>();
    written.add(List.copyOf(rows));
    writes.add(f);
    return f;
  }, (delay, task) -> due.add(task));

  private static SocketIndex.Row row(String socket, String state, long seqNr, Instant at) {
    return new SocketIndex.Row(socket, "7", "dev-" + socket, state, "echo", state.equals("open") ? "node-a" : null,
        Instant.parse("2024-01-01T00:00:00Z"), at, seqNr);
  }

  private void runDue() {
    List<Runnable> now = new ArrayList<>(due);
    due.clear();
    now.forEach(Runnable::run);
  }

  @Test
  void oneFlushIsInFlightAtATimeAndChangesArrivingMeanwhileWaitForTheNext() {
    index.changed(row("s1", "open", 1, Instant.now()));
    runDue();
    assertThat(written).hasSize(1);
    index.changed(row("s2", "open", 1, Instant.now()));
    assertThat(due).as("no flush scheduled while one writes").isEmpty();
    writes.get(0).complete(null);
    assertThat(due).hasSize(1);
    runDue();
    assertThat(written).hasSize(2);
    assertThat(written.get(1)).extracting(SocketIndex.Row::socketId).containsExactly("s2");
  }

  @Test
  void aFailedWriteIsRetriedWithTheNextFlushUnlessTheSocketChangedMeanwhile() {
    index.changed(row("s1", "open", 1, Instant.now()));
    index.changed(row("s2", "open", 4, Instant.now()));
    runDue();
    index.changed(row("s2", "closed", 5, Instant.now()));
    writes.get(0).completeExceptionally(new IllegalStateException("database down"));
    runDue();
    assertThat(written.get(1)).extracting(SocketIndex.Row::socketId, SocketIndex.Row::state)
        .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple("s1", "open"),
            org.assertj.core.groups.Tuple.tuple("s2", "closed"));
    writes.get(1).complete(null);
    assertThat(due).as("nothing left to write").isEmpty();
  }

  @Test
  void aRowMovesForwardInTheSocketsJournalWhateverTheWritingNodesClockSaysOnPostgres() throws Exception {
    DatabaseSettings db = TestDatabase.settings();
    SchemaInstaller.install(db);
    try (Connection c = DriverManager.getConnection(db.url(), db.user(), db.password())) {
      movesForwardOnly(c, DatabaseSettings.Kind.POSTGRES);
    }
  }

  @Test
  void aRowMovesForwardInTheSocketsJournalWhateverTheWritingNodesClockSaysOnH2() throws Exception {
    DatabaseSettings db = new DatabaseSettings("jdbc:h2:mem:index-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1", "sa",
        "", 2, Duration.ofSeconds(5));
    SchemaInstaller.install(db);
    try (Connection c = DriverManager.getConnection(db.url(), db.user(), db.password())) {
      movesForwardOnly(c, DatabaseSettings.Kind.H2);
    }
  }

  private static void movesForwardOnly(Connection c, DatabaseSettings.Kind kind) throws SQLException {
    String a = "idx-" + UUID.randomUUID();
    String b = "idx-" + UUID.randomUUID();
    Instant now = Instant.now();
    SocketIndex.save(c, kind, List.of(row(a, "open", 3, now), row(b, "open", 1, now)));
    // The socket's new node, whose clock is behind, closes it; the old node's late write follows.
    SocketIndex.save(c, kind, List.of(row(a, "closed", 9, now.minusSeconds(60))));
    SocketIndex.save(c, kind, List.of(row(a, "detached", 5, now.plusSeconds(60)), row(b, "closed", 2, now)));
    assertThat(stateOf(c, a)).isEqualTo("closed/9");
    assertThat(stateOf(c, b)).isEqualTo("closed/2");
    // An entity that starts again lists the state it recovered: the row already shows it, untouched.
    SocketIndex.save(c, kind, List.of(row(a, "closed", 9, now.plusSeconds(120))));
    try (PreparedStatement s = c.prepareStatement("SELECT updated_at FROM berth_socket WHERE socket_id = ?")) {
      s.setString(1, a);
      try (ResultSet rs = s.executeQuery()) {
        assertThat(rs.next()).isTrue();
        assertThat(rs.getTimestamp(1).toInstant()).isBefore(now);
      }
    }
  }

  private static String stateOf(Connection c, String socket) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("SELECT state, seq_nr FROM berth_socket WHERE socket_id = ?")) {
      s.setString(1, socket);
      try (ResultSet rs = s.executeQuery()) {
        return rs.next() ? rs.getString(1) + "/" + rs.getLong(2) : null;
      }
    }
  }
}
