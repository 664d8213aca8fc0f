package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * Which SUBSCRIBE filters MQTT allows. A malformed one gets 0x8F in MQTT 5 (strictly, a malformed
 * packet; a reason code that names the filter tells the client more than a dropped connection),
 * a well-formed wildcard 0xA2.
 */
class MqttFiltersTest {

  @Test
  void wildcardsThatTakeAWholeLevelAreWellFormed() {
    assertThat(MqttFrames.wellFormed("berth/+/down")).isTrue();
    assertThat(MqttFrames.wellFormed("berth/#")).isTrue();
    assertThat(MqttFrames.wellFormed("#")).isTrue();
    assertThat(MqttFrames.wellFormed("+")).isTrue();
    assertThat(MqttFrames.wellFormed("$share/group/berth/d/down")).isTrue();
    assertThat(MqttFrames.wellFormed("berth/d/down")).isTrue();
  }

  @Test
  void wildcardsInsideALevelOrAHashBeforeTheEndAreNot() {
    assertThat(MqttFrames.wellFormed("")).isFalse();
    assertThat(MqttFrames.wellFormed("berth/#/down")).isFalse();
    assertThat(MqttFrames.wellFormed("berth/d#")).isFalse();
    assertThat(MqttFrames.wellFormed("berth/d+/down")).isFalse();
    assertThat(MqttFrames.wellFormed("berth/+d/down")).isFalse();
    assertThat(MqttFrames.wellFormed("$share/g")).isFalse();
    assertThat(MqttFrames.wellFormed("$share//berth/d/down")).isFalse();
    assertThat(MqttFrames.wellFormed("$share/g+/berth/d/down")).isFalse();
  }
}
