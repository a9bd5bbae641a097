#!/usr/bin/env bash
# Instructions per relayed request (or, with BENCH_ARGS=--churn, per
# relayed connection) in `netcrab relay`, counted by callgrind (immune to
# the machine's noise, unlike CPU time): the relay runs under `valgrind
# --tool=callgrind` with one worker (TOKIO_WORKER_THREADS=1, as
# bench/relay-rr.sh runs it) in front of a `serve --echo`, `bench -c CONNS
# --size SIZE` sends N1 then (through a second relay) N2 requests, and the
# slope (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one request, every
# thread summed, start-up and connection set-up cancelled out.
#
# Usage: bench/callgrind-relay.sh RELAY_BINARY [HELPER_BINARY]
# Knobs (environment): N1=2000 N2=12000 CONNS=50 SIZE=512 ROUNDS=1
#   OUT=target/callgrind-relay RELAY_ARGS="--no-splice" (more relay flags,
#   split on spaces) BENCH_ARGS="--churn" (more bench flags: with --churn
#   every request is a new connection, so the slope is the cost of one
#   connection's accept, upstream connect, exchange and close)
# Needs valgrind. Loopback only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

RELAY=${1:?usage: bench/callgrind-relay.sh RELAY_BINARY [HELPER_BINARY]}
HELPER=${2:-$RELAY}
N1=${N1:-2000}
N2=${N2:-12000}
CONNS=${CONNS:-50}
SIZE=${SIZE:-512}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$(dirname "$here")/target/callgrind-relay}
mkdir -p "$OUT"

rm -f "$OUT/echo.port"
"$HELPER" -q serve 127.0.0.1:0 --echo --max-conns 100000 --port-file "$OUT/echo.port" &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true' EXIT
echo_port=$(wait_port_file "$OUT/echo.port" 60)

# ir N: total instructions of a relay that relayed N requests.
ir() {
  local n=$1 pf="$OUT/port" cg="$OUT/relay-$1.cg"
  rm -f "$pf" "$cg"
  local -a extra bench_extra
  read -r -a extra <<<"${RELAY_ARGS:-}"
  read -r -a bench_extra <<<"${BENCH_ARGS:-}"
  TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$cg" \
    "$RELAY" -q relay 127.0.0.1:0 "127.0.0.1:$echo_port" --max-conns 100000 \
    --port-file "$pf" "${extra[@]}" 2>"$OUT/valgrind.log" &
  local pid=$!
  local port
  port=$(wait_port_file "$pf" 60)
  "$HELPER" bench "127.0.0.1:$port" -c "$CONNS" --size "$SIZE" -n "$n" "${bench_extra[@]}" -q >/dev/null
  kill -INT "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ { print $2; exit }' "$cg"
}

for ((r = 1; r <= ROUNDS; r++)); do
  a=$(ir "$N1")
  b=$(ir "$N2")
  echo "round $r: $(( (b - a) / (N2 - N1) )) instructions per request (Ir $a at $N1, $b at $N2)"
done
