#!/bin/bash
# Relay bulk transfer (SIZE_MB, default 512) through `relay --no-splice`, with no
# transcript, with `-o /dev/null` and with `-o FILE`, side by side in one run:
# wall clock and the relay process's CPU time (from /proc/PID/stat). Needs a
# release build: cargo build --release.

B=${NETCRAB:-$(dirname "$0")/../target/release/netcrab}
SIZE_MB=${SIZE_MB:-512}
start() { # $1 = log file, rest = args
  local log=$1; shift
  "$B" "$@" >/dev/null 2>"$log" & echo $! > "$log.pid"
  for i in $(seq 200); do grep -q "listening on" "$log" && break; sleep 0.05; done
  grep -o "listening on [^ ]*" "$log" | sed 's/.*://'
}
UP_PORT=$(start ${TMPDIR:-/tmp}/netcrab-tb-up.log serve 127.0.0.1:0 --discard --idle-timeout 0)
for mode in "splice" "copy:--no-splice" "dev-null:-o /dev/null" "raw-file:-o ${TMPDIR:-/tmp}/netcrab-tb-t.raw" ; do
  name=${mode%%:*}; args=${mode#*:}; [ "$name" = "$mode" ] && args=""
  PORT=$(start ${TMPDIR:-/tmp}/netcrab-tb-relay.log relay 127.0.0.1:0 127.0.0.1:$UP_PORT $args)
  PID=$(cat ${TMPDIR:-/tmp}/netcrab-tb-relay.log.pid)
  t0=$(date +%s.%N)
  head -c ${SIZE_MB}M /dev/zero | "$B" connect 127.0.0.1:$PORT > /dev/null
  t1=$(date +%s.%N)
  read ut st < <(awk '{print $14, $15}' /proc/$PID/stat)
  tck=$(getconf CLK_TCK)
  kill -TERM $PID; wait $PID 2>/dev/null || true
  extra=""
  [ -f ${TMPDIR:-/tmp}/netcrab-tb-t.raw ] && extra="file $(stat -c %s ${TMPDIR:-/tmp}/netcrab-tb-t.raw) bytes" && rm -f ${TMPDIR:-/tmp}/netcrab-tb-t.raw
  grep -h "transcript incomplete" ${TMPDIR:-/tmp}/netcrab-tb-relay.log || true
  printf "%-9s %d MiB: wall %.2fs, relay cpu %.2fs (user %.2f sys %.2f) %s\n" "$name" $SIZE_MB \
    $(echo "$t1 - $t0" | bc) $(echo "($ut + $st) / $tck" | bc -l) $(echo "$ut / $tck" | bc -l) $(echo "$st / $tck" | bc -l) "$extra"
done
kill -TERM $(cat ${TMPDIR:-/tmp}/netcrab-tb-up.log.pid)
