package io.berth.node.ops;

import java.util.Locale;

/**
 * What an operator may do on the management port (docs/operator-access.md). Each role may do what
 * the ones before it may: a viewer reads, an operator also acts on sockets, links, parked batches
 * and nodes, an admin also changes mappings, credentials and membership.
 */
public enum OperatorRole {
  /** Every read ({@code GET}), except the audit trail and the list of operator keys. */
  VIEWER,
  /** Pushes, closes, migrations, drains, replays and deletes of parked batches, unlinks. */
  OPERATOR,
  /** Mappings, operator keys, the deny list, the audit trail, members leaving or being downed. */
  ADMIN;

  public boolean covers(OperatorRole needed) {
    return ordinal() >= needed.ordinal();
  }

  /** The name used in configuration, keys and JSON: {@code viewer}, {@code operator}, {@code admin}. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The role a label names, or an {@link IllegalArgumentException} naming the three. */
  public static OperatorRole of(String label) {
    for (OperatorRole role : values()) {
      if (role.label().equals(label)) {
        return role;
      }
    }
    throw new IllegalArgumentException("unknown role '" + label + "' (expected viewer, operator or admin)");
  }
}
