package io.berth.persistence;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SchemaInstallerTest {

  private static final Set<String> TABLES =
      Set.of("durable_state", "event_journal", "event_tag", "snapshot", "berth_migration", "berth_mapping",
          "berth_parked", "berth_link", "berth_socket", "berth_certificate_deny");

  @Test
  void installsEveryTableOnAnEmptyPostgresDatabaseAndAgainWithoutFailing() throws Exception {
    DatabaseSettings db = TestDatabase.createScratchDatabase();
    try {
      SchemaInstaller.install(db);
      SchemaInstaller.install(db);
      assertThat(tables(db)).containsAll(TABLES);
      assertThat(indexes(db)).contains("event_journal_ordering_idx", "state_tag_idx",
          "state_global_offset_idx");
    } finally {
      TestDatabase.dropDatabase(db);
    }
  }

  @Test
  void threeNodesInstallingAtOnceOnPostgresAllSucceed() throws Exception {
    DatabaseSettings db = TestDatabase.createScratchDatabase();
    try {
      installConcurrently(db, 3);
      assertThat(tables(db)).containsAll(TABLES);
    } finally {
      TestDatabase.dropDatabase(db);
    }
  }

  @Test
  void aMissingDatabaseIsRefusedSayingHowToCreateIt() {
    DatabaseSettings base = TestDatabase.settings();
    DatabaseSettings db = base.withDatabase("berth_missing_" + System.nanoTime());
    assertThatThrownBy(() -> SchemaInstaller.install(db))
        .isInstanceOf(DatabaseUnavailableException.class)
        .hasMessageContaining("the database named in " + db.url() + " does not exist")
        .hasMessageContaining("CREATE DATABASE")
        .hasMessageContaining("berth.db.create-database");
  }

  @Test
  void aMissingDatabaseIsCreatedWhenAskedEvenByThreeNodesAtOnce() throws Exception {
    DatabaseSettings base = TestDatabase.settings();
    String name = "berth_created_" + System.nanoTime();
    DatabaseSettings named = base.withDatabase(name);
    DatabaseSettings db = new DatabaseSettings(named.url(), base.user(), base.password(), 4,
        base.connectTimeout(), true);
    try {
      installConcurrently(db, 3);
      assertThat(tables(db)).containsAll(TABLES);
    } finally {
      TestDatabase.dropDatabase(db);
    }
  }

  @Test
  void theDatabaseNameIsReadFromTheUrlAndReplacedKeepingItsOptions() {
    DatabaseSettings db = new DatabaseSettings("jdbc:postgresql://db.internal:5433/berth?sslmode=require", "u", "",
        1, Duration.ofSeconds(1));
    assertThat(db.databaseName()).isEqualTo("berth");
    assertThat(db.withDatabase("postgres").url()).isEqualTo("jdbc:postgresql://db.internal:5433/postgres?sslmode=require");
    assertThat(new DatabaseSettings("jdbc:postgresql://h/my%20db", "u", "", 1, Duration.ofSeconds(1)).databaseName())
        .isEqualTo("my db");
    assertThatThrownBy(() -> new DatabaseSettings("jdbc:postgresql://h/", "u", "", 1, Duration.ofSeconds(1))
        .databaseName()).hasMessageContaining("jdbc:postgresql://host[:port]/database");
  }

  @Test
  void threeNodesInstallingAtOnceOnH2AllSucceed(@TempDir Path dir) throws Exception {
    DatabaseSettings db = new DatabaseSettings(
        "jdbc:h2:file:" + dir.resolve("berth") + ";AUTO_SERVER=TRUE", "sa", "", 4, Duration.ofSeconds(5));
    installConcurrently(db, 3);
    SchemaInstaller.install(db);
    assertThat(tables(db)).containsAll(TABLES);
  }

  @Test
  void installsOnOneH2FileTakeALockFileNextToIt() {
    assertThat(SchemaInstaller.h2LockFile("jdbc:h2:file:/var/lib/berth/db;AUTO_SERVER=TRUE"))
        .isEqualTo(Path.of("/var/lib/berth/db.install.lock"));
    assertThat(SchemaInstaller.h2LockFile("jdbc:h2:./data/berth")).isEqualTo(Path.of("./data/berth.install.lock"));
    assertThat(SchemaInstaller.h2LockFile("jdbc:h2:~/berth")).isEqualTo(Path.of(System.getProperty("user.home")
        + "/berth.install.lock"));
    assertThat(SchemaInstaller.h2LockFile("jdbc:h2:mem:test;DB_CLOSE_DELAY=-1")).isNull();
    assertThat(SchemaInstaller.h2LockFile("jdbc:h2:tcp://localhost/~/berth")).isNull();
  }

  @Test
  void anUnreachableDatabaseFailsFastNamingUrlAndUser() {
    DatabaseSettings db = new DatabaseSettings("jdbc:postgresql://127.0.0.1:1/nowhere", "someone", "",
        1, Duration.ofSeconds(2));
    long started = System.nanoTime();
    assertThatThrownBy(() -> SchemaInstaller.install(db))
        .isInstanceOf(DatabaseUnavailableException.class)
        .hasMessageContaining("jdbc:postgresql://127.0.0.1:1/nowhere")
        .hasMessageContaining("someone");
    assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(30));
  }

  @Test
  void refusesAnUnsupportedDatabaseUrl() {
    assertThatThrownBy(() -> new DatabaseSettings("jdbc:mysql://x/y", "u", "", 1, Duration.ofSeconds(1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("jdbc:postgresql://");
  }

  private static void installConcurrently(DatabaseSettings db, int nodes) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(nodes);
    CyclicBarrier start = new CyclicBarrier(nodes);
    try {
      List<Future<?>> results = new ArrayList<>();
      for (int i = 0; i < nodes; i++) {
        results.add(pool.submit(() -> {
          start.await(10, TimeUnit.SECONDS);
          SchemaInstaller.install(db);
          return null;
        }));
      }
      for (Future<?> f : results) {
        f.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static Set<String> tables(DatabaseSettings db) throws SQLException {
    Set<String> names = new TreeSet<>();
    try (Connection c = SchemaInstaller.connect(db);
         ResultSet rs = c.getMetaData().getTables(null, null, "%", new String[] {"TABLE"})) {
      while (rs.next()) {
        names.add(rs.getString("TABLE_NAME").toLowerCase());
      }
    }
    return names;
  }

  private static Set<String> indexes(DatabaseSettings db) throws SQLException {
    Set<String> names = new TreeSet<>();
    try (Connection c = SchemaInstaller.connect(db)) {
      for (String table : TABLES) {
        try (ResultSet rs = c.getMetaData().getIndexInfo(null, null, table, false, false)) {
          while (rs.next()) {
            names.add(rs.getString("INDEX_NAME"));
          }
        }
      }
    }
    return names;
  }
}
