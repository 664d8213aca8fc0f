package io.berth.persistence;

import com.typesafe.config.ConfigFactory;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * The PostgreSQL server tests run against: {@code BERTH_TEST_DB_URL} (default the {@code
 * berth_test} database on 127.0.0.1:5432, which {@code scripts/test.sh} creates), with {@code
 * BERTH_TEST_DB_USER} / {@code BERTH_TEST_DB_PASSWORD}.
 */
public final class TestDatabase {

  private TestDatabase() {}

  public static DatabaseSettings settings() {
    return new DatabaseSettings(
        env("BERTH_TEST_DB_URL", "jdbc:postgresql://127.0.0.1:5432/berth_test"),
        env("BERTH_TEST_DB_USER", "postgres"),
        env("BERTH_TEST_DB_PASSWORD", ""),
        8,
        Duration.ofSeconds(5));
  }

  /** A new, empty database on the same server, for tests that need a schema-less start. */
  public static DatabaseSettings createScratchDatabase() {
    DatabaseSettings base = settings();
    String name = "berth_scratch_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    execute(base, "CREATE DATABASE " + name);
    String url = base.url().replaceFirst("/[^/?]+(\\?|$)", "/" + name + "$1");
    return new DatabaseSettings(url, base.user(), base.password(), base.poolSize(), base.connectTimeout());
  }

  public static void dropDatabase(DatabaseSettings scratch) {
    String name = scratch.url().replaceFirst(".*/([^/?]+).*", "$1");
    execute(settings(), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }

  /**
   * A local actor system persisting to {@code db} (its schema installed) through Pekko Persistence
   * JDBC, both plugins on the shared pool; {@code plugins} is laid over that (the DAOs, for one).
   */
  static ActorSystem<Void> persistenceSystem(DatabaseSettings db, String name, String plugins) {
    SchemaInstaller.install(db);
    return ActorSystem.create(Behaviors.empty(), name, db.pekkoOverrides()
        .withFallback(ConfigFactory.parseString(plugins))
        .withFallback(ConfigFactory.parseString("""
            pekko.actor.provider = local
            pekko.persistence.journal.plugin = "jdbc-journal"
            pekko.persistence.snapshot-store.plugin = "jdbc-snapshot-store"
            jdbc-journal.use-shared-db = "slick"
            jdbc-snapshot-store.use-shared-db = "slick"
            """)).withFallback(ConfigFactory.load()).resolve());
  }

  /** Stops what {@link #persistenceSystem} started and drops its scratch database. */
  static void stop(ActorSystem<?> system, DatabaseSettings scratch) throws Exception {
    if (system != null) {
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    if (scratch != null) {
      dropDatabase(scratch);
    }
  }

  /** The first column of the first row of {@code sql}, a count. */
  static long count(DatabaseSettings db, String sql) throws SQLException {
    try (Connection c = SchemaInstaller.connect(db); Statement s = c.createStatement();
         ResultSet r = s.executeQuery(sql)) {
      r.next();
      return r.getLong(1);
    }
  }

  private static void execute(DatabaseSettings db, String sql) {
    try (Connection c = SchemaInstaller.connect(db); Statement s = c.createStatement()) {
      s.execute(sql);
    } catch (SQLException e) {
      throw new IllegalStateException(sql + " failed: " + e.getMessage(), e);
    }
  }

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isBlank() ? fallback : v;
  }
}
