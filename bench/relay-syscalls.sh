#!/usr/bin/env bash
# System calls per relayed connection: `netcrab relay` runs under
# `strace -f -c` while `netcrab bench --churn` makes N short connections
# (one 64 B exchange each) through it to a `netcrab serve --echo`; prints
# the calls per connection of the kinds a connection's set-up and teardown
# make, and the total. Deterministic (counts, not times), so two builds
# compare exactly.
#
# Usage: bench/relay-syscalls.sh RELAY_BINARY [HELPER_BINARY]
#   N=2000 (connections). Needs strace (Debian: strace). Loopback only.
set -euo pipefail
BIN=${1:?usage: bench/relay-syscalls.sh RELAY_BINARY [HELPER_BINARY]}
HELPER=${2:-$BIN}
N=${N:-2000}
up=$(mktemp -u); pf=$(mktemp -u)
$HELPER serve 127.0.0.1:0 --echo --port-file $up.port -q 2>/dev/null & E=$!
while [ ! -s $up.port ]; do sleep 0.05; done
strace -f -c -o $up.strace $BIN relay 127.0.0.1:0 127.0.0.1:$(cat $up.port) --port-file $pf -q 2>/dev/null & R=$!
while [ ! -s $pf ]; do sleep 0.05; done
$HELPER bench 127.0.0.1:$(cat $pf) --churn -c 4 -n $N -s 64 -q >/dev/null 2>&1
# SIGINT to the relay itself (strace's child), not to every process by name.
kill -INT $(pgrep -P $R); wait $R 2>/dev/null; kill $E; wait $E 2>/dev/null
awk -v n="$N" '$NF=="total" {tot=$4} NR>2 && $NF!="total" && $0!~/^-/ {calls[$NF]=$4} END {for (k in calls) if (k ~ /^(pipe2|fcntl|close|ioctl|splice|epoll_ctl|accept4|socket|connect|setsockopt|recvfrom|sendto|read|write|shutdown|futex|epoll_wait|getsockopt|getpeername)$/) printf "%s=%.2f ", k, calls[k]/n; printf "\nall=%.1f per connection\n", tot/n}' $up.strace
