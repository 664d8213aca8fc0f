package io.berth.persistence;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where the journal lives: {@code berth.db.*}, overridden by {@code BERTH_DB_URL}, {@code
 * BERTH_DB_USER} and {@code BERTH_DB_PASSWORD}. PostgreSQL is the production store; H2 is the
 * embedded default for users without a database. With {@code createDatabase} a PostgreSQL
 * database that does not exist yet is created at start, when the user may ({@code
 * berth.db.create-database}, {@code BERTH_DB_CREATE}; off by default: production roles should
 * not need CREATEDB).
 */
public record DatabaseSettings(
    String url, String user, String password, int poolSize, Duration connectTimeout, boolean createDatabase) {

  public enum Kind {
    POSTGRES("org.postgresql.Driver", "slick.jdbc.PostgresProfile$"),
    H2("org.h2.Driver", "slick.jdbc.H2Profile$");

    public final String driver;
    public final String slickProfile;

    Kind(String driver, String slickProfile) {
      this.driver = driver;
      this.slickProfile = slickProfile;
    }
  }

  public DatabaseSettings {
    kindOf(url);
    if (poolSize < 1) {
      throw new IllegalArgumentException("berth.db.pool-size must be at least 1");
    }
  }

  public DatabaseSettings(String url, String user, String password, int poolSize, Duration connectTimeout) {
    this(url, user, password, poolSize, connectTimeout, false);
  }

  public static DatabaseSettings fromConfig(Config config) {
    Config db = config.getConfig("berth.db");
    return new DatabaseSettings(
        db.getString("url"),
        db.getString("user"),
        db.getString("password"),
        db.getInt("pool-size"),
        db.getDuration("connect-timeout"),
        db.hasPath("create-database") && db.getBoolean("create-database"));
  }

  public Kind kind() {
    return kindOf(url);
  }

  /**
   * The URL the journal connects with: for PostgreSQL, batched inserts are rewritten into
   * multi-row statements, which is what makes the journal's batching pay off.
   */
  public String jdbcUrl() {
    if (kind() == Kind.POSTGRES && !url.contains("reWriteBatchedInserts")) {
      return url + (url.contains("?") ? "&" : "?") + "reWriteBatchedInserts=true";
    }
    return url;
  }

  /** Pekko Persistence JDBC settings for this database, to lay over the loaded config. */
  public Config pekkoOverrides() {
    String prefix = "pekko-persistence-jdbc.shared-databases.slick.";
    Map<String, Object> m = new HashMap<>();
    m.put(prefix + "profile", kind().slickProfile);
    m.put(prefix + "db.url", jdbcUrl());
    m.put(prefix + "db.user", user);
    m.put(prefix + "db.password", password);
    m.put(prefix + "db.driver", kind().driver);
    m.put(prefix + "db.numThreads", poolSize);
    m.put(prefix + "db.maxConnections", poolSize);
    m.put(prefix + "db.minConnections", Math.min(2, poolSize));
    // HikariCP would otherwise retry a refused connection silently for 3 minutes.
    m.put(prefix + "db.connectionTimeout", connectTimeout.toMillis());
    return ConfigFactory.parseMap(m, "berth.db");
  }

  /** The same server and options, another database: where {@code CREATE DATABASE} is run from. */
  public DatabaseSettings withDatabase(String name) {
    if (kind() != Kind.POSTGRES) {
      throw new IllegalStateException("only a PostgreSQL URL names a database on a server: " + url);
    }
    Matcher m = POSTGRES_URL.matcher(url);
    if (!m.matches()) {
      throw new IllegalArgumentException("cannot find the database name in '" + url
          + "': expected jdbc:postgresql://host[:port]/database[?options]");
    }
    return new DatabaseSettings(m.group(1) + name + (m.group(3) == null ? "" : m.group(3)), user, password, poolSize, connectTimeout, false);
  }

  /** The database this URL names on its server (PostgreSQL only). */
  public String databaseName() {
    Matcher m = POSTGRES_URL.matcher(url);
    if (kind() != Kind.POSTGRES || !m.matches() || m.group(2).isEmpty()) {
      throw new IllegalArgumentException("cannot find the database name in '" + url
          + "': expected jdbc:postgresql://host[:port]/database[?options]");
    }
    return URLDecoder.decode(m.group(2), StandardCharsets.UTF_8);
  }

  private static final Pattern POSTGRES_URL = Pattern.compile("^(jdbc:postgresql://[^/?]*/)([^?]*)(\\?.*)?$");

  @Override
  public String toString() {
    return "DatabaseSettings[url=" + url + ", user=" + user + ", poolSize=" + poolSize + "]";
  }

  private static Kind kindOf(String url) {
    if (url.startsWith("jdbc:postgresql:")) {
      return Kind.POSTGRES;
    }
    if (url.startsWith("jdbc:h2:")) {
      return Kind.H2;
    }
    throw new IllegalArgumentException("unsupported database URL '" + url
        + "': Berth stores its journal in PostgreSQL (jdbc:postgresql://host:port/db) or, embedded, H2 (jdbc:h2:...)");
  }
}
