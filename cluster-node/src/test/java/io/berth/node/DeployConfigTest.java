package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.edge.EdgeSettings;
import io.berth.node.secrets.SecretSettings;
import io.berth.node.ops.ManagementSettings;
import io.berth.node.ops.OperatorRole;
import io.berth.node.socket.SocketSettings;
import io.berth.node.tls.ManagementTlsSettings;
import io.berth.node.tls.ClusterTls;
import io.berth.node.tls.ClusterTlsSettings;
import io.berth.persistence.AppendingJournalDao;
import io.berth.persistence.DatabaseSettings;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The production example in deploy/ must stay a configuration a node accepts. */
class DeployConfigTest {

  /** deploy/production.conf with its environment variables set. */
  private static Config production() {
    Config env = ConfigFactory.parseMap(Map.of(
        "BERTH_SECRET", "a-secret-of-at-least-16-bytes",
        "BERTH_DB_URL", "jdbc:postgresql://db.internal:5432/berth",
        "BERTH_DB_USER", "berth",
        "BERTH_DB_PASSWORD", "pw",
        "BERTH_REMOTE_HOST", "berth-1.internal",
        "BERTH_EDGE_TLS_CERTIFICATE", "/etc/berth/tls/node.pem",
        "BERTH_EDGE_TLS_PRIVATE_KEY", "/etc/berth/tls/node-key.pem",
        "BERTH_CLUSTER_TLS_CERTIFICATE", "/etc/berth/tls/node.pem",
        "BERTH_CLUSTER_TLS_PRIVATE_KEY", "/etc/berth/tls/node-key.pem",
        "BERTH_CLUSTER_TLS_TRUST", "/etc/berth/tls/ca.pem"));
    // The variables stand in for the environment: substitutions look them up at the root.
    return ConfigFactory.parseFile(Path.of("..", "deploy", "production.conf").toFile())
        .withFallback(env)
        .withFallback(ConfigFactory.parseMap(Map.of("BERTH_SECRETS_KEYS", "prod=" + "A".repeat(43) + "=",
            "BERTH_MANAGEMENT_TLS_CERTIFICATE", "/etc/berth/tls/node.pem",
            "BERTH_MANAGEMENT_TLS_PRIVATE_KEY", "/etc/berth/tls/node-key.pem",
            "BERTH_OPERATOR_KEYS", "ops-admin:admin:" + "ab".repeat(32))))
        .withFallback(ConfigFactory.defaultReference())
        .resolve();
  }

  @Test
  void productionExampleResolvesToValidSettings() {
    Config config = production();

    EdgeSettings edge = EdgeSettings.fromConfig(config);
    DatabaseSettings db = DatabaseSettings.fromConfig(config);
    SocketSettings.fromConfig(config);
    assertThat(edge.port()).isEqualTo(7000);
    assertThat(edge.tls().enabled()).as("devices connect over TLS").isTrue();
    assertThat(edge.tls().certificate()).contains(Path.of("/etc/berth/tls/node.pem"));
    assertThat(db.kind()).isEqualTo(DatabaseSettings.Kind.POSTGRES);
    assertThat(db.jdbcUrl()).contains("reWriteBatchedInserts=true");
    assertThat(config.getStringList("pekko.cluster.seed-nodes")).hasSize(3);
    assertThat(config.getString("pekko.cluster.downing-provider-class")).contains("SplitBrainResolver");
    assertThat(config.getString("pekko.remote.artery.canonical.hostname")).isEqualTo("berth-1.internal");
    assertThat(SecretSettings.fromConfig(config).currentKeyId()).as("mapping secrets sealed with BERTH_SECRETS_KEYS")
        .isEqualTo("prod");
  }

  @Test
  void productionNodesTalkTlsToEachOtherWithTheirNodeCertificates() {
    Config config = BerthNode.config(production());

    ClusterTlsSettings tls = ClusterTlsSettings.fromConfig(config);
    assertThat(tls.enabled()).isTrue();
    assertThat(tls.trust()).contains(Path.of("/etc/berth/tls/ca.pem"));
    assertThat(config.getString("pekko.remote.artery.transport")).isEqualTo("tls-tcp");
    assertThat(config.getString("pekko.remote.artery.ssl.ssl-engine-provider")).isEqualTo(ClusterTls.class.getName());
  }

  /** The secure default: a node given no certificates for the cluster's TLS does not start. */
  @Test
  void aNodeWithoutClusterCertificatesRefusesToStartUnlessTlsIsTurnedOff() {
    Config bare = ConfigFactory.parseString("berth.auth.secret = \"a-secret-of-at-least-16-bytes\"")
        .withFallback(ConfigFactory.load());
    assertThatThrownBy(() -> BerthNode.config(bare))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("berth.cluster.tls.certificate is not set")
        .hasMessageContaining("BERTH_CLUSTER_TLS=false");
    Config plain = BerthNode.config(ConfigFactory.parseString("berth.cluster.tls.enabled = off").withFallback(bare));
    assertThat(plain.getString("pekko.remote.artery.transport")).isEqualTo("tcp");
  }

  @Test
  void theJournalWritesThroughAppendingJournalDao() {
    // Its batching is linear where the stock DAO's is quadratic (docs/persistence.md): nothing
    // else would notice if an upgrade or a config change brought the stock one back.
    Config config = ConfigFactory.load();
    assertThat(config.getString("jdbc-journal.dao")).isEqualTo(AppendingJournalDao.class.getName());
    assertThat(production().getString("jdbc-journal.dao")).isEqualTo(AppendingJournalDao.class.getName());
  }

  @Test
  void anEntityHeartbeatNotBelowShardingsPassivationIsRefused() {
    Config base = ConfigFactory.parseString("berth.auth.secret = \"a-secret-of-at-least-16-bytes\"\n"
        + "berth.edge.tls.enabled = off").withFallback(ConfigFactory.load());
    Config slow = ConfigFactory.parseString("berth.edge.entity-heartbeat = 2m").withFallback(base);
    assertThatThrownBy(() -> EdgeSettings.fromConfig(slow))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("berth.edge.entity-heartbeat (120 s)")
        .hasMessageContaining("idle-entity.timeout (120 s)");
    // With passivation off, or a longer timeout, any heartbeat goes.
    EdgeSettings.fromConfig(ConfigFactory.parseString(
        "pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout = off").withFallback(slow));
    EdgeSettings.fromConfig(ConfigFactory.parseString(
        "pekko.cluster.sharding.passivation.default-idle-strategy.idle-entity.timeout = 5m").withFallback(slow));
    EdgeSettings.fromConfig(ConfigFactory.parseString(
        "pekko.cluster.sharding.passivation.strategy = none").withFallback(slow));
  }

  @Test
  void aNodeWithoutASecretRefusesToStartWithAClearMessage() {
    Config config = ConfigFactory.parseString("berth.auth.secret = \"\"\nberth.edge.tls.enabled = off")
        .withFallback(ConfigFactory.load());
    assertThatThrownBy(() -> EdgeSettings.fromConfig(config))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("BERTH_SECRET");
  }
}
