package io.berth.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class SocketIdTest {

  @Test
  void socketIdIsTheDeviceIdOrDeviceSlashName() {
    assertThat(SocketId.of("d1", "")).isEqualTo("d1");
    assertThat(SocketId.of("d1", "telemetry")).isEqualTo("d1/telemetry");
    assertThat(SocketId.deviceOf("d1/telemetry")).isEqualTo("d1");
    assertThat(SocketId.deviceOf("d1")).isEqualTo("d1");
  }

  @Test
  void idsAreLimitedToASafeAlphabet() {
    assertThat(SocketId.isValidDeviceId("sensor-01.eu_west")).isTrue();
    assertThat(SocketId.isValidDeviceId("")).isFalse();
    assertThat(SocketId.isValidDeviceId("a/b")).isFalse();
    assertThat(SocketId.isValidDeviceId("a b")).isFalse();
    assertThat(SocketId.isValidDeviceId("x".repeat(65))).isFalse();
    assertThat(SocketId.isValidSocketName("")).isTrue();
    assertThat(SocketId.isValid("d1/s/x")).isFalse();
    assertThat(SocketId.isValid("d1/")).isFalse();
    assertThat(SocketId.isValid("d1/s")).isTrue();
  }
}
