package io.berth.persistence;

import java.sql.Connection;
import java.sql.SQLException;
import scala.Option;
import scala.concurrent.Future;
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

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> X rethrow(Throwable t) throws X {
    throw (X) t;
  }

  /**
   * Whether a failed read is worth one more try: not when PostgreSQL cancelled it for taking too
   * long (SQLSTATE 57014, the statement's own timeout), which another try would only repeat.
   */
  static boolean retryable(Throwable failure) {
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
