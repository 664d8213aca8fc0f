package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.node.mapping.Mapping;
import org.junit.jupiter.api.Test;

/** The edge's limit settings, and the mapping each connection opens with. */
class EdgeLimitsTest {

  private static Config config(String overrides) {
    return ConfigFactory.parseString(overrides).withFallback(ConfigFactory.defaultReference()).resolve();
  }

  @Test
  void byDefaultUplinksAreFreeAndConnectsAreThrottledGenerously() {
    LimitSettings s = LimitSettings.fromConfig(config(""));
    assertThat(s.socket()).isEqualTo(Mapping.Limits.NONE);
    assertThat(s.connectsPerSecond()).isEqualTo(1.0);
    assertThat(s.connectBurst()).isEqualTo(10);
    assertThat(s.maxConnectionsPerDevice()).isZero();
  }

  @Test
  void ratesTakeSizesAndABurstOfZeroIsOneSecond() {
    LimitSettings s = LimitSettings.fromConfig(config("""
        berth.edge.limits.socket { frames-per-second = 200, bytes-per-second = 64 KiB, bytes-burst = 1 MiB }
        berth.edge.limits.device { connects-per-second = 0.5, max-connections = 4 }
        """));
    assertThat(s.socket()).isEqualTo(new Mapping.Limits(200, 200, 65_536, 1_048_576));
    assertThat(s.connectsPerSecond()).isEqualTo(0.5);
    assertThat(s.maxConnectionsPerDevice()).isEqualTo(4);
    assertThat(LimitSettings.fromConfig(config("berth.edge.limits.device.connects-per-second = off"))
        .connectsPerSecond()).isZero();
  }

  @Test
  void aWrongSettingIsNamed() {
    assertThatThrownBy(() -> LimitSettings.fromConfig(config("berth.edge.limits.socket.frames-per-second = -5")))
        .hasMessageContaining("berth.edge.limits.socket.frames-per-second");
    assertThatThrownBy(() -> LimitSettings.fromConfig(config("berth.edge.limits.device.connect-burst = 0")))
        .hasMessageContaining("connect-burst");
  }

  @Test
  void withoutLimitsAConnectionOpensTheRegisteredMappingItself() {
    EdgeLimits limits = new EdgeLimits(LimitSettings.fromConfig(config("")));
    Mapping echo = Mapping.builtinDefault("echo");
    EdgeLimits.Limited opened = limits.open(echo);
    assertThat(opened.mapping()).isSameAs(echo);
    assertThat(opened.throttle()).isNull();
  }

  @Test
  void connectionsOfOneMappingShareItsResolvedLimitsAndTheirUnstartedThrottle() {
    EdgeLimits limits = new EdgeLimits(LimitSettings.fromConfig(config(
        "berth.edge.limits.socket.frames-per-second = 100")));
    Mapping echo = Mapping.builtinDefault("echo");
    EdgeLimits.Limited first = limits.open(echo);
    assertThat(first.mapping().limits()).isEqualTo(new Mapping.Limits(100, 100, 0, 0));
    assertThat(first.throttle().limits()).isSameAs(first.mapping().limits());
    assertThat(limits.open(Mapping.builtinDefault("echo"))).isSameAs(first);

    Mapping free = echo.withLimits(new Mapping.Limits(0, Mapping.Limits.NODE, Mapping.Limits.NODE,
        Mapping.Limits.NODE));
    EdgeLimits.Limited unlimited = limits.open(free);
    assertThat(unlimited.throttle()).isNull();
    assertThat(unlimited.mapping().limits()).isNull();
  }
}
