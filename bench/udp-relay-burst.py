#!/usr/bin/env python3
"""System calls of `netcrab relay udp://` passing bursts of replies.

An upstream on loopback answers each datagram with 16 replies back to back
(sizes 0 to 13.5 KB); a client sends 20 requests through the relay and
checks every reply whole and in order; the relay runs under `strace -f -c`
and the send calls it made are printed (sendmmsg: batches of replies;
sendto: requests up and lone replies).

Usage: bench/udp-relay-burst.py NETCRAB_BINARY   (needs strace; loopback only)
"""
import re
import socket
import subprocess
import sys
import tempfile
import os
import threading

B=sys.argv[1]
up=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); up.bind(("127.0.0.1",0)); ua=up.getsockname()
def serve():
    for _ in range(20):
        d,f=up.recvfrom(64)
        for i in range(16): up.sendto(bytes([i])*(i*900), f)
threading.Thread(target=serve,daemon=True).start()
out=tempfile.NamedTemporaryFile(suffix=".strace", delete=False).name
p=subprocess.Popen(["strace","-f","-c","-o",out,B,"relay","udp://127.0.0.1:0","udp://%s:%d"%ua],stderr=subprocess.PIPE,text=True)
addr=None
while not addr:
    l=p.stderr.readline(); m=re.search(r"listening on udp://(\S+)",l)
    if m: addr=m.group(1)
h,pt=addr.rsplit(":",1)
c=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect((h,int(pt))); c.settimeout(5)
for r in range(20):
    c.send(b"go")
    for i in range(16):
        d=c.recv(65536); assert d==bytes([i])*(i*900), (r,i,len(d))
print("320 replies relayed whole and in order")
subprocess.run(["pkill", "-INT", "-P", str(p.pid)])
p.wait()
for line in open(out):
    if re.search(r"\b(sendmmsg|sendto|recvmmsg)$", line.strip()):
        print(line.rstrip())
os.unlink(out)
