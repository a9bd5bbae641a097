#!/usr/bin/env bash
# Request/response and connection churn through a TCP relay on loopback,
# per relay CPU-second: netcrab (this build), the baseline build, nginx
# `stream` (proxy_pass; as configured by default, and with
# `proxy_half_close on`, which passes a half-close on as netcrab and
# HAProxy do) and HAProxy `mode tcp`, each with ONE worker
# (tokio: TOKIO_WORKER_THREADS=1; nginx: master_process off, one process;
# HAProxy: nbthread 1), all relaying to the same `netcrab serve --echo`;
# and `tokio-min` (bench/peers/bin/relay-tokio, the leanest tokio relay:
# a task per connection, copy_bidirectional; TOKIO_WORKER_THREADS=1), the
# floor a tokio relay can reach.
# Results go to stdout as Markdown tables (docs/BENCHMARKS.md, "Relay
# request/response and churn").
#
# Usage: bench/relay-rr.sh [SECONDS_PER_RUN] [ROUNDS]   (default 4 s, 5 rounds)
#   NETCRAB=path (default target/release/netcrab, built first)
#   BASELINE=path (default /work/base-netcrab if present; empty to leave it out)
#   GEN=path: the load generator and the echo upstream (default: the
#     baseline, else NETCRAB), the same binary for every relay
#   RR_CONNS=50 RR_SIZE=512 CHURN_CONNS=10 CHURN_SIZE=64
#   HAPROXY_SPLICE=1: HAProxy with `option splice-request/-response`
#   TOKIO_MIN=path (default bench/peers/bin/relay-tokio, built by
#     bench/peers/build.sh if missing; empty to leave tokio-min out)
#
# Workloads, driven by `GEN bench`: request/response is `-c RR_CONNS -s
# RR_SIZE` (closed loop, each request echoed), in requests per relay
# CPU-second; churn is `--churn -c CHURN_CONNS -s CHURN_SIZE` (connect, one
# exchange, close, repeat), in relay CPU-seconds per 1,000 connections.
# Relay CPU is utime+stime of the relay process over the run (from
# /proc/PID/stat). Rounds are interleaved (every relay once per round, in
# a rotating order); each figure is the median over rounds, and each ratio
# is against nginx in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-4}
rounds=${2:-5}
RR_CONNS=${RR_CONNS:-50}
RR_SIZE=${RR_SIZE:-512}
CHURN_CONNS=${CHURN_CONNS:-10}
CHURN_SIZE=${CHURN_SIZE:-64}
if [[ -z ${BASELINE+set} ]] && [[ -x /work/base-netcrab ]]; then BASELINE=/work/base-netcrab; fi
BASELINE=${BASELINE:-}
NGINX_MODULE=${NGINX_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}

if [[ -z ${NETCRAB:-} ]]; then
  cargo build --release --quiet
  NETCRAB=target/release/netcrab
fi
if [[ -n $BASELINE && ! -x $BASELINE ]]; then
  echo "relay-rr: no baseline at $BASELINE (BASELINE= to leave it out)" >&2
  exit 1
fi
GEN=${GEN:-${BASELINE:-$NETCRAB}}
if [[ -z ${TOKIO_MIN+set} ]]; then
  TOKIO_MIN=bench/peers/bin/relay-tokio
  [[ -x $TOKIO_MIN ]] || bench/peers/build.sh
fi
command -v nginx >/dev/null && command -v haproxy >/dev/null || scripts/install-bench-deps.sh
raise_nofile

bench_workdir relay-rr

"$GEN" -q serve 127.0.0.1:0 --echo --max-conns 100000 --port-file "$work/echo.port" &
pids+=($!)
echo_port=$(wait_port_file "$work/echo.port")

names=()
declare -A pid_of port_of

# start_netcrab NAME BINARY
start_netcrab() {
  TOKIO_WORKER_THREADS=1 "$2" -q relay 127.0.0.1:0 "127.0.0.1:$echo_port" \
    --max-conns 100000 --port-file "$work/$1.port" &
  pid_of[$1]=$!
  pids+=($!)
  port_of[$1]=$(wait_port_file "$work/$1.port")
  names+=("$1")
}

start_netcrab netcrab "$NETCRAB"
[[ -n $BASELINE ]] && start_netcrab baseline "$BASELINE"

# tokio-min: the minimal tokio relay, one worker like netcrab.
if [[ -n $TOKIO_MIN ]]; then
  TOKIO_WORKER_THREADS=1 "$TOKIO_MIN" 127.0.0.1:0 "127.0.0.1:$echo_port" \
    --port-file "$work/tokio-min.port" 2>/dev/null &
  pid_of[tokio-min]=$!
  pids+=($!)
  port_of[tokio-min]=$(wait_port_file "$work/tokio-min.port")
  names+=(tokio-min)
