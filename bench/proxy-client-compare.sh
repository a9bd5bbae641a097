#!/usr/bin/env bash
# Connection set-up rate and throughput through SOCKS5 and HTTP CONNECT
# proxies on loopback, side by side in one run: direct, through microsocks
# (SOCKS5) and through tinyproxy (HTTP CONNECT), each driven by
# `netcrab bench --proxy` against `netcrab serve --echo`, with the proxy's
# CPU time. Results go to stdout as a Markdown table (docs/BENCHMARKS.md,
# "proxies"). Another proxy (netcrab proxy, say) is added with
# EXTRA_PROXY=URL EXTRA_PID=PID.
#
# Usage: bench/proxy-client-compare.sh [SECONDS_PER_RUN] [CONNECTIONS]   (default 5 s, 10)
#
# set-up: `bench --churn` (connect through the proxy, one 64-byte echo,
# close, repeat), in connections per second; bulk: `bench -s 64k -c 4
# --expect none` to `serve --discard` (one-way, 64 KiB writes on 4
# connections), in MiB/s sent. Proxy CPU is utime+stime of the proxy
# process during the run (bench --server-pid), per connection for set-up
# and per GiB moved for bulk. The load average is printed first: on a
# shared machine the figures are only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

secs=${1:-5}
conns=${2:-10}

scripts/install-bench-deps.sh
scripts/install-test-deps.sh # microsocks, tinyproxy
cargo build --release --quiet
netcrab=target/release/netcrab

bench_workdir proxy-client-compare

"$netcrab" -q serve 127.0.0.1:0 --echo --port-file "$work/echo.port" &
pids+=($!)
echo_port=$(wait_port_file "$work/echo.port")
"$netcrab" -q serve 127.0.0.1:0 --discard --port-file "$work/discard.port" &
pids+=($!)
discard_port=$(wait_port_file "$work/discard.port")

socks_port=$(free_port)
microsocks -i 127.0.0.1 -p "$socks_port" >/dev/null 2>&1 &
socks_pid=$!
pids+=("$socks_pid")
wait_listening "$socks_port"

http_port=$(free_port)
cat >"$work/tinyproxy.conf" <<CONF
Port $http_port
Listen 127.0.0.1
Timeout 60
MaxClients 1000
LogLevel Error
ConnectPort $echo_port
ConnectPort $discard_port
CONF
tinyproxy -d -c "$work/tinyproxy.conf" >/dev/null 2>&1 &
http_pid=$!
pids+=("$http_pid")
wait_listening "$http_port"

# run NAME PROXY_URL PID: one row (PROXY_URL and PID empty: direct).
run() {
  local name=$1 url=$2 pid=$3 proxy=(--no-proxy) server=()
  [[ -n $url ]] && proxy=(--proxy "$url")
  [[ -n $pid ]] && server=(--server-pid "$pid")
  "$netcrab" -q bench "127.0.0.1:$echo_port" "${proxy[@]}" "${server[@]}" \
    --churn -c "$conns" -d "${secs}s" --json >"$work/churn.json"
  "$netcrab" -q bench "127.0.0.1:$discard_port" "${proxy[@]}" "${server[@]}" \
    -s 64k -c 4 --expect none -d "${secs}s" --json >"$work/bulk.json"
  jq -r --arg n "$name" -s '
    .[0] as $c | .[1] as $b |
    $b.throughput.bytes_sent as $bytes |
    "| \($n) | \($c.rate.achieved_rps | floor) | \($c.connect.p50_us | floor) | " +
    (if $c.server then "\($c.server.cpu_s * 100 | floor / 100) | \(($c.server.cpu_s * 1e6 / ($c.requests.ok + 0.001)) | floor)" else "- | -" end) +
    " | \(($b.throughput.sent_bytes_per_s / 1048576) | floor) | " +
    (if $b.server then "\($b.server.cpu_s * 100 | floor / 100) | \(($b.server.cpu_s / ($bytes / 1073741824)) * 100 | floor / 100)" else "- | -" end) +
    " | \($c.requests.errors + $b.requests.errors) |"
  ' "$work/churn.json" "$work/bulk.json"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cpus)"
echo
echo "| path | set-up: conn/s | connect p50 µs | proxy CPU s | proxy CPU µs/conn | bulk MiB/s sent | proxy CPU s | proxy CPU s/GiB | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
run "direct" "" ""
run "microsocks (socks5)" "socks5://127.0.0.1:$socks_port" "$socks_pid"
run "tinyproxy (http connect)" "http://127.0.0.1:$http_port" "$http_pid"
if [[ -n ${EXTRA_PROXY:-} ]]; then
  run "$EXTRA_PROXY" "$EXTRA_PROXY" "${EXTRA_PID:-}"
fi
