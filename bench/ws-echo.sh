#!/usr/bin/env bash
# bench/ws-echo.sh (after cargo build --release): echo over tcp, tls, ws, wss side by side: netcrab serve --echo, netcrab bench
# -c 50 --size 512 -d 3s; server CPU seconds from /proc/PID/stat (utime+stime).
set -u
B=${B:-target/release/netcrab}
TCK=$(getconf CLK_TCK)
cpu() { awk -v t=$TCK '{print ($14+$15)/t}' /proc/$1/stat; }
printf '| transport | req/s | server CPU s | req per server CPU-s | p50 | p99 |\n|---|---|---|---|---|---|\n'
for scheme in tcp tls ws wss; do
  $B serve $scheme://127.0.0.1:0 --echo 2>/tmp/wsb_srv.log & SP=$!
  for i in $(seq 100); do grep -q "listening on" /tmp/wsb_srv.log && break; sleep 0.05; done
  ADDR=$(grep -o "$scheme://127.0.0.1:[0-9]*" /tmp/wsb_srv.log | head -1)
  [ "$scheme" = tcp ] && ADDR=$(grep -o "127.0.0.1:[0-9]*" /tmp/wsb_srv.log | head -1)
  extra=(); case $scheme in tls|wss) extra=(--insecure);; esac
  c0=$(cpu $SP)
  $B bench "$ADDR" "${extra[@]}" -c 50 --size 512 -d 3s --json > /tmp/wsb_$scheme.json 2>/dev/null
  c1=$(cpu $SP)
  kill $SP; wait $SP 2>/dev/null
  python3 - "$scheme" "$c0" "$c1" /tmp/wsb_$scheme.json <<'PY'
import json, sys
s, c0, c1, f = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
j = json.load(open(f))
rps = j["rate"]["achieved_rps"]
lat = j["latency"]
cpu = c1 - c0
n = j["requests"]["ok"]
print(f"| {s} | {rps:.0f} | {cpu:.2f} | {n/cpu if cpu else 0:.0f} | {lat['p50_us']:.0f} us | {lat['p99_us']:.0f} us |")
PY
done
