#!/usr/bin/env bash
# Side-by-side comparison of `netcrab serve` with peers, measured with
# `netcrab bench`, on 127.0.0.1 only. Prints ONE markdown table (ratios to
# netcrab) and keeps the raw JSON reports.
#
#   echo/request-response: netcrab serve --echo, the Go goroutine-per-
#     connection echo server (bench/peers/echo-go), a plain tokio task-per-
#     connection echo server (bench/peers/echo-tokio), socat (fork, PIPE: socat
#     itself echoes, one process per connection; TCP_NODELAY like the
#     others) and ncat (-k --exec /bin/cat: a cat process per connection
#     reading the socket; ncat has no TCP_NODELAY option), and (only when
#     named in SERVERS) "floor", the leanest epoll server in C
#     (bench/peers/floor-echo: a thread per core, one read + one write per
#     request) and "uring", the leanest io_uring one in Rust
#     (bench/peers/echo-uring: a ring per core, multishot accept and recv),
#     at 1, 50 and 500 connections
#     x 64 B and 1 KiB messages, closed loop, a fresh server per run.
#   bulk: one stream of BULK_BYTES through netcrab connect -> serve --discard
#     (and -> the Go server in discard mode) vs iperf3.
#   idle: server memory per idle connection at IDLE_CONNS connections (each
#     first echoes one message, so lazily allocated buffers exist), netcrab
#     vs Go and tokio; the fork-per-connection peers are left out (a process
#     each).
#
# Per run it records the wall-clock rate, the server's CPU seconds (GNU
# time around a server started fresh for that run: its whole life, children
# it waited for included, so fork-per-connection servers are counted whole;
# no warm-up, so connection set-up is in every figure), the server's memory (VmHWM for
# single-process servers; for forking ones the sum of VmRSS over the tree,
# sampled mid-run), latency and the generator's CPU per request.
#
# Usage: bench/compare.sh            (about 4-5 minutes)
# Knobs (environment): DURATION=3s CONNS="1 50 500" SIZES="64 1024" ROUNDS=1
#   SERVERS="netcrab go tokio socat ncat" BULK_BYTES=2G IDLE_CONNS=10000
#   IDLE_SERVERS="netcrab go tokio" SKIP_BULK=1 SKIP_IDLE=1
#   OUT=target/bench-compare
#   BENCH_ARGS="--churn": more flags for the echo section's `netcrab bench`
#     (split on spaces; --churn makes every request a new connection)
#   ROUNDS=N: run the echo section N times, the servers' order reversed
#     every other round; the table then shows each column's median over
#     the rounds (ratios are of the medians). CONNS may go up to ~9,000
#     (the generator and the server each hold one descriptor per
#     connection; raise_nofile allows 20,000).
#   IDLE_TIMEOUT=0: netcrab's (and the baseline's) --idle-timeout; 0 (none)
#     by default, as the peers have none; 5m is what `serve` runs with when
#     not told, so IDLE_TIMEOUT=5m measures what users get.
#   NETCRAB=PATH: the netcrab binary under test (and the load generator);
#     default target/release/netcrab, built here first.
#   BASELINE=PATH: another netcrab binary (a build of main, say), run as the
#     server "baseline" with netcrab's flags: add it to SERVERS and
#     IDLE_SERVERS to compare a change with it, side by side in one run.
# The peers are installed and built only when SERVERS, IDLE_SERVERS or the
# bulk section use them, so SERVERS="netcrab baseline" IDLE_SERVERS=... SKIP_BULK=1
# needs neither Go nor iperf3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

DURATION=${DURATION:-3s}
CONNS=${CONNS:-"1 50 500"}
SIZES=${SIZES:-"64 1024"}
SERVERS=${SERVERS:-"netcrab go tokio socat ncat"}
BULK_BYTES=${BULK_BYTES:-2G}
IDLE_CONNS=${IDLE_CONNS:-10000}
OUT=${OUT:-$root/target/bench-compare}
ROUNDS=${ROUNDS:-1}
read -r -a bench_args <<<"${BENCH_ARGS:-}"
IDLE_SERVERS=${IDLE_SERVERS:-"netcrab go tokio"}
BASELINE=${BASELINE:-}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-0}

if [[ -z ${SKIP_BULK:-} ]] || [[ " $SERVERS $IDLE_SERVERS " =~ \ (go|tokio|socat|ncat|floor|uring)\  ]]; then
  "$root/scripts/install-bench-deps.sh"
  "$here/peers/build.sh"
fi
if [[ " $SERVERS $IDLE_SERVERS " == *" baseline "* ]] && [[ ! -x $BASELINE ]]; then
  echo "compare.sh: the baseline server needs BASELINE=PATH to a netcrab binary" >&2
  exit 2
