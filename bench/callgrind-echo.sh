#!/usr/bin/env bash
# Instructions per echo request in `netcrab serve --echo`, counted by
# callgrind (immune to the machine's noise, unlike CPU time): the server runs
# under `valgrind --tool=callgrind`, `netcrab bench -c 50 --size 512` sends
# N1 then (in a second server) N2 requests, and the slope
# (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one request, every thread
# summed, start-up and connection set-up cancelled out.
#
# Usage: bench/callgrind-echo.sh SERVER_BINARY [CLIENT_BINARY]
# Knobs (environment): N1=2000 N2=12000 CONNS=50 SIZE=512 ROUNDS=2
#   IDLE_TIMEOUT=0 (the server's --idle-timeout; 5m is serve's default)
#   OUT=target/callgrind-echo SERVER_ARGS="--metrics 127.0.0.1:0" (more
#   serve flags, split on spaces) BENCH_ARGS="--churn" (more bench flags:
#   with --churn every request is a new connection, so the slope is the
#   cost of one connection's set-up, exchange and close)
# Needs valgrind. Loopback only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

SERVER=${1:?usage: bench/callgrind-echo.sh SERVER_BINARY [CLIENT_BINARY]}
CLIENT=${2:-$SERVER}
N1=${N1:-2000}
N2=${N2:-12000}
CONNS=${CONNS:-50}
SIZE=${SIZE:-512}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(dirname "$here")/target/callgrind-echo}
mkdir -p "$OUT"

# ir N: total instructions of a server that answered N requests.
ir() {
  local n=$1 pf="$OUT/port" cg="$OUT/echo-$1.cg"
  rm -f "$pf" "$cg"
  local -a extra bench_extra
  read -r -a extra <<<"${SERVER_ARGS:-}"
  read -r -a bench_extra <<<"${BENCH_ARGS:-}"
  valgrind --tool=callgrind --callgrind-out-file="$cg" \
    "$SERVER" serve 127.0.0.1:0 --echo -q --idle-timeout "${IDLE_TIMEOUT:-0}" --port-file "$pf" "${extra[@]}" 2>"$OUT/valgrind.log" &
  local pid=$!
  local port
  port=$(wait_port_file "$pf" 60)
  "$CLIENT" bench "127.0.0.1:$port" -c "$CONNS" --size "$SIZE" -n "$n" "${bench_extra[@]}" -q >/dev/null
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ { print $2; exit }' "$cg"
}

for ((r = 1; r <= ROUNDS; r++)); do
  a=$(ir "$N1")
  b=$(ir "$N2")
  echo "round $r: $(( (b - a) / (N2 - N1) )) instructions per request (Ir $a at $N1, $b at $N2)"
done
