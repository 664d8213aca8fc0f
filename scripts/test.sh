#!/usr/bin/env bash
# Runs every test (unit, in-JVM cluster, and the multi-process launch) against a real
# PostgreSQL server:
#   scripts/test.sh [extra mvn arguments]     e.g. -Dit.test=SmokeIT
#   scripts/test.sh --help                    this text
# The server is BERTH_TEST_DB_URL (with BERTH_TEST_DB_USER / BERTH_TEST_DB_PASSWORD) if set;
# otherwise 127.0.0.1:5432 as user postgres: started if installed but stopped, installed with
# apt-get if absent and this script runs as root on Debian/Ubuntu. The test database is created
# if missing. Headless Chromium and chromedriver (for the cluster page's test) are installed the
# same way; without them that test is skipped and says so.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DEFAULT_URL="jdbc:postgresql://127.0.0.1:5432/berth_test"

# Before anything else: help must not create databases or start Maven (whose own -h it shadows).
for a in "$@"; do
  case "$a" in -h|--help) script_help "$0"; exit 0 ;; esac
done

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 -t 3 2>/dev/null; }

can_apt() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }

start_local_postgres() {
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [[ -n "$version" ]] || return 1
  say "PostgreSQL $version is installed but not running: starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  fi
  local deadline=$((SECONDS + 60))
  until pg_up; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

install_postgres() {
  say "no PostgreSQL server found: installing it with apt-get (this machine runs the tests as root)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q postgresql postgresql-client >&2
  start_local_postgres || die "PostgreSQL was installed but did not start"
  # A fresh install asks for a password on TCP; give the test user one.
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'berth-test'\"" >&2
  export BERTH_TEST_DB_PASSWORD="${BERTH_TEST_DB_PASSWORD:-berth-test}"
}

ensure_postgres() {
  if [[ -n "${BERTH_TEST_DB_URL:-}" ]]; then
    say "tests use PostgreSQL at $BERTH_TEST_DB_URL (BERTH_TEST_DB_URL)"
    return
  fi
  export BERTH_TEST_DB_URL="$DEFAULT_URL"
  if ! command -v pg_isready >/dev/null 2>&1; then
    if [[ -d /etc/postgresql ]] || ! can_apt; then
      die "pg_isready not found. Provide a PostgreSQL server: set BERTH_TEST_DB_URL=jdbc:postgresql://host:port/db (and BERTH_TEST_DB_USER, BERTH_TEST_DB_PASSWORD), or install PostgreSQL locally (apt-get install postgresql)"
    fi
    install_postgres
  elif ! pg_up; then
    if ! start_local_postgres; then
      can_apt && [[ ! -d /etc/postgresql ]] && install_postgres
      pg_up || die "no PostgreSQL answers on 127.0.0.1:5432 and none could be started. Start one, or set BERTH_TEST_DB_URL=jdbc:postgresql://host:port/db"
    fi
  fi
  local user="${BERTH_TEST_DB_USER:-postgres}"
  export PGPASSWORD="${BERTH_TEST_DB_PASSWORD:-}"
  local exists
  exists=$(psql -w -h 127.0.0.1 -U "$user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'berth_test'") \
    || die "cannot log in to PostgreSQL on 127.0.0.1:5432 as '$user' (set BERTH_TEST_DB_USER / BERTH_TEST_DB_PASSWORD)"
  if [[ "$exists" != "1" ]]; then
    say "creating database berth_test"
    psql -w -h 127.0.0.1 -U "$user" -d postgres -qc "CREATE DATABASE berth_test" >&2
  fi
  say "tests use PostgreSQL at $BERTH_TEST_DB_URL"
}

require_java
command -v mvn >/dev/null 2>&1 || {
  if can_apt; then
    say "Maven not found: installing it with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven >&2
  else
    die "Maven not found: install Maven 3.8+ (Debian: apt-get install maven)"
  fi
}
if ! command -v curl >/dev/null 2>&1 && can_apt; then
  say "curl not found: installing it with apt-get (the launch tests use it)"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >&2
fi
if { ! command -v chromium || ! command -v chromedriver; } >/dev/null 2>&1 && can_apt; then
  say "chromium or chromedriver not found: installing them with apt-get (ClusterPageIT opens the cluster page and clicks its buttons; WebSocketBrowserIT runs the JavaScript client)"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2 \
    || say "chromium could not be installed: ClusterPageIT will be skipped"
fi
if ! command -v mosquitto_pub >/dev/null 2>&1 && can_apt; then
  say "mosquitto_pub not found: installing mosquitto-clients with apt-get (MqttEdgeIT talks to the MQTT port with them)"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto-clients >&2 \
    || say "mosquitto-clients could not be installed: MqttEdgeIT's command-line cases will be skipped"
fi

# The Kubernetes manifests (deploy/kubernetes/), checked with kubectl where it is or may be
# installed (Debian's kubernetes-client). Offline, `kubectl apply/create --dry-run=client` does
# not work (kubectl 1.32 asks the API server for its resource list and schema even then), so
# `kubectl kustomize` renders every manifest (YAML well-formed, every file of the kustomization
# present) and each rendered object is checked for its kind, apiVersion and name; with a cluster
# reachable, `kubectl apply --dry-run=server` validates them against its schema too.
check_manifests() {
  local dir="$ROOT/deploy/kubernetes"
  if ! command -v kubectl >/dev/null 2>&1; then
    if can_apt; then
      say "kubectl not found: installing kubernetes-client with apt-get (for the manifests' check)"
      DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q kubernetes-client >&2 || true
    fi
    if ! command -v kubectl >/dev/null 2>&1; then
      say "SKIPPED: the Kubernetes manifests' check (no kubectl, and apt-get is not available as root to install kubernetes-client)"
      return
    fi
  fi
  local rendered
  rendered=$(kubectl kustomize "$dir") || die "deploy/kubernetes/ does not render (kubectl kustomize, above)"
  local objects missing
  objects=$(printf '%s\n' "$rendered" | awk '/^apiVersion:/{a=$2} /^kind:/{k=$2} /^---/{a="";k=""} k!="" && a!="" {print k; a="";k=""}' | sort | tr '\n' ' ')
  for kind in ConfigMap Deployment PodDisruptionBudget Role RoleBinding Service ServiceAccount; do
    [[ " $objects " == *" $kind "* ]] || missing+=" $kind"
  done
  [[ -z "${missing:-}" ]] || die "deploy/kubernetes/ renders without:$missing"
  for line in "path: /ready" "path: /alive" "scheme: HTTPS" "secretKeyRef:" "name: management"; do
    grep -qE -- "^[ -]*$line\$" <<<"$rendered" || die "deploy/kubernetes/: no line '$line' (probes, Secrets, ports)"
  done
  if kubectl version --request-timeout=3s >/dev/null 2>&1; then
    kubectl apply --dry-run=server -k "$dir" >&2 || die "the cluster refused deploy/kubernetes/ (kubectl apply --dry-run=server)"
    say "Kubernetes manifests: rendered and accepted by the cluster (dry run)"
  else
    say "Kubernetes manifests: rendered ($objects); no cluster reachable, so not validated against a schema"
  fi
}

ensure_postgres
check_manifests
cd "$ROOT"
started=$SECONDS
maven verify "$@"
say "all tests passed in $((SECONDS - started)) s"