fi
if [[ -z ${NETCRAB:-} ]]; then
  (cd "$root" && cargo build --release --locked --quiet)
  NETCRAB="$root/target/release/netcrab"
fi
raise_nofile

NC="$NETCRAB"
GO="$here/peers/bin/echo-go"
TOKIO="$here/peers/bin/echo-tokio"
FLOOR="$here/peers/bin/floor-echo"
URING="$here/peers/bin/echo-uring"
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.server-cpu
tmp=$(mktemp -d)
started=()

# Kill every server this script started, with its children (socat, ncat).
cleanup() {
  local pid p
  for pid in "${started[@]}"; do
    for p in $(tree_pids "$pid" 2>/dev/null | tac); do
      kill "$p" 2>/dev/null || true
    done
  done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_server NAME echo|discard: sets SERVER_PID (the server itself) and
# SERVER_PORT. The server runs under GNU time, which reports the CPU time
# of the server and of every child it waited for when it exits.
start_server() {
  local name=$1 mode=$2 pf="$tmp/port.$RANDOM" cmd
  SERVER_PORT=""
  case $name in
    netcrab) cmd=("$NC" serve 127.0.0.1:0 "--$mode" -q --max-conns 20000 --idle-timeout "$IDLE_TIMEOUT" --port-file "$pf") ;;
    baseline) cmd=("$BASELINE" serve 127.0.0.1:0 "--$mode" -q --max-conns 20000 --idle-timeout "$IDLE_TIMEOUT" --port-file "$pf") ;;
    go) cmd=("$GO" -addr 127.0.0.1:0 -mode "$mode" -port-file "$pf") ;;
    tokio) cmd=("$TOKIO" -addr 127.0.0.1:0 -mode "$mode" -port-file "$pf") ;;
    floor) cmd=("$FLOOR" -addr 127.0.0.1:0 -mode "$mode" -port-file "$pf") ;;
    uring) cmd=("$URING" -addr 127.0.0.1:0 -mode "$mode" -port-file "$pf") ;;
    socat)
      SERVER_PORT=$(free_port)
      cmd=(socat "TCP-LISTEN:$SERVER_PORT,bind=127.0.0.1,fork,reuseaddr,backlog=4096,nodelay" PIPE)
      ;;
    ncat)
      SERVER_PORT=$(free_port)
      cmd=(ncat -k -l 127.0.0.1 "$SERVER_PORT" --max-conns 4096 --exec /bin/cat)
      ;;
  esac
  rm -f "$tmp/cpu"
  /usr/bin/time -f "%U %S" -o "$tmp/cpu" "${cmd[@]}" 2>/dev/null &
  TIME_PID=$!
  started+=("$TIME_PID")
  local deadline=$((SECONDS + 10))
  until SERVER_PID=$(pgrep -P "$TIME_PID"); do
    if ((SECONDS >= deadline)); then
      echo "compare.sh: $name did not start" >&2
      return 1
    fi
    sleep 0.02
  done
  [[ -n $SERVER_PORT ]] || SERVER_PORT=$(wait_port_file "$pf")
  wait_listening "$SERVER_PORT"
}

# stop_server: TERM the server's children, then the server; sets
# SERVER_CPU (user + system seconds of the server and its reaped children
# over its whole life, which was one run).
stop_server() {
  local p deadline=$((SECONDS + 10))
  # Let per-connection children finish on their own first (the client has
  # closed every connection), so the server waits for them and GNU time
  # counts their CPU; kill what is left after 10 s.
  while [[ -n $(pgrep -P "$SERVER_PID") ]] && ((SECONDS < deadline)); do
    sleep 0.05
  done
  for p in $(tree_pids "$SERVER_PID" 2>/dev/null | tac); do
    kill "$p" 2>/dev/null || true
  done
  wait "$TIME_PID" 2>/dev/null || true
  SERVER_CPU=$(awk 'END { print $1 + $2 }' "$tmp/cpu" 2>/dev/null || echo 0)
}

# server_mem_kib NAME PID SAMPLED: VmHWM for single-process servers, the
# sampled tree RSS for forking ones.
server_mem_kib() {
  case $1 in
    socat | ncat) echo "$3" ;;
    *) proc_hwm_kib "$2" ;;
  esac
}

rows="$tmp/rows"
: >"$rows"

