package io.berth.persistence;

import io.berth.protocol.Backoff;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs the journal, snapshot and durable-state tables at node start. Every statement is
 * idempotent, and on PostgreSQL the whole install runs in one transaction under an advisory lock,
 * so a node started twice, or several nodes started at once, do not fail on it. The scripts that
 * ship in the persistence-jdbc jar are not used as they are: the PostgreSQL one creates its
 * indexes {@code CONCURRENTLY} (not allowed in a transaction) and without {@code IF NOT EXISTS}.
 */
public final class SchemaInstaller {

  private static final Logger log = LoggerFactory.getLogger(SchemaInstaller.class);
  /** Arbitrary constant naming Berth's schema lock among PostgreSQL advisory locks. */
  private static final long ADVISORY_LOCK_KEY = 0x4265727468L;
  /**
   * Tries on H2, where several nodes opening a new database file at once can see each other's
   * half-done DDL (even as a connection error such as "table already exists"); with pauses
   * growing to 1 s this rides out about 5 s of contention on a busy machine.
   */
  private static final int H2_ATTEMPTS = 10;
  /** The pause after the n-th failed try on H2: 20 to 100 ms times n. */
  private static final Backoff H2_RETRY = Backoff.linear(Duration.ofMillis(100), Duration.ofSeconds(1), 0.8);
  /** The pause while another process holds the install lock: as {@link #H2_RETRY}, at most 0.5 s. */
  private static final Backoff H2_LOCK_POLL = Backoff.linear(Duration.ofMillis(100), Duration.ofMillis(500), 0.8);

  private SchemaInstaller() {}

  public static void install(DatabaseSettings db) {
    if (db.kind() == DatabaseSettings.Kind.POSTGRES) {
      ensureDatabase(db);
    }
    if (db.kind() == DatabaseSettings.Kind.H2) {
      synchronized (H2_INSTALLS) {
        try (FileChannel locked = lockH2Install(db)) {
          installWithRetries(db);
        } catch (IOException e) {
          log.debug("Releasing the install lock of {}", db.url(), e);
        }
      }
    } else {
      installWithRetries(db);
    }
  }

  /** Installs on H2, one at a time in this JVM; see {@link #lockH2Install}. */
  private static final Object H2_INSTALLS = new Object();
  private static final long H2_LOCK_WAIT_MS = 60_000;

  /**
   * Takes a lock file next to an H2 database file, so that nodes started at once on the same
   * embedded database (scripts/cluster.sh) install one after the other: H2 has no advisory
   * locks, and a connection opened while another process runs DDL on the same file can fail
   * with that DDL's error ("table already exists") for seconds. Null for in-memory and server
   * URLs, or when the lock cannot be had within a minute (the install then goes ahead, retrying).
   * Closing the channel returned releases the lock.
   */
  static FileChannel lockH2Install(DatabaseSettings db) {
    Path file = h2LockFile(db.jdbcUrl());
    if (file == null) {
      return null;
    }
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(H2_LOCK_WAIT_MS);
    try {
      if (file.getParent() != null) {
        Files.createDirectories(file.getParent());
      }
      FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      boolean locked = false;
      try {
        for (int attempt = 1; System.nanoTime() - deadline < 0; attempt++) {
          if (channel.tryLock() != null) {
            locked = true;
            return channel;
          }
          pause(H2_LOCK_POLL, attempt);
        }
      } finally {
        if (!locked) {
          channel.close();
        }
      }
      log.warn("Another process held {} for {} s: installing the schema without it", file, H2_LOCK_WAIT_MS / 1000);
    } catch (IOException e) {
      log.warn("Cannot lock {} ({}): installing the schema without it", file, e.toString());
    }
    return null;
  }

  /** The install lock's file for an H2 URL naming a database file; null for any other. */
  static Path h2LockFile(String jdbcUrl) {
    String name = jdbcUrl.substring("jdbc:h2:".length());
    int options = name.indexOf(';');
    if (options >= 0) {
      name = name.substring(0, options);
    }
    if (name.startsWith("file:")) {
      name = name.substring("file:".length());
    } else if (name.matches("^[a-z]{2,}:.*")) {
      return null; // mem:, tcp:, ssl:, zip:, …
    }
    if (name.startsWith("~")) {
      name = System.getProperty("user.home") + name.substring(1);
    }
    return name.isEmpty() ? null : Path.of(name + ".install.lock");
  }

