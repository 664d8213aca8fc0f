#!/usr/bin/env bash
# Runs a local multi-node Berth cluster on this machine: `scripts/cluster.sh --help` lists the
# commands, `scripts/cluster.sh COMMAND --help` explains one (the texts are in help_for below).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

EDGE_BASE=7000
WS_BASE=7080
MQTT_BASE=1890
MGMT_BASE=8550
REMOTE_BASE=2550
H2_PORT="${BERTH_H2_PORT:-9092}"
UP_TIMEOUT="${BERTH_UP_TIMEOUT:-240}"
COMMANDS=(up status down stop kill pause resume start logs)

help_all() {
  cat <<EOF
Runs a local multi-node Berth cluster on this machine.

  scripts/cluster.sh up [-n N] [--db JDBC_URL] [--plaintext] [-- -Dkey=value ...]
                                start N nodes (default 3), wait until all are Up and ready
  scripts/cluster.sh status     the nodes, their ports and state, and the cluster's members
  scripts/cluster.sh down       stop every node (a graceful leave) and the embedded database
  scripts/cluster.sh stop I     stop node I gracefully (it leaves, its shards hand off)
  scripts/cluster.sh kill I     kill -9 node I, for fault drills
  scripts/cluster.sh pause I    stop node I with SIGSTOP (a frozen process), for fault drills
  scripts/cluster.sh resume I   let a paused node I go on (SIGCONT)
  scripts/cluster.sh start I    start node I again (after kill) with the settings of \`up\`
  scripts/cluster.sh logs I     follow node I's log

Each command takes --help. Node i listens for devices on TCP 7000+i (TLS), on WebSocket
7080+i (wss://127.0.0.1:7080+i/devices) and on MQTT 1890+i (docs/edges.md), serves management
HTTP on 8550+i and cluster remoting on 2550+i. State, PIDs and logs live in \$BERTH_RUN_DIR (default
.berth/cluster; now $RUN_DIR).
EOF
}

# The help of one command; its first line is the usage that errors repeat.
help_for() {
  case "$1" in
    up) cat <<EOF ;;
usage: scripts/cluster.sh up [-n N] [--db JDBC_URL] [--plaintext] [-- -Dkey=value ...]

Starts N nodes and waits (at most \$BERTH_UP_TIMEOUT s, now $UP_TIMEOUT) until every member is Up
and every node answers /ready, then prints the nodes, the database and the device secret. Builds
the node jar first when it is missing or older than the sources.

  -n N           how many nodes, 1 to 9 (default 3)
  --db JDBC_URL  the PostgreSQL database the nodes share, created if missing (the user needs
                 CREATEDB), user and password from BERTH_DB_USER (default postgres) and
                 BERTH_DB_PASSWORD; without it, an embedded H2 server on
                 127.0.0.1:\$BERTH_H2_PORT (now $H2_PORT) with its files in the run directory
  --plaintext    devices connect without TLS (tokens and data cross the network readable); by
                 default the nodes serve TLS with certificates from a local CA made in
                 \$BERTH_RUN_DIR/tls (kept across runs), which scripts/device.sh trusts, and
                 accept device certificates from that CA in place of tokens (docs/tls.md);
                 the nodes always talk TLS to each other with the same CA's certificates,
                 and nothing without one joins them (docs/cluster-tls.md)
  -- ...         everything after -- goes to every node's JVM, e.g. -Dberth.edge.idle-timeout=30s

The device secret is \$BERTH_SECRET if set, else the one an earlier \`up\` made. Likewise the key
that encrypts mapping secrets at rest: \$BERTH_SECRETS_KEYS, else the one an earlier \`up\` made
in \$BERTH_RUN_DIR/secrets-keys (docs/secrets.md).
EOF
    status) cat <<EOF ;;
usage: scripts/cluster.sh status

Prints each node of the cluster started from $RUN_DIR (PID, ports, ready or not), the
database and the device secret, and the members as one running node sees them.
EOF
    down) cat <<EOF ;;
usage: scripts/cluster.sh down

Stops every node with SIGTERM (a graceful leave: shards hand off; kill -9 after 90 s) and the
embedded H2 server, whose data stays in $RUN_DIR/data.
EOF
    kill) cat <<EOF ;;
usage: scripts/cluster.sh kill I

Kills node I with SIGKILL, for fault drills: its connections and the sessions it hosted are gone
until the others down it, which they do once it is unreachable and its node lease lapsed; its
sessions serve again elsewhere about 7 s after the kill with the defaults (docs/failover.md).
\`scripts/cluster.sh start I\` brings it back.
EOF
    stop) cat <<EOF ;;
usage: scripts/cluster.sh stop I

Stops node I as a rolling restart or an upgrade does (SIGTERM): it closes its devices' connections
with a resumable code, hands its shards off and leaves the cluster; waits (at most 90 s, then
kill -9) until it exited. \`scripts/cluster.sh start I\` starts it again.
EOF
    pause) cat <<EOF ;;
usage: scripts/cluster.sh pause I

Freezes node I with SIGSTOP, as a long GC pause or a stalled VM would: its connections stay open
but nothing answers. Past the failure detection and its node lease (about 5 s) the others down it
and serve its sessions; after \`scripts/cluster.sh resume I\` it finds itself downed and exits
(code 3) without writing to any session again (docs/failover.md).
EOF
    resume) cat <<EOF ;;
usage: scripts/cluster.sh resume I

Lets node I, frozen by \`scripts/cluster.sh pause I\`, go on (SIGCONT).
EOF
    start) cat <<EOF ;;
usage: scripts/cluster.sh start I

Starts node I again (after kill) with the settings \`up\` was given, and waits until it is Up
and ready.
EOF
    logs) cat <<EOF ;;
usage: scripts/cluster.sh logs I

Follows node I's log ($RUN_DIR/node-I.log) from its last 100 lines; Ctrl-C ends it.
EOF
  esac
}

# A wrong command line: what was wrong, the usage it should follow, and where the help is.
usage_error() {
  local cmd=$1
  say "error: $2"
  if [[ -n "$cmd" ]]; then
    say "$(help_for "$cmd" | sed -n 1p)"
  else
    say "usage: scripts/cluster.sh up|status|down|kill I|start I|logs I [--help]"
  fi
  say "(scripts/cluster.sh ${cmd:+$cmd }--help says more)"
  exit 2
}

# True when the arguments before any -- ask for help.
asks_help() {
  local a
  for a in "$@"; do
    case "$a" in
      --) return 1 ;;
      -h|--help) return 0 ;;
    esac
  done
  return 1
}

no_arguments() {
  local cmd=$1; shift
  (($# == 0)) || usage_error "$cmd" "$cmd takes no arguments (got: $*)"
}

# The node index that kill, start and logs take: a node of the cluster started from RUN_DIR.
node_index() {
  local cmd=$1; shift
  (($# > 0)) || usage_error "$cmd" "$cmd needs the index of a node (1 for the first)"
  (($# == 1)) || usage_error "$cmd" "$cmd takes one node index (got: $*)"
  [[ "$1" =~ ^[0-9]+$ ]] || usage_error "$cmd" "not a node index: $1"
  [[ -f "$RUN_DIR/settings" ]] || die "no cluster was started from $RUN_DIR (scripts/cluster.sh up starts one)"
  local n
  n=$(node_count)
  ((10#$1 >= 1 && 10#$1 <= n)) || die "there is no node $1: the cluster started from $RUN_DIR has nodes 1 to $n"
  echo $((10#$1))
}

node_pid_file() { echo "$RUN_DIR/node-$1.pid"; }
node_log() { echo "$RUN_DIR/node-$1.log"; }

nodes() { if (($1 == 1)); then echo "1 node"; else echo "$1 nodes"; fi; }

node_count() { [[ -f "$RUN_DIR/nodes" ]] && cat "$RUN_DIR/nodes" || echo 0; }

running_nodes() {
  local n i
  n=$(node_count)
  for ((i = 1; i <= n; i++)); do
    if alive "$(pid_of "$(node_pid_file "$i")")"; then echo "$i"; fi
  done
}

# The management port serves HTTPS with the run folder's CA; operator routes need the admin key.
mgmt_url() { printf 'https://127.0.0.1:%s' $((MGMT_BASE + $1)); }
http_get() {
  # The key goes in a header file, not on the command line, where any local user could read it.
  curl -s --max-time 3 --cacert "$RUN_DIR/tls/ca.pem" -H @"$RUN_DIR/admin-header" "$1" 2>/dev/null || true
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$RUN_DIR/tls/ca.pem" "$1" 2>/dev/null || echo 000; }

up_count() {
  # Members with status Up, as seen by node $1.
  { http_get "$(mgmt_url "$1")/cluster/members" | grep -o '"status":"Up"' || true; } | wc -l | tr -d ' '
}

show_log_tail() {
  say "---- last lines of $1 ----"
  tail -n 40 "$1" >&2 || true
  say "----"
}

start_h2() {
  local pid
  pid=$(pid_of "$RUN_DIR/h2.pid")
  if alive "$pid"; then return; fi
  say "starting embedded H2 database on 127.0.0.1:$H2_PORT (files in $RUN_DIR/data)"
  nohup java -Xmx256m -cp "$JAR" io.berth.persistence.EmbeddedDatabase --port "$H2_PORT" --dir "$RUN_DIR/data" \
    >"$RUN_DIR/h2.log" 2>&1 &
  echo $! >"$RUN_DIR/h2.pid"
  local deadline=$((SECONDS + 60))
  until grep -q "H2 server ready" "$RUN_DIR/h2.log" 2>/dev/null; do
    if ! alive "$(pid_of "$RUN_DIR/h2.pid")"; then
      show_log_tail "$RUN_DIR/h2.log"
      die "the H2 server did not start (is port $H2_PORT taken? set BERTH_H2_PORT)"
    fi
    ((SECONDS < deadline)) || die "the H2 server did not become ready within 60 s"
    sleep 0.2
  done
}

start_node() {
  local i=$1
  local pid
  pid=$(pid_of "$(node_pid_file "$i")")
  if alive "$pid"; then die "node $i is already running (pid $pid)"; fi
  # shellcheck disable=SC1091
  source "$RUN_DIR/settings"
  local seeds="pekko://berth@127.0.0.1:$((REMOTE_BASE + 1))"
  if ((NODES > 1)); then seeds="$seeds,pekko://berth@127.0.0.1:$((REMOTE_BASE + 2))"; fi
  # Only the first seed may form a cluster by itself, when no other seed answers in time
  # (seed-node-timeout, 5 s). Started again into a running cluster (start I), node 1 would do
  # that whenever a busy node answers late: a second cluster beside the first. So a node started
  # into a running cluster lists a running node first, and never forms one (docs/cluster.md).
  if [[ -n "${2:-}" ]]; then
    local j first=""
    for j in $(running_nodes); do
      if ((j != i)); then first="pekko://berth@127.0.0.1:$((REMOTE_BASE + j))"; break; fi
    done
    if [[ -n "$first" ]]; then
      seeds="$first$(tr ',' '\n' <<<"$seeds" | grep -vxF "$first" | sed 's/^/,/' | tr -d '\n')"
    fi
  fi
  local -a jopts
  read -r -a jopts <<<"${BERTH_NODE_JAVA_OPTS:--Xms128m -Xmx384m -XX:+UseSerialGC}"
  (
    export BERTH_SECRET="$SECRET" BERTH_SECRETS_KEYS="$SECRETS_KEYS"
    export BERTH_DB_URL="$DB_URL" BERTH_DB_USER="$DB_USER" BERTH_DB_PASSWORD="$DB_PASSWORD"
    export BERTH_EDGE_HOST=127.0.0.1 BERTH_EDGE_PORT=$((EDGE_BASE + i))
    # Browsers and apps: the same sessions over WebSocket, with the device port's TLS (docs/edges.md).
    export BERTH_WEBSOCKET=on BERTH_WEBSOCKET_PORT=$((WS_BASE + i))
    export BERTH_MQTT=on BERTH_MQTT_PORT=$((MQTT_BASE + i))
    export BERTH_MANAGEMENT_PORT=$((MGMT_BASE + i)) BERTH_REMOTE_PORT=$((REMOTE_BASE + i))
    export BERTH_SEED_NODES="$seeds" BERTH_DB_POOL_SIZE="${BERTH_DB_POOL_SIZE:-5}"
    # Operators call the management port over HTTPS with the node's certificate, and with a key:
    # the run folder's admin key, which the nodes know only by its SHA-256 (docs/operator-access.md).
    export BERTH_OPERATOR_KEYS="admin:admin:$ADMIN_KEY_SHA256"
    export BERTH_MANAGEMENT_TLS=true BERTH_MANAGEMENT_TLS_CERTIFICATE="$RUN_DIR/tls/node-$i.pem"
    export BERTH_MANAGEMENT_TLS_PRIVATE_KEY="$RUN_DIR/tls/node-$i-key.pem"
    # The nodes talk TLS to each other, each with its certificate from the run folder's CA, which
    # names it a node: a process without one cannot join (docs/cluster-tls.md). --plaintext
    # concerns the device port only.
    export BERTH_CLUSTER_TLS=true BERTH_CLUSTER_TLS_CERTIFICATE="$RUN_DIR/tls/node-$i.pem"
    export BERTH_CLUSTER_TLS_PRIVATE_KEY="$RUN_DIR/tls/node-$i-key.pem" BERTH_CLUSTER_TLS_TRUST="$RUN_DIR/tls/ca.pem"
    if [[ "${TLS:-off}" == on ]]; then
      # Devices connect over TLS with the run folder's CA; they may also present a certificate
      # from it (java -cp JAR io.berth.node.tls.CertCli device --dir RUN_DIR/tls --id ID),
      # which then stands for the token (docs/tls.md).
      export BERTH_EDGE_TLS=true BERTH_EDGE_TLS_CERTIFICATE="$RUN_DIR/tls/node-$i.pem"
      export BERTH_EDGE_TLS_PRIVATE_KEY="$RUN_DIR/tls/node-$i-key.pem" BERTH_EDGE_TLS_TRUST="$RUN_DIR/tls/ca.pem"
      export BERTH_EDGE_TLS_CLIENT_AUTH=optional
    else
      export BERTH_EDGE_TLS=false
    fi
    # A local cluster creates the --db database when it is missing (the user needs CREATEDB).
    export BERTH_DB_CREATE="${BERTH_DB_CREATE:-true}"
    exec nohup java "${jopts[@]}" -Djdk.tls.rejectClientInitiatedRenegotiation=true "${NODE_OPTS[@]}" -jar "$JAR" >>"$(node_log "$i")" 2>&1
  ) &
  echo $! >"$(node_pid_file "$i")"
  say "node $i started (pid $!): devices 127.0.0.1:$((EDGE_BASE + i)), WebSocket 127.0.0.1:$((WS_BASE + i))/devices, MQTT 127.0.0.1:$((MQTT_BASE + i)), management $(mgmt_url "$i")"
}

# Waits (bounded) until `expected` members are Up and every running node answers /ready.
wait_ready() {
  local expected=$1
  local deadline=$((SECONDS + UP_TIMEOUT))
  local last=""
  while true; do
    local i up=0 ready=0 total=0
    for i in $(seq 1 "$(node_count)"); do
      local pid
      pid=$(pid_of "$(node_pid_file "$i")")
      [[ -n "$pid" ]] || continue
      if ! alive "$pid"; then
        show_log_tail "$(node_log "$i")"
        die "node $i (pid $pid) exited during start-up; its log: $(node_log "$i")"
      fi
      total=$((total + 1))
      local c
      c=$(up_count "$i")
      ((c > up)) && up=$c
      [[ "$(http_code "$(mgmt_url "$i")/ready")" == "200" ]] && ready=$((ready + 1))
    done
    local line="members up: $up/$expected, nodes ready: $ready/$total"
    if [[ "$line" != "$last" ]]; then say "$line"; last=$line; fi
    if ((up >= expected && ready == total)); then return 0; fi
    if ((SECONDS >= deadline)); then
      for i in $(seq 1 "$(node_count)"); do show_log_tail "$(node_log "$i")"; done
      die "the cluster was not ready within $UP_TIMEOUT s (set BERTH_UP_TIMEOUT to wait longer)"
    fi
    sleep 1
  done
}

print_table() {
  # shellcheck disable=SC1091
  source "$RUN_DIR/settings"
  printf '\n%-6s %-8s %-18s %-24s %-18s %s\n' NODE PID DEVICES MANAGEMENT REMOTING STATE
  local i
  for i in $(seq 1 "$(node_count)"); do
    local pid state
    pid=$(pid_of "$(node_pid_file "$i")")
    if alive "$pid"; then
      if [[ "$(http_code "$(mgmt_url "$i")/ready")" == "200" ]]; then state=ready; else state=not-ready; fi
    else
      state=stopped
    fi
    printf '%-6s %-8s %-18s %-24s %-18s %s\n' "$i" "${pid:--}" "127.0.0.1:$((EDGE_BASE + i))" \
      "$(mgmt_url "$i")" "127.0.0.1:$((REMOTE_BASE + i))" "$state"
  done
  printf '\ndatabase:      %s\n' "$DB_URL"
  if [[ "${TLS:-off}" == on ]]; then
    printf 'device TLS:    on; CA %s (scripts/device.sh trusts it)\n' "$RUN_DIR/tls/ca.pem"
  else
    printf 'device TLS:    OFF (--plaintext): tokens cross the network readable\n'
  fi
  printf 'cluster TLS:   on; nodes of CA %s only\n' "$RUN_DIR/tls/ca.pem"
  printf 'device secret: %s\n' "$SECRET"
  printf 'management:    HTTPS with CA %s; operator key of role admin in %s (mode 0600; as a curl header in %s)\n' \
    "$RUN_DIR/tls/ca.pem" "$RUN_DIR/admin-key" "$RUN_DIR/admin-header"
  # The key goes after '#', which a browser never sends; the command reads it, the output never shows it.
  printf 'page:          %s/ui/ (on any node; it asks for an operator key)\n' "$(mgmt_url 1)"
  printf '               paste the key of %s into its form (a key in a command line is visible to every local user)\n' \
    "$RUN_DIR/admin-key"
  printf 'metrics:       %s/metrics on each node, with a key (deploy/prometheus/prometheus.yml scrapes them)\n' \
    "$(mgmt_url 1)"
  if [[ "${TLS:-off}" == on ]]; then
    printf 'WebSocket:     wss://127.0.0.1:%s/devices on node 1 (7080+i on node i; protocol/js/berth-device.js, docs/edges.md)\n' $((WS_BASE + 1))
  else
    printf 'WebSocket:     ws://127.0.0.1:%s/devices on node 1 (7080+i on node i; protocol/js/berth-device.js, docs/edges.md)\n' $((WS_BASE + 1))
  fi
  printf 'MQTT:          127.0.0.1:%s on node 1 (1890+i on node i; client id = device id, password = token, docs/edges.md)\n' \
    $((MQTT_BASE + 1))
  printf 'logs:          %s\n' "$RUN_DIR"
  printf '\ntry:  echo hello | scripts/device.sh --connect 127.0.0.1:%s --device demo --mapping echo --expect 1\n' $((EDGE_BASE + 1))
  printf '      curl -s --cacert %s -H @%s %s/api/sockets/demo\n\n' \
    "$RUN_DIR/tls/ca.pem" "$RUN_DIR/admin-header" "$(mgmt_url 1)"
}

cmd_up() {
  local n=3 db="" opts=() tls=on
  while (($#)); do
    case "$1" in
      -n)
        (($# >= 2)) || usage_error up "-n needs a number of nodes, 1 to 9"
        [[ "$2" =~ ^[1-9]$ ]] || usage_error up "-n needs a number of nodes, 1 to 9 (got: $2)"
        n=$2; shift 2 ;;
      --db)
        (($# >= 2)) || usage_error up "--db needs a JDBC URL, e.g. jdbc:postgresql://127.0.0.1:5432/berth"
        [[ "$2" == jdbc:* ]] || usage_error up "--db needs a JDBC URL, e.g. jdbc:postgresql://127.0.0.1:5432/berth (got: $2)"
        db=$2; shift 2 ;;
      --plaintext) tls=off; shift ;;
      --) shift; opts=("$@"); break ;;
      -*) usage_error up "unknown option: $1 (options for the nodes go after --)" ;;
      *)
        if [[ "$1" =~ ^[0-9]+$ ]]; then usage_error up "unexpected argument: $1 (the number of nodes goes after -n: up -n $1)"; fi
        usage_error up "unexpected argument: $1" ;;
    esac
  done
  if [[ -n "$(running_nodes)" ]]; then die "a cluster is already running from $RUN_DIR: scripts/cluster.sh down first"; fi
  command -v curl >/dev/null 2>&1 || die "curl is needed to watch the nodes start (apt-get install curl)"
  mkdir -p "$RUN_DIR"
  ensure_built

  local secret="${BERTH_SECRET:-}"
  if [[ -z "$secret" ]]; then
    if [[ -s "$RUN_DIR/secret" ]]; then
      secret=$(cat "$RUN_DIR/secret")
    else
      secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
    fi
  fi
  (umask 077 && printf '%s\n' "$secret" >"$RUN_DIR/secret")
  # The key mapping secrets are sealed with in the database (docs/secrets.md): kept across runs,
  # as the rows it sealed are.
  local secrets_keys="${BERTH_SECRETS_KEYS:-}"
  if [[ -z "$secrets_keys" ]]; then
    if [[ -s "$RUN_DIR/secrets-keys" ]]; then
      secrets_keys=$(cat "$RUN_DIR/secrets-keys")
    else
      secrets_keys="local=$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
    fi
  fi
  (umask 077 && printf '%s\n' "$secrets_keys" >"$RUN_DIR/secrets-keys") && chmod 600 "$RUN_DIR/secrets-keys"

  # The operators' admin key (docs/operator-access.md), kept across runs like the secret. Shown in
  # full only when made; the nodes get its SHA-256, never the key.
  local admin_key="" made_admin_key=no
  if [[ -s "$RUN_DIR/admin-key" ]]; then
    admin_key=$(cat "$RUN_DIR/admin-key")
  else
    admin_key="admin.$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    made_admin_key=yes
  fi
  (umask 077 && printf '%s\n' "$admin_key" >"$RUN_DIR/admin-key") && chmod 600 "$RUN_DIR/admin-key"
  # The same key as a header file for curl -H @FILE, which keeps it off command lines.
  (umask 077 && printf 'Authorization: Bearer %s\n' "$admin_key" >"$RUN_DIR/admin-header") \
    && chmod 600 "$RUN_DIR/admin-header"

  local db_user db_password
  if [[ -z "$db" ]]; then
    start_h2
    db="jdbc:h2:tcp://127.0.0.1:$H2_PORT/berth"
    db_user=sa
    db_password=""
  else
    db_user="${BERTH_DB_USER:-postgres}"
    db_password="${BERTH_DB_PASSWORD:-}"
  fi
  # A local CA and one certificate per node (localhost, 127.0.0.1), kept across runs: for the
  # links between the nodes always, and for the device port unless --plaintext.
  java -Xmx128m -cp "$JAR" io.berth.node.tls.CertCli init --dir "$RUN_DIR/tls" --nodes "$n" >/dev/null \
    || die "could not make the local CA and node certificates in $RUN_DIR/tls"
  local NODE_OPTS=("${opts[@]}")
  # The settings hold the device secret, the secrets key, the admin key and the database
  # password: for this user's eyes only.
  (umask 077 && : >"$RUN_DIR/settings") && chmod 600 "$RUN_DIR/settings"
  {
    printf 'NODES=%q\nSECRET=%q\nSECRETS_KEYS=%q\nDB_URL=%q\nDB_USER=%q\nDB_PASSWORD=%q\nTLS=%q\nADMIN_KEY=%q\nADMIN_KEY_SHA256=%q\n' \
      "$n" "$secret" "$secrets_keys" "$db" "$db_user" "$db_password" "$tls" "$admin_key" \
      "$(printf '%s' "$admin_key" | sha256sum | cut -d' ' -f1)"
    declare -p NODE_OPTS
  } >"$RUN_DIR/settings"
  echo "$n" >"$RUN_DIR/nodes"

  say "starting $(nodes "$n") (logs in $RUN_DIR)"
  local i
  for ((i = 1; i <= n; i++)); do
    : >"$(node_log "$i")"
    start_node "$i"
  done
  wait_ready "$n"
  say "cluster is up"
  print_table
  if [[ "$made_admin_key" == yes ]]; then
    printf 'admin key (shown this once; kept in %s): %s\n\n' "$RUN_DIR/admin-key" "$admin_key"
  fi
}

cmd_status() {
  no_arguments status "$@"
  [[ -f "$RUN_DIR/settings" ]] || die "no cluster was started from $RUN_DIR (scripts/cluster.sh up starts one)"
  print_table
  local first
  first=$(running_nodes | sed -n 1p)
  if [[ -n "$first" ]]; then
    echo "members (as seen by node $first):"
    http_get "$(mgmt_url "$first")/cluster/members" \
      | grep -o '"node":"[^"]*"[^}]*"status":"[^"]*"' \
      | sed 's/"node":"\([^"]*\)".*"status":"\([^"]*\)"/  \1  \2/' || true
  fi
}

cmd_down() {
  no_arguments down "$@"
  local n i pid stopped=0
  n=$(node_count)
  for ((i = 1; i <= n; i++)); do
    pid=$(pid_of "$(node_pid_file "$i")")
    if alive "$pid"; then
      # A paused node (cluster.sh pause) would not see the TERM until it goes on.
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
  done
  ((stopped > 0)) && say "stopping $(nodes "$stopped") (graceful leave: shards hand off)"
  local deadline=$((SECONDS + 90))
  for ((i = 1; i <= n; i++)); do
    pid=$(pid_of "$(node_pid_file "$i")")
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.5; done
    if alive "$pid"; then
      say "node $i did not stop within 90 s: kill -9 $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(node_pid_file "$i")"
  done
  pid=$(pid_of "$RUN_DIR/h2.pid")
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    say "embedded H2 stopped (data kept in $RUN_DIR/data)"
  fi
  rm -f "$RUN_DIR/h2.pid"
  say "cluster is down"
}

# The PID of running node I, for a command that signals it; dies when it is not running.
running_pid() {
  local pid
  pid=$(pid_of "$(node_pid_file "$1")")
  alive "$pid" || die "node $1 is not running (scripts/cluster.sh status shows which are)"
  echo "$pid"
}

cmd_stop() {
  local i pid
  i=$(node_index stop "$@")
  pid=$(running_pid "$i")
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid"
  say "stopping node $i (pid $pid): a graceful leave, its shards hand off"
  local deadline=$((SECONDS + 90))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    say "node $i did not stop within 90 s: kill -9 $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(node_pid_file "$i")"
  say "node $i stopped; scripts/cluster.sh start $i starts it again"
}

cmd_kill() {
  local i pid
  i=$(node_index kill "$@")
  pid=$(running_pid "$i")
  kill -KILL "$pid"
  rm -f "$(node_pid_file "$i")"
  say "node $i (pid $pid) killed with SIGKILL"
}

cmd_pause() {
  local i pid
  i=$(node_index pause "$@")
  pid=$(running_pid "$i")
  kill -STOP "$pid"
  say "node $i (pid $pid) paused with SIGSTOP; scripts/cluster.sh resume $i lets it go on"
}

cmd_resume() {
  local i pid
  i=$(node_index resume "$@")
  pid=$(running_pid "$i")
  kill -CONT "$pid"
  say "node $i (pid $pid) resumed with SIGCONT"
}

cmd_start() {
  local i
  i=$(node_index start "$@")
  ensure_built
  start_node "$i" joining
  wait_ready "$(running_nodes | wc -l | tr -d ' ')"
  print_table
}

cmd_logs() {
  local i
  i=$(node_index logs "$@")
  [[ -f "$(node_log "$i")" ]] || die "node $i has no log yet: $(node_log "$i")"
  exec tail -n 100 -f "$(node_log "$i")"
}

cmd=${1:-}
(($# == 0)) || shift
case "$cmd" in
  up|status|down|stop|kill|pause|resume|start|logs)
    if asks_help "$@"; then help_for "$cmd"; exit 0; fi
    "cmd_$cmd" "$@" ;;
  -h|--help) help_all ;;
  help)
    if (($# == 0)); then help_all
    elif [[ " ${COMMANDS[*]} " == *" $1 "* ]]; then help_for "$1"
    else usage_error "" "no such command: $1"
    fi ;;
  "") usage_error "" "no command given" ;;
  -*) usage_error "" "unknown option: $cmd (options go after the command, e.g. up -n 5)" ;;
  *) usage_error "" "no such command: $cmd" ;;
esac
