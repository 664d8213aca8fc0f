package io.berth.protocol;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Encodes and decodes frames as specified in PROTOCOL.md#frame-layout: a 4-byte big-endian
 * length, then a 1-byte type, then the type's body. Decoding never throws on bad input: it
 * returns {@link Decoded.Malformed}.
 */
public final class FrameCodec {

  public static final int VERSION = 1;
  public static final int HEADER_SIZE = 4;
  /** Default limit of the length field (type byte plus body), PROTOCOL.md#limits. */
  public static final int DEFAULT_MAX_FRAME_SIZE = 65_536;
  /**
   * The smallest max-frame-size a node may be configured with: the largest HELLO a valid device
   * can send (64-character device id, socket name and mapping, a 19-digit expiry: length 295)
   * fits with room to spare, so that no setting refuses a valid device's handshake.
   */
  public static final int MIN_MAX_FRAME_SIZE = 512;
  /** Bytes of a DATA frame that are not payload: type (1) and seq (8). */
  public static final int DATA_OVERHEAD = 1 + 8;
  public static final int MAX_STRING_BYTES = 65_535;

  private static final int HELLO_FLAG_RESUME = 0x01;

  private FrameCodec() {}

  // ---------------------------------------------------------------- encoding

  /** The whole frame, header included, as a new array. */
  public static byte[] encode(Frame frame) {
    ByteBuffer buf = ByteBuffer.allocate(HEADER_SIZE + bodyLength(frame) + 1);
    encodeInto(frame, buf);
    return buf.array();
  }

  /** Writes the whole frame, header included, at the buffer's position. */
  public static void encodeInto(Frame frame, ByteBuffer out) {
    out.order(ByteOrder.BIG_ENDIAN);
    out.putInt(1 + bodyLength(frame));
    out.put((byte) frame.type().wire);
    if (frame instanceof Frame.Data d) {
      out.putLong(d.seq());
      out.put(d.payload());
    } else if (frame instanceof Frame.Ack a) {
      out.putLong(a.seq());
    } else if (frame instanceof Frame.Hello h) {
      out.put((byte) h.version());
      out.put((byte) (h.resume() ? HELLO_FLAG_RESUME : 0));
      out.putLong(h.lastReceived());
      putString(out, h.deviceId());
      putString(out, h.token());
      putString(out, h.socketName());
      putString(out, h.mapping());
    } else if (frame instanceof Frame.Welcome w) {
      out.put((byte) w.version());
      putString(out, w.socketId());
      putString(out, w.node());
      out.putLong(w.lastAccepted());
      out.putLong(w.lastAcked());
      out.putInt(w.maxFrameSize());
      out.putShort((short) w.window());
      out.putInt((int) w.windowBytes());
      out.putShort((short) w.idleTimeoutSeconds());
    } else if (frame instanceof Frame.Ping p) {
      out.putLong(p.nonce());
    } else if (frame instanceof Frame.Pong p) {
      out.putLong(p.nonce());
    } else if (frame instanceof Frame.Link l) {
      out.put((byte) l.status().wire);
      putString(out, l.peer());
      putString(out, l.reason());
    } else if (frame instanceof Frame.Redirect r) {
      putString(out, r.host());
      out.putShort((short) r.port());
      putString(out, r.reason());
    } else if (frame instanceof Frame.Close c) {
      out.putShort((short) c.code());
      putString(out, c.reason());
    } else if (frame instanceof Frame.Error e) {
      out.putShort((short) e.code());
      putString(out, e.message());
    } else {
      throw new IllegalArgumentException("unknown frame " + frame);
    }
  }

  /** Length of the body (everything after the type byte). */
  public static int bodyLength(Frame frame) {
    if (frame instanceof Frame.Data d) {
      return 8 + d.payload().length;
    } else if (frame instanceof Frame.Ack || frame instanceof Frame.Ping
        || frame instanceof Frame.Pong) {
      return 8;
    } else if (frame instanceof Frame.Hello h) {
      return 1 + 1 + 8 + str(h.deviceId()) + str(h.token()) + str(h.socketName())
          + str(h.mapping());
    } else if (frame instanceof Frame.Welcome w) {
      return 1 + str(w.socketId()) + str(w.node()) + 8 + 8 + 4 + 2 + 4 + 2;
    } else if (frame instanceof Frame.Link l) {
      return 1 + str(l.peer()) + str(l.reason());
    } else if (frame instanceof Frame.Redirect r) {
      return str(r.host()) + 2 + str(r.reason());
    } else if (frame instanceof Frame.Close c) {
      return 2 + str(c.reason());
    } else if (frame instanceof Frame.Error e) {
      return 2 + str(e.message());
    }
    throw new IllegalArgumentException("unknown frame " + frame);
  }

  private static int str(String s) {
    return 2 + utf8Length(s);
  }

  private static void putString(ByteBuffer out, String s) {
    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
    if (bytes.length > MAX_STRING_BYTES) {
      throw new IllegalArgumentException("string field longer than " + MAX_STRING_BYTES + " bytes");
    }
    out.putShort((short) bytes.length);
    out.put(bytes);
  }

