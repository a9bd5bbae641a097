#!/bin/bash
# TLS 1.3 full handshakes per server CPU-second: netcrab `relay tls:// tcp://`
# against HAProxy (`bind ... ssl crt`, mode tcp) and nginx (`stream`, `listen
# ssl`), each a TLS terminator on one thread forwarding to the same plain TCP
# echo upstream, with an RSA-2048 and an ECDSA P-256 certificate (made with
# openssl in a temporary directory).
#
# The load is bench/tls-churn (a small Go client, built here): workers that
# each connect, make a full TLS 1.3 handshake (X25519, no session cache, so
# never a resumption), exchange 64 bytes through the upstream and close. The
# same client for every server, so the figures differ only by the server.
# Servers keep their defaults otherwise (session tickets included: the client
# never uses them).
#
# All servers run at once; the rounds interleave them (a different order each
# round), each run measuring one server's CPU time (utime+stime from
# /proc/PID/stat, every thread) over its own run. Per server: the median of the
# rounds' handshakes per CPU-second, and the ratios to HAProxy and nginx.
#
#   bench/tls-compare.sh                  # target/release/netcrab and /work/base-netcrab
#   ROUNDS=7 DURATION=4s bench/tls-compare.sh
#   NETCRABS="ring=/tmp/nc-ring aws-lc-rs=target/release/netcrab" bench/tls-compare.sh
#
# Environment: NETCRABS (space-separated NAME=BINARY netcrab builds to
# compare; default "netcrab=target/release/netcrab", plus "base=/work/base-
# netcrab" when that exists), ROUNDS (5), DURATION per run (3s), CONNS client
# workers (4), CERTS ("rsa ecdsa"), PEERS ("haproxy nginx"), SIZE bytes
# exchanged per connection (64; 0 for the handshake alone, closing at once).
# Needs go, haproxy and nginx with its stream module
# (scripts/install-bench-deps.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3s}
CONNS=${CONNS:-4}
CERTS=${CERTS:-rsa ecdsa}
PEERS=${PEERS:-haproxy nginx}
SIZE=${SIZE:-64}
if [[ -z ${NETCRABS:-} ]]; then
  NETCRABS="netcrab=$root/target/release/netcrab"
  [[ -x /work/base-netcrab ]] && NETCRABS+=" base=/work/base-netcrab"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tls-compare.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
raise_nofile

# The load generator: its own module, built offline with the installed Go.
(
  cd "$here/tls-churn"
  GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE=on \
    GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/netcrab-bench-gocache}" \
    go build -trimpath -o "$tmp/tls-churn" .
)

# Certificates: RSA-2048 and ECDSA P-256, self-signed for localhost.
make_cert() { # NAME OPENSSL-NEWKEY-ARGS...
  local name=$1
  shift
  openssl req -x509 "$@" -nodes -keyout "$tmp/$name.key" -out "$tmp/$name.crt" -days 7 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
  cat "$tmp/$name.crt" "$tmp/$name.key" >"$tmp/$name.pem" # HAProxy's crt
}
make_cert rsa -newkey rsa:2048
make_cert ecdsa -newkey ec -pkeyopt ec_paramgen_curve:P-256

# The upstream every terminator forwards to: a plain TCP echo (not measured).
first_netcrab=${NETCRABS%% *}
first_netcrab=${first_netcrab#*=}
"$first_netcrab" serve 127.0.0.1:0 --echo -q --port-file "$tmp/upstream.port" &
pids+=($!)
upstream=$(wait_port_file "$tmp/upstream.port")

# start_server NAME CERT -> sets SERVER_PID and SERVER_PORT
start_server() {
  local name=$1 cert=$2 port
  port=$(free_port)
  case $name in
  haproxy)
    cat >"$tmp/haproxy-$cert.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend tls
  bind 127.0.0.1:$port ssl crt $tmp/$cert.pem ssl-min-ver TLSv1.3
  default_backend echo
backend echo
  server echo 127.0.0.1:$upstream
EOF
    haproxy -q -db -f "$tmp/haproxy-$cert.cfg" &
    ;;
  nginx)
    mkdir -p "$tmp/nginx-$cert"
    cat >"$tmp/nginx-$cert/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
