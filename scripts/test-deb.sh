#!/usr/bin/env bash
# Builds the .deb (scripts/build-deb.sh), installs it with dpkg, and checks
# the installed netcrab: `netcrab --version` matches Cargo.toml's version,
# the man pages, completions and systemd examples are where the package
# says; then removes it. Needs root (or sudo) for dpkg. Slow (a release
# build); run by CI after scripts/test.sh, or by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
deb=$(scripts/build-deb.sh)
echo "built $deb"
$sudo dpkg -i "$deb"
trap '$sudo dpkg -r netcrab >/dev/null' EXIT
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
got=$(/usr/bin/netcrab --version)
[ "$got" = "netcrab $version" ] || { echo "netcrab --version: got '$got', want 'netcrab $version'" >&2; exit 1; }
for f in /usr/share/man/man1/netcrab.1.gz /usr/share/man/man1/netcrab-serve.1.gz \
  /usr/share/bash-completion/completions/netcrab \
  /usr/share/zsh/vendor-completions/_netcrab \
  /usr/share/fish/vendor_completions.d/netcrab.fish \
  /usr/share/doc/netcrab/examples/systemd/netcrab-relay.socket; do
  [ -s "$f" ] || { echo "missing from the package: $f" >&2; exit 1; }
done
dpkg -L netcrab | grep -q "^/usr/bin/netcrab$"
zcat /usr/share/man/man1/netcrab-serve.1.gz | grep -q "socket activation\|LISTEN_FDS" || { echo "netcrab-serve.1 is not the current page" >&2; exit 1; }
echo "ok: $got installed from $deb"
