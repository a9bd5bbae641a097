#!/usr/bin/env bash
# Where the echo servers' CPU goes, per request: user vs system time and
# system calls, for netcrab beside tokio, Go and the floors (floor-echo,
# echo-uring). A companion of bench/compare.sh (which gives the headline
# requests per server CPU-second); run it under the same lock.
#
# Per round, per connection count, per server (the order rotating): a fresh
# server, `netcrab bench -c C --size SIZE -d DURATION` against it twice:
#   run 1: the server's utime and stime from /proc/PID/stat (all threads)
#          before and after: user and system µs per request;
#   run 2: `perf stat -p PID` counting system call entries (tracepoints,
#          raw_syscalls:sys_enter and a few by name): calls per request.
#          (Separate runs, so the tracepoints' own cost is not in run 1.)
# Prints one markdown table, medians over the rounds.
#
# Usage: bench/peers/floor-echo/cpu-split.sh
#   NETCRAB=PATH (default target/release/netcrab; also the load generator)
#   SERVERS="netcrab tokio go floor uring" CONNS="50 500" SIZE=512
#     (floor1: floor-echo on one thread, -threads 1; netcrab1, tokio1: one
#     runtime worker thread, TOKIO_WORKER_THREADS=1)
#   DURATION=3 (seconds) ROUNDS=3
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

NC=${NETCRAB:-$root/target/release/netcrab}
SERVERS=${SERVERS:-"netcrab tokio go floor uring"}
CONNS=${CONNS:-"50 500"}
SIZE=${SIZE:-512}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
bin="$root/bench/peers/bin"
for tool in perf jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "cpu-split.sh: $tool not found (perf: Debian's linux-perf; jq: scripts/install-bench-deps.sh)" >&2
    exit 1
  fi
done
raise_nofile
# The system calls counted by name (those none of the servers makes count 0).
named="read write recvfrom sendto readv writev epoll_wait epoll_pwait io_uring_enter futex sched_yield nanosleep"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME: a fresh server; sets SP (its pid) and PORT.
start() {
  local pf="$work/port.$RANDOM" cmd
  case $1 in
    netcrab) cmd=("$NC" serve 127.0.0.1:0 --echo -q --max-conns 20000 --idle-timeout 0 --port-file "$pf") ;;
    tokio) cmd=("$bin/echo-tokio" -addr 127.0.0.1:0 -port-file "$pf") ;;
    # One runtime worker (tokio's own environment variable).
    netcrab1) cmd=(env TOKIO_WORKER_THREADS=1 "$NC" serve 127.0.0.1:0 --echo -q --max-conns 20000 --idle-timeout 0 --port-file "$pf") ;;
    tokio1) cmd=(env TOKIO_WORKER_THREADS=1 "$bin/echo-tokio" -addr 127.0.0.1:0 -port-file "$pf") ;;
    go) cmd=("$bin/echo-go" -addr 127.0.0.1:0 -port-file "$pf") ;;
    floor) cmd=("$bin/floor-echo" -addr 127.0.0.1:0 -port-file "$pf") ;;
    floor1) cmd=("$bin/floor-echo" -threads 1 -addr 127.0.0.1:0 -port-file "$pf") ;;
    uring) cmd=("$bin/echo-uring" -addr 127.0.0.1:0 -port-file "$pf") ;;
    *) echo "cpu-split.sh: unknown server $1" >&2 && exit 2 ;;
  esac
  "${cmd[@]}" 2>/dev/null &
  SP=$!
  pids+=("$SP")
  PORT=$(wait_port_file "$pf")
  wait_listening "$PORT"
}
stop() {
  kill "$SP" 2>/dev/null || true
  wait "$SP" 2>/dev/null || true
}
# load C: the requests answered in one DURATION run.
load() {
  "$NC" -q bench "127.0.0.1:$PORT" -c "$1" --size "$SIZE" -d "${DURATION}s" --json | jq -r .requests.ok
}

events="raw_syscalls:sys_enter"
for s in $named; do events+=",syscalls:sys_enter_$s"; done
hz=$(getconf CLK_TCK)
for ((r = 1; r <= ROUNDS; r++)); do
  order=$SERVERS
  ((r % 2 == 0)) && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
  for c in $CONNS; do
    for name in $order; do
      echo "cpu-split.sh: round $r, $name, $c connections" >&2
      start "$name"
      read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$SP/stat")
      ok=$(load "$c")
      read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$SP/stat")
      stop
      start "$name"
      perf stat -x, -e "$events" -p "$SP" -o "$work/perf" &
      perf_pid=$!
      ok2=$(load "$c")
      kill -INT "$perf_pid"
      wait "$perf_pid" || true
      stop
      # name conns req/s user-us/req sys-us/req calls/req then one per named call
      awk -F, -v n="$name" -v c="$c" -v ok="$ok" -v ok2="$ok2" -v d="$DURATION" -v hz="$hz" \
        -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v named="$named" '
        { sub(/^syscalls:sys_enter_/, "", $3); count[$3] = $1 }
        END {
          printf "%s %s %.0f %.3f %.3f %.3f", n, c, ok / d, u * 1e6 / hz / ok, s * 1e6 / hz / ok,
            count["raw_syscalls:sys_enter"] / ok2
          k = split(named, a, " ")
          for (i = 1; i <= k; i++) printf " %.3f", count[a[i]] / ok2
          printf "\n"
        }' "$work/perf" >>"$work/rows"
    done
  done
done

echo "### Where the CPU goes: ${SIZE} B echo, ${DURATION} s runs, medians of $ROUNDS rounds"
echo
echo "| server | conns | req/s | server CPU µs/req | user µs/req | system µs/req | user share | syscalls/req | of which (per request) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
awk -v servers="$SERVERS" -v conns="$CONNS" -v named="$named" '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { key = $1 " " $2; for (f = 3; f <= NF; f++) col[key, f] = col[key, f] " " $f; nf = NF }
  END {
    ns = split(servers, sv, " "); nc = split(conns, cv, " "); k = split(named, nm, " ")
    for (j = 1; j <= nc; j++) for (i = 1; i <= ns; i++) {
      key = sv[i] " " cv[j]
      if (!((key, 3) in col)) continue
      rps = median(col[key, 3]); u = median(col[key, 4]); s = median(col[key, 5]); calls = median(col[key, 6])
      detail = ""
      for (x = 1; x <= k; x++) { v = median(col[key, 6 + x]); if (v >= 0.005) detail = detail sprintf("%s%s %.2f", detail == "" ? "" : ", ", nm[x], v) }
      printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.0f%% | %.2f | %s |\n", sv[i], cv[j], rps, u + s, u, s, 100 * u / (u + s), calls, detail
    }
  }' "$work/rows"