# ---------------------------------------------------------------- echo
reversed() {
  local out="" x
  for x in $1; do out="$x $out"; done
  echo "$out"
}
for ((round = 1; round <= ROUNDS; round++)); do
  order=$SERVERS
  ((round % 2 == 0)) && order=$(reversed "$SERVERS")
  for conns in $CONNS; do
    for size in $SIZES; do
      for name in $order; do
        start_server "$name" echo
        json="$OUT/echo-$name-c$conns-s$size-r$round.json"
        # Sample the server tree's memory in the middle of the measurement.
        mid=$(awk -v d="${DURATION%s}" 'BEGIN { print d / 2 }')
        (sleep "$mid" && tree_rss_kib "$SERVER_PID" >"$tmp/rss") &
        sampler=$!
        echo "compare.sh: round $round, $name, $conns connection(s) x $size B" >&2
        "$NC" -q bench "127.0.0.1:$SERVER_PORT" -c "$conns" --size "$size" \
          -d "$DURATION" "${bench_args[@]}" --json >"$json"
        wait "$sampler" || true
        mem=$(server_mem_kib "$name" "$SERVER_PID" "$(cat "$tmp/rss" 2>/dev/null || echo 0)")
        stop_server
        echo "$SERVER_CPU" >"${json%.json}.server-cpu"
        jq -r --arg name "$name" --arg mem "$mem" --arg cpu "$SERVER_CPU" '[
            $name, .workload.connections, .workload.request_bytes,
            .rate.achieved_rps, ($cpu | tonumber), .requests.ok,
            .latency.p50_us, .latency.p99_us,
            ($mem | tonumber), (.generator.cpu_us_per_request // 0), .requests.errors
          ] | @tsv' "$json" >>"$rows"
      done
    done
  done
done

# The table: one row per (workload, server), each column the median over
# the rounds, ratios against netcrab's row.
echo
echo "### Request/response (echo${BENCH_ARGS:+, bench $BENCH_ARGS}), closed loop, $DURATION per run, a fresh server per run, median of $ROUNDS round(s)"
echo
echo "| server | conns | size | req/s | vs netcrab | server CPU s | req per server CPU-s | vs netcrab | p50 | p99 | server mem MiB | generator µs/req | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
  function fmt_us(us) { return us < 1000 ? sprintf("%.0fµs", us) : sprintf("%.2fms", us / 1000) }
  # The median of the numbers in the space-separated list.
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) {
      t = a[i] + 0
      for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
      a[j + 1] = t
    }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    key = $1 SUBSEP $2 SUBSEP $3
    if (!(key in seen)) { seen[key] = 1; keys[++nkeys] = key }
    for (c = 4; c <= 11; c++) col[key, c] = col[key, c] " " $c
    col[key, 12] = col[key, 12] " " (($5 > 0) ? $6 / $5 : 0)
  }
  END {
    for (k = 1; k <= nkeys; k++) {
      key = keys[k]
      for (c = 4; c <= 12; c++) m[key, c] = median(col[key, c])
    }
    for (k = 1; k <= nkeys; k++) {
      key = keys[k]
      split(key, f, SUBSEP)
      base = "netcrab" SUBSEP f[2] SUBSEP f[3]
      rps_ratio = (base in seen && m[base, 4] > 0) ? sprintf("%.2f", m[key, 4] / m[base, 4]) : "-"
      cpu_ratio = (base in seen && m[base, 12] > 0) ? sprintf("%.2f", m[key, 12] / m[base, 12]) : "-"
      printf "| %s | %d | %d | %.0f | %s | %.2f | %.0f | %s | %s | %s | %.1f | %.2f | %d |\n",
        f[1], f[2], f[3], m[key, 4], rps_ratio, m[key, 5], m[key, 12], cpu_ratio,
        fmt_us(m[key, 7]), fmt_us(m[key, 8]), m[key, 9] / 1024, m[key, 10], m[key, 11]
    }
  }' "$rows"
echo
echo "Per-run rows (server, conns, size, req/s, server CPU s, requests, p50, p99, mem KiB, generator µs/req, errors): $OUT/rows.tsv" >&2
cp "$rows" "$OUT/rows.tsv"