  private static int utf8Length(String s) {
    int n = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x80) {
        n += 1;
      } else if (c < 0x800) {
        n += 2;
      } else if (Character.isHighSurrogate(c) && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    }
    return n;
  }

  // ---------------------------------------------------------------- decoding

  /**
   * Decodes one whole frame, header included. The declared length is checked against {@code
   * maxFrameSize} and against the bytes present before the body is read.
   */
  public static Decoded decode(ByteBuffer frame, int maxFrameSize) {
    ByteBuffer buf = frame.slice().order(ByteOrder.BIG_ENDIAN);
    if (buf.remaining() < HEADER_SIZE + 1) {
      return malformed(ErrorCode.MALFORMED_FRAME,
          "frame of " + buf.remaining() + " bytes is shorter than header and type (5)");
    }
    long declared = Integer.toUnsignedLong(buf.getInt());
    Decoded lengthProblem = checkDeclaredLength(declared, maxFrameSize);
    if (lengthProblem != null) {
      return lengthProblem;
    }
    if (declared != buf.remaining()) {
      return malformed(ErrorCode.MALFORMED_FRAME,
          "length field says " + declared + " bytes but " + buf.remaining() + " follow");
    }
    int type = buf.get() & 0xFF;
    return decodeBody(type, buf);
  }

  /**
   * Checks a length field value: {@code null} when acceptable, else the error to answer with.
   * Called by stream readers as soon as the 4 header bytes are in, before any body is buffered.
   */
  public static Decoded checkDeclaredLength(long declared, int maxFrameSize) {
    if (declared < 1) {
      return malformed(ErrorCode.MALFORMED_FRAME, "length field is 0: a frame needs a type byte");
    }
    if (declared > maxFrameSize) {
      return malformed(ErrorCode.FRAME_TOO_LARGE,
          "length field " + declared + " exceeds the maximum frame size " + maxFrameSize);
    }
    return null;
  }

  /**
   * Checks a type byte: {@code null} when it is a defined frame type, else the error to answer
   * with. Stream readers call it as soon as the byte is in, before the body.
   */
  public static Decoded checkType(int typeByte) {
    if (FrameType.fromWire(typeByte) == null) {
      return malformed(ErrorCode.UNKNOWN_FRAME_TYPE,
          String.format("unknown frame type 0x%02X (expected 0x01..0x0A)", typeByte));
    }
    return null;
  }

  /** Decodes a body whose type byte was already read; {@code body} holds exactly the body. */
  public static Decoded decodeBody(int typeByte, ByteBuffer body) {
    Decoded badType = checkType(typeByte);
    if (badType != null) {
      return badType;
    }
    FrameType type = FrameType.fromWire(typeByte);
    ByteBuffer in = body.slice().order(ByteOrder.BIG_ENDIAN);
    try {
      Frame frame = switch (type) {
        case HELLO -> {
          int version = in.get() & 0xFF;
          int flags = in.get() & 0xFF;
          if ((flags & ~HELLO_FLAG_RESUME) != 0) {
            yield null;
          }
          long lastReceived = seq(in.getLong());
          yield new Frame.Hello(version, (flags & HELLO_FLAG_RESUME) != 0, lastReceived,
              getString(in), getString(in), getString(in), getString(in));
        }
        case WELCOME -> new Frame.Welcome(in.get() & 0xFF, getString(in), getString(in),
            seq(in.getLong()), seq(in.getLong()), in.getInt(), in.getShort() & 0xFFFF,
            Integer.toUnsignedLong(in.getInt()), in.getShort() & 0xFFFF);
        case DATA -> {
          long seq = seq(in.getLong());
          byte[] payload = new byte[in.remaining()];
          in.get(payload);
          yield new Frame.Data(seq, payload);
        }
        case ACK -> new Frame.Ack(seq(in.getLong()));
        case PING -> new Frame.Ping(in.getLong());
        case PONG -> new Frame.Pong(in.getLong());
        case LINK -> {
          LinkStatus status = LinkStatus.fromWire(in.get() & 0xFF);
          if (status == null) {
            yield null;
          }
          yield new Frame.Link(status, getString(in), getString(in));
        }
        case REDIRECT -> new Frame.Redirect(getString(in), in.getShort() & 0xFFFF, getString(in));
        case CLOSE -> new Frame.Close(in.getShort() & 0xFFFF, getString(in));
        case ERROR -> new Frame.Error(in.getShort() & 0xFFFF, getString(in));
      };
      if (frame == null) {
        return malformed(ErrorCode.MALFORMED_FRAME, type + " has a field value this version does not define");
      }
      if (in.hasRemaining()) {
        return malformed(ErrorCode.MALFORMED_FRAME,
            type + " has " + in.remaining() + " unexpected trailing bytes");
      }
      return new Decoded.Ok(frame);
    } catch (BufferUnderflowException e) {
      return malformed(ErrorCode.MALFORMED_FRAME, type + " body is truncated");
    } catch (BadField e) {
      return malformed(ErrorCode.MALFORMED_FRAME, type + ": " + e.getMessage());
    }
  }

  private static long seq(long value) {
    if (value < 0) {
      throw new BadField("sequence number above 2^63-1");
    }
    return value;
  }

  private static String getString(ByteBuffer in) {
    int len = in.getShort() & 0xFFFF;
    if (len > in.remaining()) {
      throw new BufferUnderflowException();
    }
    ByteBuffer bytes = in.slice(in.position(), len);
    in.position(in.position() + len);
    CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    try {
      CharBuffer chars = decoder.decode(bytes);
      return chars.toString();
    } catch (CharacterCodingException e) {
      throw new BadField("string field is not valid UTF-8");
    }
  }

  private static Decoded malformed(ErrorCode code, String reason) {
    return new Decoded.Malformed(code, reason);
  }

  /** A field value outside what the spec allows; internal to decoding, never escapes. */
  private static final class BadField extends RuntimeException {
    BadField(String message) {
      super(message, null, false, false);
    }
  }
}
