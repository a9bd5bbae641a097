# shellcheck shell=bash
# Helpers for netcrab's benchmark scripts. Source it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#   wait_port_file FILE [TIMEOUT_S]  poll until FILE is non-empty; print its
#                                    content (e.g. a port). Default 10 s.
#   proc_cpu_seconds PID             utime+stime of PID itself (not children),
#                                    in seconds, 2 decimals
#   proc_rss_kib PID                 current resident set (VmRSS), KiB
#   proc_hwm_kib PID                 peak resident set (VmHWM), KiB
#   raise_nofile                     ulimit -n to min(hard limit, 20000)
#   tree_pids PID                    PID and its descendants
#   tree_rss_kib PID                 VmRSS summed over PID and its descendants, KiB
#   proc_fd_count PID                open file descriptors of PID
#   free_port                        a port on 127.0.0.1 free a moment ago
#   wait_listening PORT [TIMEOUT_S]  poll until a socket listens on PORT
#
# All return non-zero with a message on stderr on failure (missing process,
# timeout), so a script under `set -e` stops there.

# wait_port_file FILE [TIMEOUT_S]
wait_port_file() {
  local file=$1 timeout=${2:-10}
  local deadline=$((SECONDS + timeout))
  # Wait for a complete line: writers that do not rename atomically could
  # otherwise be caught half-way through the number.
  # ($(tail -c1) is empty exactly when the last byte is a newline.)
  while [[ ! -s $file ]] || [[ -n $(tail -c1 "$file") ]]; do
    if ((SECONDS >= deadline)); then
      echo "wait_port_file: $file still empty after ${timeout}s" >&2
      return 1
    fi
    sleep 0.05
  done
  local content
  content=$(<"$file")
  printf '%s\n' "$content"
}

# proc_cpu_seconds PID
proc_cpu_seconds() {
  local pid=$1 stat
  if ! stat=$(cat "/proc/$pid/stat" 2>/dev/null) || [[ -z $stat ]]; then
    echo "proc_cpu_seconds: no process $pid" >&2
    return 1
  fi
  # Field 2 (comm) is in parentheses and may contain spaces: cut after the
  # last ')'. What remains starts at field 3, so utime (14) and stime (15)
  # are the 12th and 13th words.
  local rest=${stat##*) }
  local -a f
  read -r -a f <<<"$rest"
  local ticks=$((f[11] + f[12]))
  local hz
  hz=$(getconf CLK_TCK)
  awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.2f\n", t / hz }'
}

# _proc_status_kib CALLER PID FIELD  (FIELD: VmRSS, VmHWM, ...)
_proc_status_kib() {
  local caller=$1 pid=$2 field=$3 status line
  if ! status=$(cat "/proc/$pid/status" 2>/dev/null) || [[ -z $status ]]; then
    echo "$caller: no process $pid" >&2
    return 1
  fi
  line=$(grep -m1 "^$field:" <<<"$status") || {
    echo "$caller: no $field for $pid (zombie or kernel thread?)" >&2
    return 1
  }
  # "VmRSS:     1234 kB"
  awk '{ print $2 }' <<<"$line"
}

# proc_rss_kib PID
proc_rss_kib() { _proc_status_kib proc_rss_kib "$1" VmRSS; }

# proc_hwm_kib PID
proc_hwm_kib() { _proc_status_kib proc_hwm_kib "$1" VmHWM; }

# raise_nofile: soft open-files limit to min(hard, 20000) for this shell and
# everything it starts afterwards (20000 is this machine's per-process cap).
raise_nofile() {
  local hard want=20000
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < want)); then
    want=$hard
  fi
  ulimit -Sn "$want"
}

# tree_pids PID: PID and all its descendants, one per line.
tree_pids() {
  local pid=$1 child
  echo "$pid"
  for child in $(pgrep -P "$pid" 2>/dev/null); do
    tree_pids "$child"
  done
}

# tree_rss_kib PID: the sum of VmRSS over PID and its descendants, KiB.
# (Pages shared between forked processes are counted once per process, so
# this overstates fork-per-connection servers somewhat.)
tree_rss_kib() {
  local total=0 p kib
  for p in $(tree_pids "$1"); do
    kib=$(_proc_status_kib tree_rss_kib "$p" VmRSS 2>/dev/null) || continue
    total=$((total + kib))
  done
  echo "$total"
}

# proc_fd_count PID: open file descriptors of PID.
proc_fd_count() {
  local fds
  fds=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || return 1
  echo "$fds"
}

# free_port: a port on 127.0.0.1 that was free a moment ago (the kernel
# picks it: bound, then released), for peers without port 0 support.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_listening PORT [TIMEOUT_S]: poll until a socket listens on PORT, read
# from /proc/net/tcp{,6} rather than by connecting (a probe connection would
# count as a client: iperf3 -1 serves one, a relay would relay it).
wait_listening() {
  local hex deadline=$((SECONDS + ${2:-10}))
  hex=$(printf '%04X' "$1")
  until awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6; do
    if ((SECONDS >= deadline)); then
      echo "wait_listening: nothing listens on $1" >&2
      return 1
    fi
    sleep 0.05
  done
}

# bench_workdir NAME: a fresh directory in $work (under $TMPDIR) and an empty
# $pids array for the script to add its background processes to; when the
# script exits, each of them is killed and waited for and $work removed.
bench_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  pids=()
  trap _bench_cleanup EXIT
}

_bench_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
