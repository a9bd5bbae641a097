#!/usr/bin/env bash
# Installs the Debian packages netcrab's build and tests need, if missing:
# openssl for the TLS interoperability tests (s_client and s_server), make
# for building jemalloc, chromium for rendering bench's HTML report (the test
# runs it headless), script (bsdutils) for the live view under a pseudo-terminal,
# python3 for `wait http://` against python3 -m http.server; a virtualenv with
# the python `websockets` package for the WebSocket interoperability tests.
set -euo pipefail
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v make >/dev/null 2>&1 || need+=(make) # builds jemalloc (tikv-jemalloc-sys)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # tests/it/report.rs renders the HTML report
command -v script >/dev/null 2>&1 || need+=(bsdutils) # script(1): tests/it/report.rs, the live view on a pty
command -v python3 >/dev/null 2>&1 || need+=(python3) # tests/it/wait_http.rs: python3 -m http.server
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The python `websockets` package, an independent WebSocket client and server
# for tests/it/ws.rs's interoperability tests, in a virtualenv of the project's
# own: .venv-test/ at the top of the repository (gitignored; the tests look
# for .venv-test/bin/python there). Created and filled only when missing.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-test"
if ! "$venv/bin/python" -c 'import websockets' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'websockets>=13'
fi
