#!/usr/bin/env bash
# Installs the Debian packages netcrab's build and tests need, if missing:
# openssl for the TLS interoperability tests (s_client and s_server), make
# for building jemalloc, chromium for rendering bench's HTML report (the test
# runs it headless), script (bsdutils) for the live view under a pseudo-terminal,
# python3 for `wait http://` against python3 -m http.server.
# microsocks, tinyproxy, haproxy and curl for the proxy client and PROXY
# protocol tests (tests/it/proxy_client.rs).
# curl as the independent SOCKS5 and HTTP CONNECT client of netcrab proxy.
# python3 for `wait http://` against python3 -m http.server, systemd for
# systemd-socket-activate (socket activation of serve and relay).
# python3 for `wait http://` against python3 -m http.server; a virtualenv with
# the python `websockets` package for the WebSocket interoperability tests.
set -euo pipefail
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v make >/dev/null 2>&1 || need+=(make) # builds jemalloc (tikv-jemalloc-sys)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # tests/it/report.rs renders the HTML report
command -v script >/dev/null 2>&1 || need+=(bsdutils) # script(1): tests/it/report.rs, the live view on a pty
command -v python3 >/dev/null 2>&1 || need+=(python3) # tests/it/wait_http.rs: python3 -m http.server
command -v microsocks >/dev/null 2>&1 || need+=(microsocks) # SOCKS5 proxy: tests/it/proxy_client.rs
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy)   # HTTP CONNECT proxy: tests/it/proxy_client.rs
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)       # PROXY protocol v1/v2: tests/it/proxy_client.rs
command -v curl >/dev/null 2>&1 || need+=(curl) # proxy tests: curl --socks5-hostname, -x, --proxy-user
command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd) # tests/it/ops.rs: socket activation
command -v ncat >/dev/null 2>&1 || need+=(ncat) # tests/it/exec.rs: ncat client against serve --exec, ncat -U -u
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Python packages for the interoperability tests, in a project virtualenv
# (.venv-test/, gitignored; tests skip loudly when it is absent). One
# `pip install` line per package, each only when missing.
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv-test"
if [ ! -x "$venv/bin/python3" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv
  fi
  python3 -m venv "$venv"
fi
"$venv/bin/python3" -c 'import aioquic' 2>/dev/null || "$venv/bin/pip" install -q aioquic # tests/it/quic.rs
"$venv/bin/python3" -c 'import websockets' 2>/dev/null || "$venv/bin/pip" install -q 'websockets>=13' # tests/it/ws.rs
