#!/usr/bin/env bash
# Forward proxies side by side on loopback, in one run: `netcrab proxy`
# against microsocks (SOCKS5) and tinyproxy (HTTP CONNECT). For each:
# tunnel set-up rate (connect to the proxy, handshake, one byte to an echo
# server and back, close) and bulk throughput (one tunnel writing into a
# discard server), with the proxy's CPU time. Results go to stdout as a
# Markdown table (docs/BENCHMARKS.md, "proxy").
#
# Usage: bench/proxy-compare.sh [SECONDS_PER_RUN] [WORKERS]   (default 5 s, 8)
#
# The load comes from bench/peers/proxy-load (Go, built here): the same
# client code for every proxy, SOCKS5 or HTTP CONNECT, so the figures differ
# only by the proxy. `netcrab --no-splice` shows the user-space copy path
# (what TLS and Unix-socket clients get). Proxy CPU is utime+stime of the proxy process over the
# run (threads included), from /proc/PID/stat. netcrab runs with -q (no log
# line per connection); microsocks logs nothing; tinyproxy logs at Critical.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-5}
workers=${2:-8}

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
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

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

# row NAME PROTO: one table row for a proxy speaking PROTO.
row() {
  local name=$1 proto=$2 c0 c1 c2 out setup bulk
  start_proxy "$name"
  c0=$(proc_cpu_seconds "$proxy_pid")
  out=$("$load" -proxy "$proxy_addr" -proto "$proto" -target "$echo_addr" -mode setup -c "$workers" -t "${secs}s")
  c1=$(proc_cpu_seconds "$proxy_pid")
  setup=$out
  out=$("$load" -proxy "$proxy_addr" -proto "$proto" -target "$discard_addr" -mode bulk -c 1 -t "${secs}s")
  c2=$(proc_cpu_seconds "$proxy_pid")
  bulk=$out
  local rss
  rss=$(proc_hwm_kib "$proxy_pid")
  kill "$proxy_pid"
  wait "$proxy_pid" 2>/dev/null || true
  awk -v n="$name" -v p="$proto" \
    -v t="$(kv tunnels "$setup")" -v f="$(kv failed "$setup")" -v ps="$(kv per_s "$setup")" \
    -v cs="$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
    -v g="$(kv gbit_per_s "$bulk")" -v by="$(kv bytes "$bulk")" \
    -v cb="$(awk -v a="$c1" -v b="$c2" 'BEGIN { print b - a }')" -v rss="$rss" \
    'BEGIN {
       printf "| %s | %s | %d | %d | %.2f | %.0f | %.1f | %.2f | %.3f | %d |\n",
         n, p, ps, f, cs, (t > 0 ? cs / t * 1e6 : 0), g, cb, (by > 0 ? cb / (by / 1073741824) : 0), rss
     }'
}

echo "| proxy | protocol | tunnels/s | failed | proxy CPU s (set-up) | proxy CPU µs per tunnel | bulk Gbit/s | proxy CPU s (bulk) | proxy CPU s per GiB | peak RSS KiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row netcrab socks5
row "netcrab --no-splice" socks5
row microsocks socks5
row netcrab http
row tinyproxy http