fi

# start_nginx NAME [DIRECTIVE]: one nginx `stream` process relaying to the
# echo server, with DIRECTIVE (e.g. `proxy_half_close on;`) in its server.
start_nginx() {
  local port dir=$work/$1
  port=$(free_port)
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
load_module $NGINX_MODULE;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log $dir/error.log error;
pid $dir/nginx.pid;
events { worker_connections 16384; }
stream {
  server {
    listen 127.0.0.1:$port;
    proxy_pass 127.0.0.1:$echo_port;
    ${2:-}
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off; master_process off;' &
  pid_of[$1]=$!
  pids+=($!)
  wait_listening "$port"
  port_of[$1]=$port
  names+=("$1")
}

# nginx as configured by default closes both sides at the first end of
# stream; netcrab and HAProxy pass a half-close on and wait for the other
# side's end. `nginx-half-close` (proxy_half_close on) does the same work.
start_nginx nginx
start_nginx nginx-half-close "proxy_half_close on;"

port=$(free_port)
splice=""
[[ ${HAPROXY_SPLICE:-0} == 1 ]] && splice=$'  option splice-request\n  option splice-response'
cat >"$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
$splice
listen relay
  bind 127.0.0.1:$port
  server echo 127.0.0.1:$echo_port
CONF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pid_of[haproxy]=$!
pids+=($!)
wait_listening "$port"
port_of[haproxy]=$port
names+=(haproxy)

# run NAME KIND: one run; appends "rate cpu_s count" to $work/NAME.KIND
run() {
  local name=$1 kind=$2 cpu0 cpu1 args
  if [[ $kind == rr ]]; then
    args=(-c "$RR_CONNS" -s "$RR_SIZE")
  else
    args=(--churn -c "$CHURN_CONNS" -s "$CHURN_SIZE")
  fi
  cpu0=$(proc_cpu_seconds "${pid_of[$name]}")
  "$GEN" -q bench "127.0.0.1:${port_of[$name]}" "${args[@]}" -d "${secs}s" --json >"$work/run.json"
  cpu1=$(proc_cpu_seconds "${pid_of[$name]}")
  jq -r --arg c0 "$cpu0" --arg c1 "$cpu1" \
    '"\(.rate.achieved_rps) \(($c1 | tonumber) - ($c0 | tonumber)) \(.requests.ok) \(.requests.errors)"' \
    "$work/run.json" >>"$work/$name.$kind"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of ${secs}s; $(nproc) CPUs" >&2
n=${#names[@]}
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < n; i++)); do
    name=${names[$(((i + r) % n))]}
    run "$name" rr
    run "$name" churn
  done
done

# median FILE FIELD_EXPR: the median over rounds of an awk expression.
median() {
  awk "{ print $2 }" "$1" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

nginx_rr=$(median "$work/nginx.rr" '$3 / $2')
nginx_churn=$(median "$work/nginx.churn" '$2 / $3 * 1000')
echo
echo "Request/response: $RR_CONNS connections x $RR_SIZE B, ${secs}s per run, medians of $rounds interleaved rounds"
echo
echo "| relay | req/s | relay CPU s per run | req per relay CPU-s | vs nginx | errors |"
echo "|---|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
  f=$work/$name.rr
  awk -v n="$name" -v rps="$(median "$f" '$1')" -v cpu="$(median "$f" '$2')" \
    -v per="$(median "$f" '$3 / $2')" -v ng="$nginx_rr" -v err="$(awk '{ e += $4 } END { print e }' "$f")" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.0f | %.2fx | %d |\n", n, rps, cpu, per, per / ng, err }'
done
echo
echo "Churn: --churn -c $CHURN_CONNS -s $CHURN_SIZE, ${secs}s per run, medians of $rounds interleaved rounds"
echo
echo "| relay | connections/s | relay CPU s per 1,000 connections | vs nginx | errors |"
echo "|---|---:|---:|---:|---:|"
for name in "${names[@]}"; do
  f=$work/$name.churn
  awk -v n="$name" -v rps="$(median "$f" '$1')" -v per="$(median "$f" '$2 / $3 * 1000')" \
    -v ng="$nginx_churn" -v err="$(awk '{ e += $4 } END { print e }' "$f")" \
    'BEGIN { printf "| %s | %.0f | %.4f | %.2fx | %d |\n", n, rps, per, per / ng, err }'
done
