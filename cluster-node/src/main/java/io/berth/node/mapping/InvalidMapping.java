package io.berth.node.mapping;

/** A mapping definition that cannot be saved; the message names the field and says why. */
public final class InvalidMapping extends RuntimeException {
  public InvalidMapping(String message) {
    super(message, null, false, false);
  }
}
