#!/usr/bin/env bash
# Build the benchmark peers into bench/peers/bin/ (gitignored).
#   bench/peers/bin/echo-go   goroutine-per-connection TCP echo/discard server
#
# Offline and reproducible: uses the Debian golang-go toolchain as installed
# (scripts/install-bench-deps.sh), never downloads a toolchain or a module.
# Usage: bench/peers/build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/bin"
mkdir -p "$bin"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: go not found; run scripts/install-bench-deps.sh" >&2
  exit 1
fi

export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE=on
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/netcrab-bench-gocache}"
export GOPATH="${GOPATH:-${TMPDIR:-/tmp}/netcrab-bench-gopath}"

(cd "$here/echo-go" && go build -trimpath -o "$bin/echo-go" .)
echo "build.sh: built $bin/echo-go ($(go version | awk '{print $3}'))" >&2
