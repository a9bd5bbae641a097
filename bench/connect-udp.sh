#!/usr/bin/env bash
# `connect udp://` in bulk: client CPU per datagram sending N lines of
# SIZE bytes (newline included) from a file on stdin to a discarding UDP
# peer on loopback. Side by side in one run:
#   netcrab   this tree's `connect udp://... --wait 0`
#   base      a baseline netcrab, the same command
#   socat     `socat -u -b SIZE - UDP:...`: socat sends a datagram per read;
#             with -b SIZE each read of the file is one line, so it sends
#             the same N datagrams
#   ncat      `ncat -u --send-only`: ncat sends a datagram per read of up
#             to 8 KiB, many lines each: fewer, larger datagrams (its row
#             is per datagram it sent, and per MB)
#
# Usage: bench/connect-udp.sh [ROUNDS]   (default 5)
#   NETCRAB=PATH   the netcrab under test  (default target/release/netcrab, built here)
#   BASE=PATH      the baseline netcrab    (default /work/base6-netcrab if present; "" to skip)
#   N=200000 SIZE=64                        the input
#
# The peer is BASE's (else NETCRAB's) `serve udp://127.0.0.1:0 --discard`,
# the same for every client. Each round runs every client once, in an order
# that rotates from round to round. Client CPU is user+system time from
# getrusage (GNU time) of the whole run, start-up included. Per client the
# table gives the medians over the rounds of datagrams per client CPU-s,
# MB of input per client CPU-s and wall-clock seconds, and the ratio of
# datagrams per CPU-s to the baseline's.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

rounds=${1:-5}
n=${N:-200000}
size=${SIZE:-64}
if [[ -z ${BASE+set} ]] && [[ -x /work/base6-netcrab ]]; then BASE=/work/base6-netcrab; fi
base=${BASE:-}
if [[ -z ${NETCRAB:-} ]]; then
  cargo build --release --quiet
  NETCRAB=target/release/netcrab
fi
if ((size < 2)); then
  echo "SIZE must be at least 2 (a byte and the newline)" >&2
  exit 2
fi

bench_workdir connect-udp
input=$work/input
awk -v n="$n" -v size="$size" 'BEGIN {
  line = sprintf("%*s", size - 1, ""); gsub(/ /, "x", line)
  for (i = 0; i < n; i++) print line
}' >"$input"
bytes=$(stat -c %s "$input")

peer=${base:-$NETCRAB}
"$peer" serve udp://127.0.0.1:0 --discard -q --port-file "$work/peer.port" 2>"$work/peer.log" &
pids+=($!)
port=$(wait_port_file "$work/peer.port")
target=127.0.0.1:$port

names=(netcrab)
[[ -n $base ]] && names+=(base)
command -v socat >/dev/null && names+=(socat)
command -v ncat >/dev/null && names+=(ncat)

# run NAME: one client run; prints "datagrams cpu_s wall_s".
run() {
  local name=$1 datagrams=$n
  local -a cmd
  case $name in
    netcrab) cmd=("$NETCRAB" connect "udp://$target" --wait 0) ;;
    base) cmd=("$base" connect "udp://$target" --wait 0) ;;
    socat) cmd=(socat -u -b "$size" - "UDP:$target") ;;
    ncat)
      cmd=(ncat -u --send-only 127.0.0.1 "$port")
      datagrams=$(((bytes + 8191) / 8192))
      ;;
  esac
  /usr/bin/time -f '%U %S %e' -o "$work/time" "${cmd[@]}" <"$input" >/dev/null 2>"$work/$name.err" || {
    echo "$name failed:" >&2
    cat "$work/$name.err" >&2
    exit 1
  }
  read -r user sys wall <"$work/time"
  awk -v d="$datagrams" -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%d %.3f %.3f\n", d, u + s, w }'
}

echo "# connect udp: $n lines of $size B ($bytes B) to a discarding peer, $rounds rounds"
for ((r = 0; r < rounds; r++)); do
  k=${#names[@]}
  for ((i = 0; i < k; i++)); do
    name=${names[$(((i + r) % k))]}
    run "$name" >>"$work/$name.runs"
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
per_cpu() { awk '{ print ($2 > 0) ? $1 / $2 : 0 }' "$work/$1.runs" | median; }
base_rate=
[[ -n $base ]] && base_rate=$(per_cpu base)
printf '%-8s %12s %16s %14s %10s %10s\n' client datagrams "datagrams/CPU-s" "MB/CPU-s" "wall s" "vs base"
for name in "${names[@]}"; do
  rate=$(per_cpu "$name")
  mb=$(awk -v b="$bytes" '{ print ($2 > 0) ? b / 1e6 / $2 : 0 }' "$work/$name.runs" | median)
  wall=$(awk '{ print $3 }' "$work/$name.runs" | median)
  datagrams=$(awk 'NR == 1 { print $1 }' "$work/$name.runs")
  vs=-
  [[ -n $base_rate ]] && vs=$(awk -v a="$rate" -v b="$base_rate" 'BEGIN { printf "%.2fx", a / b }')
  printf '%-8s %12d %16.0f %14.1f %10.3f %10s\n' "$name" "$datagrams" "$rate" "$mb" "$wall" "$vs"
done
