#!/usr/bin/env bash
# bench/ws-echo.sh (after cargo build --release): every stream transport side
# by side in one run — tcp, tls, ws, wss and quic — a fresh `netcrab serve`
# per transport and pass:
#   echo: serve --echo,    bench -c 50 --size 512 -d DURATION
#   bulk: serve --discard, bench -c 4 --size 64k --expect none -d DURATION
# Server CPU seconds from /proc/PID/stat (utime+stime) over the run.
# Usage: bench/ws-echo.sh [DURATION]   (default 3s)
set -u
B=${B:-target/release/netcrab}
D=${1:-3s}
TCK=$(getconf CLK_TCK)
cpu() { awk -v t=$TCK '{print ($14+$15)/t}' /proc/$1/stat; }
run() { # pass scheme
  local pass=$1 scheme=$2 svc bargs
  case $pass in
    echo) svc=--echo; bargs=(-c 50 --size 512) ;;
    bulk) svc=--discard; bargs=(-c 4 --size 64k --expect none) ;;
  esac
  $B serve $scheme://127.0.0.1:0 $svc 2>/tmp/wsb_srv.log & SP=$!
  for i in $(seq 200); do grep -q "listening on" /tmp/wsb_srv.log && break; sleep 0.05; done
  ADDR=$(grep -o "$scheme://127.0.0.1:[0-9]*" /tmp/wsb_srv.log | head -1)
  [ "$scheme" = tcp ] && ADDR=$(grep -o "127.0.0.1:[0-9]*" /tmp/wsb_srv.log | head -1)
  extra=(); case $scheme in tls|wss|quic) extra=(--insecure);; esac
  c0=$(cpu $SP)
  $B bench "$ADDR" "${extra[@]}" "${bargs[@]}" -d "$D" --json > /tmp/wsb_${pass}_${scheme}.json 2>/tmp/wsb_bench.log
  c1=$(cpu $SP)
  kill $SP; wait $SP 2>/dev/null
  python3 - "$pass" "$scheme" "$c0" "$c1" /tmp/wsb_${pass}_${scheme}.json <<'PY'
import json, sys
p, s, c0, c1, f = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
try:
    j = json.load(open(f))
except Exception:
    print(f"| {p} | {s} | failed (see /tmp/wsb_bench.log) | | | |"); sys.exit()
cpu = c1 - c0
n = j["requests"]["ok"]
rps = j["rate"]["achieved_rps"]
if p == "echo":
    lat = j["latency"]
    print(f"| echo | {s} | {rps:.0f} req/s | {cpu:.2f} | {n/cpu if cpu else 0:.0f} req per CPU-s | p50 {lat['p50_us']:.0f} us |")
else:
    sent = j["throughput"]["bytes_sent"]
    gib = sent / 2**30
    secs = j["elapsed_s"]
    print(f"| bulk | {s} | {sent/2**20/secs:.0f} MiB/s | {cpu:.2f} | {cpu/gib if gib else 0:.2f} CPU-s per GiB | |")
PY
}
printf '| pass | transport | rate | server CPU s | per server CPU | latency |\n|---|---|---|---|---|---|\n'
for pass in echo bulk; do
  for scheme in tcp tls ws wss quic; do run $pass $scheme; done
done
