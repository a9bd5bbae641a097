#!/usr/bin/env bash
# Forward proxies side by side on loopback, in one run: `netcrab proxy`
# against microsocks (SOCKS5) and tinyproxy (HTTP CONNECT). For each:
# tunnel set-up rate (connect to the proxy, handshake, one byte to an echo
# server and back, close) and bulk throughput (one tunnel writing into a
# discard server), with the proxy's CPU time. Results go to stdout as a
# Markdown table (docs/BENCHMARKS.md, "proxy").
#
# Usage: bench/proxy-compare.sh [SECONDS_PER_RUN] [WORKERS] [ROUNDS]
#        (default 3 s, 8 workers, 3 rounds)
#
# The load comes from bench/peers/proxy-load (Go, built here): the same
# client code for every proxy, SOCKS5 or HTTP CONNECT, so the figures differ
# only by the proxy. Each round runs every proxy once (set-up, then bulk);
# the table gives the median of the rounds and every run. `netcrab
# --no-splice` is the user-space copy path (what TLS and Unix-socket clients
# get). Proxy CPU is utime+stime of the proxy process (threads included,
# from /proc/PID/stat) over all its runs, per tunnel and per GiB. netcrab runs with -q (no log
# line per connection); microsocks logs nothing; tinyproxy logs at Critical.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-3}
workers=${2:-8}
rounds=${3:-3}

scripts/install-bench-deps.sh
cargo build --release --quiet
netcrab=target/release/netcrab

# The Go load driver (offline, the Debian toolchain, as bench/peers/build.sh).
mkdir -p bench/peers/bin
(
  export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE=on
  export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/netcrab-bench-gocache}"
  export GOPATH="${GOPATH:-${TMPDIR:-/tmp}/netcrab-bench-gopath}"
  cd bench/peers/proxy-load && go build -trimpath -o ../bin/proxy-load .
)
load=bench/peers/bin/proxy-load

raise_nofile
bench_workdir proxy-compare

"$netcrab" -q serve 127.0.0.1:0 --echo --port-file "$work/echo.port" &
pids+=($!)
"$netcrab" -q serve 127.0.0.1:0 --discard --port-file "$work/discard.port" &
pids+=($!)
echo_addr=127.0.0.1:$(wait_port_file "$work/echo.port")
discard_addr=127.0.0.1:$(wait_port_file "$work/discard.port")

# start_proxy NAME: starts the proxy; sets proxy_pid and proxy_addr.
start_proxy() {
  local port
  case $1 in
    netcrab | "netcrab --no-splice")
      local extra=()
      [[ $1 == *--no-splice ]] && extra=(--no-splice)
      "$netcrab" -q proxy 127.0.0.1:0 --port-file "$work/proxy.port" "${extra[@]}" &
      proxy_pid=$!
      port=$(wait_port_file "$work/proxy.port")
      rm -f "$work/proxy.port"
      ;;
    microsocks)
      port=$(free_port)
      microsocks -i 127.0.0.1 -p "$port" >/dev/null 2>&1 &
      proxy_pid=$!
      wait_listening "$port"
      ;;
    tinyproxy)
      port=$(free_port)
      cat >"$work/tinyproxy.conf" <<EOF
Port $port
Listen 127.0.0.1
Timeout 600
MaxClients 1024
LogLevel Critical
LogFile "$work/tinyproxy.log"
PidFile "$work/tinyproxy.pid"
Allow 127.0.0.1
DisableViaHeader Yes
EOF
      tinyproxy -d -c "$work/tinyproxy.conf" >/dev/null 2>&1 &
      proxy_pid=$!
      wait_listening "$port"
      ;;
  esac
  pids+=("$proxy_pid")
  proxy_addr=127.0.0.1:$port
}

# kv KEY LINE: the value of KEY=... in a proxy-load output line.
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

names=(netcrab "netcrab --no-splice" microsocks netcrab tinyproxy)
protos=(socks5 socks5 socks5 http http)
declare -a addr pid
for i in "${!names[@]}"; do
  start_proxy "${names[$i]}"
  addr[i]=$proxy_addr
  pid[i]=$proxy_pid
done

# Rounds interleave the proxies, so that the machine's load (and the
# TIME_WAIT sockets each run leaves behind) weigh on all of them alike.
declare -a rates cpu_setup tunnels gbits cpu_bulk bytes
for ((r = 0; r < rounds; r++)); do
  for i in "${!names[@]}"; do
    c0=$(proc_cpu_seconds "${pid[$i]}")
    out=$("$load" -proxy "${addr[$i]}" -proto "${protos[$i]}" -target "$echo_addr" -mode setup -c "$workers" -t "${secs}s")
    c1=$(proc_cpu_seconds "${pid[$i]}")
    [[ $(kv failed "$out") == 0 ]] || echo "warning: ${names[$i]} ${protos[$i]}: $out" >&2
    rates[i]="${rates[$i]:-} $(kv per_s "$out")"
    tunnels[i]=$((${tunnels[$i]:-0} + $(kv tunnels "$out")))
    cpu_setup[i]=$(awk -v a="${cpu_setup[$i]:-0}" -v b="$c0" -v c="$c1" 'BEGIN { print a + c - b }')
  done
  for i in "${!names[@]}"; do
    c0=$(proc_cpu_seconds "${pid[$i]}")
    out=$("$load" -proxy "${addr[$i]}" -proto "${protos[$i]}" -target "$discard_addr" -mode bulk -c 1 -t "${secs}s")
    c1=$(proc_cpu_seconds "${pid[$i]}")
    gbits[i]="${gbits[$i]:-} $(kv gbit_per_s "$out")"
    bytes[i]=$((${bytes[$i]:-0} + $(kv bytes "$out")))
    cpu_bulk[i]=$(awk -v a="${cpu_bulk[$i]:-0}" -v b="$c0" -v c="$c1" 'BEGIN { print a + c - b }')
  done
done

echo "| proxy | protocol | tunnels/s (median) | runs | proxy CPU µs per tunnel | bulk Gbit/s (median) | runs | proxy CPU s per GiB | peak RSS KiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for i in "${!names[@]}"; do
  # shellcheck disable=SC2086 # word splitting of the run lists is wanted
  awk -v n="${names[$i]}" -v p="${protos[$i]}" \
    -v rm="$(median ${rates[$i]})" -v rr="$(echo ${rates[$i]} | sed 's/ /, /g')" \
    -v cs="${cpu_setup[$i]}" -v t="${tunnels[$i]}" \
    -v gm="$(median ${gbits[$i]})" -v gr="$(printf '%.1f\n' ${gbits[$i]} | paste -sd, | sed 's/,/, /g')" \
    -v cb="${cpu_bulk[$i]}" -v by="${bytes[$i]}" -v rss="$(proc_hwm_kib "${pid[$i]}")" \
    'BEGIN {
       printf "| %s | %s | %d | %s | %.0f | %.1f | %s | %.3f | %d |\n",
         n, p, rm, rr, (t > 0 ? cs / t * 1e6 : 0), gm, gr, (by > 0 ? cb / (by / 1073741824) : 0), rss
     }'
done
