#!/usr/bin/env bash
# Bulk throughput through a TCP relay on loopback: iperf3 direct, through
# `netcrab relay` (this build: copy, splice(2) once bulk; and --no-splice
# for the user-space copy), the baseline build, HAProxy `mode tcp` with
# splicing forced (`option splice-request`/`splice-response`: its
# splice-auto does not splice on this kernel), nginx `stream` (proxy_pass,
# which copies) and socat, side by side, with the relay's CPU time. Results
# go to stdout as a Markdown table (docs/BENCHMARKS.md, "relay").
#
# Usage: bench/relay-compare.sh [SECONDS_PER_RUN] [ROUNDS]   (default 5 s, 3 rounds)
#   NETCRAB=path (default target/release/netcrab, built first)
#   BASELINE=path (default /work/base-netcrab if present; empty: left out)
#
# Every run is `iperf3 -c 127.0.0.1 -p PORT -t SECONDS` against one
# `iperf3 -s`; the figure is the receiver's rate. Each relay has one
# worker (tokio: TOKIO_WORKER_THREADS=1; nginx: one process; HAProxy:
# nbthread 1), and all run from the start; a round runs every path once,
# in a rotating order, and the figures are medians over rounds. Relay CPU
# is utime+stime of the relay process during each run (for socat,
# including the per-connection children it forked and reaped), divided by
# the data that run moved: CPU seconds per GiB relayed.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-5}
runs=${2:-3}
NGINX_MODULE=${NGINX_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}
if [[ -z ${BASELINE+x} ]]; then
  BASELINE=""
  [[ -x /work/base-netcrab ]] && BASELINE=/work/base-netcrab
fi

scripts/install-bench-deps.sh
if [[ -z ${NETCRAB:-} ]]; then
  cargo build --release --quiet
  NETCRAB=target/release/netcrab
fi

bench_workdir relay-compare

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

names=("iperf3 direct")
declare -A pid_of port_of
port_of["iperf3 direct"]=$iperf_port

# start_netcrab LABEL BINARY [ARGS...]
start_netcrab() {
  local label=$1 bin=$2 file
  shift 2
  file="$work/${#names[@]}.port"
  TOKIO_WORKER_THREADS=1 "$bin" -q relay 127.0.0.1:0 "127.0.0.1:$iperf_port" --port-file "$file" "$@" &
  pid_of[$label]=$!
  pids+=($!)
  port_of[$label]=$(wait_port_file "$file")
  names+=("$label")
}

start_netcrab "netcrab relay" "$NETCRAB"
start_netcrab "netcrab relay --no-splice (copy)" "$NETCRAB" --no-splice
[[ -n $BASELINE ]] && start_netcrab "baseline netcrab relay" "$BASELINE"

port=$(free_port)
cat >"$work/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option splice-request
  option splice-response
listen relay
  bind 127.0.0.1:$port
  server iperf 127.0.0.1:$iperf_port
CONF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pid_of["haproxy (splice forced)"]=$!
pids+=($!)
wait_listening "$port"
port_of["haproxy (splice forced)"]=$port
names+=("haproxy (splice forced)")

port=$(free_port)
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
load_module $NGINX_MODULE;
worker_processes 1;
error_log $work/nginx/error.log error;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
stream {
  server {
    listen 127.0.0.1:$port;
    proxy_pass 127.0.0.1:$iperf_port;
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off; master_process off;' &
pid_of["nginx stream"]=$!
pids+=($!)
wait_listening "$port"
port_of["nginx stream"]=$port
names+=("nginx stream")

port=$(free_port)
socat "TCP-LISTEN:$port,fork,reuseaddr" "TCP:127.0.0.1:$iperf_port" &
pid_of["socat (fork)"]=$!
pids+=($!)
wait_listening "$port"
port_of["socat (fork)"]=$port
names+=("socat (fork)")

# run LABEL INDEX: one iperf3 run through LABEL's port; appends
# "Gbit/s GiB cpu_s" to $work/INDEX.runs.
run() {
  local label=$1 pid=${pid_of[$1]:-} cpu0=0 cpu1=0
  [[ -n $pid ]] && cpu0=$(cpu_total "$pid")
  iperf3 -c 127.0.0.1 -p "${port_of[$label]}" -t "$secs" -J >"$work/run.json"
  sleep 0.3 # let socat reap its child
  [[ -n $pid ]] && cpu1=$(cpu_total "$pid")
  jq -r --arg c "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" \
    '.end.sum_received | "\(.bits_per_second / 1e9) \(.bytes / 1073741824) \($c)"' \
    "$work/run.json" >>"$work/$2.runs"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $runs rounds of ${secs}s; $(nproc) CPUs" >&2
n=${#names[@]}
for ((r = 0; r < runs; r++)); do
  for ((i = 0; i < n; i++)); do
    k=$(((i + r) % n))
    run "${names[$k]}" "$k"
  done
done

median() {
  awk "{ print $2 }" "$1" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

echo "| path | Gbit/s (median) | runs | relay CPU s per GiB (median) |"
echo "|---|---:|---|---:|"
for ((k = 0; k < n; k++)); do
  f=$work/$k.runs
  all=$(awk '{ printf "%s%.1f", (NR > 1 ? ", " : ""), $1 }' "$f")
  if [[ -n ${pid_of[${names[$k]}]:-} ]]; then
    per=$(median "$f" '$3 / $2')
    awk -v n="${names[$k]}" -v m="$(median "$f" '$1')" -v all="$all" -v per="$per" \
      'BEGIN { printf "| %s | %.1f | %s | %.3f |\n", n, m, all, per }'
  else
    awk -v n="${names[$k]}" -v m="$(median "$f" '$1')" -v all="$all" \
      'BEGIN { printf "| %s | %.1f | %s | - |\n", n, m, all }'
  fi
done
