package io.berth.node.secrets;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import java.io.IOException;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;

/**
 * A mapping's secret in Pekko's Jackson serialization (snapshots of socket sessions, events
 * written in CBOR before EventSerializer, messages between nodes): written sealed, read opened
 * (docs/secrets.md). The sealer is the serializing system's, which Pekko names while it
 * serializes; outside of that there is no key to seal with, and writing fails rather than leave
 * the secret in plaintext.
 */
public final class SealedSecretJson {

  private SealedSecretJson() {}

  private static SecretSealer sealer() {
    Serialization.Information info;
    try {
      info = Serialization.getCurrentTransportInformation();
    } catch (IllegalStateException e) {
      throw new IllegalStateException("a mapping secret is serialized outside of Pekko serialization: there is no "
          + "sealer to encrypt it with", e);
    }
    return SecretSealer.get(Adapter.toTyped(info.system()));
  }

  public static final class Serializer extends StdSerializer<String> {
    public Serializer() {
      super(String.class);
    }

    @Override
    public void serialize(String secret, JsonGenerator gen, SerializerProvider provider) throws IOException {
      gen.writeString(sealer().sealCached(secret));
    }
  }

  public static final class Deserializer extends StdDeserializer<String> {
    public Deserializer() {
      super(String.class);
    }

    @Override
    public String deserialize(JsonParser p, DeserializationContext ctx) throws IOException {
      String stored = p.getValueAsString();
      return SecretSealer.isSealed(stored) ? sealer().open(stored) : stored;
    }
  }
}
