package io.berth.protocol;

/** The result of decoding one frame: the frame, or why the bytes are not a valid frame. */
public sealed interface Decoded {

  record Ok(Frame frame) implements Decoded {}

  /** The input is not a valid frame; {@code code} is what the node answers with in an ERROR. */
  record Malformed(ErrorCode code, String reason) implements Decoded {}
}
