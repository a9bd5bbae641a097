#!/usr/bin/env bash
# Install the Debian packages that the benchmark comparisons in bench/ need:
# peers to measure netcrab against (socat, ncat, nc, iperf3, a Go echo server)
# and the tools that measure (GNU time, prlimit, ps, openssl for TLS certs;
# jq reads netcrab bench's JSON reports in bench/compare.sh; microsocks and
# tinyproxy are the proxies bench/proxy-compare.sh measures netcrab proxy against;
# nginx with its stream module and HAProxy are the relays and TLS terminators
# the relay and TLS comparisons measure netcrab against).
#
# Idempotent: when every command is already present it does nothing, not even
# `apt-get update`. Otherwise it runs `apt-get update` once and installs only
# the missing packages. Meant to run as root (CI and dev machines are root);
# falls back to sudo when not root and sudo exists.
#
# Usage: scripts/install-bench-deps.sh
set -euo pipefail

# package -> a file or command whose presence means the package is installed.
# Absolute paths where a bare name would be ambiguous: `nc` may be provided by
# ncat or netcat-traditional through alternatives, and `time` is a shell keyword.
declare -A probe=(
  [socat]=socat
  [ncat]=ncat
  [netcat-openbsd]=/bin/nc.openbsd
  [iperf3]=iperf3
  [golang-go]=go
  [openssl]=openssl
  [procps]=ps
  [util-linux]=prlimit
  [time]=/usr/bin/time
  [jq]=jq
  [microsocks]=microsocks
  [tinyproxy]=/usr/bin/tinyproxy
  [curl]=curl
  [nginx]=/usr/sbin/nginx
  [libnginx-mod-stream]=/usr/lib/nginx/modules/ngx_stream_module.so
  [haproxy]=/usr/sbin/haproxy
)

present() {
  case "$1" in
    /*) [[ -e "$1" ]] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pkg in socat ncat netcat-openbsd iperf3 golang-go openssl procps util-linux time jq microsocks tinyproxy curl nginx libnginx-mod-stream haproxy; do
  present "${probe[$pkg]}" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-bench-deps: all present" >&2
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-bench-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-bench-deps: installing ${missing[*]}" >&2
# noninteractive: iperf3's postinst asks (debconf) whether to start a daemon;
# the default answer is no, which is what we want.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"

# Verify, so a silently skipped package fails here rather than mid-benchmark.
still=()
for pkg in "${missing[@]}"; do
  present "${probe[$pkg]}" || still+=("$pkg")
done
if ((${#still[@]} > 0)); then
  echo "install-bench-deps: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "install-bench-deps: done" >&2
