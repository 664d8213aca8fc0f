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

  private static io.berth.protocol.TokenKeys keys(String auth) {
    return EdgeSettings.tokenKeys(ConfigFactory.parseString(auth)
        .withFallback(ConfigFactory.parseString("secret = \"\"\nkeys = \"\"")));
  }

  /** docs/auth.md: the fleet secret and keys by id, at once, each strong enough, none twice. */
  @Test
  void tokenKeysComeFromTheFleetSecretAndTheKeysById() {
    assertThat(keys("secret = \"sixteen-bytes-or-more\"\nkeys = \"k2027=another-sixteen-bytes, k2028=and-one-more-16b\"")
        .ids()).containsExactly("", "k2027", "k2028");
    assertThat(keys("keys = \"k2027=another-sixteen-bytes\"").ids()).as("the fleet secret retired").containsExactly("k2027");
    assertThatThrownBy(() -> keys("")).hasMessageContaining("BERTH_SECRET").hasMessageContaining("BERTH_AUTH_KEYS");
    assertThatThrownBy(() -> keys("keys = \"k2027=short\"")).hasMessageContaining("entry 1: the key must be at least 16 bytes");
    assertThatThrownBy(() -> keys("secret = short")).hasMessageContaining("berth.auth.secret (BERTH_SECRET) must be at least");
    assertThatThrownBy(() -> keys("keys = \"a-secret-without-its-id\""))
        .hasMessageContaining("entry 1: not id=secret").hasMessageNotContaining("a-secret-without-its-id");
    assertThatThrownBy(() -> keys("keys = \"k1=sixteen-bytes-or-more,k1=sixteen-bytes-or-more\""))
        .hasMessageContaining("entry 2: its id is given twice");
    assertThatThrownBy(() -> keys("keys = \"K1=sixteen-bytes-or-more\"")).hasMessageContaining("entry 1: not id=secret")
        .hasMessageNotContaining("K1");
    // A base64 secret whose "id=" was forgotten splits at its padding: nothing of it is echoed.
    assertThatThrownBy(() -> keys("keys = \"c2l4dGVlbi1ieXRlcy1vci1tb3Jl==\""))
        .hasMessageContaining("is its id= missing?").hasMessageNotContaining("c2l4dGVlbi");
    // And one whose split "id" looks like an id: its one-byte "key" is refused without naming it.
    assertThatThrownBy(() -> keys("keys = \"abcdefgh12345678=\""))
        .hasMessageContaining("entry 1: the key must be at least").hasMessageNotContaining("abcdefgh");
  }
}
