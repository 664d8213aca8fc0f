package io.berth.node.edge;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.berth.protocol.FrameCodec;
import org.junit.jupiter.api.Test;

class EdgeSettingsTest {

  private static Config withFrameSize(long bytes) {
    return ConfigFactory.parseString("berth.auth.secret = \"sixteen-bytes-or-more\"\nberth.edge.tls.enabled = off\n"
        + "berth.edge.max-frame-size = " + bytes).withFallback(ConfigFactory.defaultReference()).resolve();
  }

  @Test
  void theMaxFrameSizeMustLetTheLargestValidHelloThrough() {
    assertThat(EdgeSettings.fromConfig(withFrameSize(FrameCodec.MIN_MAX_FRAME_SIZE)).maxFrameSize()).isEqualTo(512);
    assertThatThrownBy(() -> EdgeSettings.fromConfig(withFrameSize(FrameCodec.MIN_MAX_FRAME_SIZE - 1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("between 512 B (the largest valid HELLO must fit)").hasMessageContaining("got 511 B");
  }
}
