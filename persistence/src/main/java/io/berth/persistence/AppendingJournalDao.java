package io.berth.persistence;

import org.apache.pekko.persistence.jdbc.config.JournalConfig;
import org.apache.pekko.persistence.jdbc.journal.dao.DefaultJournalDao;
import org.apache.pekko.persistence.jdbc.journal.dao.JournalTables;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.stream.Materializer;
import scala.Tuple2;
import scala.collection.immutable.Seq;
import scala.collection.immutable.Set;
import scala.concurrent.ExecutionContext;
import scala.concurrent.Future;
import scala.runtime.BoxedUnit;
import slick.jdbc.JdbcBackend;
import slick.jdbc.JdbcProfile;

/**
 * Pekko Persistence JDBC's journal DAO, with one change: the rows of each write enter the write
 * queue as a {@code Vector} instead of the {@code List} the journal hands over.
 *
 * <p>Why: the DAO's write queue gathers concurrent writes into one insert of up to {@code
 * batchSize} rows with {@code batchWeighted}, appending each write's rows to the batch with
 * {@code rows ++ newRows}, where {@code rows} is the first write's collection. When that is a
 * {@code List} (as for every event-sourced actor's write), each append copies the whole batch so
 * far: gathering n single-event writes costs n²/2 list cells, 80,000 for a batch of 400. In a
 * profile of the journal benchmark this copying was 11 % of the node's CPU, more than the
 * PostgreSQL driver's work. Appending to a {@code Vector} costs the same per row whatever the
 * batch size. Configured as {@code jdbc-journal.dao} (persistence.conf); everything else, reads
 * included, is the stock DAO's.
 */
public class AppendingJournalDao extends DefaultJournalDao {

  public AppendingJournalDao(JdbcBackend.JdbcDatabaseDef db, JdbcProfile profile, JournalConfig journalConfig,
                             Serialization serialization, ExecutionContext ec, Materializer mat) {
    super(db, profile, journalConfig, serialization, ec, mat);
  }

  @Override
  public Future<BoxedUnit> queueWriteJournalRows(
      Seq<Tuple2<JournalTables.JournalPekkoSerializationRow, Set<String>>> rows) {
    return super.queueWriteJournalRows(rows.toVector());
  }
}
