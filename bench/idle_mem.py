#!/usr/bin/python3
"""Server memory per idle connection, for each client kind: ws, wss and tcp.

Per run: starts meshgate (--server) with one listener of the kind asked for (`events = off`, no
idle timeout, no pings, so nothing but the connections themselves costs memory), waits --settle
seconds and reads the server's VmRSS and RssAnon from /proc (at rest), opens --conns connections from
this process (tcp: connect; ws: connect + upgrade, the 101 read; wss: TLS handshake + upgrade), waits
--settle seconds, reads them again, and reports (idle - rest) / conns. Then it closes everything and
stops the server. Python standard library only; the client sockets are plain blocking sockets opened
one after the other, so the server sees one handshake at a time.

    bench/idle_mem.py --server build/meshgate --kind ws --conns 10000 --runs 3
"""
import argparse
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import (config_head, find_process, free_port, per_conn_runs, proc_kb, stop_server, wait_healthz,
                      ws_upgrade)


def write_config(path, api_port, port, kind, conns):
    tls = "on" if kind == "wss" else "off"
    listener_type = "tcp" if kind == "tcp" else "ws"
    with open(path, "w") as f:
        f.write(config_head("idle_mem", api_port) + f"""[limits]
max_connections = {conns * 2 + 1000}
[listener.bench]
type = {listener_type}
bind = 127.0.0.1
port = {port}
tls = {tls}
events = off
idle_timeout = 0
""" + ("ping_interval = 0\n" if listener_type == "ws" else "framing = line\n"))


def open_conns(kind, port, n):
    ctx = None
    if kind == "wss":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        if kind != "tcp":
            ws_upgrade(s, port)
        conns.append(s)
    return conns


def one_run(args):
    with tempfile.TemporaryDirectory(prefix="idle-mem-") as tmp:
        api_port, port = free_port(), free_port()
        conf = os.path.join(tmp, "meshgate.conf")
        write_config(conf, api_port, port, args.kind, args.conns)
        log = open(os.path.join(tmp, "log"), "w")
        proc = subprocess.Popen(args.prefix.split() + [args.server, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
        pid = proc.pid
        try:
            pid = find_process(proc.pid, args.server)
            wait_healthz(api_port)
            time.sleep(args.settle)
            # Warm-up: a few connections of the kind, closed again, so that code and library pages
            # first touched by a connection count in "rest", not per connection.
            for s in open_conns(args.kind, port, 20):
                s.close()
            time.sleep(args.settle)
            rest = proc_kb(pid, "VmRSS"), proc_kb(pid, "RssAnon")
            t0 = time.time()
            conns = open_conns(args.kind, port, args.conns)
            opened_s = time.time() - t0
            time.sleep(args.settle)
            idle = proc_kb(pid, "VmRSS"), proc_kb(pid, "RssAnon")
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5).read().decode()
            open_now = [l for l in metrics.splitlines() if l.startswith("meshgate_connections{")]
            for s in conns:
                s.close()
            return {
                "kind": args.kind, "conns": args.conns, "server": args.server, "open_s": round(opened_s, 2),
                "rest_vmrss_kb": rest[0], "rest_anon_kb": rest[1], "idle_vmrss_kb": idle[0], "idle_anon_kb": idle[1],
                "bytes_per_conn_vmrss": round((idle[0] - rest[0]) * 1024 / args.conns),
                "bytes_per_conn_anon": round((idle[1] - rest[1]) * 1024 / args.conns),
                "metrics_open": open_now,
            }
        finally:
            stop_server(proc, pid, 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--kind", choices=["ws", "wss", "tcp"], required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--prefix", default="", help="wrapper command, e.g. 'heaptrack -o /tmp/ht'")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_conn_runs(args.runs, lambda: one_run(args), f"{args.kind} x {args.conns}")


if __name__ == "__main__":
    sys.exit(main())
