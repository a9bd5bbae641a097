#!/usr/bin/env bash
# One bulk TCP stream through `netcrab connect` into `serve --discard` on
# loopback, zero-copy (splice(2) from a stdin pipe, sendfile(2) from a stdin
# file) against the portable copy (--no-splice), with iperf3 side by side.
# Results go to stdout as a Markdown table (docs/BENCHMARKS.md, "connect").
#
# Usage: bench/connect-bulk.sh [SIZE] [RUNS]   (default 4G, 3 runs)
#
# Pipe runs:  head -c SIZE /dev/zero | netcrab connect ADDR [--no-splice] >/dev/null
# File runs:  netcrab connect ADDR [--no-splice] < FILE >/dev/null  (FILE: SIZE/2 of
#             zeros under $TMPDIR, read once before the runs so it is in the page cache)
# iperf3:     iperf3 -c 127.0.0.1 -p PORT -t 3 (receiver's rate)
# Producer ceiling: head -c SIZE /dev/zero | cat >/dev/null (no network): what
#             the pipe's writer manages with a trivial reader on this machine.
# Rate = bytes * 8 / wall-clock seconds of the whole pipeline; the sender's
# CPU is the user+sys seconds /usr/bin/time reports for the connect process
# alone (for iperf3: the client's host_total CPU share times its duration),
# per GiB sent. Each figure is the median of RUNS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

size=${1:-4G}
runs=${2:-3}

scripts/install-bench-deps.sh
cargo build --release --quiet
netcrab=target/release/netcrab
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

bench_workdir connect-bulk

bytes=$(numfmt --from=iec "$size")

"$netcrab" serve 127.0.0.1:0 --discard --port-file "$work/port" 2>"$work/serve.log" &
pids+=($!)
addr=127.0.0.1:$(wait_port_file "$work/port")

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# one_run BYTES CMD: runs CMD (a bash -c string), prints "Gbit/s cpu_s_per_GiB".
one_run() {
  local n=$1 cmd=$2 t0 t1
  t0=$(date +%s.%N)
  bash -c "$cmd"
  t1=$(date +%s.%N)
  awk -v b="$n" -v a="$t0" -v z="$t1" -v cpu="$(awk '{ print $1 + $2 }' "$work/time")" \
    'BEGIN { printf "%.2f %.3f\n", b * 8 / (z - a) / 1e9, cpu / (b / 1073741824) }'
}

# measure LABEL BYTES CMD: RUNS runs; prints a table row.
measure() {
  local label=$1 n=$2 cmd=$3 rates=() cpus=() r c
  for ((i = 0; i < runs; i++)); do
    read -r r c < <(one_run "$n" "$cmd")
    rates+=("$r")
    cpus+=("$c")
  done
  local all
  all=$(printf '%s\n' "${rates[@]}" | awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $1 }')
  printf '| %s | %.1f | %s | %.3f |\n' "$label" "$(printf '%s\n' "${rates[@]}" | median)" "$all" \
    "$(printf '%s\n' "${cpus[@]}" | median)"
}

time_connect="/usr/bin/time -f '%U %S' -o $work/time $netcrab -q connect $addr"

echo "| path | Gbit/s (median) | runs | sender CPU s per GiB (median) |"
echo "|---|---|---|---|"

iperf_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
iperf3 -s -p "$iperf_port" >"$work/iperf-server.log" 2>&1 &
pids+=($!)
# Poll /proc/net/tcp until iperf3 listens (a probing client would run a test).
hex=$(printf '%04X' "$iperf_port")
for ((i = 0; i < 100; i++)); do
  awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp && break
  sleep 0.1
done
rates=()
cpus=()
for ((i = 0; i < runs; i++)); do
  iperf3 -c 127.0.0.1 -p "$iperf_port" -t 3 -J >"$work/iperf.json"
  rates+=("$(jq -r '.end.sum_received.bits_per_second / 1e9' "$work/iperf.json")")
  cpus+=("$(jq -r '.end.cpu_utilization_percent.host_total / 100 * .end.sum_sent.seconds
    / (.end.sum_sent.bytes / 1073741824)' "$work/iperf.json")")
done
printf '| iperf3 -t 3 | %.1f | %s | %.3f |\n' "$(printf '%s\n' "${rates[@]}" | median)" \
  "$(printf '%s\n' "${rates[@]}" | awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $1 }')" \
  "$(printf '%s\n' "${cpus[@]}" | median)"

rates=()
for ((i = 0; i < runs; i++)); do
  t0=$(date +%s.%N)
  head -c "$size" /dev/zero | cat >/dev/null
  t1=$(date +%s.%N)
  rates+=("$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { print b * 8 / (z - a) / 1e9 }')")
done
printf '| producer ceiling: head -c %s /dev/zero \\| cat >/dev/null | %.1f | %s | - |\n' "$size" \
  "$(printf '%s\n' "${rates[@]}" | median)" \
  "$(printf '%s\n' "${rates[@]}" | awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $1 }')"

measure "head -c $size /dev/zero \\| connect (splice)" "$bytes" \
  "head -c $size /dev/zero | $time_connect >/dev/null"
measure "head -c $size /dev/zero \\| connect --no-splice (copy)" "$bytes" \
  "head -c $size /dev/zero | $time_connect --no-splice >/dev/null"

half=$((bytes / 2))
head -c "$half" /dev/zero >"$work/big"
cat "$work/big" >/dev/null
measure "connect < $((half >> 20)) MiB file (sendfile)" "$half" \
  "$time_connect <$work/big >/dev/null"
measure "connect --no-splice < $((half >> 20)) MiB file (copy)" "$half" \
  "$time_connect --no-splice <$work/big >/dev/null"
