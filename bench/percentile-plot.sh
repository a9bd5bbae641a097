#!/usr/bin/env bash
# Draws docs/bench-echo-percentiles.svg: the latency percentile distribution
# (HdrHistogram style) of `netcrab serve --echo` and of the plain tokio echo
# peer (bench/peers/echo-tokio), measured one after the other on loopback
# with the same open-loop workload, on one plot (`bench --compare --plot`).
# Prints both reports, with each server's CPU time (--server-pid).
#
# Usage: bench/percentile-plot.sh [RATE] [DURATION]   (default 10000 req/s, 5s)
#   NC=path/to/netcrab   (default target/release/netcrab; build it first)
#   OUT=file.svg         (default docs/bench-echo-percentiles.svg)
#   REPORT=file.html     (also write the HTML report of the comparison)
# The tokio peer is built by bench/peers/build.sh (or, without Go:
#   cargo build --release --locked --manifest-path bench/peers/echo-tokio/Cargo.toml --target-dir target/peers)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

rate=${1:-10000}
duration=${2:-5s}
NC=${NC:-$root/target/release/netcrab}
TOKIO=${TOKIO:-$here/peers/bin/echo-tokio}
[[ -x $TOKIO ]] || TOKIO=$root/target/peers/release/echo-tokio
OUT=${OUT:-$root/docs/bench-echo-percentiles.svg}
for bin in "$NC" "$TOKIO"; do
  [[ -x $bin ]] || { echo "percentile-plot.sh: $bin not built" >&2; exit 1; }
done

tmp=$(mktemp -d)
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# measure NAME BENCH-FLAGS... -- SERVER-COMMAND... (PF in it: the port file)
measure() {
  local name=$1
  shift
  local flags=()
  while [[ $1 != -- ]]; do
    flags+=("$1")
    shift
  done
  shift
  local pf="$tmp/$name.port" cmd=()
  for arg in "$@"; do cmd+=("${arg//PF/$pf}"); done
  "${cmd[@]}" 2>/dev/null &
  server=$!
  local port
  port=$(wait_port_file "$pf")
  echo "== $name (pid $server, 127.0.0.1:$port)"
  "$NC" -q bench "127.0.0.1:$port" -c 50 --size 512 --rate "$rate" -d "$duration" --warmup 1s \
    --server-pid "$server" --histogram-out "$tmp/$name.hlog" "${flags[@]}"
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}

measure netcrab -- "$NC" serve 127.0.0.1:0 --echo -q --max-conns 20000 --idle-timeout 0 --port-file PF
extra=(--compare "$tmp/netcrab.hlog" --plot "$OUT")
[[ -n ${REPORT:-} ]] && extra+=(--report "$REPORT")
measure tokio "${extra[@]}" -- "$TOKIO" -addr 127.0.0.1:0 -mode echo -port-file PF
echo "wrote $OUT"
