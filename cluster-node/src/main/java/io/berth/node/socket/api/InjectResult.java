package io.berth.node.socket.api;

import io.berth.persistence.CborSerializable;

public record InjectResult(boolean accepted, long seq, String problem) implements CborSerializable {}
