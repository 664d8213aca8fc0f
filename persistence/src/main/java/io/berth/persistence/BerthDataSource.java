package io.berth.persistence;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;

/**
 * A small connection pool for Berth's own tables (migrations, and later mappings and parked
 * batches), next to the journal's pool. Those tables see a few writes per minute, not per frame.
 */
public final class BerthDataSource {

  private BerthDataSource() {}

  public static HikariDataSource create(DatabaseSettings db, int poolSize) {
    HikariConfig config = new HikariConfig();
    config.setPoolName("berth-tables");
    config.setJdbcUrl(db.jdbcUrl());
    config.setUsername(db.user());
    config.setPassword(db.password());
    config.setDriverClassName(db.kind().driver);
    config.setMaximumPoolSize(poolSize);
    config.setMinimumIdle(1);
    config.setConnectionTimeout(Math.max(250, db.connectTimeout().toMillis()));
    config.setInitializationFailTimeout(-1);
    return new HikariDataSource(config);
  }
}
