package io.berth.node.mapping;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.berth.node.secrets.SecretSealer;
import io.berth.node.secrets.TestKeys;
import org.junit.jupiter.api.Test;

/** A mapping's own uplink limits: their JSON, and how the edge resolves them against its own. */
class MappingLimitsTest {

  private static final SecretSealer SEALER = TestKeys.sealer();
  private static final Mapping.Limits NODE = Mapping.Limits.resolved(100, 200, 65_536, 0);

  @Test
  void aDefinitionStoredBeforeLimitsReadsWithNone() {
    Mapping m = MappingJson.parse("old", "{\"endpoint\":\"builtin:echo\",\"events\":[\"data\"],\"timeoutMs\":5000,"
        + "\"retry\":{\"maxAttempts\":5,\"backoffBaseMs\":200,\"backoffMaxMs\":5000},\"linkWaitMs\":30000,"
        + "\"onLinkTimeout\":\"stay\"}", 4);
    assertThat(m.limits()).isNull();
    assertThat(MappingJson.toStored(m, SEALER)).doesNotContain("limits");
  }

  @Test
  void limitsLeftOutStayLeftOutThroughStoringAndShowing() {
    Mapping m = MappingJson.parse("fast", "{\"endpoint\":\"builtin:discard\",\"limits\":{\"framesPerSecond\":0,"
        + "\"bytesPerSecond\":1048576}}", 1);
    assertThat(m.limits()).isEqualTo(new Mapping.Limits(0, Mapping.Limits.NODE, 1_048_576, Mapping.Limits.NODE));
    assertThat(MappingJson.fromStored("fast", MappingJson.toStored(m, SEALER), 1, SEALER)).isEqualTo(m);
    assertThat(MappingJson.toView(m).get("limits").toString())
        .isEqualTo("{\"framesPerSecond\":0,\"bytesPerSecond\":1048576}");
  }

  @Test
  void wrongLimitsAreRefusedNamingTheField() {
    assertThatThrownBy(() -> MappingJson.parse("m", "{\"endpoint\":\"builtin:echo\",\"limits\":5}", 1))
        .hasMessage("limits: an object is expected");
    assertThatThrownBy(() -> MappingJson.parse("m", "{\"endpoint\":\"builtin:echo\",\"limits\":{\"fps\":5}}", 1))
        .hasMessageStartingWith("limits.fps: unknown field");
    assertThatThrownBy(() -> MappingJson.parse("m",
        "{\"endpoint\":\"builtin:echo\",\"limits\":{\"framesPerSecond\":-1}}", 1))
        .hasMessageStartingWith("limits.framesPerSecond: an integer between 0 and 2147483647");
    assertThatThrownBy(() -> MappingJson.parse("m",
        "{\"endpoint\":\"builtin:echo\",\"limits\":{\"bytesBurst\":0}}", 1))
        .hasMessageStartingWith("limits.bytesBurst: an integer between 1 and");
  }

  @Test
  void eachLimitLeftToTheNodeIsTheNodesAndAnOwnRatesBurstIsOneSecondOfIt() {
    Mapping.Limits own = new Mapping.Limits(1_000, Mapping.Limits.NODE, Mapping.Limits.NODE, Mapping.Limits.NODE);
    assertThat(own.over(NODE)).isEqualTo(new Mapping.Limits(1_000, 1_000, 65_536, 65_536));
    Mapping.Limits burstOnly = new Mapping.Limits(Mapping.Limits.NODE, 50, 0, Mapping.Limits.NODE);
    assertThat(burstOnly.over(NODE)).isEqualTo(new Mapping.Limits(100, 50, 0, 0));
    Mapping.Limits nothing = new Mapping.Limits(Mapping.Limits.NODE, Mapping.Limits.NODE, Mapping.Limits.NODE,
        Mapping.Limits.NODE);
    assertThat(nothing.over(NODE)).isEqualTo(NODE);
    assertThat(new Mapping.Limits(0, Mapping.Limits.NODE, 0, Mapping.Limits.NODE).over(NODE).none()).isTrue();
  }

  @Test
  void aNewVersionKeepsItsLimits() {
    Mapping m = Mapping.builtinDefault("echo").withLimits(NODE);
    assertThat(m.withVersion(9).limits()).isEqualTo(NODE);
  }
}
