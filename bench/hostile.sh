#!/usr/bin/env bash
# `netcrab serve --lines` against hostile peers, side by side for several
# builds (e.g. main and a branch). Results go to stdout as Markdown.
#
# Usage: bench/hostile.sh [NAME=BINARY ...]
#        (default: netcrab=target/release/netcrab, built first)
#
# 1. Memory: PEERS (400) peers each send 64 KiB (then 1 MiB) of newlines and
#    never read, against `serve --lines` (answering "hello, world": 64 KiB
#    of newlines make 832 KiB of answers, which loopback's socket buffers
#    may absorb; 1 MiB of newlines make 13 MiB, which they do not); then REPLY_PEERS
#    (50) peers against `serve --lines --reply <1 KiB>`. Reported: the
#    server's VmRSS and VmHWM from /proc once it has stopped using CPU (at
#    most 20 s), per peer, and its CPU seconds.
# 2. Waiting: every slot of `serve --lines --max-conns SLOTS` (50) is held,
#    by peers trickling one byte a second with no newline, or by peers that
#    sent 1 MiB of newlines (13 MiB of answers) and never read. Then a
#    legitimate client connects, sends a line and times how long its answer
#    takes (gives up after WAIT_CAP, 40 s: "none").
#
# 3. Idle cost (not hostile, the budget the above must not spoil): server
#    VmRSS per connection at IDLE_CONNS (10000) connections that each
#    echoed one 64 B message (`serve --echo`, as bench/compare.sh measures)
#    or had one line answered (`serve --lines --echo`), then stay idle. The
#    load comes from the first build's `netcrab bench`.
#
# SKIP_MEMORY=1, SKIP_WAIT=1, SKIP_IDLE=1 leave a part out.
#
# Bounded: each scenario stops its peers and its server at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

peers=${PEERS:-400}
reply_peers=${REPLY_PEERS:-50}
slots=${SLOTS:-50}
wait_cap=${WAIT_CAP:-40}
idle_conns=${IDLE_CONNS:-10000}

