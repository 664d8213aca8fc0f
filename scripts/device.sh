#!/usr/bin/env bash
# A command-line device built on the reference client (DeviceClient):
#   scripts/device.sh --connect HOST:PORT[,HOST:PORT...] --device ID [--socket NAME] [--mapping M]
#                     [--secret S [--key-id ID] | --secret-file F | --token T] [--expect N] [--verbose]
#                     [--ca FILE] [--cert FILE --key FILE] [--insecure-plaintext]
#   scripts/device.sh --help     every option (once the node jar is built)
# Reads lines from stdin and sends each as a DATA frame; prints each DATA received as a line.
# Exits 0 once stdin is closed and every line is acknowledged (and N lines received with
# --expect). The secret defaults to $BERTH_SECRET, then to the one `scripts/cluster.sh up` made.
# Connections use TLS. Without --ca or --insecure-plaintext, the device trusts the local CA that
# `scripts/cluster.sh up` made ($RUN_DIR/tls/ca.pem, .berth/cluster/tls/ca.pem by default) when
# there is one, else the JDK's trust store. --cert and --key present a device certificate; with
# them, no secret or token is needed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Help reads the jar that is there, stale or not, and builds nothing.
for a in "$@"; do
  case "$a" in
    -h|--help)
      if [[ -f "$JAR" ]] && command -v java >/dev/null 2>&1; then
        exec java -cp "$JAR" io.berth.protocol.cli.DeviceCli --help
      fi
      script_help "$0"
      say "(every option is listed once the node jar is built: scripts/cluster.sh up builds it)"
      exit 0 ;;
  esac
done

ensure_built

args=("$@")
has_credentials=false
for a in "$@"; do
  case "$a" in --secret|--secret=*|--secret-file|--secret-file=*|--token|--token=*) has_credentials=true ;; esac
done
if ! $has_credentials && [[ -z "${BERTH_SECRET:-}" && -f "$RUN_DIR/secret" ]]; then
  args+=(--secret-file "$RUN_DIR/secret")
fi
has_trust=false
for a in "$@"; do
  case "$a" in --ca|--ca=*|--insecure-plaintext) has_trust=true ;; esac
done
if ! $has_trust && [[ -f "$RUN_DIR/tls/ca.pem" ]]; then
  args+=(--ca "$RUN_DIR/tls/ca.pem")
fi

exec java ${BERTH_DEVICE_JAVA_OPTS:--Xmx256m -XX:TieredStopAtLevel=1} -cp "$JAR" io.berth.protocol.cli.DeviceCli "${args[@]}"
