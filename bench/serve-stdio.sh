#!/usr/bin/env bash
# `serve --stdio` moving one bulk TCP stream between its stdio pipes and the
# socket on loopback: zero-copy (splice(2)) against the portable copy
# (--no-splice), side by side in one run, both directions.
#
# Usage: bench/serve-stdio.sh [SIZE] [RUNS]   (default 2G, 3 runs)
#
# in:   head -c SIZE /dev/zero | netcrab connect ADDR >/dev/null, the server's
#       stdout a pipe into cat >/dev/null (the server splices socket -> pipe)
# out:  head -c SIZE /dev/zero | netcrab serve --stdio | ..., the client
#       connect </dev/null >/dev/null (the server splices pipe -> socket)
# Server CPU = user+sys seconds /usr/bin/time reports for the serve process
# alone, per GiB; wall = the whole transfer. Median of RUNS runs each.
set -euo pipefail
cd "$(dirname "$0")/.."

size=${1:-2G}
runs=${2:-3}
cargo build --release --quiet
netcrab=target/release/netcrab
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/serve-stdio.XXXXXX")
trap 'rm -rf "$work"' EXIT
gib=$(echo "$(numfmt --from=iec "$size") / 1073741824" | bc -l)

# One run: prints "wall cpu" (seconds).
run() {
  local way=$1 extra=$2
  rm -f "$work/pf"
  if [[ $way == in ]]; then
    ( /usr/bin/time -f "%U %S" -o "$work/time" "$netcrab" -q serve 127.0.0.1:0 --stdio $extra \
        --port-file "$work/pf" </dev/null | cat >/dev/null ) &
  else
    ( head -c "$size" /dev/zero | /usr/bin/time -f "%U %S" -o "$work/time" "$netcrab" -q serve \
        127.0.0.1:0 --stdio $extra --port-file "$work/pf" >/dev/null ) &
  fi
  for _ in $(seq 200); do [[ -s $work/pf ]] && break; sleep 0.05; done
  local start end
  start=$(date +%s.%N)
  if [[ $way == in ]]; then
    head -c "$size" /dev/zero | "$netcrab" -q connect "127.0.0.1:$(cat "$work/pf")" >/dev/null
  else
    "$netcrab" -q connect "127.0.0.1:$(cat "$work/pf")" </dev/null >/dev/null
  fi
  wait
  end=$(date +%s.%N)
  read -r user sys <"$work/time"
  echo "$(echo "$end - $start" | bc -l) $(echo "$user + $sys" | bc -l)"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| direction | path | wall (s) | Gbit/s | server CPU s/GiB |"
echo "|---|---|---|---|---|"
for way in in out; do
  for extra in "" --no-splice; do
    : >"$work/walls"; : >"$work/cpus"
    for _ in $(seq "$runs"); do
      read -r wall cpu < <(run "$way" "$extra")
      echo "$wall" >>"$work/walls"; echo "$cpu" >>"$work/cpus"
    done
    wall=$(median <"$work/walls"); cpu=$(median <"$work/cpus")
    printf "| %s | %s | %.2f | %.1f | %.3f |\n" \
      "$([[ $way == in ]] && echo "socket -> stdout" || echo "stdin -> socket")" \
      "${extra:-splice}" "$wall" "$(echo "$gib * 8.589934592 / $wall" | bc -l)" \
      "$(echo "$cpu / $gib" | bc -l)"
  done
done
