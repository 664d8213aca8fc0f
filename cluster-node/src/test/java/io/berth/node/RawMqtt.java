package io.berth.node;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.function.Predicate;

/**
 * An MQTT 3.1.1 client on a plain socket that does exactly what a test tells it: a PUBLISH sent
 * again with DUP set and the id the test chooses, a connection dropped right after a PUBACK was
 * read, as a client that never saw that PUBACK would. Client libraries decide these things
 * themselves, so they cannot set up the cases.
 */
final class RawMqtt implements AutoCloseable {

  /** One packet read: the first byte of its fixed header and its body. */
  record Packet(int header, byte[] body) {
    int type() {
      return header >> 4;
    }

    /** The packet id at the start of a PUBACK's body. */
    int packetId() {
      return ((body[0] & 0xFF) << 8) | (body[1] & 0xFF);
    }

    /** A QoS 1 PUBLISH's packet id, after its topic (MQTT 3.1.1). */
    int publishPacketId() {
      int at = 2 + topicLength();
      return ((body[at] & 0xFF) << 8) | (body[at + 1] & 0xFF);
    }

    /** A QoS 1 PUBLISH's payload, as text (MQTT 3.1.1). */
    String payload() {
      int at = 4 + topicLength();
      return new String(body, at, body.length - at, StandardCharsets.UTF_8);
    }

    private int topicLength() {
      return ((body[0] & 0xFF) << 8) | (body[1] & 0xFF);
    }
  }

  static final int CONNACK = 2;
  static final int PUBLISH = 3;
  static final int PUBACK = 4;
  static final int SUBACK = 9;

  private final Socket socket;
  private final DataInputStream in;
  private final OutputStream out;

  private RawMqtt(Socket socket) throws IOException {
    this.socket = socket;
    this.in = new DataInputStream(socket.getInputStream());
    this.out = socket.getOutputStream();
  }

  static RawMqtt connect(int port, Duration timeout) throws IOException {
    Socket socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", port), (int) timeout.toMillis());
    socket.setSoTimeout((int) timeout.toMillis());
    return new RawMqtt(socket);
  }

  /** Sends an MQTT 3.1.1 CONNECT (keep alive 0) and returns the CONNACK: body[0] bit 0 is Session Present, body[1] the code. */
  Packet hello(String clientId, String token, boolean cleanSession) throws IOException {
    return hello(4, clientId, token, cleanSession);
  }

  /** The same in MQTT 5 (no properties). */
  Packet hello5(String clientId, String token, boolean cleanStart) throws IOException {
    return hello(5, clientId, token, cleanStart);
  }

  private Packet hello(int level, String clientId, String token, boolean cleanSession) throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    string(body, "MQTT");
    body.write(level);
    body.write(0x80 | 0x40 | (cleanSession ? 0x02 : 0));
    body.write(0);
    body.write(0);
    if (level == 5) {
      body.write(0); // no properties
    }
    string(body, clientId);
    string(body, clientId);
    string(body, token);
    send(0x10, body.toByteArray());
    return until(p -> p.type() == CONNACK);
  }

  /** A QoS 1 PUBLISH with the given id, DUP set or not. */
  void publish(String topic, int packetId, String payload, boolean dup) throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    string(body, topic);
    body.write(packetId >> 8);
    body.write(packetId & 0xFF);
    body.writeBytes(payload.getBytes(StandardCharsets.UTF_8));
    send(0x30 | (dup ? 0x08 : 0) | 0x02, body.toByteArray());
  }

  /** SUBSCRIBE to one topic at QoS 1; returns the SUBACK. */
  Packet subscribe(String topic, int packetId) throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.write(packetId >> 8);
    body.write(packetId & 0xFF);
    string(body, topic);
    body.write(1);
    send(0x82, body.toByteArray());
    return until(p -> p.type() == SUBACK);
  }

  /**
   * The PUBACK of a downlink PUBLISH and DISCONNECT in one write, as a client that leaves once it
   * has its message sends them (mosquitto_sub -C 1 does): the node reads them together, and the
   * connection's end follows at once.
   */
  void pubAckThenDisconnect(int packetId) throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    all.writeBytes(packet(0x40, new byte[] {(byte) (packetId >> 8), (byte) packetId}));
    all.writeBytes(packet(0xE0, new byte[0]));
    out.write(all.toByteArray());
    out.flush();
  }

  /** DISCONNECT, reason 0 (normal) in MQTT 5, the only form in 3.1.1. */
  void disconnect() throws IOException {
    send(0xE0, new byte[0]);
  }

  /** The next packet, or null at the end of the stream. */
  Packet next() throws IOException {
    try {
      return read();
    } catch (java.io.EOFException end) {
      return null;
    }
  }

  /** Reads packets until one matches (the others are dropped, unacknowledged); fails on a timeout. */
  Packet until(Predicate<Packet> wanted) throws IOException {
    while (true) {
      Packet p = read();
      if (wanted.test(p)) {
        return p;
      }
    }
  }

  Packet pubAck(int packetId) throws IOException {
    return until(p -> p.type() == PUBACK && p.packetId() == packetId);
  }

  private Packet read() throws IOException {
    int header = in.readUnsignedByte();
    int length = 0;
    for (int shift = 0; ; shift += 7) {
      int b = in.readUnsignedByte();
      length |= (b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        break;
      }
    }
    byte[] body = new byte[length];
    in.readFully(body);
    return new Packet(header, body);
  }

  /**
   * QoS 1 PUBLISHes with ids {@code firstId}... and then DISCONNECT, in one write: the node reads
   * them in one read (as a client with a backlog sends them).
   */
  void publishAllThenDisconnect(String topic, int firstId, java.util.List<String> payloads) throws IOException {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    int id = firstId;
    for (String payload : payloads) {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      string(body, topic);
      body.write(id >> 8);
      body.write(id & 0xFF);
      body.writeBytes(payload.getBytes(StandardCharsets.UTF_8));
      all.writeBytes(packet(0x32, body.toByteArray()));
      id++;
    }
    all.writeBytes(packet(0xE0, new byte[0]));
    out.write(all.toByteArray());
    out.flush();
  }

  private void send(int header, byte[] body) throws IOException {
    out.write(packet(header, body));
    out.flush();
  }

  private static byte[] packet(int header, byte[] body) {
    ByteArrayOutputStream packet = new ByteArrayOutputStream();
    packet.write(header);
    int length = body.length;
    do {
      int b = length & 0x7F;
      length >>= 7;
      packet.write(length > 0 ? b | 0x80 : b);
    } while (length > 0);
    packet.writeBytes(body);
    return packet.toByteArray();
  }

  private static void string(ByteArrayOutputStream to, String s) {
    byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
    to.write(utf8.length >> 8);
    to.write(utf8.length & 0xFF);
    to.writeBytes(utf8);
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
