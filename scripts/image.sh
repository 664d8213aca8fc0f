#!/usr/bin/env bash
# Builds the node's container image with Jib, without a Docker daemon, into a tar file:
#   scripts/image.sh [--base IMAGE] [--name NAME] [-- MAVEN_ARGS...]
#     --base IMAGE   the base image (default: gcr.io/distroless/java17-debian12:nonroot, a slim
#                    JRE 17 that runs as user 65532); a registry image, or tar:///path/base.tar
#                    (a `docker save` tarball) where no registry is reachable
#     --name NAME    the image's name inside the tar (default: berth/berth-node:VERSION)
#   scripts/image.sh --help    this text
# Writes cluster-node/target/berth-node-image.tar. Loading it into a registry: README.md
# (Container image); running it on Kubernetes: deploy/kubernetes/README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

base="" name=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --help|-h) usage; exit 0 ;;
    --base) [[ $# -ge 2 ]] || die "--base needs an image"; base="$2"; shift 2 ;;
    --name) [[ $# -ge 2 ]] || die "--name needs an image name"; name="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done

require_java
command -v mvn >/dev/null 2>&1 || die "Maven not found: install Maven 3.8+ (Debian: apt-get install maven)"
# Jib by its coordinates: with -am the reactor's other modules do not know the prefix (they skip
# the goal, jib.skip in the parent POM).
args=(-q package com.google.cloud.tools:jib-maven-plugin:3.5.2:buildTar -pl cluster-node -am -DskipTests)
[[ -z "$base" ]] || args+=("-Dberth.image.base=$base")
[[ -z "$name" ]] || args+=("-Dberth.image.name=$name")
say "building the image (Maven's output in .berth/image.log)"
mkdir -p "$ROOT/.berth"
if ! maven "${args[@]}" "${extra[@]}" >"$ROOT/.berth/image.log" 2>&1; then
  tail -n 40 "$ROOT/.berth/image.log" >&2
  die "the image build failed (whole log: .berth/image.log); a base image that cannot be pulled: pass --base tar:///path/base.tar"
fi
tar_file="$ROOT/cluster-node/target/berth-node-image.tar"
[[ -f "$tar_file" ]] || die "Jib reported success but wrote no $tar_file"
say "image: $tar_file ($(du -h "$tar_file" | cut -f1))"
