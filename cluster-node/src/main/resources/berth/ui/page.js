// The cluster page (docs/page.md). Plain ES2020, no framework, no build: it polls this node's
// operator API with the operator's key and draws what it answers. Every value from the API is
// set as text (textContent), never as markup.
"use strict";

const KEY_ITEM = "berth-operator-key";
// Nodes and migrations change by the second; links and parked batches cost more to read (a live
// link asks its two sockets) and change rarely.
const FAST_MS = 2000;
const SLOW_EVERY = 3;
const MIGRATIONS_SHOWN = 25;
const LINKS_SHOWN = 30;
const PARKED_SHOWN = 30;
const LIVE_STATUSES = new Set(["requested", "moving", "waiting-for-traffic"]);

const $ = (id) => document.getElementById(id);

let key = null;
let paused = false;
let tick = 0;
let timer = null;
let seenMigrations = null; // ids shown so far; null until the first answer
let lastLinks = [];
let lastParked = [];

// ------------------------------------------------------------------ the key

/**
 * A key given as #key=… when the page opens is taken, kept for this tab, and removed from the
 * address bar. Only at opening: a link followed later (#key= of someone else's key) must not
 * switch the operator's key without their knowing.
 */
function takeKeyFromFragment() {
  const match = /^#key=(.+)$/.exec(location.hash);
  if (!match) {
    return;
  }
  history.replaceState(null, "", location.pathname + location.search);
  let given;
  try {
    given = decodeURIComponent(match[1]).trim();
  } catch (e) {
    return; // a malformed fragment: the form asks for the key instead
  }
  sessionStorage.setItem(KEY_ITEM, given);
}

function askForKey(why) {
  key = null;
  sessionStorage.removeItem(KEY_ITEM);
  stop();
  $("cluster").hidden = true;
  $("pause").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  $("login-message").textContent = why || "";
  $("key").value = "";
  $("key").focus();
  document.body.dataset.state = "key-needed";
}

function start() {
  key = sessionStorage.getItem(KEY_ITEM);
  if (!key) {
    askForKey("");
    return;
  }
  $("login").hidden = true;
  $("cluster").hidden = false;
  $("pause").hidden = false;
  $("forget").hidden = false;
  tick = 0;
  refresh();
}

function stop() {
  if (timer !== null) {
    clearTimeout(timer);
    timer = null;
  }
}

// ------------------------------------------------------------------ the API

class Refused extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls this node's API with the key; credentials "omit" keeps the browser's Basic prompt away. */
async function api(method, path) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + key, Accept: "application/json" },
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = { error: text };
  }
  if (!response.ok) {
    throw new Refused(response.status, (body && body.error) || response.statusText);
  }
  return body;
}

async function refresh() {
  stop();
  const slow = tick % SLOW_EVERY === 0;
  tick++;
  try {
    const [nodes, migrations, links, parked] = await Promise.all([
      api("GET", "/api/nodes"),
      api("GET", "/api/migrations?limit=" + MIGRATIONS_SHOWN),
      slow ? api("GET", "/api/links") : Promise.resolve(lastLinks),
      slow ? api("GET", "/api/parked?limit=" + PARKED_SHOWN) : Promise.resolve(lastParked),
    ]);
    lastLinks = links;
    lastParked = parked;
    drawNodes(nodes);
    drawHot(nodes);
    drawMigrations(migrations);
    drawLinks(links);
    drawParked(parked);
    $("refreshed").textContent = "updated " + clock(new Date()) + (paused ? ", refresh paused"
      : ", refreshing every " + FAST_MS / 1000 + " s");
    $("refreshed").className = "quiet";
    document.body.dataset.state = "ready";
  } catch (e) {
    if (e instanceof Refused && e.status === 401) {
      askForKey("This node refused the key (401): it is unknown, revoked or mistyped.");
      return;
    }
    $("refreshed").textContent = "last refresh failed at " + clock(new Date()) + ": " + describe(e)
      + "; trying again";
    $("refreshed").className = "bad";
  }
  schedule();
}

function schedule() {
  stop();
  if (!paused && key && !document.hidden) {
    timer = setTimeout(refresh, FAST_MS);
  }
}

function describe(e) {
  if (e instanceof Refused) {
    return e.status + " " + e.message;
  }
  return "the node did not answer (" + e.message + ")";
}

// ------------------------------------------------------------------ drawing helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") {
      node.className = value;
    } else if (name.startsWith("on")) {
      node.addEventListener(name.substring(2), value);
    } else if (value !== undefined && value !== null) {
      node.setAttribute(name, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

/** pekko://berth@10.0.0.1:2552 is shown as 10.0.0.1:2552, the form the API takes back. */
function hostPort(address) {
  if (!address) {
    return "";
  }
  const at = address.lastIndexOf("@");
  return at >= 0 ? address.substring(at + 1) : address;
}

function number(n, digits = 0) {
  if (n === undefined || n === null) {
    return "–";
  }
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });
}

