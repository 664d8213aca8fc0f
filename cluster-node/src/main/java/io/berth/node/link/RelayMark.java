package io.berth.node.link;

import io.berth.persistence.CborSerializable;

/** A run of relayed frames: downlink seqs {@code dFrom..dTo} carry the peer's seqs from {@code peerFrom}. */
public record RelayMark(long dFrom, long dTo, long peerFrom) implements CborSerializable {}
