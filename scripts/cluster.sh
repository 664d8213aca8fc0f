#!/usr/bin/env bash
# Runs a local multi-node Berth cluster on this machine.
#
#   scripts/cluster.sh up [-n N] [--db JDBC_URL] [-- -Dkey=value ...]
#   scripts/cluster.sh status
#   scripts/cluster.sh down
#   scripts/cluster.sh kill I      # kill -9 of node I, for fault drills
#   scripts/cluster.sh start I     # start node I again (after kill) with the settings of `up`
#   scripts/cluster.sh logs I      # follow node I's log
#
# Node i listens for devices on TCP 7000+i, serves management HTTP on 8550+i and cluster
# remoting on 2550+i. Without --db the nodes share an embedded H2 server (no install needed);
# with --db they use that PostgreSQL database, created if missing (user and password from
# BERTH_DB_USER / BERTH_DB_PASSWORD).
# Options after -- go to every node. State, PIDs and logs live in $BERTH_RUN_DIR
# (default .berth/cluster).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

EDGE_BASE=7000
MGMT_BASE=8550
REMOTE_BASE=2550
H2_PORT="${BERTH_H2_PORT:-9092}"
UP_TIMEOUT="${BERTH_UP_TIMEOUT:-240}"

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

node_pid_file() { echo "$RUN_DIR/node-$1.pid"; }
node_log() { echo "$RUN_DIR/node-$1.log"; }

node_count() { [[ -f "$RUN_DIR/nodes" ]] && cat "$RUN_DIR/nodes" || echo 0; }

running_nodes() {
  local n i
  n=$(node_count)
  for ((i = 1; i <= n; i++)); do
    if alive "$(pid_of "$(node_pid_file "$i")")"; then echo "$i"; fi
  done
}

http_get() { curl -s --max-time 3 "$1" 2>/dev/null || true; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || echo 000; }

up_count() {
  # Members with status Up, as seen by node $1.
  { http_get "http://127.0.0.1:$((MGMT_BASE + $1))/cluster/members" | grep -o '"status":"Up"' || true; } | wc -l | tr -d ' '
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
  local -a jopts
  read -r -a jopts <<<"${BERTH_NODE_JAVA_OPTS:--Xms128m -Xmx384m -XX:+UseSerialGC}"
  (
    export BERTH_SECRET="$SECRET" BERTH_DB_URL="$DB_URL" BERTH_DB_USER="$DB_USER" BERTH_DB_PASSWORD="$DB_PASSWORD"
    export BERTH_EDGE_HOST=127.0.0.1 BERTH_EDGE_PORT=$((EDGE_BASE + i))
    export BERTH_MANAGEMENT_PORT=$((MGMT_BASE + i)) BERTH_REMOTE_PORT=$((REMOTE_BASE + i))
    export BERTH_SEED_NODES="$seeds" BERTH_DB_POOL_SIZE="${BERTH_DB_POOL_SIZE:-5}"
    # A local cluster creates the --db database when it is missing (the user needs CREATEDB).
    export BERTH_DB_CREATE="${BERTH_DB_CREATE:-true}"
    exec nohup java "${jopts[@]}" "${NODE_OPTS[@]}" -jar "$JAR" >>"$(node_log "$i")" 2>&1
  ) &
  echo $! >"$(node_pid_file "$i")"
  say "node $i started (pid $!): devices 127.0.0.1:$((EDGE_BASE + i)), management http://127.0.0.1:$((MGMT_BASE + i))"
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
      [[ "$(http_code "http://127.0.0.1:$((MGMT_BASE + i))/ready")" == "200" ]] && ready=$((ready + 1))
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
      if [[ "$(http_code "http://127.0.0.1:$((MGMT_BASE + i))/ready")" == "200" ]]; then state=ready; else state=not-ready; fi
    else
      state=stopped
    fi
    printf '%-6s %-8s %-18s %-24s %-18s %s\n' "$i" "${pid:--}" "127.0.0.1:$((EDGE_BASE + i))" \
      "http://127.0.0.1:$((MGMT_BASE + i))" "127.0.0.1:$((REMOTE_BASE + i))" "$state"
  done
  printf '\ndatabase:      %s\n' "$DB_URL"
  printf 'device secret: %s\n' "$SECRET"
  printf 'logs:          %s\n' "$RUN_DIR"
  printf '\ntry:  echo hello | scripts/device.sh --connect 127.0.0.1:%s --device demo --mapping echo --expect 1\n' $((EDGE_BASE + 1))
  printf '      curl -s http://127.0.0.1:%s/api/sockets/demo\n\n' $((MGMT_BASE + 1))
}

cmd_up() {
  local n=3 db="" opts=()
  while (($#)); do
    case "$1" in
      -n) n=${2:?-n needs a number}; shift 2 ;;
      --db) db=${2:?--db needs a JDBC URL}; shift 2 ;;
      --) shift; opts=("$@"); break ;;
      -h|--help) usage 0 ;;
      *) say "unknown option: $1"; usage 1 ;;
    esac
  done
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 9)) || die "-n must be between 1 and 9"
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
  local NODE_OPTS=("${opts[@]}")
  {
    printf 'NODES=%q\nSECRET=%q\nDB_URL=%q\nDB_USER=%q\nDB_PASSWORD=%q\n' \
      "$n" "$secret" "$db" "$db_user" "$db_password"
    declare -p NODE_OPTS
  } >"$RUN_DIR/settings"
  echo "$n" >"$RUN_DIR/nodes"

  say "starting $n nodes (logs in $RUN_DIR)"
  local i
  for ((i = 1; i <= n; i++)); do
    : >"$(node_log "$i")"
    start_node "$i"
  done
  wait_ready "$n"
  say "cluster is up"
  print_table
}