function bytes(n) {
  if (n === undefined || n === null) {
    return "–";
  }
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return number(v, i === 0 ? 0 : 1) + " " + units[i];
}

function clock(date) {
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

function ago(iso) {
  if (!iso) {
    return "";
  }
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 90) {
    return seconds + " s ago";
  }
  if (seconds < 5400) {
    return Math.round(seconds / 60) + " min ago";
  }
  return Math.round(seconds / 3600) + " h ago";
}

function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return seconds < 90 ? seconds + " s" : Math.round(seconds / 60) + " min";
}

function when(iso) {
  return iso ? el("span", { title: new Date(iso).toISOString() }, ago(iso)) : "";
}

function fill(tableId, rows, emptyText, columns) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { class: "empty", colspan: columns }, emptyText))]));
}

function fromTo(from, to) {
  return el("span", { class: "mono" }, hostPort(from) || "?", el("span", { class: "arrow" }, "→"),
    to ? hostPort(to) : el("span", { class: "quiet" }, "the node with the most headroom"));
}

// ------------------------------------------------------------------ nodes

function drawNodes(nodes) {
  const cards = nodes.map((n) => {
    const address = hostPort(n.node);
    const up = n.status === "Up";
    const cls = "card" + (n.draining ? " draining" : "") + (up ? "" : " down");
    const head = el("div", { class: "card-head" },
      el("span", { class: "node mono" }, address),
      el("span", { class: "badge " + (up ? "good" : "bad") }, n.status),
      n.draining ? el("span", { class: "badge warn" }, "draining") : null,
      el("span", { class: "spacer" }),
      n.draining
        ? el("button", { type: "button", onclick: () => drain(address, false) }, "Stop draining")
        : el("button", { type: "button", class: "danger", onclick: () => drain(address, true) }, "Drain"));
    if (n.sockets === undefined) {
      return el("div", { class: cls, "data-node": address }, head,
        el("p", { class: "quiet" }, "no load report from this node yet"));
    }
    const used = n.capacity > 0 ? Math.min(1, n.framesPerSecond / n.capacity) : 0;
    const meterClass = "meter" + (used > 0.9 ? " bad" : used > 0.7 ? " warn" : "");
    return el("div", { class: cls, "data-node": address }, head,
      el("div", { class: "figures" },
        figure(number(n.framesPerSecond, 1), "frames/s"),
        figure(bytes(n.bytesPerSecond) + "/s", "bytes/s"),
        figure(number(n.headroom), "headroom, frames/s"),
        figure(number(n.sockets), "sockets running"),
        figure(number(n.connections), "device connections"),
        figure(number(n.shards), "shards")),
      el("div", { class: meterClass, title: Math.round(used * 100) + "% of capacity used" },
        el("div")),
      el("div", { class: "note" }, Math.round(used * 100) + "% of " + number(n.capacity) + " frames/s capacity used"
        + " · devices connect to " + (n.edge || "?") + " · reported " + ago(n.reportedAt)));
  });
  // The meter's width is set through the DOM: the page's policy allows no inline style attribute.
  $("nodes").replaceChildren(...(cards.length ? cards : [el("p", { class: "quiet" }, "no members")]));
  nodes.forEach((n, i) => {
    const bar = cards[i].querySelector(".meter > div");
    if (bar && n.capacity > 0) {
      bar.style.width = Math.min(100, (100 * n.framesPerSecond) / n.capacity) + "%";
    }
  });
}

