package io.berth.node.edge;

/**
 * What the MQTT port learns with the WELCOME and the native protocol has no field for: whether
 * the session existed (the CONNACK's Session Present), and the frames accepted on the previous
 * connection that the client may send again, as packet id (high 32 bits) and payload fingerprint
 * (low 32 bits); null when there are none (docs/mqtt-qos1-resends.md). Written into the MQTT
 * connection's pipeline just before the WELCOME's bytes, and taken there by {@link MqttFrames}.
 */
record SessionOpened(boolean existed, long[] resendable) {}
