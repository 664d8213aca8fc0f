package io.berth.persistence;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import scala.Option;
import scala.concurrent.ExecutionContext;
import scala.concurrent.Future;
import scala.jdk.javaapi.FutureConverters;
import slick.dbio.DBIOAction;
import slick.jdbc.JdbcBackend;
import slick.jdbc.SimpleJdbcAction;

/** Plain JDBC work run on Slick's pool and threads, and the SQL names it writes. */
final class Jdbc {

  private Jdbc() {}

  /** What runs on a connection of the pool. */
  @FunctionalInterface
  interface Work<T> {
    T apply(Connection connection) throws SQLException;
  }

  /**
   * Runs {@code work} as one Slick action: on Slick's threads, with a connection of its pool. The
   * future fails with the driver's own {@code SQLException}.
   */
  static <T> Future<T> run(JdbcBackend.JdbcDatabaseDef db, Work<T> work) {
    SimpleJdbcAction<T> action = SimpleJdbcAction.apply(ctx -> {
      try {
        return work.apply(ctx.connection());
      } catch (SQLException e) {
        throw Jdbc.<RuntimeException>rethrow(e);
      }
    });
    // Scala's variance (an action needing no effects is one of "Nothing") has no Java spelling.
    @SuppressWarnings({"unchecked", "rawtypes"})
    Future<T> done = db.run((DBIOAction) action);
    return done;
  }

  /** The value one row of a read by ids holds for its id (the row's first column). */
  @FunctionalInterface
  interface RowReader<V> {
    V read(ResultSet row) throws SQLException;
  }

  /**
   * Reads by persistence id, gathered ({@link CoalescedReads}) and run on {@code db}'s pool:
   * {@code sql} takes the ids as its one {@code text[]} parameter and answers with an id in each
   * row's first column; an id without a row reads as {@code absent}. The statement has
   * {@link CoalescedReads#QUERY_TIMEOUT}, a failure is retried once unless PostgreSQL cancelled
   * it for that timeout, and readers are completed on {@code ec}.
   */
  static <V> CoalescedReads<String, V> readsByIds(JdbcBackend.JdbcDatabaseDef db, ExecutionContext ec, String sql,
                                                  V absent, RowReader<V> reader) {
    return reads(db, ec, CoalescedReads.KEYS, CoalescedReads.DEADLINE,
        (connection, ids) -> selectByIds(connection, sql, ids, absent, reader));
  }

  /** One statement that answers for every key it is given. */
  @FunctionalInterface
  interface BatchRead<K, V> {
    Map<K, V> read(Connection connection, List<K> keys) throws SQLException;
  }

  /**
   * Reads gathered ({@link CoalescedReads}), up to {@code maxKeys} a statement, and run on {@code
   * db}'s pool; as {@link #readsByIds} for what fails, what is retried and where readers complete.
   * The statement should have a timeout of its own below {@code deadline}.
   */
  static <K, V> CoalescedReads<K, V> reads(JdbcBackend.JdbcDatabaseDef db, ExecutionContext ec, int maxKeys,
                                           Duration deadline, BatchRead<K, V> query) {
    return new CoalescedReads<>(CoalescedReads.IN_FLIGHT, maxKeys, deadline, ec::execute,
        Jdbc::retryable, keys -> FutureConverters.asJava(run(db, connection -> query.read(connection, keys))));
  }

  private static <V> Map<String, V> selectByIds(Connection connection, String sql, List<String> ids, V absent,
                                                RowReader<V> reader) throws SQLException {
    Map<String, V> values = new HashMap<>(ids.size() * 2);
    ids.forEach(id -> values.put(id, absent));
    try (PreparedStatement select = connection.prepareStatement(sql)) {
      select.setQueryTimeout((int) CoalescedReads.QUERY_TIMEOUT.toSeconds());
      select.setArray(1, connection.createArrayOf("text", ids.toArray()));
      try (ResultSet rows = select.executeQuery()) {
        while (rows.next()) {
          values.put(rows.getString(1), reader.read(rows));
        }
      }
    }
    return values;
  }

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> X rethrow(Throwable t) throws X {
    throw (X) t;
  }

  /**
   * Whether a failed read is worth one more try: not when PostgreSQL cancelled it for taking too
   * long (SQLSTATE 57014, the statement's own timeout), which another try would only repeat.
   */
  private static boolean retryable(Throwable failure) {
    return !(failure instanceof SQLException e && "57014".equals(e.getSQLState()));
  }

  /** A table's name as the plugin's configuration gives it, quoted. */
  static String table(Option<String> schema, String table) {
    return schema.isDefined() ? quote(schema.get()) + "." + quote(table) : quote(table);
  }

  static String quote(String identifier) {
    return "\"" + identifier.replace("\"", "\"\"") + "\"";
  }
}
