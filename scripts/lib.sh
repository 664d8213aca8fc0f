# Shared by the scripts: paths, build-if-needed, small helpers. Source it, do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JAR="$ROOT/cluster-node/target/berth-node.jar"
RUN_DIR="${BERTH_RUN_DIR:-$ROOT/.berth/cluster}"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

require_java() {
  command -v java >/dev/null 2>&1 || die "java not found: install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n "$v" && "$v" -ge 17 ]] || die "Java 17 or newer is required (found: $(java -version 2>&1 | head -n1))"
}

# Builds the node jar when it is missing or older than a source file or POM.
ensure_built() {
  require_java
  if [[ "${BERTH_SKIP_BUILD:-}" == "1" && -f "$JAR" ]]; then
    return
  fi
  local stale=""
  if [[ ! -f "$JAR" ]]; then
    stale="no jar yet"
  elif [[ -n "$(find "$ROOT" -path "$ROOT/.berth" -prune -o \( -path '*/src/main/*' -o -name pom.xml \) -newer "$JAR" -type f -print -quit)" ]]; then
    stale="sources changed"
  fi
  if [[ -n "$stale" ]]; then
    command -v mvn >/dev/null 2>&1 || die "Maven not found: install Maven 3.8+ (Debian: apt-get install maven)"
    say "building Berth ($stale): mvn package -DskipTests ..."
    (cd "$ROOT" && mvn -B -q -DskipTests package) >&2 || die "build failed"
  fi
}

# True when the process with this PID is alive and is one of ours (a Berth node or the embedded
# database): a PID file left from before a reboot may name an unrelated process by now.
alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  [[ -r "/proc/$1/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qE 'berth-node\.jar|io\.berth\.'
}

pid_of() { [[ -f "$1" ]] && cat "$1" || true; }
