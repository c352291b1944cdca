#!/usr/bin/env python3
"""TLS handshakes and reconnect storms (issue 21), meshgate and nginx side by side.

1. Handshakes per server CPU-second: bench/tls_storm (an OpenSSL client on epoll) makes N TLS 1.3
   connections, CONC at a time, each with one request (meshgate: a WebSocket upgrade on a wss
   listener with events off; nginx: GET / answered by `return 200`), against meshgate and nginx on the
   same certificate (EC P-256, made here) with 2 workers each. `full`: no session offered; `resume`:
   each connection offers the newest ticket its slot got (tickets used once, as browsers do). nginx
   uses stateless tickets too: `ssl_session_ticket_key` (80 bytes, AES-256 + HMAC-SHA256, as ours),
   no session cache. Server CPU is utime + stime of every server process (/proc) across the run.
2. A storm: N clients with sessions from before a restart reconnect at once to the restarted node
   (ticket_key_file keeps the keys) and stay connected; the run counts that all N got their 101.
   Meanwhile L plain ws clients, connected after the restart with a token subscribing them to one
   channel, get a publish every 10 ms (POST /v1/mesh/publish with the send time in it): the p99 of
   send-to-receive during the storm, with the handshake budget (the defaults) and without it
   (handshake_budget = accept_budget = 0).

Medians of --rounds rounds; the load average is printed before and after each part.

  make -C bench results/bin/tls_storm
  nice bench/tls_storm.py --server build/meshgate                      # all of it
  nice bench/tls_storm.py --server build/meshgate --skip-storm         # part 1 only
"""

import argparse
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, ROOT, config_head, connect_token, cpu_seconds, descendants, free_port,  # noqa: E402
                      log, parse_frames, start_nginx, start_node, stop_nginx, stop_process, ws_connect)

SECRET = "tls-storm-bench-secret-0123456789"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


def meshgate_conf(api_port, wss_port, cert, key, extra_limits="", keyfile="", lat_port=None):
    text = config_head("tls_storm", api_port)
    text += f"[limits]\nmax_connections = 100000\n{extra_limits}"
    text += (f"[listener.wss]\ntype = ws\nbind = 127.0.0.1\nport = {wss_port}\ntls = on\ncert = {cert}\nkey = {key}\n"
             f"events = off\nidle_timeout = 0\nping_interval = 0\n")
    if keyfile:
        text += f"ticket_key_file = {keyfile}\n"
    if lat_port:
        text += (f"[listener.lat]\ntype = ws\nbind = 127.0.0.1\nport = {lat_port}\nevents = off\nidle_timeout = 0\n"
                 f"ping_interval = 0\ntoken_secret = {SECRET}\n")
    return text


