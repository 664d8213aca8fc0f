/*
 * Berth device client for WebSocket: browsers, and Node.js 22+ (its global WebSocket). One file,
 * no dependencies, no build step. It speaks protocol/PROTOCOL.md over a Berth node's WebSocket
 * port (docs/edges.md): each binary message carries whole frames, HELLO first with the token,
 * never a token in the URL.
 *
 * Like the Java DeviceClient it keeps the session across connections: DATA is numbered and kept
 * until an ACK covers it, resent after a reconnect from the WELCOME's lastAccepted, downlink DATA
 * is delivered once (by lastReceived) and acknowledged, REDIRECT is followed at once, and a lost
 * connection or a retryable ERROR is retried over the listed URLs with jittered backoff (none for
 * the first retry after a connection that was open).
 *
 *   <script src="berth-device.js"></script>
 *   const device = new BerthDevice({
 *     urls: ["wss://node-1.example.com:7080/devices", "wss://node-2.example.com:7080/devices"],
 *     deviceId: "meter-7", token: "1767225600:f96b...", mapping: "echo",
 *     onData: (payload, seq) => console.log(new TextDecoder().decode(payload)),
 *   });
 *   await device.open();               // resolves on the first WELCOME
 *   await device.send("hello");        // resolves when the node acknowledged it
 *   await device.close();              // after every frame sent was acknowledged
 *
 * `token` may be a function returning a token or a promise of one, called for every HELLO, so that
 * short-lived tokens can be fetched from a backend.
 */
