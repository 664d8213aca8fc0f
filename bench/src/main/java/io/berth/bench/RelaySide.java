package io.berth.bench;

/** One device of a relay pair, whatever carries its frames (Berth, or an MQTT broker). */
interface RelaySide extends AutoCloseable {

  /**
   * Hands one frame over for the peer; blocks while this side's window is full. Interruptible, so
   * a round can stop a sender that a stalled system holds.
   */
  void send(byte[] frame) throws InterruptedException;

  /** What this side received from its peer. */
  RelayReceiver received();

  @Override
  void close();
}
