#!/usr/bin/env bash
# Builds target/debian/netcrab_VERSION_ARCH.deb with cargo-deb (installed
# with `cargo install --locked cargo-deb` when missing): a release build of
# the binary, with the man pages, shell completions and example systemd
# units from contrib/ (see [package.metadata.deb] in Cargo.toml). Prints the
# package's path on stdout. Slow (a release build): not part of
# scripts/test.sh; scripts/test-deb.sh installs and checks the package.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked cargo-deb >&2
fi
cargo deb --locked "$@" | tail -n 1
