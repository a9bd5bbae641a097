#!/usr/bin/env bash
# What `--metrics` costs: echo requests per server CPU-second, `serve --echo`
# without and with `--metrics` (scraped once a second meanwhile, as
# Prometheus would), side by side in one run: ROUNDS rounds, the two servers
# alternating within each, at each of CONNS connections x SIZE bytes. A fresh
# server per run; `netcrab bench --server-pid` reads the server's CPU time
# (from /proc) over the measured interval only. Prints one line per run and
# a table of medians. Needs a release build (cargo build --release).
#
# Usage: bench/metrics-overhead.sh
# Knobs (environment): ROUNDS=3 CONNS="50 500" SIZE=512 DURATION=5s
#   WARMUP=1s NETCRAB=target/release/netcrab
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

B=${NETCRAB:-$root/target/release/netcrab}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"50 500"}
SIZE=${SIZE:-512}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
raise_nofile
tmp=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# start LOG ARGS...: starts netcrab, waits for its listening line; sets PID.
start() {
  local log=$1
  shift
  "$B" "$@" >/dev/null 2>"$log" &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 400); do
    grep -q "listening on" "$log" && return 0
    sleep 0.05
  done
  echo "metrics-overhead.sh: the server did not start:" >&2
  cat "$log" >&2
  exit 1
}

results="$tmp/results"
: >"$results"
for conns in $CONNS; do
  for round in $(seq "$ROUNDS"); do
    for mode in off on; do
      log="$tmp/serve-$conns-$round-$mode.log"
      args=(serve 127.0.0.1:0 --echo --max-conns 10000)
      [[ $mode == on ]] && args+=(--metrics 127.0.0.1:0)
      start "$log" "${args[@]}"
      addr=$(grep -o "listening on [^ ]*" "$log" | sed 's/listening on //')
      scraper=""
      if [[ $mode == on ]]; then
        url=$(grep -o "metrics on http://[^ ]*" "$log" | sed 's/metrics on //')
        (while kill -0 "$PID" 2>/dev/null; do curl -s --max-time 2 "$url" >/dev/null || true; sleep 1; done) &
        scraper=$!
      fi
      json="$tmp/$conns-$round-$mode.json"
      status=0
      "$B" bench "$addr" -c "$conns" -s "$SIZE" -d "$DURATION" --warmup "$WARMUP" \
        --server-pid "$PID" --json >"$json" 2>"$tmp/bench.err" || status=$?
      kill "$PID" 2>/dev/null || true
      wait "$PID" 2>/dev/null || true
      if [[ -n $scraper ]]; then
        kill "$scraper" 2>/dev/null || true
        wait "$scraper" 2>/dev/null || true
      fi
      if ((status != 0)); then
        echo "conns $conns metrics $mode round $round: bench failed (exit $status), run left out:" >&2
        tail -3 "$tmp/bench.err" >&2
        continue
      fi
      python3 - "$json" "$conns" "$mode" "$round" >>"$results" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
cpu_us = d["server"]["cpu_us_per_request"]
print(sys.argv[2], sys.argv[3], sys.argv[4], d["rate"]["achieved_rps"], 1e6 / cpu_us, cpu_us, d["requests"]["errors"])
EOF
      tail -1 "$results" | awk '{printf "conns %s metrics %-3s round %s: %.0f req/s, %.0f req per server CPU-s (%.2f us/req), %d errors\n", $1, $2, $3, $4, $5, $6, $7}'
    done
  done
done

echo
python3 - "$results" "$SIZE" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for conns, mode, _, rate, per_cpu, _, _ in rows:
    by.setdefault((int(conns), mode), []).append((float(rate), float(per_cpu)))
print(f"| connections x {sys.argv[2]} B | --metrics | req/s (median) | req per server CPU-s (median) | vs off |")
print("|---|---|---|---|---|")
for conns in sorted({c for c, _ in by}):
    if not by.get((conns, "off")) or not by.get((conns, "on")):
        continue
    off = statistics.median(p for _, p in by[(conns, "off")])
    for mode in ("off", "on"):
        runs = by[(conns, mode)]
        rate = statistics.median(r for r, _ in runs)
        per = statistics.median(p for _, p in runs)
        print(f"| {conns} | {mode} | {rate:.0f} | {per:.0f} | {per / off:.3f} |")
EOF