function figure(value, label) {
  return el("div", { class: "figure" }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
}

function drawHot(nodes) {
  const hot = [];
  for (const n of nodes) {
    for (const s of n.hotSockets || []) {
      hot.push({ ...s, node: n.node });
    }
  }
  hot.sort((a, b) => b.framesPerSecond - a.framesPerSecond);
  fill("hot", hot.slice(0, 15).map((s) => el("tr", {},
    el("td", { class: "mono" }, s.socketId),
    el("td", { class: "mono" }, hostPort(s.node)),
    el("td", { class: "num" }, number(s.framesPerSecond, 1)),
    el("td", { class: "num" }, bytes(s.bytesPerSecond) + "/s"),
    el("td", {}, s.hotSinceMillis ? duration(Date.now() - s.hotSinceMillis) : ""))),
  "no socket is above the threshold now", 5);
}

// ------------------------------------------------------------------ migrations

function drawMigrations(migrations) {
  const first = seenMigrations === null;
  const seen = seenMigrations || new Set();
  const rows = migrations.map((m) => {
    const live = LIVE_STATUSES.has(m.status);
    const arrived = !first && !seen.has(m.id);
    seen.add(m.id);
    return el("tr", { class: (live ? "live" : "") + (arrived ? " new" : ""), "data-migration": m.id },
      el("td", {}, when(m.startedAt)),
      el("td", { class: "mono" }, migrated(m)),
      el("td", {}, m.cause),
      el("td", {}, fromTo(m.from, m.to)),
      el("td", {}, m.status, m.note ? el("div", { class: "note" }, m.note) : null),
      el("td", { class: "num" }, m.pauseMs !== undefined && m.pauseMs !== null ? number(m.pauseMs) + " ms" : ""),
      el("td", { class: "num" }, m.framesPerSecond ? number(m.framesPerSecond, 1) + " frames/s" : ""));
  });
  seenMigrations = seen;
  fill("migrations", rows, "no migration recorded", 7);
}

/** What moved: a socket, a drained shard, or a whole drain. */
function migrated(m) {
  if (m.socketId && m.socketId !== "*") {
    return m.socketId;
  }
  if (m.shardId && m.shardId !== "*") {
    return "shard " + m.shardId + " (its sockets)";
  }
  const parts = [];
  if (m.shards !== undefined && m.shards !== null) {
    parts.push(number(m.shards) + " shards");
  }
  if (m.sockets !== undefined && m.sockets !== null) {
    parts.push(number(m.sockets) + " sockets");
  }
  return "the whole node" + (parts.length ? " (" + parts.join(", ") + ")" : "");
}

// ------------------------------------------------------------------ links and parked batches

function drawLinks(links) {
  fill("links", links.slice(0, LINKS_SHOWN).map((l) => el("tr", { class: l.state === "waiting" ? "live" : "" },
    el("td", {}, l.state, l.waiting ? el("div", { class: "note" }, l.waiting + " waits") : null,
      l.reason ? el("div", { class: "note" }, l.reason) : null),
    el("td", { class: "mono" }, "a: " + l.a, el("br"), "b: " + l.b),
    el("td", { class: "num" }, l.framesAtoB !== undefined ? number(l.framesAtoB) : "–"),
    el("td", { class: "num" }, l.framesBtoA !== undefined ? number(l.framesBtoA) : "–"),
    el("td", {}, when(l.since)))),
  "no link", 5);
}

function drawParked(parked) {
  fill("parked", parked.map((p) => el("tr", { "data-parked": p.id },
    el("td", {}, when(p.parkedAt), p.replayedAt ? el("div", { class: "note" }, "replayed " + ago(p.replayedAt)) : null),
    el("td", { class: "mono" }, p.socketId),
    el("td", {}, p.mapping + " v" + p.mappingVersion + ", " + p.event),
    el("td", { class: "num" }, p.seqFrom + "–" + p.seqTo),
    el("td", {}, p.error, el("div", { class: "note" }, number(p.attempts) + " attempts")),
    el("td", {}, el("button", { type: "button", onclick: (e) => replay(p, e.target) }, "Replay")))),
  "no parked batch", 6);
}

// ------------------------------------------------------------------ actions

function say(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = kind || "";
  box.hidden = false;
}

/** What a refused action tells the operator; a 403 is the role, the body says nothing more. */
function refusal(e, what) {
  if (e instanceof Refused && e.status === 403) {
    return "Not allowed: " + what + " needs an operator key (role operator or admin); this key's role is lower.";
  }
  return "Could not " + what + ": " + describe(e);
}

async function replay(batch, button) {
  button.disabled = true;
  try {
    const r = await api("POST", "/api/parked/" + encodeURIComponent(batch.id) + "/replay");
    say("Batch of " + batch.socketId + " (frames " + batch.seqFrom + "–" + batch.seqTo + ") sent again: endpoint "
      + "answered " + r.status + ".", "good");
    tick = 0; // read the parked batches again now
    refresh();
  } catch (e) {
    if (e instanceof Refused && e.status === 401) {
      askForKey("This node refused the key (401).");
      return;
    }
    say(refusal(e, "replay a batch"), "bad");
    button.disabled = false;
  }
}

async function drain(node, on) {
  const question = on
    ? "Drain " + node + "? Its devices are redirected to other nodes, its shards move away and it stops being"
      + " ready, until you stop draining it."
    : "Stop draining " + node + "? It takes new shards and devices again.";
  if (!confirm(question)) {
    return;
  }
  try {
    await api(on ? "POST" : "DELETE", "/api/nodes/" + encodeURIComponent(node) + "/drain");
    say(on ? node + " is draining: watch its shards move in Migrations." : node + " is no longer draining.", "good");
    refresh();
  } catch (e) {
    if (e instanceof Refused && e.status === 401) {
      askForKey("This node refused the key (401).");
      return;
    }
    say(refusal(e, on ? "drain a node" : "stop draining a node"), "bad");
  }
}

// ------------------------------------------------------------------ wiring

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = $("key").value.trim();
    if (typed) {
      sessionStorage.setItem(KEY_ITEM, typed);
      $("key").value = "";
      start();
    }
  });
  $("forget").addEventListener("click", () => askForKey("Key forgotten in this tab."));
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume refresh" : "Pause refresh";
    if (paused) {
      stop();
      $("refreshed").textContent = "refresh paused";
    } else {
      refresh();
    }
  });
  // A hidden tab stops asking the node; it catches up when shown again.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && key && !paused) {
      refresh();
    } else {
      stop();
    }
  });
  takeKeyFromFragment();
  start();
});
