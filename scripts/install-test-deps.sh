#!/usr/bin/env bash
# Installs the Debian packages netcrab's build and tests need, if missing:
# openssl for the TLS interoperability tests (s_client and s_server), make
# for building jemalloc, chromium for rendering bench's HTML report (the test
# runs it headless), script (bsdutils) for the live view under a pseudo-terminal,
# curl as the independent SOCKS5 and HTTP CONNECT client of netcrab proxy.
set -euo pipefail
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v make >/dev/null 2>&1 || need+=(make) # builds jemalloc (tikv-jemalloc-sys)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # tests/it/report.rs renders the HTML report
command -v script >/dev/null 2>&1 || need+=(bsdutils) # script(1): tests/it/report.rs, the live view on a pty
command -v curl >/dev/null 2>&1 || need+=(curl) # tests/it/proxy.rs: curl --socks5-hostname, -x, --proxy-user
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
