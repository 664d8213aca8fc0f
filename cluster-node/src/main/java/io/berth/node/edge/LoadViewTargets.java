package io.berth.node.edge;

import io.berth.node.balance.LoadView;
import io.berth.node.balance.NodeLoad;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The edges a drained node may send its devices to: other Up members that are not draining, at
 * their listener of the kind the device came through.
 */
final class LoadViewTargets {

  record Target(String host, int port) {
    @Override
    public String toString() {
      return host + ":" + port;
    }
  }

  private LoadViewTargets() {}

  static List<Target> of(ActorSystem<?> system, EdgeKind kind) {
    Cluster cluster = Cluster.get(system);
    String self = cluster.selfMember().address().toString();
    Set<String> up = new HashSet<>();
    for (Member m : cluster.state().getMembers()) {
      if (m.status() == MemberStatus.up()) {
        up.add(m.address().toString());
      }
    }
    LoadView view = LoadView.get(system);
    List<Target> targets = new ArrayList<>();
    for (NodeLoad load : view.loads().values()) {
      if (!load.node().equals(self) && up.contains(load.node()) && !load.draining()
          && !view.draining().contains(load.node())) {
        int port = switch (kind) {
          case DEVICE -> load.edgePort();
          case WEBSOCKET -> load.websocketPort();
          case MQTT -> load.mqttPort();
        };
        if (port > 0) {
          targets.add(new Target(load.edgeHost(), port));
        }
      }
    }
    targets.sort((a, b) -> a.toString().compareTo(b.toString()));
    return targets;
  }
}
