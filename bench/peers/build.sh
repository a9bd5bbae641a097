#!/usr/bin/env bash
# Build the benchmark peers into bench/peers/bin/ (gitignored).
#   bench/peers/bin/echo-go     goroutine-per-connection TCP echo/discard server
#   bench/peers/bin/echo-tokio  tokio task-per-connection TCP echo/discard server
#   bench/peers/bin/proxy-load  SOCKS5 / HTTP CONNECT load driver (bench/proxy-compare.sh)
#   bench/peers/bin/udp-echo-go one-goroutine UDP echo server (bench/udp-compare.sh)
#   bench/peers/bin/udp-load    closed-loop UDP load generator (bench/udp-compare.sh)
#   bench/peers/bin/floor-echo  C epoll TCP echo, the leanest server (bench/compare.sh)
#   bench/peers/bin/floor-udp-echo  C recvmmsg/sendmmsg UDP echo (bench/udp-compare.sh)
#   bench/peers/bin/echo-uring  io_uring TCP echo, multishot accept/recv (bench/compare.sh)
#   bench/peers/bin/relay-tokio the minimal tokio relay, copy_bidirectional (bench/relay-rr.sh)
#
# Offline and reproducible: uses the Debian golang-go toolchain as installed
# (scripts/install-bench-deps.sh), never downloads a toolchain or a module.
# The tokio, relay-tokio and io_uring peers are cargo projects of their own (not in
# netcrab's workspace), built --locked from their own Cargo.lock into target/peers. The C floor
# servers are built with the system gcc (-O2).
# Usage: bench/peers/build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/bin"
mkdir -p "$bin"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: go not found; run scripts/install-bench-deps.sh" >&2
  exit 1
fi

export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE=on
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/netcrab-bench-gocache}"
export GOPATH="${GOPATH:-${TMPDIR:-/tmp}/netcrab-bench-gopath}"

(cd "$here/echo-go" && go build -trimpath -o "$bin/echo-go" .)
echo "build.sh: built $bin/echo-go ($(go version | awk '{print $3}'))" >&2
(cd "$here/proxy-load" && go build -trimpath -o "$bin/proxy-load" .)
echo "build.sh: built $bin/proxy-load" >&2
for peer in udp-echo-go udp-load; do
  (cd "$here/$peer" && go build -trimpath -o "$bin/$peer" .)
  echo "build.sh: built $bin/$peer" >&2
done

for peer in floor-echo floor-udp-echo; do
  gcc -O2 -Wall -pthread -o "$bin/.$peer.tmp" "$here/$peer/$peer.c"
  mv -f "$bin/.$peer.tmp" "$bin/$peer"
  echo "build.sh: built $bin/$peer ($(gcc -dumpfullversion))" >&2
done

root="$(cd "$here/../.." && pwd)"
cargo build --release --locked --quiet --manifest-path "$root/bench/peers/echo-tokio/Cargo.toml" \
  --target-dir "$root/target/peers"
cp "$root/target/peers/release/echo-tokio" "$bin/.echo-tokio.tmp"
mv -f "$bin/.echo-tokio.tmp" "$bin/echo-tokio" # replaces a running copy too
echo "build.sh: built $bin/echo-tokio ($(cargo --version | awk '{print $2}'))" >&2
cargo build --release --locked --quiet --manifest-path "$root/bench/peers/echo-uring/Cargo.toml" \
  --target-dir "$root/target/peers"
cp "$root/target/peers/release/echo-uring" "$bin/.echo-uring.tmp"
mv -f "$bin/.echo-uring.tmp" "$bin/echo-uring"
echo "build.sh: built $bin/echo-uring" >&2
cargo build --release --locked --quiet --manifest-path "$root/bench/peers/relay-tokio/Cargo.toml" \
  --target-dir "$root/target/peers"
cp "$root/target/peers/release/relay-tokio" "$bin/.relay-tokio.tmp"
mv -f "$bin/.relay-tokio.tmp" "$bin/relay-tokio"
echo "build.sh: built $bin/relay-tokio" >&2