cmd_status() {
  [[ -f "$RUN_DIR/settings" ]] || die "no cluster was started from $RUN_DIR"
  print_table
  local first
  first=$(running_nodes | sed -n 1p)
  if [[ -n "$first" ]]; then
    echo "members (as seen by node $first):"
    http_get "http://127.0.0.1:$((MGMT_BASE + first))/cluster/members" \
      | grep -o '"node":"[^"]*"[^}]*"status":"[^"]*"' \
      | sed 's/"node":"\([^"]*\)".*"status":"\([^"]*\)"/  \1  \2/' || true
  fi
}

cmd_down() {
  local n i pid stopped=0
  n=$(node_count)
  for ((i = 1; i <= n; i++)); do
    pid=$(pid_of "$(node_pid_file "$i")")
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
  done
  ((stopped > 0)) && say "stopping $stopped nodes (graceful leave: shards hand off)"
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

cmd_kill() {
  local i=${1:?usage: cluster.sh kill I}
  local pid
  pid=$(pid_of "$(node_pid_file "$i")")
  alive "$pid" || die "node $i is not running"
  kill -KILL "$pid"
  rm -f "$(node_pid_file "$i")"
  say "node $i (pid $pid) killed with SIGKILL"
}

cmd_start() {
  local i=${1:?usage: cluster.sh start I}
  [[ -f "$RUN_DIR/settings" ]] || die "no cluster was started from $RUN_DIR: use up first"
  ((i >= 1 && i <= $(node_count))) || die "node $i is not part of this cluster (1..$(node_count))"
  ensure_built
  start_node "$i"
  wait_ready "$(running_nodes | wc -l | tr -d ' ')"
  print_table
}

cmd_logs() {
  local i=${1:?usage: cluster.sh logs I}
  exec tail -n 100 -f "$(node_log "$i")"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  status) cmd_status ;;
  down) cmd_down ;;
  kill) shift; cmd_kill "$@" ;;
  start) shift; cmd_start "$@" ;;
  logs) shift; cmd_logs "$@" ;;
  -h|--help|help) usage 0 ;;
  *) usage 1 ;;
esac