error_log $tmp/nginx-$cert/error.log;
pid $tmp/nginx-$cert/nginx.pid;
events { worker_connections 8000; }
stream {
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $tmp/$cert.crt;
    ssl_certificate_key $tmp/$cert.key;
    ssl_protocols TLSv1.3;
    proxy_pass 127.0.0.1:$upstream;
  }
}
EOF
    nginx -p "$tmp/nginx-$cert" -c "$tmp/nginx-$cert/nginx.conf" \
      -g 'daemon off; master_process off;' &
    ;;
  *)
    # One runtime worker: a like-for-like per-CPU figure with the
    # one-thread peers (the process's every thread is counted).
    TOKIO_WORKER_THREADS=1 "${binary[$name]}" relay -q "tls://127.0.0.1:$port" \
      "tcp://127.0.0.1:$upstream" --cert "$tmp/$cert.crt" --key "$tmp/$cert.key" &
    ;;
  esac
  SERVER_PID=$!
  SERVER_PORT=$port
  pids+=("$SERVER_PID")
  wait_listening "$port"
}

# run_once PID PORT -> "handshakes cpu_seconds wall_seconds"
run_once() {
  local pid=$1 port=$2 before after out hs errs secs first
  before=$(proc_cpu_seconds "$pid")
  out=$("$tmp/tls-churn" -addr "127.0.0.1:$port" -c "$CONNS" -t "$3" -size "$SIZE")
  after=$(proc_cpu_seconds "$pid")
  hs=$(grep -o 'handshakes=[0-9]*' <<<"$out" | cut -d= -f2)
  errs=$(grep -o 'errors=[0-9]*' <<<"$out" | cut -d= -f2)
  secs=$(grep -o 'seconds=[0-9.]*' <<<"$out" | cut -d= -f2)
  if ((errs > 0)); then
    first=$(grep -o 'first_error=.*' <<<"$out")
    echo "tls-compare: $errs errors against port $port ($first)" >&2
  fi
  echo "$hs $(bc -l <<<"$after - $before") $secs"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A binary
names=()
for nb in $NETCRABS; do
  binary[${nb%%=*}]=${nb#*=}
  names+=("${nb%%=*}")
done
names+=($PEERS)

echo "# tls-compare: $(date -u +'%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $ROUNDS rounds x $DURATION per server, $CONNS client workers, ${SIZE} B exchanged per connection"
for nb in $NETCRABS; do
  echo "# ${nb%%=*}: ${nb#*=} ($(stat -c %s "${nb#*=}") bytes)"
done

for cert in $CERTS; do
  declare -A pid=() port=()
  for name in "${names[@]}"; do
    start_server "$name" "$cert"
    pid[$name]=$SERVER_PID
    port[$name]=$SERVER_PORT
    run_once "$SERVER_PID" "$SERVER_PORT" 1s >/dev/null # warm-up, not counted
  done
  declare -A rates=() walls=()
  for ((r = 0; r < ROUNDS; r++)); do
    # Rotate the order each round.
    n=${#names[@]}
    for ((i = 0; i < n; i++)); do
      name=${names[$(((i + r) % n))]}
      read -r hs cpu secs <<<"$(run_once "${pid[$name]}" "${port[$name]}" "$DURATION")"
      rates[$name]+="$(bc -l <<<"$hs / $cpu") "
      walls[$name]+="$(bc -l <<<"$hs / $secs") "
    done
  done
  echo
  echo "## $cert certificate: full TLS 1.3 handshakes per server CPU-second (median of $ROUNDS)"
  echo
  declare -A med=()
  for name in "${names[@]}"; do
    med[$name]=$(tr ' ' '\n' <<<"${rates[$name]}" | grep . | median)
  done
  header="| server | handshakes per CPU-s | CPU ms per handshake | handshakes/s (wall) | rounds (per CPU-s) |"
  sep="|---|---|---|---|---|"
  for peer in $PEERS; do
    header+=" vs $peer |"
    sep+="---|"
  done
  echo "$header"
  echo "$sep"
  for name in "${names[@]}"; do
    wall=$(tr ' ' '\n' <<<"${walls[$name]}" | grep . | median)
    each=$(for v in ${rates[$name]}; do printf '%.0f ' "$v"; done)
    line=$(printf '| %s | %.0f | %.3f | %.0f | %s |' "$name" "${med[$name]}" \
      "$(bc -l <<<"1000 / ${med[$name]}")" "$wall" "${each% }")
    for peer in $PEERS; do
      line+=$(printf ' %.2fx |' "$(bc -l <<<"${med[$name]} / ${med[$peer]}")")
    done
    echo "$line"
  done
  for name in "${names[@]}"; do
    kill "${pid[$name]}" 2>/dev/null || true
    wait "${pid[$name]}" 2>/dev/null || true
  done
  unset pid port rates walls med
done
