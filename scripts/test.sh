#!/usr/bin/env bash
# Runs netcrab's whole test suite on a fresh machine: installs the Debian
# packages the tests use (only when missing), then the unit and integration
# tests. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --locked --all-targets "$@"
