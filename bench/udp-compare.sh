#!/usr/bin/env bash
# UDP echo, datagrams per server CPU-second: `netcrab serve udp://... --echo`
# (this tree's release build), a baseline netcrab binary, and the
# one-goroutine Go UDP echo (bench/peers/udp-echo-go) and the C floors
# (bench/peers/floor-udp-echo: one thread, recvmmsg of up to 64 + one
# sendmmsg; "floor-gso" the same with a peer's replies in one UDP_SEGMENT
# send), side by side in one run, under the same independent load generator
# (bench/peers/udp-load: SENDERS closed-loop senders of SIZE-byte datagrams).
#
# Usage: bench/udp-compare.sh [SECONDS_PER_ROUND] [ROUNDS]   (default 4 s, 5 rounds)
#   NETCRAB=PATH   the netcrab under test   (default target/release/netcrab, built here)
#   BASE=PATH      the baseline netcrab     (default /work/base-netcrab if present; "" to skip)
#   SENDERS=8 SIZE=64 WINDOW=1               the load: WINDOW datagrams in flight
#                                            per sender (1: a strict closed loop)
#   FLOOR="floor floor-gso"                  which C floor servers to run ("" none)
#   MODE=relay     compare UDP relays instead: `netcrab relay udp://... udp://ECHO`
#                  (both netcrabs) and `socat UDP-LISTEN:P,fork,reuseaddr UDP:ECHO`
#                  in front of one udp-echo-go; the figure is relay CPU in
#                  microseconds per datagram relayed (two per answer: up and
#                  down), socat's including the per-client children it forked
#                  (while they run: a child is counted until it exits).
#
# The three servers run side by side for the whole run; each round loads
# each of them in turn (the order rotates from round to round) for
# SECONDS_PER_ROUND. Server CPU is utime+stime from /proc/PID/stat over the
# round (all of the process's threads). Per server the table gives the
# medians over the rounds of datagrams/s and datagrams per server CPU-s,
# and the ratio of the latter to Go's (and to the baseline's).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-4}
rounds=${2:-5}
senders=${SENDERS:-8}
size=${SIZE:-64}
window=${WINDOW:-1}
if [[ -z ${BASE+set} ]] && [[ -x /work/base-netcrab ]]; then BASE=/work/base-netcrab; fi
base=${BASE:-}

if [[ -z ${NETCRAB:-} ]]; then
  cargo build --release --quiet
  NETCRAB=target/release/netcrab
fi
bench/peers/build.sh 2>/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
  local all=()
  for pid in "${pids[@]}"; do all+=($(tree_pids "$pid")); done # socat's children too
  for pid in "${all[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

names=() ports=() spids=()
# start NAME CMD...: starts a server that writes its port to $work/NAME.port.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  spids+=($!)
  names+=("$name")
  ports+=("$(wait_port_file "$work/$name.port")")
}

mode=${MODE:-echo}
if [[ $mode == relay ]]; then
  bench/peers/bin/udp-echo-go -addr 127.0.0.1:0 -port-file "$work/echo.port" 2>"$work/echo.log" &
  pids+=($!)
  echo_port=$(wait_port_file "$work/echo.port")
  start netcrab "$NETCRAB" relay "udp://127.0.0.1:0" "udp://127.0.0.1:$echo_port" -q --port-file "$work/netcrab.port"
  if [[ -n $base ]]; then
    start base "$base" relay "udp://127.0.0.1:0" "udp://127.0.0.1:$echo_port" -q --port-file "$work/base.port"
  fi
  socat_port=$(free_port)
  socat "UDP-LISTEN:$socat_port,bind=127.0.0.1,fork,reuseaddr" "UDP:127.0.0.1:$echo_port" &
  pids+=($!)
  spids+=($!)
  names+=(socat)
  ports+=("$socat_port")
  sleep 0.5 # socat has no readiness signal; it binds at once
