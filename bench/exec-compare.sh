#!/bin/bash
# A program per connection: `netcrab serve --exec cat` against `ncat -lk --exec
# /bin/cat` (Debian's ncat), side by side in one run. Each server gets the same
# load from `netcrab bench --churn` (a new connection per 64-byte request: the
# cost is starting, feeding and reaping a program), and reports connections per
# second and the server's CPU time from /proc/PID/stat: its own (utime+stime)
# and its reaped programs' (cutime+cstime). Needs a release build
# (cargo build --release) and ncat (scripts/install-test-deps.sh).
#
#   bench/exec-compare.sh            # 5 s per server, 4 concurrent clients
#   DURATION=10s CONNS=8 bench/exec-compare.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

B=${NETCRAB:-$(dirname "$0")/../target/release/netcrab}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-4}
TMP=${TMPDIR:-/tmp}

cpu() { # PID -> "self children" in seconds
  local rest
  rest=$(sed 's/.*) //' "/proc/$1/stat")
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f %.2f\n", ($12 + $13) / hz, ($14 + $15) / hz }' <<<"$rest"
}

run() { # NAME PORT PID
  local name=$1 port=$2 pid=$3 before after out rate
  wait_listening "$port"
  before=$(cpu "$pid")
  out=$("$B" bench "127.0.0.1:$port" --churn -c "$CONNS" -d "$DURATION" --json 2>/dev/null)
  after=$(cpu "$pid")
  rate=$(grep -o '"achieved_rps": *[0-9.]*' <<<"$out" | grep -o '[0-9.]*$')
  ok=$(grep -o '"ok": *[0-9]*' <<<"$out" | head -1 | grep -o '[0-9]*$')
  errors=$(grep -o '"errors": *[0-9]*' <<<"$out" | head -1 | grep -o '[0-9]*$')
  read -r s0 c0 <<<"$before"
  read -r s1 c1 <<<"$after"
  local self children
  self=$(bc -l <<<"$s1 - $s0")
  children=$(bc -l <<<"$c1 - $c0")
  printf "%-22s %7.0f conn/s (%s ok, %s errors)  server cpu %5.2fs = %5.3f ms/conn  programs' cpu %5.2fs\n" \
    "$name" "$rate" "$ok" "$errors" "$self" "$(bc -l <<<"$self * 1000 / $ok")" "$children"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

# Servers still running when the script stops (an error under set -e) are ended.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

PORT=$(free_port)
echo "bench --churn -c $CONNS -d $DURATION, 64-byte echo per connection:"
"$B" serve "127.0.0.1:$PORT" --exec /bin/cat >/dev/null 2>"$TMP/netcrab-exec-bench.log" &
run "netcrab serve --exec" "$PORT" $!

PORT=$(free_port)
ncat -lk 127.0.0.1 "$PORT" --exec /bin/cat >/dev/null 2>&1 &
run "ncat -lk --exec" "$PORT" $!
