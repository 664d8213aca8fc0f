package io.berth.node.balance;

import io.berth.persistence.CborSerializable;

/**
 * An operator's request to move a socket's shard ({@code POST /api/sockets/{id}/migrate}),
 * carried to the shard coordinator through Distributed Data. {@code to} is empty for "wherever
 * there is the most headroom".
 */
public record MigrationRequest(String id, String socketId, String shardId, String to, long requestedAtMillis)
    implements CborSerializable {}
