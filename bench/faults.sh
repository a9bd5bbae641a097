#!/bin/bash
# Faults measured from outside (issue 13), side by side in one run against
# one `serve --echo` upstream:
#   1. latency: `netcrab bench` through a relay without faults and through
#      `relay --latency 100ms` (p50 should sit a few ms above 100 ms);
#   2. bandwidth: SIZE_MB (default 80) echoed through `relay --bandwidth
#      10MiB/s` (downstream only) by `netcrab connect`, RUNS times (default
#      3): the rate received, against the 10 MiB/s asked for;
#   3. bulk: SIZE_MB echoed through the plain relay and through the
#      latency relay (the delay queue bounds it to 4 MiB per 100 ms);
# with each relay's CPU time (utime + stime from /proc/PID/stat).
# Needs a release build: cargo build --release.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

B=${NETCRAB:-$(dirname "$0")/../target/release/netcrab}
SIZE_MB=${SIZE_MB:-80}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
T=${TMPDIR:-/tmp}/netcrab-faults-bench
mkdir -p "$T"
PIDS=()
trap 'kill -TERM "${PIDS[@]}" 2>/dev/null || true' EXIT

start() { # $1 = name, rest = args; prints the port
  local name=$1; shift
  "$B" "$@" --port-file "$T/$name.port" >/dev/null 2>"$T/$name.log" &
  PIDS+=($!)
  echo $! >"$T/$name.pid"
  wait_port_file "$T/$name.port"
}

UP=$(start up serve 127.0.0.1:0 --echo --idle-timeout 0)
PLAIN=$(start plain relay 127.0.0.1:0 "127.0.0.1:$UP")
LAT=$(start latency relay 127.0.0.1:0 "127.0.0.1:$UP" --latency 100ms)
BW=$(start bandwidth relay 127.0.0.1:0 "127.0.0.1:$UP" --bandwidth 10MiB/s)

echo "== latency: netcrab bench -c 10 -s 64 -d $DURATION"
for name in plain latency; do
  port=$(cat "$T/$name.port")
  cpu0=$(proc_cpu_seconds "$(cat "$T/$name.pid")")
  "$B" bench "127.0.0.1:$port" -c 10 -s 64 -d "$DURATION" --json >"$T/$name.json"
  cpu1=$(proc_cpu_seconds "$(cat "$T/$name.pid")")
  python3 - "$name" "$T/$name.json" "$cpu0" "$cpu1" <<'EOF'
import json, sys
name, path, c0, c1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = json.load(open(path))
lat = r["latency"]
ms = lambda k: f"{lat[k] / 1000:.2f} ms"
print(f"{name:8} requests {r['requests']['ok']} ok, {r['requests']['errors']} errors; "
      f"p50 {ms('p50_us')}, p90 {ms('p90_us')}, p99 {ms('p99_us')}, max {ms('max_us')}; "
      f"relay cpu {c1 - c0:.2f} s")
EOF
done

echo "== bandwidth 10MiB/s: $SIZE_MB MiB echoed, downstream paced, $RUNS runs"
pid=$(cat "$T/bandwidth.pid")
for i in $(seq "$RUNS"); do
  cpu0=$(proc_cpu_seconds "$pid")
  t0=$(date +%s.%N)
  got=$(head -c "${SIZE_MB}M" /dev/zero | "$B" connect "127.0.0.1:$BW" | wc -c)
  t1=$(date +%s.%N)
  cpu1=$(proc_cpu_seconds "$pid")
  awk -v b="$got" -v t0="$t0" -v t1="$t1" -v c0="$cpu0" -v c1="$cpu1" -v run="$i" 'BEGIN {
    s = t1 - t0; r = b / s / 1048576
    printf "run %d: %d bytes in %.3f s = %.3f MiB/s (%+.2f%% of 10 MiB/s); relay cpu %.2f s\n",
      run, b, s, r, (r / 10 - 1) * 100, c1 - c0 }'
done

echo "== bulk: $SIZE_MB MiB echoed through the plain relay and through --latency 100ms"
for name in plain latency; do
  port=$(cat "$T/$name.port")
  pid=$(cat "$T/$name.pid")
  cpu0=$(proc_cpu_seconds "$pid")
  t0=$(date +%s.%N)
  got=$(head -c "${SIZE_MB}M" /dev/zero | "$B" connect "127.0.0.1:$port" | wc -c)
  t1=$(date +%s.%N)
  cpu1=$(proc_cpu_seconds "$pid")
  awk -v n="$name" -v b="$got" -v t0="$t0" -v t1="$t1" -v c0="$cpu0" -v c1="$cpu1" 'BEGIN {
    s = t1 - t0
    printf "%-8s %d bytes in %.3f s = %.1f MiB/s; relay cpu %.2f s\n", n, b, s, b / s / 1048576, c1 - c0 }'
done