if (($# == 0)); then
  cargo build --release --quiet
  set -- netcrab=target/release/netcrab
fi
raise_nofile
builds=("$@")

bench_workdir hostile

# The hostile peers and the legitimate client, in one small Python program.
cat >"$work/peers.py" <<'EOF'
import socket, sys, time

mode, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
size = int(sys.argv[5]) if len(sys.argv) > 5 else 65536
addr = ("127.0.0.1", port)

if mode == "client":
    # Time from connect to the whole answer of one line; "none" past `hold`.
    start = time.monotonic()
    try:
        s = socket.create_connection(addr, timeout=hold)
        s.sendall(b"hello\n")
        s.settimeout(max(0.1, hold - (time.monotonic() - start)))
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        print("%.2f" % (time.monotonic() - start) if got.endswith(b"\n") else "none (closed)")
    except OSError:
        print("none")
    sys.exit(0)

socks = []
for _ in range(count):
    s = socket.create_connection(addr, timeout=5)
    if mode == "flood":
        # `size` bytes of newlines, as much as the socket buffers take now.
        s.setblocking(False)
        data = memoryview(b"\n" * size)
        try:
            while data:
                data = data[s.send(data):]
        except OSError:
            pass
    socks.append(s)
print("ready", flush=True)
deadline = time.monotonic() + hold
while time.monotonic() < deadline:
    if mode == "trickle":
        for s in socks:
            try:
                s.send(b"a")
            except OSError:
                pass
    time.sleep(1)
EOF

# start_server BINARY ARGS... : starts it on a free port; sets $port, $spid.
start_server() {
  local bin=$1
  shift
  port=$(free_port)
  "$bin" serve "127.0.0.1:$port" -q "$@" 2>"$work/server.err" &
  spid=$!
  pids+=("$spid")
  wait_listening "$port"
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# settle PID: waits until PID has used no CPU for a second (at most 20 s).
settle() {
  local pid=$1 last now i
  last=$(proc_cpu_seconds "$pid")
  for ((i = 0; i < 20; i++)); do
    sleep 1
    now=$(proc_cpu_seconds "$pid")
    [[ $now == "$last" ]] && return 0
    last=$now
  done
}

# memory_run TITLE PEERS BYTES SERVER-ARGS...: the memory table for one
# setup, each peer sending BYTES of newlines.
memory_run() {
  local title=$1 n=$2 bytes=$3
  shift 3
  echo "## $title"
  echo
  echo "| build | VmRSS MiB | VmHWM MiB | KiB per peer (RSS - baseline) | server CPU s |"
  echo "|---|---|---|---|---|"
  for spec in "${builds[@]}"; do
    name=${spec%%=*} bin=${spec#*=}
    start_server "$bin" --lines --max-conns $((n + 10)) "$@"
    base=$(proc_rss_kib "$spid")
    python3 "$work/peers.py" flood "$port" "$n" 60 "$bytes" >"$work/peers.out" &
    ppid=$!
    pids+=("$ppid")
    while ! grep -q ready "$work/peers.out" 2>/dev/null; do sleep 0.1; done
    settle "$spid"
    rss=$(proc_rss_kib "$spid")
    hwm=$(proc_hwm_kib "$spid")
    cpu=$(proc_cpu_seconds "$spid")
    awk -v n="$name" -v r="$rss" -v h="$hwm" -v b="$base" -v p="$n" -v c="$cpu" \
      'BEGIN { printf "| %s | %.1f | %.1f | %.1f | %s |\n", n, r/1024, h/1024, (r-b)/p, c }'
    stop "$ppid"
    stop "$spid"
  done
  echo
}

if [[ -z ${SKIP_MEMORY:-} ]]; then
memory_run "$peers non-reading peers, 64 KiB of newlines each, \`serve --lines\`" "$peers" 65536
memory_run "$peers non-reading peers, 1 MiB of newlines each, \`serve --lines\`" "$peers" $((1 << 20))
memory_run "$reply_peers non-reading peers, 64 KiB of newlines each, \`serve --lines --reply <1 KiB>\`" \
  "$reply_peers" 65536 --reply "$(head -c 1024 /dev/zero | tr '\0' x)"
fi

if [[ -z ${SKIP_WAIT:-} ]]; then
echo "## A legitimate client while $slots peers hold every \`--max-conns $slots\` slot"
echo
echo "| build | slots held by | answer after (s) |"
echo "|---|---|---|"
for spec in "$@"; do
  name=${spec%%=*} bin=${spec#*=}
  for mode in trickle flood; do
    start_server "$bin" --lines --max-conns "$slots"
    python3 "$work/peers.py" "$mode" "$port" "$slots" $((wait_cap + 5)) $((1 << 20)) >"$work/peers.out" &
    ppid=$!
    pids+=("$ppid")
    while ! grep -q ready "$work/peers.out" 2>/dev/null; do sleep 0.1; done
    sleep 1
    took=$(python3 "$work/peers.py" client "$port" 1 "$wait_cap")
    label=$([[ $mode == trickle ]] && echo "tricklers (1 byte/s, no newline)" || echo "non-readers (1 MiB of newlines)")
    echo "| $name | $label | $took |"
    stop "$ppid"
    stop "$spid"
  done
done
echo
fi

if [[ -z ${SKIP_IDLE:-} ]]; then
echo "## Idle connections: server VmRSS per connection at $idle_conns"
echo
echo "| build | service | KiB per connection |"
echo "|---|---|---|"
loader=${1#*=}
msg="$(head -c 63 /dev/zero | tr '\0' a)"$'\n'   # 64 B, one line
for spec in "$@"; do
  name=${spec%%=*} bin=${spec#*=}
  for service in "--echo" "--lines --echo"; do
    # shellcheck disable=SC2086 # $service is two words on purpose
    start_server "$bin" $service --max-conns 20000 --idle-timeout 0
    "$loader" -q bench "127.0.0.1:$port" -c 1 -n 10 --payload "$msg" --json >/dev/null
    base=$(proc_rss_kib "$spid")
    "$loader" -q bench "127.0.0.1:$port" -c "$idle_conns" --rate "$((idle_conns * 2))" \
      -n "$idle_conns" --payload "$msg" --connect-rate 5000 --hold 10s --json >/dev/null &
    client=$!
    deadline=$((SECONDS + 30))
    until (($(proc_fd_count "$spid") >= idle_conns)) || ((SECONDS >= deadline)); do
      sleep 0.1
    done
    sleep 2
    loaded=$(proc_rss_kib "$spid")
    wait "$client" || true
    stop "$spid"
    awk -v n="$name" -v s="$service" -v a="$loaded" -v b="$base" -v c="$idle_conns" \
      'BEGIN { printf "| %s | %s | %.2f |\n", n, s, (a - b) / c }'
  done
done
fi