  private static void installWithRetries(DatabaseSettings db) {
    List<String> statements = statements(db.kind());
    long started = System.nanoTime();
    for (int attempt = 1; ; attempt++) {
      try (Connection c = connect(db)) {
        if (db.kind() == DatabaseSettings.Kind.POSTGRES) {
          installPostgres(c, statements);
        } else {
          installH2(c, statements);
        }
        break;
      } catch (SQLException e) {
        throw new DatabaseUnavailableException(
            "schema install failed on " + db.url() + " as user '" + db.user() + "': " + e.getMessage(), e);
      } catch (DatabaseUnavailableException e) {
        // H2 can refuse a connection while another process creates the same database file.
        if (db.kind() != DatabaseSettings.Kind.H2 || attempt >= H2_ATTEMPTS) {
          throw e;
        }
        pause(H2_RETRY, attempt);
      }
    }
    log.info("Schema ready on {} ({} statements, {} ms)", db.url(), statements.size(),
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
  }

  /** PostgreSQL's SQLSTATE for a database that does not exist (invalid_catalog_name). */
  private static final String NO_SUCH_DATABASE = "3D000";
  /** duplicate_database, and the catalog's unique index when two nodes create it at once. */
  private static final Set<String> ALREADY_CREATED = Set.of("42P04", "23505");

  /**
   * A missing database is the first thing a new PostgreSQL user meets. With {@code
   * createDatabase} it is created from the server's {@code postgres} database (several nodes
   * starting at once may all try: the losers find it made); without, the error says how to
   * create it.
   */
  static void ensureDatabase(DatabaseSettings db) {
    try (Connection c = connect(db)) {
      return;
    } catch (SQLException e) {
      log.debug("Closing the probe connection to {}", db.url(), e);
      return;
    } catch (DatabaseUnavailableException e) {
      if (!(e.getCause() instanceof SQLException sql) || !NO_SUCH_DATABASE.equals(sql.getSQLState())) {
        throw e;
      }
    }
    if (!db.createDatabase()) {
      String name;
      try {
        name = "\"" + db.databaseName() + "\"";
      } catch (IllegalArgumentException e) {
        name = "<name>"; // a URL form without a path (jdbc:postgresql:db): the user knows the name
      }
      throw new DatabaseUnavailableException("the database named in " + db.url() + " does not exist. Create it"
          + " (psql -U " + db.user() + " -d postgres -c 'CREATE DATABASE " + name + "'), or let the node create"
          + " it: berth.db.create-database = on (BERTH_DB_CREATE=true; the user needs CREATEDB)", null);
    }
    String name = db.databaseName();
    DatabaseSettings maintenance = db.withDatabase("postgres");
    try (Connection c = connect(maintenance); Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE \"" + name.replace("\"", "\"\"") + "\"");
      log.info("Created database '{}' on {} (berth.db.create-database)", name, db.url());
    } catch (SQLException e) {
      if (!ALREADY_CREATED.contains(e.getSQLState())) {
        throw new DatabaseUnavailableException("database '" + name + "' does not exist on " + db.url()
            + " and user '" + db.user() + "' cannot create it: " + e.getMessage()
            + " (create it as a user with CREATEDB, or grant it: ALTER ROLE " + db.user() + " CREATEDB)", e);
      }
    }
  }

  /** Opens a plain JDBC connection, failing within the configured connect timeout. */
  public static Connection connect(DatabaseSettings db) {
    Properties props = new Properties();
    props.setProperty("user", db.user());
    props.setProperty("password", db.password());
    long seconds = Math.max(1, db.connectTimeout().toSeconds());
    if (db.kind() == DatabaseSettings.Kind.POSTGRES) {
      props.setProperty("connectTimeout", Long.toString(seconds));
      props.setProperty("loginTimeout", Long.toString(seconds));
    }
    try {
      return DriverManager.getConnection(db.jdbcUrl(), props);
    } catch (SQLException e) {
      throw new DatabaseUnavailableException("cannot connect to the database at " + db.url()
          + " as user '" + db.user() + "' within " + seconds + " s: " + e.getMessage()
          + " (set BERTH_DB_URL, BERTH_DB_USER and BERTH_DB_PASSWORD)", e);
    }
  }

  private static void installPostgres(Connection c, List<String> statements) throws SQLException {
    c.setAutoCommit(false);
    try (Statement s = c.createStatement()) {
      s.execute("SELECT pg_advisory_xact_lock(" + ADVISORY_LOCK_KEY + ")");
      for (String sql : statements) {
        s.execute(sql);
      }
      c.commit();
    } catch (SQLException e) {
      c.rollback();
      throw e;
    }
  }

  /**
   * H2 has no advisory locks; concurrent {@code IF NOT EXISTS} DDL from several nodes can still
   * collide on its catalog, so each statement is retried a few times.
   */
  private static void installH2(Connection c, List<String> statements) throws SQLException {
    c.setAutoCommit(true);
    try (Statement s = c.createStatement()) {
      for (String sql : statements) {
        for (int attempt = 1; ; attempt++) {
          try {
            s.execute(sql);
            break;
          } catch (SQLException e) {
            if (attempt >= H2_ATTEMPTS) {
              throw e;
            }
            log.debug("Retrying schema statement after {}", e.getMessage());
            pause(H2_RETRY, attempt);
          }
        }
      }
    }
  }

  private static void pause(Backoff backoff, int attempt) {
    try {
      Thread.sleep(backoff.delayMillis(attempt));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted during schema install", e);
    }
  }

  static List<String> statements(DatabaseSettings.Kind kind) {
    String resource = kind == DatabaseSettings.Kind.POSTGRES ? "schema/postgres.sql" : "schema/h2.sql";
    String script;
    try (InputStream in = SchemaInstaller.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + resource);
      }
      script = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalStateException("cannot read " + resource, e);
    }
    List<String> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    // Inside a dollar-quoted body (a function's, a DO block's) a ';' ends a line, not the statement.
    boolean quoted = false;
    for (String line : script.split("\n")) {
      String trimmed = line.strip();
      if (!quoted && (trimmed.startsWith("--") || trimmed.isEmpty())) {
        continue;
      }
      current.append(line).append('\n');
      if (line.split("\\$\\$", -1).length % 2 == 0) {
        quoted = !quoted;
      }
      if (!quoted && trimmed.endsWith(";")) {
        String sql = current.toString().strip();
        out.add(sql.substring(0, sql.length() - 1));
        current.setLength(0);
      }
    }
    if (quoted || !current.toString().isBlank()) {
      throw new IllegalStateException(resource + " ends inside a statement: " + current.toString().strip());
    }
    return List.copyOf(out);
  }
}
