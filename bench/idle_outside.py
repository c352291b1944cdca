#!/usr/bin/python3
"""Server memory per idle connection measured as a new user would (issue 21): the shipped
configuration (conf/meshgate.conf, every default kept: events on, pings, idle timeout, the disk
queue), clients in another process, the server's RSS growth per connection.

Per run: copies conf/meshgate.conf with only what a machine needs changed (free ports, a temporary
state_dir, listeners on 127.0.0.1, log level warn; with --events off also `events = off` on the
listener), starts the server, has a client process (this script with --clients) open and close 20
connections of the kind (warm-up), reads VmRSS and RssAnon of the server (rest), has the client
process open --conns connections one after the other (ws: TCP + upgrade; wss: Python's ssl client,
TLS 1.3, + upgrade) and hold them, waits --settle seconds, reads them again (idle), and reports
(idle - rest) / conns. The client process's own memory is not the server's: nothing of it counts.

    bench/idle_outside.py --server build-rel/meshgate --kind wss --conns 3000 --runs 3
    bench/idle_outside.py --server build-rel/meshgate --kind ws --conns 10000 --runs 3 --events off
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

from benchlib import (ROOT, edit_config, find_process, free_port, per_conn_runs, proc_kb, stop_server, wait_healthz,
                      ws_upgrade)


def clients_main(args):
    """The client process: reads commands from stdin ("open N", "close", "quit"), answers "ok N"."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = None
    if args.kind == "wss":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    held = []
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "open":
            for _ in range(int(cmd[1])):
                s = socket.create_connection(("127.0.0.1", args.port), timeout=60)
                if ctx:
                    s = ctx.wrap_socket(s, server_hostname="localhost")
                ws_upgrade(s, args.port)
                held.append(s)
        elif cmd[0] == "close":
            for s in held:
                s.close()
            held = []
        else:
            break
        print("ok", len(held), flush=True)


def write_config(path, state_dir, api_port, ports, conns, events):
    with open(os.path.join(ROOT, "conf", "meshgate.conf")) as f:
        text = f.read()
    keys = {
        "node": {"state_dir": state_dir},
        "log": {"level": "warn"},
        "api": {"port": api_port},
        "route": {"bind": "127.0.0.1", "port": ports["route"]},
        "mesh": {"bind": "127.0.0.1"},
    }
    if conns * 2 + 1000 > 100000:
        keys["limits"] = {"max_connections": conns * 2 + 1000}
    for name in ("tcp", "ws", "wss"):
        keys[f"listener.{name}"] = {"bind": "127.0.0.1", "port": ports[name]}
        if not events:
            keys[f"listener.{name}"]["events"] = "off"
    with open(path, "w") as f:
        f.write(edit_config(text, keys))


def one_run(args):
    with tempfile.TemporaryDirectory(prefix="idle-outside-") as tmp:
        api_port = free_port()
        ports = {k: free_port() for k in ("route", "tcp", "ws", "wss")}
        conf = os.path.join(tmp, "meshgate.conf")
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        write_config(conf, state, api_port, ports, args.conns, args.events == "on")
        log = open(os.path.join(tmp, "log"), "w")
        proc = subprocess.Popen(args.prefix.split() + [args.server, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
        pid = proc.pid
        cl = None
        try:
            pid = find_process(proc.pid, args.server)
            wait_healthz(api_port, proc=proc)
            cl = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--clients", "--kind", args.kind,
                                   "--port", str(ports[args.kind])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)

            def ask(cmd):
                cl.stdin.write(cmd + "\n")
                cl.stdin.flush()
                answer = cl.stdout.readline()
                if not answer.startswith("ok"):
                    raise RuntimeError(f"client process: {cmd}: {answer!r}")
                return answer

            time.sleep(args.settle)
            ask("open 20")  # warm-up: code and library pages first touched by a connection count at rest
            ask("close")
            time.sleep(args.settle)
            rest = proc_kb(pid, "VmRSS"), proc_kb(pid, "RssAnon")
            t0 = time.time()
            ask(f"open {args.conns}")
            opened_s = time.time() - t0
            time.sleep(args.settle)
            idle = proc_kb(pid, "VmRSS"), proc_kb(pid, "RssAnon")
            ask("close")
            return {
                "kind": args.kind, "conns": args.conns, "events": args.events, "server": args.server,
                "open_s": round(opened_s, 2), "load1": round(os.getloadavg()[0], 2),
                "rest_vmrss_kb": rest[0], "rest_anon_kb": rest[1], "idle_vmrss_kb": idle[0], "idle_anon_kb": idle[1],
                "bytes_per_conn_vmrss": round((idle[0] - rest[0]) * 1024 / args.conns),
                "bytes_per_conn_anon": round((idle[1] - rest[1]) * 1024 / args.conns),
            }
        finally:
            if cl:
                try:
                    cl.stdin.write("quit\n")
                    cl.stdin.close()
                except OSError:
                    pass
                cl.wait(30)
            stop_server(proc, pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server")
    ap.add_argument("--kind", choices=["ws", "wss"], required=True)
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--events", choices=["on", "off"], default="on", help="the listener's events (shipped: on)")
    ap.add_argument("--prefix", default="", help="wrapper command, e.g. 'heaptrack -o /tmp/ht'")
    ap.add_argument("--clients", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.clients:
        return clients_main(args)
    if not args.server:
        ap.error("--server is required")
    per_conn_runs(args.runs, lambda: one_run(args), f"{args.kind} x {args.conns} (events {args.events})")


if __name__ == "__main__":
    sys.exit(main())
