#!/usr/bin/env python3
"""System calls of `netcrab relay udp://` passing bursts of replies.

An upstream on loopback answers each datagram with 16 replies back to back
(sizes 0 to 13.5 KB); a client sends 20 requests through the relay and
checks every reply whole and in order; the relay runs under `strace -f -c`
and the send calls it made are printed (sendmmsg: batches of replies;
sendto: requests up and lone replies).

Usage: bench/udp-relay-burst.py NETCRAB_BINARY   (needs strace; loopback only)
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

REQUESTS = 20
BURST = 16


def reply(i):
    """Reply `i` of a burst: 900 bytes more each, its bytes say which."""
    return bytes([i]) * (i * 900)


def upstream_loop(sock):
    for _ in range(REQUESTS):
        _, peer = sock.recvfrom(64)
        for i in range(BURST):
            sock.sendto(reply(i), peer)


def main():
    binary = sys.argv[1]
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))
    threading.Thread(target=upstream_loop, args=(upstream,), daemon=True).start()
    counts = tempfile.NamedTemporaryFile(suffix=".strace", delete=False).name
    up = "udp://%s:%d" % upstream.getsockname()
    relay = subprocess.Popen(
        ["strace", "-f", "-c", "-o", counts, binary, "relay", "udp://127.0.0.1:0", up],
        stderr=subprocess.PIPE,
        text=True,
    )
    addr = None
    while addr is None:
        line = relay.stderr.readline()
        if not line:
            sys.exit("udp-relay-burst: the relay ended before listening")
        found = re.search(r"listening on udp://(\S+)", line)
        if found:
            addr = found.group(1)
    host, port = addr.rsplit(":", 1)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect((host, int(port)))
    client.settimeout(5)
    for r in range(REQUESTS):
        client.send(b"go")
        for i in range(BURST):
            got = client.recv(65536)
            assert got == reply(i), (r, i, len(got))
    print(f"{REQUESTS * BURST} replies relayed whole and in order")
    # SIGINT to the relay itself (strace's child).
    subprocess.run(["pkill", "-INT", "-P", str(relay.pid)])
    relay.wait()
    with open(counts) as f:
        for line in f:
            if re.search(r"\b(sendmmsg|sendto|recvmmsg)$", line.strip()):
                print(line.rstrip())
    os.unlink(counts)


if __name__ == "__main__":
    main()