else
  start netcrab "$NETCRAB" serve "udp://127.0.0.1:0" --echo -q --port-file "$work/netcrab.port"
  if [[ -n $base ]]; then
    start base "$base" serve "udp://127.0.0.1:0" --echo -q --port-file "$work/base.port"
  fi
  start go bench/peers/bin/udp-echo-go -addr 127.0.0.1:0 -port-file "$work/go.port"
  for name in ${FLOOR-floor floor-gso}; do
    case $name in
      floor) start floor bench/peers/bin/floor-udp-echo -addr 127.0.0.1:0 -port-file "$work/floor.port" ;;
      floor-gso) start floor-gso bench/peers/bin/floor-udp-echo -gso -addr 127.0.0.1:0 -port-file "$work/floor-gso.port" ;;
      *) echo "udp-compare.sh: unknown FLOOR server $name (want floor or floor-gso)" >&2 && exit 2 ;;
    esac
  done
fi

# tree_cpu PID: utime+stime of PID and its live descendants (socat's
# children), in seconds.
tree_cpu() {
  local total=0 p
  for p in $(tree_pids "$1"); do
    total=$(awk -v a="$total" -v b="$(proc_cpu_seconds "$p" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
  done
  echo "$total"
}

n=${#names[@]}
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    i=$(((r + k) % n))
    c0=$(tree_cpu "${spids[$i]}")
    out=$(bench/peers/bin/udp-load -addr "127.0.0.1:${ports[$i]}" -senders "$senders" -size "$size" -window "$window" -duration "${secs}s")
    c1=$(tree_cpu "${spids[$i]}")
    read -r _ count _ wall _ rate _ lost _ bad <<<"$out"
    echo "${names[$i]} $count $wall $rate $lost $bad $c0 $c1" >>"$work/rounds"
    echo "round $((r + 1)) ${names[$i]}: $out cpu $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" >&2
  done
done

# median NAME FIELD-EXPR: the median over rounds of an awk expression.
median() {
  awk -v n="$1" '$1 == n { print '"$2"' }' "$work/rounds" | sort -g |
    awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
declare -A per_cpu rate cpu
for name in "${names[@]}"; do
  rate[$name]=$(median "$name" '$4')
  cpu[$name]=$(median "$name" '($8 - $7) / $3')
  per_cpu[$name]=$(median "$name" '(($8 - $7) > 0 ? $2 / ($8 - $7) : 0)')
done
echo "$senders senders x $size B, window $window, $rounds rounds of ${secs}s, medians; load: bench/peers/bin/udp-load; mode $mode"
echo
if [[ $mode == relay ]]; then
  echo "| relay | answers/s | relay CPU (cores) | relay CPU per datagram relayed | vs socat | vs base |"
  echo "|---|---:|---:|---:|---:|---:|"
  for name in "${names[@]}"; do
    us=$(median "$name" '(($8 - $7) * 1e6 / (2 * ($2 > 0 ? $2 : 1)))')
    echo "$name $us" >>"$work/us"
  done
  for name in "${names[@]}"; do
    us=$(awk -v n="$name" '$1 == n { print $2 }' "$work/us")
    socat_us=$(awk '$1 == "socat" { print $2 }' "$work/us")
    base_us=$(awk '$1 == "base" { print $2 }' "$work/us")
    awk -v n="$name" -v r="${rate[$name]}" -v c="${cpu[$name]}" -v u="$us" -v s="$socat_us" -v b="$base_us" \
      'BEGIN { printf "| %s | %.0f | %.2f | %.2f us | %.2fx | %s |\n", n, r, c, u, u / s, (b == "" ? "-" : sprintf("%.2fx", u / b)) }'
  done
  exit 0
fi
echo "| server | datagrams/s | server CPU (cores) | datagrams per server CPU-s | vs Go | vs base |"
echo "|---|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
  vs_base=-
  if [[ -n ${per_cpu[base]:-} ]]; then
    vs_base=$(awk -v a="${per_cpu[$name]}" -v b="${per_cpu[base]}" 'BEGIN { printf "%.2fx", a / b }')
  fi
  awk -v n="$name" -v r="${rate[$name]}" -v c="${cpu[$name]}" -v p="${per_cpu[$name]}" -v g="${per_cpu[go]}" -v vb="$vs_base" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.0f | %.2fx | %s |\n", n, r, c, p, p / g, vb }'
done
