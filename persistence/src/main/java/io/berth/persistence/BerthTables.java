package io.berth.persistence;

import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * Access to Berth's own tables (mappings, parked batches, migrations, links, the socket index, the
 * certificate deny list): one small pool per node, and JDBC always on the blocking dispatcher,
 * never on the actors' threads. It lives beside the schema that creates those tables and the data
 * source it pools, and needs nothing of the node: each of the node's packages reads and writes its
 * own table through it without depending on the node's root package (docs/packages.md).
 */
public final class BerthTables implements Extension {

  private static final ExtensionId<BerthTables> ID = new ExtensionId<>() {
    @Override
    public BerthTables createExtension(ActorSystem<?> system) {
      return new BerthTables(system);
    }
  };

  /** Work on a connection. */
  public interface Work<T> {
    T apply(Connection c) throws SQLException;
  }

  private final HikariDataSource dataSource;
  private final Executor blocking;

  private BerthTables(ActorSystem<?> system) {
    this.dataSource = BerthDataSource.create(DatabaseSettings.fromConfig(system.settings().config()), 4);
    this.blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
    system.getWhenTerminated().thenRun(dataSource::close);
  }

  public static BerthTables get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Runs the work on the blocking dispatcher; an SQL failure fails the stage. */
  public <T> CompletionStage<T> run(Work<T> work) {
    return CompletableFuture.supplyAsync(() -> {
      try (Connection c = dataSource.getConnection()) {
        return work.apply(c);
      } catch (SQLException e) {
        throw new TableAccessException(e);
      }
    }, blocking);
  }

  public Executor blocking() {
    return blocking;
  }

  /** An SQL failure, unchecked so that it can travel through a CompletionStage. */
  public static final class TableAccessException extends RuntimeException {
    TableAccessException(SQLException cause) {
      super(cause.getMessage(), cause);
    }
  }
}
