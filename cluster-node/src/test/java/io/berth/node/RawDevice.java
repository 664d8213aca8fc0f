package io.berth.node;

import io.berth.protocol.Decoded;
import io.berth.protocol.DeviceToken;
import io.berth.protocol.Frame;
import io.berth.protocol.FrameCodec;
import io.berth.protocol.FrameReader;
import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/** A device that writes whatever bytes a test wants, to probe the edge with bad input. */
public final class RawDevice implements AutoCloseable {

  private final Socket socket;
  private final OutputStream out;
  private final FrameReader in;

  public RawDevice(InetSocketAddress address, Duration readTimeout) throws IOException {
    socket = new Socket();
    socket.connect(address, 5000);
    socket.setSoTimeout((int) readTimeout.toMillis());
    out = socket.getOutputStream();
    in = new FrameReader(new BufferedInputStream(socket.getInputStream()), 16 * 1024 * 1024);
  }

  public static String token(String deviceId, Instant expiry) {
    return DeviceToken.mint(TestNodes.SECRET.getBytes(StandardCharsets.UTF_8), deviceId, expiry);
  }

  public static Frame.Hello hello(String deviceId, String mapping) {
    return new Frame.Hello(FrameCodec.VERSION, false, 0, deviceId, token(deviceId, Instant.now().plusSeconds(3600)),
        "", mapping);
  }

  public RawDevice write(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
    return this;
  }

  public RawDevice send(Frame frame) throws IOException {
    return write(FrameCodec.encode(frame));
  }

  /** Writes without failing when the node already closed the connection. */
  public RawDevice writeQuietly(byte[] bytes) {
    try {
      write(bytes);
    } catch (IOException e) {
      // The node may close as soon as it sees the first bad byte.
    }
    return this;
  }

  public Frame read() throws IOException {
    Decoded d = in.next();
    if (d instanceof Decoded.Malformed m) {
      throw new IOException("node sent a malformed frame: " + m.reason());
    }
    return ((Decoded.Ok) d).frame();
  }

  /** Every frame until the node closes the connection; fails if it does not within the read timeout. */
  public List<Frame> readUntilClosed() throws IOException {
    List<Frame> frames = new ArrayList<>();
    while (true) {
      try {
        frames.add(read());
      } catch (EOFException e) {
        return frames;
      } catch (SocketException e) {
        if (String.valueOf(e.getMessage()).contains("reset")) {
          return frames;
        }
        throw e;
      } catch (SocketTimeoutException e) {
        throw new AssertionError("the node did not close the connection; frames so far: " + frames, e);
      }
    }
  }

  public OutputStream output() {
    return out;
  }

  public Socket socket() {
    return socket;
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
