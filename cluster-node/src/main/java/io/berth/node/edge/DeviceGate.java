package io.berth.node.edge;

import io.berth.protocol.ErrorCode;
import io.berth.protocol.RetryAfter;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Which HELLO a device may open on this node, by its device id (docs/limits.md): a token bucket of
 * connects per device, so that a device reconnecting in a tight loop is told to wait (ERROR 303,
 * with the wait), and at most {@code max-connections} connections per device at once (ERROR 304).
 * One per node, shared by every {@link ConnectionActor}: thread-safe, each of its stripes behind a
 * lock of its own, so that connects of different devices rarely wait for each other.
 *
 * <p>Memory is bounded. A device whose bucket is full again is forgotten (an absent device has a
 * full bucket); the devices that are not full are at most {@code tracked-devices}, and past that the
 * one that connected longest ago is forgotten, which at worst gives it its burst again. Devices with
 * open connections are counted only while {@code max-connections} is on, and each holds a
 * connection of this node, which {@code berth.edge.max-connections} bounds.
 *
 * <p>Only authenticated HELLOs reach the gate (the token is checked first), so nobody can use up
 * another device's connects.
 */
final class DeviceGate {

  /** One lock per stripe; a device id always falls in the same one. */
  private static final int STRIPES = 16;

  /** A device the gate remembers: its connect bucket, and its open connections. */
  private static final class Device {
    long fullAt = TokenBucket.FULL;
    int open;
  }

  private static final class Stripe {
    /** Devices with no open connection whose bucket is not full yet, the least recently seen first. */
    final LinkedHashMap<String, Device> recent = new LinkedHashMap<>();
    /** Devices with open connections (only while the maximum is on). */
    final HashMap<String, Device> connected = new HashMap<>();
  }

  private final long connectCost;
  private final long connectCapacity;
  private final int maxConnections;
  private final int trackedPerStripe;
  private final Stripe[] stripes = new Stripe[STRIPES];

  /**
   * @param connectsPerSecond refill of a device's connect bucket; 0 lets every connect through
   * @param connectBurst the bucket's size: connects in a row before the rate applies
   * @param maxConnections connections a device may hold on this node at once; 0 for no maximum
   * @param trackedDevices devices with a bucket not full yet that are remembered at most
   */
  DeviceGate(double connectsPerSecond, int connectBurst, int maxConnections, int trackedDevices) {
    this.connectCost = connectsPerSecond > 0 ? (long) Math.ceil(TimeUnit.SECONDS.toNanos(1) / connectsPerSecond) : 0;
    this.connectCapacity = connectCost * Math.max(1, connectBurst);
    this.maxConnections = maxConnections;
    this.trackedPerStripe = Math.max(1, trackedDevices / STRIPES);
    for (int i = 0; i < STRIPES; i++) {
      stripes[i] = new Stripe();
    }
  }

  private boolean off() {
    return connectCost == 0 && maxConnections == 0;
  }

  /**
   * Lets a device's HELLO through (null), counting its connection until {@link #release}, or says
   * why not. A refused connect does not use up the bucket, so a device that waits as told gets
   * in; one refused for its connections did connect, and did use it.
   */
  Handshake.Refusal admit(String deviceId, long now) {
    if (off()) {
      return null;
    }
    Stripe s = stripe(deviceId);
    synchronized (s) {
      Device d = s.connected.get(deviceId);
      if (d == null) {
        d = s.recent.remove(deviceId);
      }
      if (d == null) {
        d = new Device();
      }
      Handshake.Refusal refusal = null;
      if (connectCost > 0) {
        long wait = TokenBucket.wait(d.fullAt, connectCost, connectCapacity, now);
        if (wait > 0) {
          refusal = new Handshake.Refusal(ErrorCode.THROTTLED, RetryAfter.message(
              TimeUnit.NANOSECONDS.toMillis(wait + TimeUnit.MILLISECONDS.toNanos(1) - 1),
              "device " + deviceId + " connects too often"));
        } else {
          d.fullAt = TokenBucket.take(d.fullAt, connectCost, now);
        }
      }
      if (refusal == null && maxConnections > 0) {
        if (d.open >= maxConnections) {
          refusal = new Handshake.Refusal(ErrorCode.TOO_MANY_CONNECTIONS, "device " + deviceId + " holds "
              + d.open + " connections on this node, the most it may; close one first");
        } else {
          d.open++;
        }
      }
      remember(s, deviceId, d, now);
      return refusal;
    }
  }

  /** A connection {@link #admit admitted} ended. */
  void release(String deviceId, long now) {
    if (maxConnections == 0) {
      return;
    }
    Stripe s = stripe(deviceId);
    synchronized (s) {
      Device d = s.connected.remove(deviceId);
      if (d != null) {
        d.open--;
        remember(s, deviceId, d, now);
      }
    }
  }

  /** How many devices the gate remembers, for tests of its bound. */
  int tracked() {
    int n = 0;
    for (Stripe s : stripes) {
      synchronized (s) {
        n += s.recent.size() + s.connected.size();
      }
    }
    return n;
  }

  /** Files a device where its state says (taken out of either map before), forgetting what it may. */
  private void remember(Stripe s, String deviceId, Device d, long now) {
    if (d.open > 0) {
      s.connected.put(deviceId, d);
    } else if (d.fullAt > now) {
      s.recent.put(deviceId, d); // at the end: the most recently seen
    }
    Iterator<Map.Entry<String, Device>> eldest = s.recent.entrySet().iterator();
    while (eldest.hasNext()) {
      Device e = eldest.next().getValue();
      if (e.fullAt > now && s.recent.size() <= trackedPerStripe) {
        break;
      }
      eldest.remove();
    }
  }

  private Stripe stripe(String deviceId) {
    return stripes[Math.floorMod(deviceId.hashCode(), STRIPES)];
  }
}
