package io.berth.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The journal scenario's count of what the journal holds, on a real PostgreSQL journal. */
class JournalAuditTest {

  private static DatabaseSettings db;

  @BeforeAll
  static void schema() {
    db = TestDatabase.createScratchDatabase();
    SchemaInstaller.install(db);
  }

  @AfterAll
  static void drop() {
    if (db != null) {
      TestDatabase.dropDatabase(db);
    }
  }

  @Test
  void everyAcknowledgedEventInTheJournalIsNothingLostNorExtra() throws Exception {
    insert("whole-a", 1, 2, 3);
    insert("whole-b", 1);
    insert("other-a", 1, 2, 3, 4);

    JournalScenario.Audit audit = JournalScenario.audit(db, "whole", Map.of("whole-a", 3L, "whole-b", 1L));

    assertThat(audit).isEqualTo(new JournalScenario.Audit(4, 4, 0, 0, 0));
  }

  @Test
  void missingEventsAreLostRowsBeyondTheAcknowledgedAreExtraHolesAreSkipped() throws Exception {
    insert("holes-a", 1, 3);
    insert("holes-b", 1, 2, 3);

    JournalScenario.Audit audit = JournalScenario.audit(db, "holes",
        Map.of("holes-a", 3L, "holes-b", 2L, "holes-c", 1L));

    // holes-a: 1 of 3 missing, seq 2 skipped; holes-b: one row more than it was told; holes-c: none.
    assertThat(audit).isEqualTo(new JournalScenario.Audit(6, 5, 2, 1, 1));
  }

  @Test
  void aRowAboveTheAcknowledgedDoesNotHideAMissingOne() throws Exception {
    insert("above-a", 1, 2, 4);

    JournalScenario.Audit audit = JournalScenario.audit(db, "above", Map.of("above-a", 3L));

    assertThat(audit).isEqualTo(new JournalScenario.Audit(3, 3, 1, 1, 1));
  }

  private static void insert(String persistenceId, long... seqs) throws SQLException {
    try (Connection c = SchemaInstaller.connect(db);
        PreparedStatement s = c.prepareStatement("INSERT INTO event_journal (persistence_id, sequence_number, writer, "
            + "event_ser_id, event_ser_manifest, event_payload) VALUES (?, ?, 'test', 1, 'm', ?)")) {
      for (long seq : seqs) {
        s.setString(1, persistenceId);
        s.setLong(2, seq);
        s.setBytes(3, new byte[] {1});
        s.executeUpdate();
      }
    }
  }
}
