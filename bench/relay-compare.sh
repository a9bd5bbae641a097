#!/usr/bin/env bash
# Bulk throughput through a TCP relay on loopback: iperf3 direct, through
# `netcrab relay` (splice(2), and --no-splice for the user-space copy), and
# through socat relaying the same way, side by side, with the relay's CPU
# time. Results go to stdout as a Markdown table (docs/BENCHMARKS.md, "relay").
#
# Usage: bench/relay-compare.sh [SECONDS_PER_RUN] [RUNS]   (default 5 s, 3 runs)
#
# Every run is `iperf3 -c 127.0.0.1 -p PORT -t SECONDS` against one
# `iperf3 -s`; the figure is the receiver's rate, the median of RUNS runs.
# Relay CPU is utime+stime of the relay process over all its runs (for
# socat, including the per-connection children it forked and reaped),
# divided by the data it moved: CPU seconds per GiB relayed.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-5}
runs=${2:-3}

scripts/install-bench-deps.sh
cargo build --release --quiet
netcrab=target/release/netcrab

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# cpu_total PID: utime+stime+cutime+cstime (children that were waited for),
# in seconds.
cpu_total() {
  local rest
  rest=$(cat "/proc/$1/stat")
  rest=${rest##*) }
  local -a f
  read -r -a f <<<"$rest"
  awk -v t=$((f[11] + f[12] + f[13] + f[14])) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}

iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" >"$work/iperf-server.log" 2>&1 &
pids+=($!)
wait_listening "$iperf_port"

# run_iperf PORT: one run; prints "Gbit/s GiB" (receiver side).
run_iperf() {
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -J >"$work/run.json"
  jq -r '.end.sum_received | "\(.bits_per_second / 1e9) \(.bytes / 1073741824)"' "$work/run.json"
}

# measure NAME PORT [PID]: RUNS runs through PORT; prints a table row.
measure() {
  local name=$1 port=$2 pid=${3:-} cpu0=0 cpu1=0 rates=() gib=0 r g
  [[ -n $pid ]] && cpu0=$(cpu_total "$pid")
  for ((i = 0; i < runs; i++)); do
    read -r r g < <(run_iperf "$port")
    rates+=("$r")
    gib=$(awk -v a="$gib" -v b="$g" 'BEGIN { print a + b }')
  done
  sleep 0.3 # let socat reap its last child
  [[ -n $pid ]] && cpu1=$(cpu_total "$pid")
  local median
  median=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  local all
  all=$(printf '%s\n' "${rates[@]}" | awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $1 }')
  if [[ -n $pid ]]; then
    awk -v n="$name" -v m="$median" -v all="$all" -v c="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" -v g="$gib" \
      'BEGIN { printf "| %s | %.1f | %s | %.2f | %.3f |\n", n, m, all, c, (g > 0 ? c / g : 0) }'
  else
    awk -v n="$name" -v m="$median" -v all="$all" \
      'BEGIN { printf "| %s | %.1f | %s | - | - |\n", n, m, all }'
  fi
}

echo "| path | Gbit/s (median) | runs | relay CPU s | relay CPU s per GiB |"
echo "|---|---|---|---|---|"
measure "iperf3 direct" "$iperf_port"

for mode in splice copy; do
  extra=()
  [[ $mode == copy ]] && extra=(--no-splice)
  "$netcrab" -q relay 127.0.0.1:0 "127.0.0.1:$iperf_port" --port-file "$work/$mode.port" "${extra[@]}" &
  pid=$!
  pids+=("$pid")
  port=$(wait_port_file "$work/$mode.port")
  label="netcrab relay (splice)"
  [[ $mode == copy ]] && label="netcrab relay --no-splice (copy)"
  measure "$label" "$port" "$pid"
  kill "$pid"
done

port=$(free_port)
socat "TCP-LISTEN:$port,fork,reuseaddr" "TCP:127.0.0.1:$iperf_port" &
pid=$!
pids+=("$pid")
wait_listening "$port"
measure "socat (fork)" "$port" "$pid"
