package io.berth.persistence;

/** The database could not be reached or refused the schema install; the node cannot start. */
public final class DatabaseUnavailableException extends RuntimeException {
  public DatabaseUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
