package io.berth.protocol;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * Reads frames from a blocking stream. The length field is checked against the limit before the
 * body is read, so a hostile peer cannot make the reader allocate more than the limit.
 */
public final class FrameReader {

  private final DataInputStream in;
  private volatile int maxFrameSize;
  private int lastLengthField;

  public FrameReader(InputStream in, int maxFrameSize) {
    this.in = in instanceof DataInputStream d ? d : new DataInputStream(in);
    this.maxFrameSize = maxFrameSize;
  }

  /**
   * The next frame, or {@link Decoded.Malformed} when the bytes are not one.
   *
   * @throws EOFException when the stream ends, cleanly or mid-frame
   */
  public Decoded next() throws IOException {
    lastLengthField = in.readInt();
    long declared = Integer.toUnsignedLong(lastLengthField);
    Decoded problem = FrameCodec.checkDeclaredLength(declared, maxFrameSize);
    if (problem != null) {
      return problem;
    }
    int type = in.readUnsignedByte();
    byte[] body = new byte[(int) declared - 1];
    in.readFully(body);
    return FrameCodec.decodeBody(type, ByteBuffer.wrap(body));
  }

  /**
   * The raw length field of the last frame {@link #next} began: lets a client recognise what
   * answered when it is not a frame (the bytes {@code HTTP}, say).
   */
  public int lastLengthField() {
    return lastLengthField;
  }

  /** Changes the limit, e.g. to the one the node announced in its WELCOME. */
  public void setMaxFrameSize(int maxFrameSize) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes that can be read without blocking: used to coalesce acknowledgements per burst. */
  public int available() throws IOException {
    return in.available();
  }
}
