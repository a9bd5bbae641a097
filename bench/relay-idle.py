#!/usr/bin/env python3
"""Memory per idle relayed connection, loopback only.

`netcrab relay` (one runtime worker) in front of `netcrab serve --echo`:
50 warm-up connections, then N more that each echo one byte through the
relay and stay open; the relay's VmRSS growth over those N, divided by N.

Usage: bench/relay-idle.py BINARY [BINARY...]
Knobs (environment): N=2000. Needs about 2N+100 open files: raise
`ulimit -n` first.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start(args, port_file, env=None):
    proc = subprocess.Popen(args + ["--port-file", port_file], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            text = open(port_file).read().strip()
            if text:
                return proc, int(text)
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start")


def exchange(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x")
    if s.recv(1) != b"x":
        raise RuntimeError("no echo through the relay")
    return s


def per_connection(binary, n):
    with tempfile.TemporaryDirectory() as tmp:
        common = ["-q", "--idle-timeout", "0", "--max-conns", "20000"]
        up, up_port = start([binary, "serve", "127.0.0.1:0", "--echo"] + common,
                            os.path.join(tmp, "up.port"))
        env = dict(os.environ, TOKIO_WORKER_THREADS="1")
        relay, port = start([binary, "relay", "127.0.0.1:0", f"127.0.0.1:{up_port}"] + common,
                            os.path.join(tmp, "relay.port"), env)
        socks = []
        try:
            socks += [exchange(port) for _ in range(50)]
            before = rss_kib(relay.pid)
            socks += [exchange(port) for _ in range(n)]
            return (rss_kib(relay.pid) - before) / n
        finally:
            for s in socks:
                s.close()
            relay.kill()
            up.kill()
            relay.wait()
            up.wait()


def main():
    n = int(os.environ.get("N", "2000"))
    for binary in sys.argv[1:]:
        print(f"{binary}: {per_connection(binary, n):.2f} KiB per idle relayed connection ({n} connections)")


if __name__ == "__main__":
    main()
