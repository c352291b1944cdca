#!/usr/bin/python3
"""Peak RSS of a node while N connections to its route API each hold an unfinished POST /route/batch
body, sent as fast as the node reads it until one byte short (issue 18: bodies are bounded by
[route] max_body, 64 KiB, and a request by a 10 s deadline).

    MESHGATE_BIN=build/meshgate bench/route_slow_bodies.py 500             # announces 1.6 MB: 413 at once
    BODY=65536 MESHGATE_BIN=build/meshgate bench/route_slow_bodies.py 500  # the most the node takes

Measured 2026-12-04 on the shared 2-core machine, 500 connections: before issue 18 (f75fdbd) 6.2 MB
at rest, 784-807 MB held; after, 6.7 MB (1.6 MB announced: 413) and 38.5 MB (64 KiB each)."""
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "integration"))
import harness  # noqa: E402  (starts the node on free loopback ports)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    body_len = int(os.environ.get("BODY", "1600000"))
    node = harness.Node(tempfile.mkdtemp(prefix="slowbodies-"), {"log": {"level": "warn"}})
    node.start()
    pid = node.proc.pid
    time.sleep(0.5)
    base = peak = rss_kb(pid)
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", node.route_port))
        s.setblocking(False)
        s.send(b"POST /route/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % body_len)
        conns.append([s, body_len - 1])  # all but the last byte
    chunk = b"[" + b" " * 65535
    t0 = time.monotonic()
    while time.monotonic() - t0 < 8:  # within the 10 s deadline
        progress = False
        for c in conns:
            if c[1] <= 0:
                continue
            try:
                k = c[0].send(chunk[:min(c[1], len(chunk))])
                c[1] -= k
                progress = progress or k > 0
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                c[1] = 0  # refused (413) or closed
        peak = max(peak, rss_kb(pid))
        if not progress:
            time.sleep(0.05)
    time.sleep(1)
    peak = max(peak, rss_kb(pid))
    print(f"{n} slow bodies of {body_len} bytes: RSS {base / 1024:.1f} MB at rest, peak {peak / 1024:.1f} MB "
          f"({harness.meshgate_bin()})")
    for c in conns:
        c[0].close()
    node.stop()


if __name__ == "__main__":
    main()
