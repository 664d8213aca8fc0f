package io.berth.persistence;

/**
 * Marker for messages, events and snapshots serialized with Jackson CBOR. Bound in the node's
 * {@code serialization.conf}; hot-path messages use a binary serializer instead.
 */
public interface CborSerializable {}
