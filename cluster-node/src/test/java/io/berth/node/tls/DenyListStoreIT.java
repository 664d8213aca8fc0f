package io.berth.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.typesafe.config.ConfigFactory;
import io.berth.node.tls.DenyList.Entry;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.SchemaInstaller;
import io.berth.persistence.TestDatabase;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * {@link DenyListStore} on a database of its own, PostgreSQL and H2: what it writes, what another
 * node's store reads at its start, and a database that goes away and comes back.
 */
class DenyListStoreIT {

  private static final Duration POLL = Duration.ofMillis(200);

  private final LocalCa ca = LocalCa.create("Berth test CA");
  private final X509Certificate a = ca.issueDevice("a").certificate();
  private final X509Certificate b = ca.issueDevice("b").certificate();
  private final X509Certificate c = ca.issueDevice("c").certificate();
  private final ListAppender<ILoggingEvent> log = new ListAppender<>();
  private final Logger storeLog = (Logger) LoggerFactory.getLogger(DenyListStore.class);
  private ActorSystem<Void> first;
  private ActorSystem<Void> second;
  private DatabaseSettings scratch;

  @AfterEach
  void stop() throws Exception {
    storeLog.detachAppender(log);
    for (ActorSystem<Void> system : new ActorSystem[] {first, second}) {
      if (system != null) {
        system.terminate();
        system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
      }
    }
    if (scratch != null) {
      TestDatabase.dropDatabase(scratch);
    }
  }

  @Test
  void writesAndReadsTheTableOnPostgres() throws Exception {
    scratch = TestDatabase.createScratchDatabase();
    writesAndReads(scratch);
  }

  @Test
  void writesAndReadsTheTableOnH2(@TempDir Path dir) throws Exception {
    writesAndReads(new DatabaseSettings("jdbc:h2:file:" + dir.resolve("berth"), "sa", "", 4, Duration.ofSeconds(5)));
  }

  private void writesAndReads(DatabaseSettings db) throws Exception {
    SchemaInstaller.install(db);
    first = system(db, "deny-first");
    DenyListStore store = DenyListStore.get(first);
    store.loaded().toCompletableFuture().get(10, TimeUnit.SECONDS);
    Entry serial = Entry.of(DenyList.Kind.SERIAL, a);
    Entry fingerprint = Entry.of(DenyList.Kind.FINGERPRINT, b);

    DenyListStore.Added added = store.add(serial, "key leaked").toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertThat(added.created()).isTrue();
    assertThat(store.denyList().denies(a)).as("applied here at once").isTrue();
    DenyListStore.Added again = store.add(serial, "another reason").toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertThat(again.created()).isFalse();
    assertThat(again.row()).as("the stored row, untouched").isEqualTo(added.row());
    store.add(fingerprint, null).toCompletableFuture().get(10, TimeUnit.SECONDS);

    List<DenyListStore.Row> rows = store.list().toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertThat(rows).extracting(DenyListStore.Row::entry).containsExactly(serial, fingerprint);
    assertThat(rows.get(0)).isEqualTo(added.row());
    assertThat(rows.get(1).reason()).isNull();

    second = system(db, "deny-second");
    DenyListStore restarted = DenyListStore.get(second);
    restarted.loaded().toCompletableFuture().get(10, TimeUnit.SECONDS);
    assertThat(restarted.denyList().entries()).as("read at start").containsExactlyInAnyOrder(serial, fingerprint);

    assertThat(store.remove(serial).toCompletableFuture().get(10, TimeUnit.SECONDS)).isTrue();
    assertThat(store.denyList().denies(a)).isFalse();
    assertThat(store.remove(serial).toCompletableFuture().get(10, TimeUnit.SECONDS)).isFalse();
    await().atMost(Duration.ofSeconds(10)).until(() -> !restarted.denyList().denies(a));
    assertThat(restarted.denyList().denies(b)).isTrue();
  }

  @Test
  void aDatabaseOutageKeepsTheListLastReadAndIsLoggedOnce() throws Exception {
    scratch = TestDatabase.createScratchDatabase();
    SchemaInstaller.install(scratch);
    log.start();
    storeLog.addAppender(log);
    first = system(scratch, "deny-outage");
    DenyListStore store = DenyListStore.get(first);
    store.add(Entry.of(DenyList.Kind.SERIAL, a), null).toCompletableFuture().get(10, TimeUnit.SECONDS);
    store.add(Entry.of(DenyList.Kind.SERIAL, b), null).toCompletableFuture().get(10, TimeUnit.SECONDS);

    TestDatabase.dropDatabase(scratch);
    await().atMost(Duration.ofSeconds(60)).until(() -> store.failedReads() >= 3);
    assertThat(store.denyList().denies(a)).isTrue();
    assertThat(store.denyList().denies(b)).isTrue();
    assertThat(messages(Level.WARN)).singleElement().asString()
        .startsWith("Cannot read the certificate deny list").contains("Keeping the 2 entries");

    // Back, holding what another node wrote meanwhile: b still denied, a no longer, c now.
    SchemaInstaller.install(new DatabaseSettings(scratch.url(), scratch.user(), scratch.password(),
        scratch.poolSize(), scratch.connectTimeout(), true));
    insert(scratch, Entry.of(DenyList.Kind.SERIAL, b));
    insert(scratch, Entry.of(DenyList.Kind.FINGERPRINT, c));
    await().atMost(Duration.ofSeconds(30)).until(() -> store.denyList().denies(c));
    assertThat(store.denyList().denies(a)).isFalse();
    assertThat(store.denyList().denies(b)).isTrue();
    assertThat(messages(Level.WARN)).hasSize(1);
    assertThat(messages(Level.INFO)).anyMatch(m -> m.startsWith("Read the certificate deny list again after"));
  }

  private List<String> messages(Level level) {
    return List.copyOf(log.list).stream().filter(e -> e.getLevel() == level)
        .map(ILoggingEvent::getFormattedMessage).toList();
  }

  private static void insert(DatabaseSettings db, Entry entry) throws SQLException {
    try (Connection connection = SchemaInstaller.connect(db); PreparedStatement s = connection.prepareStatement(
        "INSERT INTO berth_certificate_deny (kind, hex, reason, added_at) VALUES (?, ?, ?, ?)")) {
      s.setString(1, entry.kind().label());
      s.setString(2, entry.value());
      s.setString(3, "written by another node");
      s.setTimestamp(4, Timestamp.from(Instant.now()));
      s.executeUpdate();
    }
  }

  /**
   * A local actor system using {@code db} for Berth's tables, reading the deny list every 200 ms and
   * giving up on a connection after a second.
   */
  private static ActorSystem<Void> system(DatabaseSettings db, String name) {
    return ActorSystem.create(Behaviors.empty(), name, ConfigFactory.parseMap(Map.of(
            "berth.db.url", db.url(),
            "berth.db.user", db.user(),
            "berth.db.password", db.password(),
            "berth.db.connect-timeout", "1s",
            "berth.edge.tls.deny-list-poll-interval", POLL.toMillis() + "ms"))
        .withFallback(ConfigFactory.parseString("pekko.actor.provider = local"))
        .withFallback(ConfigFactory.load()));
  }
}
