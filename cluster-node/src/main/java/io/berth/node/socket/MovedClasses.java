package io.berth.node.socket;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;
import org.apache.pekko.serialization.jackson.JacksonMigration;

/**
 * Reads what Jackson wrote under a class's earlier name (docs/packages.md#moved-classes). A
 * CBOR row names the class it holds: journal events and snapshots written before the socket
 * session's types moved out of {@code io.berth.node.connection.ConnectionEntity} name the old
 * classes, and so do messages from a node that runs the earlier code. serialization.conf binds
 * this migration to each old name; the content is unchanged, only the name is. A class that
 * moves again gets its new name here, and its former name a line of its own. The operator
 * replies changed their content too: {@link EarlierOperatorReplies} reads them.
 */
public final class MovedClasses extends JacksonMigration {

  private static final String OLD = "io.berth.node.connection.ConnectionEntity$";

  /** Every former class name and the class that holds its content now. */
  static final Map<String, String> MOVED = Map.ofEntries(
      Map.entry(OLD + "Opened", "io.berth.node.socket.SocketEvent$Opened"),
      Map.entry(OLD + "Accepted", "io.berth.node.socket.SocketEvent$Accepted"),
      Map.entry(OLD + "BatchStarted", "io.berth.node.socket.SocketEvent$BatchStarted"),
      Map.entry(OLD + "Answered", "io.berth.node.socket.SocketEvent$Answered"),
      Map.entry(OLD + "Injected", "io.berth.node.socket.SocketEvent$Injected"),
      Map.entry(OLD + "DownlinkAcked", "io.berth.node.socket.SocketEvent$DownlinkAcked"),
      Map.entry(OLD + "Detached", "io.berth.node.socket.SocketEvent$Detached"),
      Map.entry(OLD + "Suspended", "io.berth.node.socket.SocketEvent$Suspended"),
      Map.entry(OLD + "Closed", "io.berth.node.socket.SocketEvent$Closed"),
      Map.entry(OLD + "LinkRequested", "io.berth.node.socket.SocketEvent$LinkRequested"),
      Map.entry(OLD + "LinkOffered", "io.berth.node.socket.SocketEvent$LinkOffered"),
      Map.entry(OLD + "LinkEstablished", "io.berth.node.socket.SocketEvent$LinkEstablished"),
      Map.entry(OLD + "LinkEnded", "io.berth.node.socket.SocketEvent$LinkEnded"),
      Map.entry(OLD + "Relayed", "io.berth.node.socket.SocketEvent$Relayed"),
      Map.entry(OLD + "State", "io.berth.node.socket.SocketState"),
      Map.entry(OLD + "Status", "io.berth.node.socket.SocketState$Status"),
      Map.entry(OLD + "Counters", "io.berth.node.socket.api.Counters"),
      Map.entry(OLD + "Link", "io.berth.node.link.Link"),
      Map.entry(OLD + "RelayMark", "io.berth.node.link.RelayMark"),
      Map.entry(OLD + "Open", "io.berth.node.socket.api.SocketCommand$Open"),
      Map.entry(OLD + "Close", "io.berth.node.socket.api.SocketCommand$Close"),
      Map.entry(OLD + "Resync", "io.berth.node.socket.api.SocketCommand$Resync"),
      Map.entry(OLD + "Heartbeat", "io.berth.node.socket.api.SocketCommand$Heartbeat"),
      Map.entry(OLD + "GetStatus", "io.berth.node.socket.api.SocketCommand$GetStatus"),
      Map.entry(OLD + "Inject", "io.berth.node.socket.api.SocketCommand$Inject"),
      Map.entry(OLD + "CloseByOperator", "io.berth.node.socket.api.SocketCommand$CloseByOperator"),
      Map.entry(OLD + "LinkOffer", "io.berth.node.socket.api.SocketCommand$LinkOffer"),
      Map.entry(OLD + "LinkUp", "io.berth.node.socket.api.SocketCommand$LinkUp"),
      Map.entry(OLD + "LinkDown", "io.berth.node.socket.api.SocketCommand$LinkDown"),
      Map.entry(OLD + "Paired", "io.berth.node.socket.api.SocketCommand$Paired"),
      Map.entry(OLD + "EdgeTerminated", "io.berth.node.socket.api.SocketCommand$EdgeTerminated"),
      Map.entry(OLD + "Stop", "io.berth.node.socket.api.SocketCommand$Stop"),
      Map.entry(OLD + "SocketStatus", "io.berth.node.socket.api.SocketStatus"),
      Map.entry(OLD + "Welcomed", "io.berth.node.edge.api.ToEdge$Welcomed"),
      Map.entry(OLD + "OpenRejected", "io.berth.node.edge.api.ToEdge$OpenRejected"),
      Map.entry(OLD + "ConfirmTakeover", "io.berth.node.edge.api.ToEdge$ConfirmTakeover"),
      Map.entry(OLD + "DataRefused", "io.berth.node.edge.api.ToEdge$DataRefused"),
      Map.entry(OLD + "LinkChanged", "io.berth.node.edge.api.ToEdge$LinkChanged"),
      Map.entry(OLD + "Resume", "io.berth.node.edge.api.ToEdge$Resume"),
      Map.entry(OLD + "Moving", "io.berth.node.edge.api.ToEdge$Moving"),
      Map.entry(OLD + "Sleeping", "io.berth.node.edge.api.ToEdge$Sleeping"),
      Map.entry(OLD + "SessionEnded", "io.berth.node.edge.api.ToEdge$SessionEnded"));

  @Override
  public int currentVersion() {
    // Rows under an old name carry no version, which Jackson reads as 1: above it, the name is migrated.
    return 2;
  }

  @Override
  public String transformClassName(int fromVersion, String className) {
    return MOVED.getOrDefault(className, className);
  }

  @Override
  public JsonNode transform(int fromVersion, JsonNode json) {
    return json;
  }
}