# ---------------------------------------------------------------- bulk
if [[ -z ${SKIP_BULK:-} ]]; then
  echo
  echo "### Bulk: one stream, $DURATION (iperf3: -t $DURATION; netcrab connect: $BULK_BYTES from a pipe)"
  echo
  echo "| receiver | sender | Gbit/s | vs netcrab | receiver CPU s per GiB |"
  echo "|---|---|---:|---:|---:|"
  # bench_bulk NAME: netcrab bench sending 128 KiB writes, no replies.
  bench_bulk() {
    start_server "$1" discard
    local json="$OUT/bulk-$1.json"
    "$NC" -q bench "127.0.0.1:$SERVER_PORT" -c 1 --size 128KiB --expect none \
      -d "$DURATION" --json >"$json"
    stop_server
    jq -r --arg cpu "$SERVER_CPU" '[(.throughput.sent_bytes_per_s * 8 / 1e9),
            (($cpu | tonumber) / ((.throughput.bytes_sent + 1) / 1073741824))] | @tsv' "$json"
  }
  # connect_bulk: BULK_BYTES through `netcrab connect` from a pipe.
  connect_bulk() {
    start_server netcrab discard
    local t0 t1 bytes
    bytes=$(numfmt --from=iec "$BULK_BYTES")
    t0=$(date +%s.%N)
    head -c "$BULK_BYTES" /dev/zero | "$NC" -q connect "127.0.0.1:$SERVER_PORT" >/dev/null
    t1=$(date +%s.%N)
    stop_server
    awk -v b="$bytes" -v t0="$t0" -v t1="$t1" -v c="$SERVER_CPU" \
      'BEGIN { printf "%.2f\t%.3f\n", b * 8 / (t1 - t0) / 1e9, c / (b / 1073741824) }'
  }
  IFS=$'\t' read -r nc_bulk nc_cpu < <(bench_bulk netcrab)
  IFS=$'\t' read -r go_bulk go_cpu < <(bench_bulk go)
  IFS=$'\t' read -r pipe_bulk pipe_cpu < <(connect_bulk)
  port=$(free_port)
  iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  started+=("$!")
  wait_listening "$port"
  ip_bulk=$(iperf3 -c 127.0.0.1 -p "$port" -t "${DURATION%s}" -J 2>/dev/null |
    jq '.end.sum_received.bits_per_second / 1e9')
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
  f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
  echo "| netcrab serve --discard | netcrab bench --expect none (128 KiB writes) | $(f2 "$nc_bulk") | 1.00 | $(f2 "$nc_cpu") |"
  echo "| Go echo-go -mode discard | netcrab bench --expect none (128 KiB writes) | $(f2 "$go_bulk") | $(ratio "$go_bulk" "$nc_bulk") | $(f2 "$go_cpu") |"
  echo "| netcrab serve --discard | \`head -c $BULK_BYTES /dev/zero \| netcrab connect\` | $(f2 "$pipe_bulk") | $(ratio "$pipe_bulk" "$nc_bulk") | $(f2 "$pipe_cpu") |"
  echo "| iperf3 -s | iperf3 -c (single stream) | $(f2 "$ip_bulk") | $(ratio "$ip_bulk" "$nc_bulk") | - |"
fi

# ---------------------------------------------------------------- idle
if [[ -z ${SKIP_IDLE:-} ]]; then
  echo
  echo "### Idle connections: server memory at $IDLE_CONNS connections (each echoed one 64 B message first)"
  echo
  echo "| server | baseline RSS MiB | RSS with $IDLE_CONNS idle MiB | KiB per connection | vs netcrab |"
  echo "|---|---:|---:|---:|---:|"
  idle_base=""
  for name in $IDLE_SERVERS; do
    start_server "$name" echo
    # Baseline: the server after one exchange.
    "$NC" -q bench "127.0.0.1:$SERVER_PORT" -c 1 -n 10 --json >/dev/null
    base=$(proc_rss_kib "$SERVER_PID")
    "$NC" -q bench "127.0.0.1:$SERVER_PORT" -c "$IDLE_CONNS" --rate "$((IDLE_CONNS * 2))" \
      -n "$IDLE_CONNS" --connect-rate 5000 --hold 10s --json >"$OUT/idle-$name.json" &
    client=$!
    deadline=$((SECONDS + 30))
    until (($(proc_fd_count "$SERVER_PID") >= IDLE_CONNS)); do
      if ((SECONDS >= deadline)); then
        echo "compare.sh: $name never reached $IDLE_CONNS connections" >&2
        break
      fi
      sleep 0.1
    done
    sleep 2 # every connection has echoed its message by now
    loaded=$(proc_rss_kib "$SERVER_PID")
    wait "$client" || true
    stop_server
    per=$(awk -v a="$loaded" -v b="$base" -v n="$IDLE_CONNS" 'BEGIN { printf "%.2f", (a - b) / n }')
    [[ -z $idle_base ]] && idle_base=$per
    echo "| $name | $(awk -v k="$base" 'BEGIN { printf "%.1f", k / 1024 }') | $(awk -v k="$loaded" 'BEGIN { printf "%.1f", k / 1024 }') | $per | $(awk -v a="$per" -v b="$idle_base" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }') |"
  done
fi

echo
echo "Raw reports: $OUT/*.json" >&2