def nginx_conf(prefix, port, cert, key, ticket_key):
    return f"""# written by bench/tls_storm.py
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 30000;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{
    worker_connections 20000;
    use epoll;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl reuseport backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets on;
        ssl_session_ticket_key {ticket_key};
        ssl_session_timeout 12h;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def parse_kv(line):
    return {k: float(v) for k, v in (p.split("=", 1) for p in line.split() if "=" in p)}


def run_rate(tool, port, pids_of, n, conc, mode, kind):
    pids = pids_of()
    c0 = cpu_seconds(*pids)
    out = subprocess.run([tool, "rate", str(port), str(n), str(conc), mode, kind], capture_output=True, text=True,
                         timeout=600)
    c1 = cpu_seconds(*pids)
    r = parse_kv(out.stdout.strip().splitlines()[-1])
    r["cpu"] = c1 - c0
    r["per_cpu_s"] = r["done"] / r["cpu"] if r["cpu"] > 0 else float("nan")
    if r["failed"] or (mode == "resume" and r["resumed"] != r["done"]) or (mode == "full" and r["resumed"]):
        log(f"  warning: {mode} on {port}: {out.stdout.strip()} {out.stderr.strip()[:200]}")
    return r


def part_rates(args, tool, tmp, cert, key):
    log(f"part 1: handshakes per server CPU-second (load {loadavg()})")
    api_port, mg_port, ngx_port = free_port(), free_port(), free_port()
    conf = os.path.join(tmp, "rate.conf")
    mg = start_node(args.server, conf, meshgate_conf(api_port, mg_port, cert, key), api_port,
                    os.path.join(tmp, "rate.log"))
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(prefix, exist_ok=True)
    tk = os.path.join(prefix, "ticket.key")
    with open(tk, "wb") as f:
        f.write(os.urandom(80))
    ngx = start_nginx(prefix, nginx_conf(prefix, ngx_port, cert, key, tk), ngx_port)
    res = {}
    try:
        for rnd in range(args.rounds):
            for mode in ("full", "resume"):
                for name, port, pids_of, kind in (
                        ("meshgate", mg_port, lambda: [mg.pid], "ws"),
                        ("nginx", ngx_port, lambda: [ngx.pid] + descendants(ngx.pid), "http")):
                    r = run_rate(tool, port, pids_of, args.n, args.conc, mode, kind)
                    res.setdefault((name, mode), []).append(r)
                    log(f"  round {rnd + 1} {name:8} {mode:6}: {r['done']:.0f} done, {r['resumed']:.0f} resumed, "
                        f"server cpu {r['cpu']:.2f} s -> {r['per_cpu_s']:.0f}/cpu-s (load {loadavg()})")
    finally:
        stop_process(mg)
        stop_nginx(ngx)
    summary = {}
    for mode in ("full", "resume"):
        m = [r["per_cpu_s"] for r in res[("meshgate", mode)]]
        x = [r["per_cpu_s"] for r in res[("nginx", mode)]]
        ratios = [a / b for a, b in zip(m, x)]
        summary[mode] = {"meshgate": statistics.median(m), "nginx": statistics.median(x),
                         "ratio_median": statistics.median(ratios), "ratios": ratios}
        log(f"{mode:6}: meshgate {statistics.median(m):.0f}/cpu-s, nginx {statistics.median(x):.0f}/cpu-s, "
            f"meshgate/nginx median {statistics.median(ratios):.2f} (rounds {', '.join(f'{q:.2f}' for q in ratios)})")
    log(f"part 1 done (load {loadavg()})")
    return summary


class Latency:
    """L ws clients subscribed to channel `lat` (token claim ch) and a publisher every 10 ms."""

    def __init__(self, api_port, lat_port, n):
        self.api_port = api_port
        self.socks = []
        for _ in range(n):
            s, rest = ws_connect(lat_port, "/?token=" + connect_token(SECRET, ch=["lat"]))
            s.setblocking(False)
            self.socks.append([s, bytearray(rest)])
        self.samples = []  # (receive time, latency ms)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.receive, daemon=True),
                        threading.Thread(target=self.publish, daemon=True)]
        for t in self.threads:
            t.start()

    def publish(self):
        url = f"http://127.0.0.1:{self.api_port}/v1/mesh/publish"
        while not self.stop.is_set():
            body = json.dumps({"c": "lat", "d": str(time.time_ns())}).encode()
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=30).read()
            except OSError:
                pass
            time.sleep(0.01)

    def receive(self):
        sel = selectors.DefaultSelector()
        for entry in self.socks:
            sel.register(entry[0], selectors.EVENT_READ, entry)
        while not self.stop.is_set():
            for key, _ in sel.select(0.2):
                entry = key.data
                try:
                    data = entry[0].recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(entry[0])
                    continue
                buf = entry[1]
                buf += data
                now = time.time_ns()
                end = 0
                for op, _fin, a, b in parse_frames(buf):
                    end = b
                    if op == 1:
                        self.samples.append((now, (now - int(bytes(buf[a:b]))) / 1e6))
                del buf[:end]

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        for s, _ in self.socks:
            s.close()


def p99(vals):
    if not vals:
        return float("nan")
    v = sorted(vals)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


def storm_round(args, tool, tmp, cert, key, budget):
    api_port, wss_port, lat_port = free_port(), free_port(), free_port()
    keyfile = os.path.join(tmp, "storm-tickets.keys")
    if os.path.exists(keyfile):
        os.unlink(keyfile)
    limits = "" if budget else "handshake_budget = 0\naccept_budget = 0\n"
    conf_text = meshgate_conf(api_port, wss_port, cert, key, limits, keyfile, lat_port)
    conf = os.path.join(tmp, "storm.conf")
    logf = os.path.join(tmp, "storm.log")
    node = start_node(args.server, conf, conf_text, api_port, logf)
    storm = subprocess.Popen([tool, "storm", str(wss_port), str(args.storm), "ws"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    lat = None
    try:
        line = storm.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"storm client: {line!r}")
        stop_process(node)  # the restart
        node = start_node(args.server, conf, conf_text, api_port, logf)
        lat = Latency(api_port, lat_port, args.lat_clients)
        time.sleep(1.0)
        base = [ms for _, ms in lat.samples]
        c0 = cpu_seconds(node.pid)
        t0 = time.time_ns()
        storm.stdin.write("go\n")
        storm.stdin.flush()
        line = storm.stdout.readline()
        t1 = time.time_ns()
        cpu = cpu_seconds(node.pid) - c0
        r = parse_kv(line)
        during = [ms for t, ms in lat.samples if t0 <= t <= t1]
        r.update(p99_ms=p99(during), samples=len(during), p99_before_ms=p99(base), cpu=cpu,
                 max_ms=max(during) if during else float("nan"))
        return r
    finally:
        if lat:
            lat.close()
        if storm.poll() is None:
            try:
                storm.stdin.write("\n")
                storm.stdin.flush()
                storm.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                storm.kill()
        stop_process(node)


def part_storm(args, tool, tmp, cert, key):
    log(f"part 2: {args.storm} clients reconnect at once to a restarted node; {args.lat_clients} established "
        f"clients get a publish every 10 ms (load {loadavg()})")
    res = {}
    for rnd in range(args.rounds):
        for budget in (True, False):
            r = storm_round(args, tool, tmp, cert, key, budget)
            name = "budget" if budget else "no budget"
            res.setdefault(name, []).append(r)
            log(f"  round {rnd + 1} {name:9}: {r['done']:.0f}/{args.storm} in ({r['resumed']:.0f} resumed, "
                f"{r['retries']:.0f} retries) in {r['all_in_ms']:.0f} ms; p99 delivery {r['p99_ms']:.1f} ms "
                f"(max {r['max_ms']:.1f}, {r['samples']} samples; before the storm {r['p99_before_ms']:.1f}); "
                f"server cpu {r['cpu']:.2f} s (load {loadavg()})")
    summary = {}
    for name, rs in res.items():
        summary[name] = {k: statistics.median(r[k] for r in rs) for k in ("done", "resumed", "retries", "all_in_ms",
                                                                              "p99_ms", "max_ms", "cpu")}
        s = summary[name]
        log(f"{name:9}: medians: {s['done']:.0f} in, {s['resumed']:.0f} resumed, all in after {s['all_in_ms']:.0f} ms, "
            f"p99 delivery {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms, server cpu {s['cpu']:.2f} s")
    log(f"part 2 done (load {loadavg()})")
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "meshgate"))
    ap.add_argument("--tool", default=os.path.join(HERE, "results", "bin", "tls_storm"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=3000, help="connections per rate run")
    ap.add_argument("--conc", type=int, default=8, help="connections at a time in a rate run")
    ap.add_argument("--storm", type=int, default=10000)
    ap.add_argument("--lat-clients", type=int, default=100)
    ap.add_argument("--skip-rates", action="store_true")
    ap.add_argument("--skip-storm", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.tool):
        subprocess.run(["make", "-C", HERE, "results/bin/tls_storm"], check=True)
    tmp = tempfile.mkdtemp(prefix="tls-storm-")
    out = {"loadavg_start": loadavg(), "args": vars(args)}
    try:
        cert, key = make_cert(tmp)
        if not args.skip_rates:
            out["rates"] = part_rates(args, args.tool, tmp, cert, key)
        if not args.skip_storm:
            out["storm"] = part_storm(args, args.tool, tmp, cert, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["loadavg_end"] = loadavg()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "tls_storm.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
