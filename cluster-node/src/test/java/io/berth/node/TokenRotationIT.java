package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.berth.protocol.DeviceClient;
import io.berth.protocol.DeviceException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Rotating the fleet's token key without refusing anyone (docs/auth.md), on real TCP and
 * PostgreSQL: mid-rotation, one node accepts the old fleet secret and the new key, the other (its
 * rollout done) the new key only. A device holding an old token keeps working where the old key is
 * still accepted and is refused, saying why, where it was retired; a device with a new token is
 * served everywhere.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TokenRotationIT {

  private static final String NEW_KEY = "the-new-fleet-key-2027";
  private static final Duration READ = Duration.ofSeconds(20);

  private TestNodes nodes;
  private TestNodes.Node both;
  private TestNodes.Node newOnly;

  @BeforeAll
  void start() {
    nodes = new TestNodes("berth.auth.keys = \"k2027=" + NEW_KEY + "\"").start(1);
    both = nodes.node(0);
    newOnly = nodes.startNode("berth.auth.secret = \"\"");
    nodes.awaitUp(2);
  }

  @AfterAll
  void stop() {
    nodes.close();
  }

  @Test
  void anOldTokenWorksWhereItsKeyIsAcceptedAndIsRefusedWhereItIsRetired() throws Exception {
    String device = TestNodes.uniqueDevice("old-token");
    assertThat(echo(TestNodes.device(device, both.edge()))).containsExactly("hello");

    assertThatThrownBy(() -> echo(TestNodes.device(device, newOnly.edge())))
        .isInstanceOf(DeviceException.class)
        .hasMessageContaining("name no key");
  }

  @Test
  void aNewTokenWorksOnEveryNode() throws Exception {
    String device = TestNodes.uniqueDevice("new-token");
    for (TestNodes.Node node : List.of(both, newOnly)) {
      DeviceClient.Builder builder = TestNodes.device(device, node.edge())
          .secret("k2027", NEW_KEY.getBytes(StandardCharsets.UTF_8), Duration.ofHours(1));
      assertThat(echo(builder)).as("on %s", node.address()).containsExactly("hello");
    }
  }

  /** Connects with the echo mapping, sends one frame and returns what came back. */
  private static List<String> echo(DeviceClient.Builder builder) throws Exception {
    List<String> received = new CopyOnWriteArrayList<>();
    try (DeviceClient client = builder.mapping("echo").listener(TestNodes.collecting(received))
        .giveUpAfter(Duration.ofSeconds(3)).build().connect()) {
      client.send("hello".getBytes(StandardCharsets.UTF_8));
      client.awaitAllAcked(READ);
      await().atMost(READ).until(() -> !received.isEmpty());
    }
    return received;
  }
}
