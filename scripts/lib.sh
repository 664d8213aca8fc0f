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

# Maven without colour: -B turns colour off, but Maven 3.8's jansi still writes a reset
# sequence (ESC[0m) at start and exit unless jansi.noreset is set on the JVM itself (MAVEN_OPTS;
# -Djansi.noreset on the command line comes too late), and those escapes end up in any log
# Maven's output is saved to.
maven() {
  (cd "$ROOT" && MAVEN_OPTS="${MAVEN_OPTS:+$MAVEN_OPTS }-Djansi.noreset=true" mvn -B -Dstyle.color=never "$@")
}

# Builds the node jar when it is missing or older than a source file or POM. Maven's whole
# output goes to .berth/build.log; the terminal gets one line per module, so that a first build
# (half a minute, longer while Maven downloads the dependencies) is not mistaken for a hang.
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
  [[ -z "$stale" ]] || build "$stale"
}

# Runs `mvn package -DskipTests`, printing the module being built; on failure, Maven's errors.
build() {
  command -v mvn >/dev/null 2>&1 || die "Maven not found: install Maven 3.8+ (Debian: apt-get install maven)"
  local log="$ROOT/.berth/build.log" started=$SECONDS
  mkdir -p "$ROOT/.berth"
  say "building Berth ($1): mvn package -DskipTests, usually 20 to 60 s; a first build on a new"
  say "machine also downloads Maven's dependencies, which takes minutes. Maven's output: $log"
  if ! maven -DskipTests package 2>&1 | tee "$log" | module_lines; then
    grep -E '^\[ERROR\]' "$log" | head -n 40 >&2 || true
    die "the build failed; Maven's whole output is in $log"
  fi
  say "built in $((SECONDS - started)) s"
}

# Maven's "[INFO] Building Berth protocol 0.1.0-SNAPSHOT   [2/5]" becomes "  [2/5] Berth protocol".
module_lines() {
  sed -Eun 's/^\[INFO\] Building (.*) [^ ]+ +\[([0-9]+\/[0-9]+)\]$/  [\2] \1/p' >&2
}

# Prints the comment block at the top of a script (its usage), without the leading "# ".
script_help() {
  sed -n '2,/^[^#]/p' "$1" | sed -n 's/^# \{0,1\}//p'
}

# True when the process with this PID is alive and is one of ours (a Berth node or the embedded
# database): a PID file left from before a reboot may name an unrelated process by now. A child
# this script has just forked is ours too: until it execs java its command line is still this
# script's, and taking it for a stranger would report a node that is starting as dead.
alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  [[ -r "/proc/$1/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qE 'berth-node\.jar|io\.berth\.' && return 0
  [[ -r "/proc/$1/stat" ]] || return 1
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  read -r _ ppid _ <<<"$stat"
  [[ "$ppid" == "$$" ]]
}

pid_of() { [[ -f "$1" ]] && cat "$1" || true; }