(function (root) {
  "use strict";

  const T = { HELLO: 1, WELCOME: 2, DATA: 3, ACK: 4, PING: 5, PONG: 6, LINK: 7, REDIRECT: 8, CLOSE: 9, ERROR: 10 };
  const RETRYABLE_ERRORS = new Set([300, 301, 302, 303, 304, 500, 501]);
  const CLOSE = { NORMAL: 1000, REPLACED: 1001, NODE_SHUTDOWN: 1002 };
  const LINK_STATUS = { 1: "pending", 2: "linked", 3: "unlinked", 4: "timeout" };
  const MAX_SEQ = (1n << 63n) - 1n;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: true });

  // ------------------------------------------------------------------ codec

  /** Bytes of a string field: u16 length, then UTF-8. */
  function str(text) {
    const bytes = encoder.encode(text || "");
    if (bytes.length > 0xffff) throw new RangeError("string longer than 65,535 bytes");
    const out = new Uint8Array(2 + bytes.length);
    new DataView(out.buffer).setUint16(0, bytes.length);
    out.set(bytes, 2);
    return out;
  }

  function u64(value) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(value));
    return out;
  }

  /** One frame: u32 length (type byte + body), type, body. */
  function frame(type, ...parts) {
    const bodyLength = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(5 + bodyLength);
    const view = new DataView(out.buffer);
    view.setUint32(0, 1 + bodyLength);
    out[4] = type;
    let at = 5;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  const encode = {
    hello: (resume, lastReceived, deviceId, token, socketName, mapping) =>
      frame(T.HELLO, Uint8Array.of(1, resume ? 1 : 0), u64(lastReceived), str(deviceId), str(token),
        str(socketName), str(mapping)),
    data: (seq, payload) => frame(T.DATA, u64(seq), payload),
    ack: (seq) => frame(T.ACK, u64(seq)),
    ping: (nonce) => frame(T.PING, u64(nonce)),
    pong: (nonce) => frame(T.PONG, u64(nonce)),
    close: (code, reason) => {
      const c = new Uint8Array(2);
      new DataView(c.buffer).setUint16(0, code);
      return frame(T.CLOSE, c, str(reason));
    },
  };

  /** Reads a frame's body field by field; any overrun or leftover is a malformed frame. */
  class Body {
    constructor(bytes) {
      this.bytes = bytes;
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.at = 0;
    }
    need(n) {
      if (this.at + n > this.bytes.length) throw new Error("malformed frame: body too short");
    }
    u8() { this.need(1); return this.bytes[this.at++]; }
    u16() { this.need(2); const v = this.view.getUint16(this.at); this.at += 2; return v; }
    u32() { this.need(4); const v = this.view.getUint32(this.at); this.at += 4; return v; }
    u64() { this.need(8); const v = this.view.getBigUint64(this.at); this.at += 8; return v; }
    seq() {
      const v = this.u64();
      if (v > MAX_SEQ) throw new Error("malformed frame: seq with the top bit set");
      return v;
    }
    str() { const n = this.u16(); this.need(n); const s = decoder.decode(this.bytes.subarray(this.at, this.at + n)); this.at += n; return s; }
    rest() { const r = this.bytes.slice(this.at); this.at = this.bytes.length; return r; }
    end() { if (this.at !== this.bytes.length) throw new Error("malformed frame: trailing bytes"); }
  }

  function decode(type, body) {
    const b = new Body(body);
    let f;
    switch (type) {
      case T.WELCOME:
        f = { type, version: b.u8(), socketId: b.str(), node: b.str(), lastAccepted: b.seq(), lastAcked: b.seq(),
          maxFrameSize: b.u32(), window: b.u16(), windowBytes: b.u32(), idleTimeoutSeconds: b.u16() };
        break;
      case T.DATA: f = { type, seq: b.seq(), payload: b.rest() }; break;
      case T.ACK: f = { type, seq: b.seq() }; break;
      case T.PING: case T.PONG: f = { type, nonce: b.u64() }; break;
      case T.LINK: {
        const status = LINK_STATUS[b.u8()];
        if (!status) throw new Error("malformed frame: undefined LINK status");
        f = { type, status, peer: b.str(), reason: b.str() };
        break;
      }
      case T.REDIRECT: f = { type, host: b.str(), port: b.u16(), reason: b.str() }; break;
      case T.CLOSE: f = { type, code: b.u16(), reason: b.str() }; break;
      case T.ERROR: f = { type, code: b.u16(), message: b.str() }; break;
      default: throw new Error("unexpected frame type " + type + " from the node");
    }
    b.end();
    return f;
  }

  /** Cuts whole frames out of the bytes of successive messages (a frame may span messages). */
  class FrameReader {
    constructor(maxFrameSize) {
      this.max = maxFrameSize;
      this.buffer = new Uint8Array(0);
    }
    push(bytes) {
      const joined = new Uint8Array(this.buffer.length + bytes.length);
      joined.set(this.buffer);
      joined.set(bytes, this.buffer.length);
      const frames = [];
      let at = 0;
      while (joined.length - at >= 4) {
        const length = new DataView(joined.buffer, at, 4).getUint32(0);
        if (length < 1 || length > this.max) throw new Error("malformed frame: length " + length);
        if (joined.length - at < 4 + length) break;
        frames.push(decode(joined[at + 4], joined.subarray(at + 5, at + 4 + length)));
        at += 4 + length;
      }
      this.buffer = joined.slice(at);
      return frames;
    }
  }

  // ------------------------------------------------------------------ the device

  class BerthDevice {
    /**
     * @param {object} o urls (ws:// or wss:// URLs of nodes' WebSocket ports, tried in turn),
     *   deviceId, token (a string, or a function returning one or a promise of one), socketName
     *   (""), mapping ("" for the node's default), onData(payload: Uint8Array, seq: bigint),
     *   onLink({status, peer, reason}), onState(state, detail), minBackoffMs (250), maxBackoffMs
     *   (30000), helloTimeoutMs (15000)
     */
    constructor(o) {
      if (!o || !Array.isArray(o.urls) || o.urls.length === 0) throw new TypeError("urls: at least one ws:// or wss:// URL");
      if (!o.deviceId) throw new TypeError("deviceId is required");
      if (!o.token) throw new TypeError("token is required (a string or a function)");
      for (const u of o.urls) {
        const url = new URL(u);
        if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new TypeError("not a ws:// or wss:// URL: " + u);
      }
      this.o = Object.assign({ socketName: "", mapping: "", minBackoffMs: 250, maxBackoffMs: 30000,
        helloTimeoutMs: 15000, onData() {}, onLink() {}, onState() {} }, o);
      this.state = "new";
      this.nextUrl = 0;
      this.redirectTo = null;
      this.failures = 0;
      this.hasState = false;     // a WELCOME was seen: reconnects resume
      this.nextSeq = 1n;
      this.unacked = [];         // [{seq, bytes, resolve, reject}] in seq order
      this.queued = [];          // waiting for the window
      this.lastReceived = 0n;
      this.window = 1;
      this.windowBytes = 65536;
      this.ws = null;
      this.stats = { connects: 0, welcomes: 0, redirects: 0, resent: 0, duplicatesDropped: 0 };
    }

    /** Connects; resolves on the first WELCOME, rejects when the device stops before one. */
    open() {
      if (this.opened) return this.opened;
      this.opened = new Promise((resolve, reject) => { this.openWaiter = { resolve, reject }; });
      this.connect();
      return this.opened;
    }

    /** Sends one DATA frame; resolves when the node acknowledged it (it reached its destination). */
    send(payload) {
      if (this.state === "stopped" || this.closing) {
        return Promise.reject(new Error("the device is " + (this.closing ? "closing" : "stopped")));
      }
      const entry = { seq: 0n, bytes: typeof payload === "string" ? encoder.encode(payload) : new Uint8Array(payload) };
      entry.done = new Promise((resolve, reject) => { entry.resolve = resolve; entry.reject = reject; });
      this.queued.push(entry);
      this.pump();
      return entry.done;
    }

    /**
     * Waits (at most `waitMs`, 30 s by default) for every frame sent to be acknowledged, sends CLOSE
     * 1000 and ends the session; frames still unacknowledged then are rejected.
     */
    async close(waitMs = 30000) {
      this.closing = true;
      let timer;
      await Promise.race([
        Promise.allSettled(this.unacked.concat(this.queued).map((f) => f.done)),
        new Promise((resolve) => { timer = setTimeout(resolve, waitMs); }),
      ]);
      clearTimeout(timer);
      return new Promise((resolve) => {
        this.closeWaiter = resolve;
        if (this.state === "stopped") {
          resolve(this.stoppedBecause);
        } else if (this.ws && this.state === "open") {
          this.write(encode.close(CLOSE.NORMAL, "device closes"));
          this.closeTimer = setTimeout(() => this.stop("closed"), 3000);
        } else {
          this.stop("closed");
        }
      });
    }

    // -------------------------------------------------------------- connections

    async connect() {
      if (this.state === "stopped") return;
      const url = this.redirectTo || this.o.urls[this.nextUrl++ % this.o.urls.length];
      this.redirectTo = null;
      this.setState("connecting", url);
      let token;
      try {
        token = typeof this.o.token === "function" ? await this.o.token() : this.o.token;
      } catch (e) {
        this.retry("the token could not be had: " + e.message);
        return;
      }
      if (this.state === "stopped") return;
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        this.retry("cannot open " + url + ": " + e.message);
        return;
      }
      this.stats.connects++;
      this.ws = ws;
      this.url = url;
      ws.binaryType = "arraybuffer";
      this.reader = new FrameReader(1 << 24);
      this.welcomed = false;
      ws.onopen = () => {
        this.write(encode.hello(this.hasState, this.lastReceived, this.o.deviceId, token, this.o.socketName, this.o.mapping));
        this.helloTimer = setTimeout(() => this.drop(ws, "no WELCOME within " + this.o.helloTimeoutMs + " ms"), this.o.helloTimeoutMs);
      };
      ws.onmessage = (event) => {
        if (ws !== this.ws) return;
        this.lastHeard = Date.now();
        let frames;
        try {
          frames = this.reader.push(new Uint8Array(event.data));
        } catch (e) {
          this.drop(ws, e.message);
          return;
        }
        for (const f of frames) {
          if (ws !== this.ws) return;
          this.onFrame(f);
        }
      };
      ws.onclose = (event) => {
        if (ws !== this.ws) return;
        this.lost("connection closed (" + event.code + (event.reason ? " " + event.reason : "") + ")");
      };
      ws.onerror = () => {};
    }

    onFrame(f) {
      switch (f.type) {
        case T.WELCOME: return this.onWelcome(f);
        case T.DATA: return this.onData(f);
        case T.ACK: return this.onAck(f.seq);
        case T.PING: return this.write(encode.pong(f.nonce));
        case T.PONG: return undefined;
        case T.LINK: return this.o.onLink({ status: f.status, peer: f.peer, reason: f.reason });
        case T.REDIRECT: {
          const target = new URL(this.url);
          target.hostname = f.host;
          target.port = String(f.port);
          this.redirectTo = target.toString();
          this.stats.redirects++;
          this.failures = 0;
          this.setState("redirected", this.redirectTo + (f.reason ? ": " + f.reason : ""));
          this.drop(this.ws, null);
          return this.connect();
        }
        case T.CLOSE: return this.onClose(f);
        case T.ERROR: return this.onError(f);
        default: return undefined;
      }
    }

    onWelcome(w) {
      clearTimeout(this.helloTimer);
      this.welcomed = true;
      this.stats.welcomes++;
      this.failures = 0;
      this.window = w.window;
      this.windowBytes = w.windowBytes;
      this.maxPayload = w.maxFrameSize - 9;
      if (!this.hasState) {
        this.nextSeq = w.lastAccepted + 1n;
        this.lastReceived = w.lastAcked;
        this.hasState = true;
      } else {
        const sentUpTo = this.nextSeq - 1n;
        if (w.lastAccepted > sentUpTo) {
          this.stop("session conflict: the node accepted seq " + w.lastAccepted + " but this device sent up to " + sentUpTo);
          return;
        }
        this.onAck(w.lastAccepted);
        this.lastReceived = this.forgotDownlink || w.lastAcked > this.lastReceived ? w.lastAcked : this.lastReceived;
        this.forgotDownlink = false;
      }
      this.setState("open", w.socketId + " on " + w.node);
      // Resend what is still unacknowledged, in order, then go on with the queue.
      for (const f of this.unacked) {
        this.stats.resent++;
        this.write(encode.data(f.seq, f.bytes));
      }
      this.pump();
      this.startPings(w.idleTimeoutSeconds);
      if (this.openWaiter) {
        this.openWaiter.resolve(w);
        this.openWaiter = null;
      }
    }

    onData(d) {
      if (d.seq <= this.lastReceived) {
        this.stats.duplicatesDropped++;
      } else if (d.seq === this.lastReceived + 1n) {
        this.lastReceived = d.seq;
        this.o.onData(d.payload, d.seq);
      } else {
        this.drop(this.ws, "downlink skipped from " + this.lastReceived + " to " + d.seq);
        return;
      }
      // One ACK for all frames of this turn of the event loop.
      if (!this.ackPending) {
        this.ackPending = true;
        queueMicrotask(() => {
          this.ackPending = false;
          if (this.state === "open") this.write(encode.ack(this.lastReceived));
        });
      }
    }

    onAck(seq) {
      while (this.unacked.length > 0 && this.unacked[0].seq <= seq) {
        const f = this.unacked.shift();
        f.resolve(f.seq);
      }
      this.pump();
    }

    onClose(c) {
      if (c.code === CLOSE.NODE_SHUTDOWN) {
        this.drop(this.ws, null);
        this.setState("waiting", "node shutting down: " + c.reason);
        this.connect();
      } else if (this.closing && c.code === CLOSE.NORMAL) {
        this.stop("closed");
      } else {
        this.stop("closed by the node: " + c.code + (c.reason ? " " + c.reason : ""));
      }
    }

    onError(e) {
      const reason = "ERROR " + e.code + ": " + e.message;
      if (e.code === 105 && !this.welcomed && this.hasState && !this.forgotDownlink) {
        // The session is older than this device's downlink position (PROTOCOL.md, Resuming):
        // resume at once with lastReceived 0, keep the unacknowledged uplink, and take the
        // WELCOME's lastAcked as the position.
        this.forgotDownlink = true;
        this.lastReceived = 0n;
        this.drop(this.ws, null);
        this.connect();
        return;
      }
      if (!RETRYABLE_ERRORS.has(e.code)) {
        this.stop(reason);
        return;
      }
      let wait = null;
      const m = /^retry after (\d+) ms/.exec(e.message);
      if (e.code === 303 && m) wait = Number(m[1]);
      this.drop(this.ws, null);
      this.retry(reason, wait);
    }

    /** Sends queued frames while the window allows. */
    pump() {
      if (this.state !== "open") return;
      let bytes = this.unacked.reduce((n, f) => n + f.bytes.length, 0);
      while (this.queued.length > 0) {
        const next = this.queued[0];
        if (this.maxPayload !== undefined && next.bytes.length > this.maxPayload) {
          this.queued.shift().reject(new RangeError("payload of " + next.bytes.length + " bytes: at most " + this.maxPayload));
          continue;
        }
        const full = this.unacked.length >= this.window
          || (this.unacked.length > 0 && bytes + next.bytes.length > this.windowBytes);
        if (full) break;
        this.queued.shift();
        next.seq = this.nextSeq++;
        this.unacked.push(next);
        bytes += next.bytes.length;
        this.write(encode.data(next.seq, next.bytes));
      }
    }

    write(bytes) {
      if (this.ws && this.ws.readyState === 1) this.ws.send(bytes);
    }

    /** PINGs at a third of the idle timeout; a node silent for the whole of it is taken as gone. */
    startPings(idleSeconds) {
      clearInterval(this.pingTimer);
      const every = Math.max(1000, (idleSeconds * 1000) / 3);
      let nonce = 0n;
      const ws = this.ws;
      this.pingTimer = setInterval(() => {
        if (Date.now() - this.lastHeard > idleSeconds * 1000) {
          this.drop(ws, "nothing from the node for " + idleSeconds + " s");
          return;
        }
        this.write(encode.ping(++nonce));
      }, every);
    }

    /** Ends this connection without a retry of its own (the caller decides what comes next). */
    drop(ws, reason) {
      clearTimeout(this.helloTimer);
      clearInterval(this.pingTimer);
      if (ws) {
        ws.onclose = null;
        ws.onmessage = null;
        try { ws.close(); } catch (e) { /* closed already */ }
      }
      if (ws === this.ws) this.ws = null;
      if (reason) this.lost(reason);
    }

    /** The connection was lost: at once after one that was open, with backoff after failures. */
    lost(reason) {
      const wasOpen = this.state === "open";
      this.drop(this.ws, null);
      if (this.state === "stopped") return;
      if (this.closing && !this.unacked.length && !this.queued.length) {
        this.stop("closed");
        return;
      }
      this.retry(reason, wasOpen && this.welcomed ? 0 : null);
    }

    retry(reason, wait) {
      if (this.state === "stopped") return;
      this.failures++;
      if (wait === null || wait === undefined) {
        const base = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.min(this.failures - 1, 20));
        wait = Math.floor(base / 2 + Math.random() * base / 2);
      }
      this.setState("waiting", reason + "; next try in " + wait + " ms");
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), wait);
    }

    stop(reason) {
      if (this.state === "stopped") return;
      clearTimeout(this.retryTimer);
      clearTimeout(this.closeTimer);
      this.drop(this.ws, null);
      this.state = "stopped";
      this.stoppedBecause = reason;
      this.o.onState("stopped", reason);
      const error = new Error(reason);
      for (const f of this.unacked.concat(this.queued)) f.reject(error);
      this.unacked = [];
      this.queued = [];
      if (this.openWaiter) {
        this.openWaiter.reject(error);
        this.openWaiter = null;
      }
      if (this.closeWaiter) this.closeWaiter(reason);
    }

    setState(state, detail) {
      this.state = state;
      this.o.onState(state, detail);
    }
  }

  BerthDevice.codec = { encode, decode, FrameReader, T };
  root.BerthDevice = BerthDevice;
  if (typeof module !== "undefined" && module.exports) module.exports = BerthDevice;
})(typeof globalThis !== "undefined" ? globalThis : this);
