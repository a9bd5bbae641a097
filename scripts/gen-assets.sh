#!/usr/bin/env bash
# Regenerates the shell completions (contrib/completions/) and man pages
# (contrib/man/) from the binary's clap definitions. Run it after changing
# any flag or help text; tests/it/assets.rs fails until the checked-in
# copies match what the binary prints.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin netcrab
bin=target/debug/netcrab
mkdir -p contrib/completions contrib/man
"$bin" completions bash >contrib/completions/netcrab.bash
"$bin" completions zsh >contrib/completions/_netcrab
"$bin" completions fish >contrib/completions/netcrab.fish
"$bin" completions elvish >contrib/completions/netcrab.elv
"$bin" completions powershell >contrib/completions/_netcrab.ps1
rm -f contrib/man/*.1
"$bin" man contrib/man
