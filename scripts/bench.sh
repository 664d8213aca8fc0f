#!/usr/bin/env bash
# The benchmark harness: measures Berth side by side with its anchors in one run and prints a
# table of figures and ratios (also written to bench/target/last-run.md).
#   scripts/bench.sh [--quick] [SCENARIO...]
#     scenarios: endpoint, migration, relay, uplink, idle, journal, tls, failover (default: all)
#   scripts/bench.sh --help     this text
# relay also needs mosquitto (Debian: apt-get install mosquitto; or BERTH_BENCH_MOSQUITTO=path):
# the harness starts its own broker on a spare loopback port and stops that process at the end.
# idle starts a Berth node (cluster-node/target/berth-node.jar, or BERTH_BENCH_NODE_JAR) and its
# raw-TCP anchor each in a JVM of its own (options: BERTH_BENCH_IDLE_JAVA_OPTS), reads their memory
# with jcmd, and stops them by PID at the end; with BERTH_BENCH_IDLE_HISTOGRAM=DIR it also writes
# each server's heap growth per socket by class (jcmd GC.class_histogram) to DIR. journal's anchor
# is pgbench (Debian: apt-get install postgresql-client; or BERTH_BENCH_PGBENCH=path); without it
# journal runs without its anchor.
# tls measures a plaintext and a TLS edge side by side with Mosquitto's TLS listener as the anchor
# (mosquitto and berth-node.jar as above): memory per idle connection and connects/s with full
# handshakes (two nodes and the broker each in a process of its own, stopped by PID at the end),
# then uplink and relay rounds on in-harness clusters. Certificates come from a CA made for the run
# (bench/target/tls); BERTH_BENCH_TLS_PROVIDER=openssl|jdk picks the TLS provider (default: BoringSSL
# where it loads).
# failover starts three nodes (berth-node.jar as above, each in a JVM of its own, options:
# BERTH_BENCH_FAILOVER_JAVA_OPTS) with ~6,000 idle devices each, kills one with SIGKILL and times the
# devices' resumption elsewhere; then, on three fresh nodes, drains one (POST /api/nodes/{node}/drain).
# Uses PostgreSQL like scripts/test.sh: BERTH_BENCH_DB_URL (and _USER, _PASSWORD) if set, else
# the berth_bench database on 127.0.0.1:5432 (PostgreSQL 13 or later), dropped and created afresh
# for every run. Not a test: it never fails on a missed goal, only on an error.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SCENARIOS=(endpoint migration relay uplink idle journal tls failover)

# The command line is checked before the database is dropped and the harness built: a typo or a
# --help must cost nothing.
args=("$@")
while (($#)); do
  case "$1" in
    -h|--help) script_help "$0"; exit 0 ;;
    --quick) shift ;;
    --out) (($# >= 2)) || die "--out needs a file name"; shift 2 ;;
    --out=*) shift ;;
    -*) die "unknown option: $1 (scripts/bench.sh --help lists them)" ;;
    *)
      [[ " ${SCENARIOS[*]} " == *" $1 "* ]] || die "no such scenario: $1 (scenarios: ${SCENARIOS[*]})"
      shift ;;
  esac
done

require_java
command -v mvn >/dev/null 2>&1 || die "Maven not found: install Maven 3.8+ (Debian: apt-get install maven)"
BENCH_JAR="$ROOT/bench/target/berth-bench.jar"

if [[ -z "${BERTH_BENCH_DB_URL:-}" ]]; then
  if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 -t 3; then
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
    [[ -n "$version" ]] && pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  fi
  export PGPASSWORD="${BERTH_BENCH_DB_PASSWORD:-}"
  # A fresh database every run: a full run writes and deletes millions of journal rows, and where
  # autovacuum is off (as on the benchmark machine) or behind, an earlier run's dead rows and stale
  # planner statistics would slow the next one (BENCHMARKS.md). FORCE ends other sessions on it.
  psql -w -h 127.0.0.1 -U "${BERTH_BENCH_DB_USER:-postgres}" -d postgres -qc \
    "DROP DATABASE IF EXISTS berth_bench WITH (FORCE)" >&2 \
    || die "cannot drop berth_bench on 127.0.0.1:5432 (PostgreSQL 13 or later; or set BERTH_BENCH_DB_URL)"
  psql -w -h 127.0.0.1 -U "${BERTH_BENCH_DB_USER:-postgres}" -d postgres -qc "CREATE DATABASE berth_bench" >&2 \
    || die "cannot create berth_bench on 127.0.0.1:5432 (or set BERTH_BENCH_DB_URL)"
fi

if [[ ! -f "$BENCH_JAR" || ! -f "$JAR" || -n "$(find "$ROOT" -path "$ROOT/.berth" -prune -o \( -path '*/src/main/*' -o -name pom.xml \) -newer "$BENCH_JAR" -type f -print -quit)" ]]; then
  build "the benchmark harness is missing or older than the sources"
fi

mkdir -p "$ROOT/bench/target"
cd "$ROOT"
exec java ${BERTH_BENCH_JAVA_OPTS:--Xmx2g -XX:+UseG1GC} -Dlogback.configurationFile=logback-bench.xml \
  -DBERTH_BENCH_LOG="$ROOT/bench/target/bench-nodes.log" -jar "$BENCH_JAR" "${args[@]}"
