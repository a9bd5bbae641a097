#!/usr/bin/env bash
# Installs the Debian packages netcrab's build and tests need, if missing:
# openssl for the TLS interoperability tests (s_client and s_server), make
# for building jemalloc.
set -euo pipefail
need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v make >/dev/null 2>&1 || need+=(make) # builds jemalloc (tikv-jemalloc-sys)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
