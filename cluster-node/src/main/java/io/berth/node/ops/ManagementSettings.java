package io.berth.node.ops;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code berth.management} in reference.conf: who may call the management port and how much they
 * may send (docs/operator-access.md).
 *
 * @param keys operator keys from configuration ({@code berth.management.keys}, or
 *     {@code BERTH_OPERATOR_KEYS} as one comma-separated string)
 * @param keyPollInterval how often keys made through {@code /api/keys} are read again
 * @param maxBody the largest request body, except a message pushed to a socket (the frame maximum)
 * @param bodyTimeout how long a request's body may take to arrive before 408
 */
public record ManagementSettings(List<OperatorKey> keys, Duration keyPollInterval, long maxBody,
    Duration bodyTimeout) {

  static final String PREFIX = "berth.management.";

  public ManagementSettings {
    keys = List.copyOf(keys);
    Set<String> ids = new HashSet<>();
    for (OperatorKey key : keys) {
      if (!ids.add(key.id())) {
        throw new IllegalArgumentException(PREFIX + "keys: the id '" + key.id() + "' is there twice");
      }
    }
    if (keyPollInterval.isNegative() || keyPollInterval.isZero()) {
      throw new IllegalArgumentException(PREFIX + "key-poll-interval must be positive, got " + keyPollInterval);
    }
    if (maxBody < 1024) {
      throw new IllegalArgumentException(PREFIX + "max-body must be at least 1 KiB, got " + maxBody);
    }
    if (bodyTimeout.isNegative() || bodyTimeout.isZero()) {
      throw new IllegalArgumentException(PREFIX + "body-timeout must be positive, got " + bodyTimeout);
    }
  }

  public static ManagementSettings fromConfig(Config config) {
    String path = PREFIX + "keys";
    List<String> entries = new ArrayList<>();
    if (config.getValue(path).valueType() == ConfigValueType.STRING) {
      Arrays.stream(config.getString(path).split(",")).map(String::strip).filter(e -> !e.isEmpty())
          .forEach(entries::add);
    } else {
      entries.addAll(config.getStringList(path));
    }
    List<OperatorKey> keys = new ArrayList<>();
    for (int i = 0; i < entries.size(); i++) {
      keys.add(OperatorKey.parseEntry(entries.get(i), path + " entry " + (i + 1)));
    }
    return new ManagementSettings(keys, config.getDuration(PREFIX + "key-poll-interval"),
        config.getBytes(PREFIX + "max-body"), config.getDuration(PREFIX + "body-timeout"));
  }
}
