package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.connection.ConnectionSettings;
import io.berth.node.edge.EdgeSettings;
import io.berth.persistence.DatabaseSettings;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The production example in deploy/ must stay a configuration a node accepts. */
class DeployConfigTest {

  @Test
  void productionExampleResolvesToValidSettings() {
    Config env = ConfigFactory.parseMap(Map.of(
        "BERTH_SECRET", "a-secret-of-at-least-16-bytes",
        "BERTH_DB_URL", "jdbc:postgresql://db.internal:5432/berth",
        "BERTH_DB_USER", "berth",
        "BERTH_DB_PASSWORD", "pw",
        "BERTH_REMOTE_HOST", "berth-1.internal"));
    // The variables stand in for the environment: substitutions look them up at the root.
    Config config = ConfigFactory.parseFile(Path.of("..", "deploy", "production.conf").toFile())
        .withFallback(env)
        .withFallback(ConfigFactory.defaultReference())
        .resolve();

    EdgeSettings edge = EdgeSettings.fromConfig(config);
    DatabaseSettings db = DatabaseSettings.fromConfig(config);
    ConnectionSettings.fromConfig(config);
    assertThat(edge.port()).isEqualTo(7000);
    assertThat(db.kind()).isEqualTo(DatabaseSettings.Kind.POSTGRES);
    assertThat(db.jdbcUrl()).contains("reWriteBatchedInserts=true");
    assertThat(config.getStringList("pekko.cluster.seed-nodes")).hasSize(3);
    assertThat(config.getString("pekko.cluster.downing-provider-class")).contains("SplitBrainResolver");
    assertThat(config.getString("pekko.remote.artery.canonical.hostname")).isEqualTo("berth-1.internal");
  }

  @Test
  void aNodeWithoutASecretRefusesToStartWithAClearMessage() {
    Config config = ConfigFactory.parseString("berth.auth.secret = \"\"").withFallback(ConfigFactory.load());
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> EdgeSettings.fromConfig(config))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("BERTH_SECRET");
  }
}
