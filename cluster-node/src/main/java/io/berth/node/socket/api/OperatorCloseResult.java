package io.berth.node.socket.api;

import io.berth.persistence.CborSerializable;

public record OperatorCloseResult(boolean closed, String problem) implements CborSerializable {}
