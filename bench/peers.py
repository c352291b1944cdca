#!/usr/bin/python3
"""meshgate and nginx+nchan side by side in one run, with the physical limits of this machine
(issue 13). Every figure is also given as server CPU per operation, which holds on a shared machine
where throughput does not.

Servers (each started once, on 127.0.0.1 only, and stopped at the end):
  meshgate  the shipped conf/meshgate.conf with bench ports on 127.0.0.1 and: [node] workers = 2,
            [log] level = warn, [listener.ws] events = off (no consumer: nchan has no such events),
            idle_timeout = 0, ping_interval = 0 (nchan pings nobody either) and a token_secret: the
            subscribers connect with ?token=<JWT with "ch":["bench"]>, so they are subscribed at
            connect. Publish: POST /v1/mesh/publish {"c":"bench","d":"<64 bytes>"}.
  nchan     nginx (Debian 1.22 + libnginx-mod-nchan) with 2 worker processes, `listen ... reuseport`
            (as meshgate's workers), `location = /sub` nchan_subscriber websocket, `location = /pub`
            nchan_publisher http, both with nchan_channel_id $arg_id; message buffer 10,000 messages
            for 10 minutes (nothing a subscriber is due is dropped), keep-alive without a request limit.
            Publish: POST /pub?id=bench with the 64 bytes as body.
  limits    bench/raw_fanout (one 70-byte frame per write() to 10,000 loopback sockets drained by
            another process; and two frames per write) and bench/min_http (minimal epoll keep-alive
            HTTP/1.1 server, 2 worker processes, fixed 200 answer).

Loads, each on meshgate then nchan (then nchan then meshgate in the next round: A B B A ...), for
--rounds rounds (3 by default), on --subs subscribers of one channel held by one bench/ws_bench
per server, connected once for the whole run:
  (a) single  --publishes (50) publishes of --size (64) bytes, one at a time: publish k+1 is written
              when the answer to publish k has come AND ws_bench has counted all deliveries of
              publish k (so every socket has exactly one frame to send per publish: the case of a
              backend that publishes one message at a time, and that of the raw single-write limit).
  (b) burst   --burst (50) publishes pipelined over one keep-alive HTTP connection in one write
              (frames for one socket may share a write), then wait for the answers and every delivery.
  (b') burst_ws the same --burst publishes written at once on one WebSocket publisher connection:
              meshgate's /ws/v1 (mesh.publish requests), nchan's websocket publisher (location /pub
              also has nchan_publisher websocket; each message is a publish).
  (c) http    h2load --h1 -c 50 -m 1 -n --requests POSTs of the same publish to a channel with no
              subscriber (meshgate and min_http: the JSON body; nchan: the 64 bytes).
  (d) queue   meshgate only: bench/queue_rate.py's load (--queue-clients clients x --queue-messages
              messages of 64 bytes to one /ws/v1 consumer), with its own configuration.
Server CPU = utime + stime from /proc/PID/stat of every server process (meshgate: its one process,
all threads; nginx: master + workers; min_http: parent + workers) just before and just after the
measured window, divided by the operations: deliveries counted by ws_bench, requests h2load
completed, queue events the consumer counted. raw_fanout measures its writer's own CPU (getrusage).

Output: a line per measurement, then tables of medians and of paired ratios (meshgate / nchan,
meshgate / limit, within each round), and bench/results/peers-<stamp>/results.json.

  make -C bench && meson setup build-release --buildtype=release -Dtests=false && ninja -C build-release meshgate
  bench/peers.py --install           # once: apt-get install nginx libnginx-mod-nchan nghttp2-client linux-perf
  bench/peers.py --server build-release/meshgate --rounds 3
  bench/peers.py --server build-release/meshgate --rounds 1 --profile bench/results/prof   # perf, see --help

--profile DIR: one round, meshgate and nchan; during each load's window `perf record -g` on the server
and `perf stat` of syscall tracepoints (write, writev, sendmsg, read, epoll_wait, ...) run alongside,
and DIR/<server>-<load>.txt gets the top symbols, the kernel share and syscalls per operation (the
CPU figures of a profiled run include perf's overhead: use them for where, not how much).
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, ROOT, FrameReader, HttpConn, WsBench, connect_token, cpu_times, descendants,  # noqa: E402
                      edit_config, free_port, http_request, log, start_nginx, start_node, stop_nginx, stop_process,
                      ws_connect, ws_frame)

NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
SECRET = "peers-bench-secret-0123456789abcdef"
CHANNEL = "bench"
CALLGRAPH = ["fp"]  # --callgraph
SYSCALLS = ["write", "writev", "sendmsg", "sendto", "read", "readv", "recvfrom", "recvmsg", "epoll_wait",
            "epoll_ctl", "futex", "eventfd2", "mmap", "munmap", "brk", "madvise"]


def install():
    pkgs = ["nginx", "libnginx-mod-nchan", "nghttp2-client", "linux-perf", "libuv1-dev", "strace"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # No service may start (the packaged nginx site listens on 0.0.0.0:80): policy-rc.d says no.
    made = False
    if not os.path.exists("/usr/sbin/policy-rc.d"):
        with open("/usr/sbin/policy-rc.d", "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod("/usr/sbin/policy-rc.d", 0o755)
        made = True
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o",
                        "DPkg::Lock::Timeout=300"] + pkgs, check=True, env=env)
    finally:
        if made:
            os.unlink("/usr/sbin/policy-rc.d")


def loadavg():
    return os.getloadavg()[0]


# ------------------------------------------------------------------------------------------ servers

def publish_body(channel, data):
    """meshgate's mesh.publish parameters (the HTTP body, and min_http's body too)."""
    return json.dumps({"c": channel, "d": data}, separators=(",", ":"))


class Meshgate:
    name = "meshgate"

    def __init__(self, exe, tmp, subs):
        self.exe, self.tmp = exe, tmp
        self.api, self.ws = free_port(), free_port()
        with open(os.path.join(ROOT, "conf", "meshgate.conf")) as f:
            shipped = f.read()
        self.conf = edit_config(shipped, {
            # state_dir: the shipped [queue] store = disk needs one (the fan-out loads do not use it).
            "node": {"name": "peers", "workers": 2, "drain_timeout": 2, "state_dir": os.path.join(tmp, "state")},
            "log": {"level": "warn"},
            "api": {"bind": "127.0.0.1", "port": self.api},
            "route": {"bind": "127.0.0.1", "port": free_port()},
            "limits": {"max_connections": max(100000, subs * 2)},
            "listener.tcp": {"bind": "127.0.0.1", "port": free_port()},
            "listener.ws": {"bind": "127.0.0.1", "port": self.ws, "events": "off", "idle_timeout": 0,
                            "ping_interval": 0, "token_secret": SECRET},
            "listener.wss": {"bind": "127.0.0.1", "port": free_port()},
        })
        os.makedirs(os.path.join(tmp, "state"), exist_ok=True)
        self.sub_port = self.ws
        self.sub_path = "/?token=" + connect_token(SECRET, 3 * 3600, ch=[CHANNEL])
        self.pub_port = self.api
        self.proc = None

    def start(self):
        self.proc = start_node(self.exe, os.path.join(self.tmp, "meshgate.conf"), self.conf, self.api,
                               os.path.join(self.tmp, "meshgate.log"), timeout=30)

    def pids(self):
        return [self.proc.pid]

    def perf_pids(self):
        return [self.proc.pid]

    def publish(self, channel, data):
        return http_request("POST", "/v1/mesh/publish", publish_body(channel, data))

    def ws_publisher(self):
        return self.api, "/ws/v1"

    def ws_publish(self, channel, data, ident):
        return ws_frame(json.dumps({"m": "mesh.publish", "p": {"c": channel, "d": data}, "i": ident}, separators=(",", ":")))

    def h2load_target(self, channel, data):
        return f"http://127.0.0.1:{self.pub_port}/v1/mesh/publish", publish_body(channel, data)

    def stop(self):
        if self.proc:
            stop_process(self.proc)


class Nchan:
    name = "nchan"

    def __init__(self, tmp, subs):
        self.tmp = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(self.tmp, "logs"), exist_ok=True)
        self.port = free_port()
        self.sub_port = self.pub_port = self.port
        self.sub_path = f"/sub?id={CHANNEL}"
        self.conf = f"""# written by bench/peers.py
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile {subs + 4096};
pid {self.tmp}/nginx.pid;
error_log {self.tmp}/logs/error.log warn;
load_module {NCHAN_MODULE};
events {{
    worker_connections {subs + 2048};
    use epoll;
}}
http {{
    access_log off;
    client_body_temp_path {self.tmp}/body;
    proxy_temp_path {self.tmp}/proxy;
    fastcgi_temp_path {self.tmp}/fastcgi;
    uwsgi_temp_path {self.tmp}/uwsgi;
    scgi_temp_path {self.tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_buffer_size 64k;
    nchan_max_reserved_memory 256M;
    server {{
        listen 127.0.0.1:{self.port} reuseport backlog=4096;
        location = /pub {{
            nchan_publisher http websocket;
            nchan_channel_id $arg_id;
            nchan_message_buffer_length 10000;
            nchan_message_timeout 10m;
        }}
        location = /sub {{
            nchan_subscriber websocket;
            nchan_channel_id $arg_id;
        }}
    }}
}}
"""
        self.proc = None

    def start(self):
        self.proc = start_nginx(self.tmp, self.conf, self.port)
        # nchan answers HTTP once its workers are up
        deadline = time.monotonic() + 15
        while True:
            try:
                c = HttpConn(self.port, 2)
                c.call(http_request("GET", "/nope"))
                c.close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)

    def pids(self):
        return [self.proc.pid] + descendants(self.proc.pid)

    def perf_pids(self):
        return descendants(self.proc.pid)

    def publish(self, channel, data):
        return http_request("POST", f"/pub?id={channel}", data, "text/plain")

    def ws_publisher(self):
        return self.port, f"/pub?id={CHANNEL}"

    def ws_publish(self, channel, data, ident):
        return ws_frame(data)

    def h2load_target(self, channel, data):
        return f"http://127.0.0.1:{self.port}/pub?id={channel}", data

    def stop(self):
        stop_nginx(self.proc)


class MinHttp(Meshgate):
    """bench/min_http: answers the same HTTP requests as meshgate's API (h2load_target, stop)."""
    name = "min_http"

    def __init__(self, exe):  # noqa: super().__init__ not wanted: no configuration
        self.exe, self.pub_port, self.proc = exe, free_port(), None

    def start(self):
        self.proc = subprocess.Popen([self.exe, "-p", str(self.pub_port), "-w", "2"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("MIN_HTTP"):
            raise RuntimeError("min_http did not start")

    def pids(self):
        return [self.proc.pid] + descendants(self.proc.pid)

    perf_pids = pids


# ------------------------------------------------------------------------------------------ measuring

class Window:
    """CPU of `pids` (user, system) and wall time over a with-block; with a profile directory, also
    perf record + perf stat (syscall tracepoints) of perf_pids."""

    def __init__(self, server, prof=None, label=None):
        self.server, self.prof, self.label = server, prof, label
        self.perf = []

    def __enter__(self):
        if self.prof:
            pids = ",".join(str(p) for p in self.server.perf_pids())
            base = os.path.join(self.prof, f"{self.server.name}-{self.label}")
            cg = ["--call-graph", CALLGRAPH[0]] if CALLGRAPH[0] != "fp" else ["-g"]
            freq = "2999" if CALLGRAPH[0] == "fp" else "499"
            self.perf.append(subprocess.Popen(["perf", "record", "-q", "-F", freq] + cg + ["-p", pids, "-o", base + ".data"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ev = ",".join(["context-switches"] + [f"syscalls:sys_enter_{s}" for s in SYSCALLS])
            self.perf.append(subprocess.Popen(["perf", "stat", "-x", ",", "-e", ev, "-p", pids, "-o", base + ".stat"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)  # perf attaches
        self.load0 = loadavg()
        self.c0 = cpu_times(self.server.pids())
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        c1 = cpu_times(self.server.pids())
        self.user, self.sys = c1[0] - self.c0[0], c1[1] - self.c0[1]
        self.cpu = self.user + self.sys
        for p in self.perf:
            p.send_signal(signal.SIGINT)
        for p in self.perf:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        return False

    def result(self, ops, **extra):
        r = {"wall_s": round(self.wall, 4), "ops": ops, "cpu_s": round(self.cpu, 3), "user_s": round(self.user, 3),
             "sys_s": round(self.sys, 3), "cpu_us_per_op": self.cpu * 1e6 / ops if ops else None,
             "ops_per_s": ops / self.wall if self.wall else None, "load": round(self.load0, 2)}
        r.update(extra)
        return r


def load_single(srv, wsb, n, publishes, size, timeout, prof, channel=CHANNEL, warmup=True):
    """warmup=False for a server without channels (every publish reaches every subscriber)."""
    data = "x" * size
    conn = HttpConn(srv.pub_port)
    try:
        if warmup:
            conn.call(srv.publish("warmup", data))  # the connection's first request is not measured
        wsb.reset()
        lat = []
        with Window(srv, prof, "single") as w:
            for k in range(publishes):
                t = time.monotonic()
                status, body = conn.call(srv.publish(channel, data))
                if status >= 300:
                    raise RuntimeError(f"{srv.name} publish: {status} {body[:200]!r}")
                got = wsb.wait(n * (k + 1), timeout)
                if got["timed_out"]:
                    raise RuntimeError(f"{srv.name}: {got['msgs']} of {n * (k + 1)} deliveries")
                lat.append(time.monotonic() - t)
        return w.result(got["msgs"], publishes=publishes, publish_to_all_delivered_ms=round(statistics.median(lat) * 1000, 2))
    finally:
        conn.close()


def load_burst(srv, wsb, n, burst, size, timeout, prof, channel=CHANNEL):
    data = "x" * size
    conn = HttpConn(srv.pub_port)
    try:
        conn.call(srv.publish("warmup", data))
        reqs = [srv.publish(channel, data) for _ in range(burst)]
        wsb.reset()
        with Window(srv, prof, "burst") as w:
            answers = conn.pipeline(reqs)
            got = wsb.wait(n * burst, timeout)
        bad = [a for a in answers if a[0] >= 300]
        if bad or got["timed_out"]:
            raise RuntimeError(f"{srv.name} burst: {len(bad)} bad answers {bad[:1]}, {got['msgs']} of {n * burst} deliveries")
        return w.result(got["msgs"], publishes=burst)
    finally:
        conn.close()


def load_burst_ws(srv, wsb, n, burst, size, timeout, prof):
    """(b') the same burst, written at once on one WebSocket publisher connection: meshgate's /ws/v1
    (mesh.publish requests, answered in order without waiting for each other) and nchan's websocket
    publisher (nchan_publisher websocket: each message is a publish)."""
    data = "x" * size
    port, path = srv.ws_publisher()
    sock, rest = ws_connect(port, path)
    try:
        answers = FrameReader(sock, rest)
        frames = b"".join(srv.ws_publish(CHANNEL, data, i) for i in range(burst))
        wsb.reset()
        with Window(srv, prof, "burst_ws") as w:
            sock.sendall(frames)
            got = wsb.wait(n * burst, timeout)
        if got["timed_out"]:
            raise RuntimeError(f"{srv.name} burst_ws: {got['msgs']} of {n * burst} deliveries")
        return w.result(got["msgs"], publishes=burst, publisher_frames_back=answers.count)
    finally:
        sock.close()


def load_http(srv, requests, conns, size, tmp, prof):
    url, body = srv.h2load_target("nobody", "x" * size)
    path = os.path.join(tmp, f"body-{srv.name}")
    with open(path, "w") as f:
        f.write(body)
    cmd = ["h2load", "--h1", "-c", str(conns), "-m", "1", "-n", str(requests), "-d", path,
           "-H", "Content-Type: " + ("text/plain" if srv.name == "nchan" else "application/json"), url]
    with Window(srv, prof, "http") as w:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    ok = int(codes.group(1)) if codes else 0
    if not m or ok != requests:
        raise RuntimeError(f"h2load on {srv.name}: {ok} of {requests} 2xx\n{out[-800:]}")
    rps = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    return w.result(ok, h2load_req_per_s=float(rps.group(1)) if rps else None, command=" ".join(cmd))


def run_raw_fanout(exe, n, rounds, k):
    cmd = [exe, "-n", str(n), "-r", str(rounds), "-k", str(k)] + (["--sync"] if k == 1 else ["--nosync"])
    load0 = loadavg()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RAW_FANOUT"))
    kv = dict(tok.split("=", 1) for tok in line.split()[1:])
    return {"ops": int(kv["frames"]), "writes": int(kv["writes"]), "wall_s": float(kv["wall_s"]),
            "cpu_s": float(kv["user_s"]) + float(kv["sys_s"]), "user_s": float(kv["user_s"]), "sys_s": float(kv["sys_s"]),
            "cpu_us_per_op": float(kv["cpu_us_per_frame"]), "ops_per_s": float(kv["frames_per_s"]),
            "load": round(load0, 2), "command": " ".join(cmd)}


def run_queue(args, prof):
    import queue_rate
    qa = argparse.Namespace(server=args.server, clients=args.queue_clients, messages=args.queue_messages,
                            size=args.size, timeout=120)
    hook = None
    if prof:
        state = {}

        def hook(pid, phase):
            if phase == "start":
                class S:  # the Window wants a server object
                    name = "meshgate"

                    def pids(self):
                        return [pid]
                    perf_pids = pids
                state["w"] = Window(S(), prof, "queue").__enter__()
            else:
                state["w"].__exit__(None, None, None)
    load0 = loadavg()
    r = queue_rate.one_run(qa, hook)
    return {"ops": r["messages"], "wall_s": r["seconds"], "cpu_s": r["server_cpu_s"], "user_s": r["server_user_s"],
            "sys_s": r["server_sys_s"], "cpu_us_per_op": r["server_cpu_us_per_event"], "ops_per_s": r["events_per_s"],
            "load": round(load0, 2)}


# ------------------------------------------------------------------------------------------ reporting

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=2):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def paired_ratios(nums, dens):
    """Round by round, num / den of server CPU per operation and of throughput (runs paired by round)."""
    cpu = [n["cpu_us_per_op"] / d["cpu_us_per_op"] for n, d in zip(nums, dens)]
    ops = [n["ops_per_s"] / d["ops_per_s"] for n, d in zip(nums, dens)]
    return cpu, ops


def summarize(res, rounds):
    """Markdown tables: per load, medians for each server; paired ratios."""
    lines = []
    loads = [("single", "fan-out, publishes one at a time", "delivery", "raw_k1"),
             ("burst", "fan-out, bursts (HTTP pipelined)", "delivery", "raw_k2"),
             ("burst_ws", "fan-out, bursts (WebSocket publisher)", "delivery", "raw_k2"),
             ("http", "HTTP publish, no subscriber", "request", "min_http"),
             ("queue", "queue, client messages to one consumer", "event", None)]
    lines.append("| load | server | ops/s (median) | server CPU µs/op (median) | of which kernel | ratio to the physical limit (paired by round, median) |")
    lines.append("|---|---|---|---|---|---|")
    for load, title, unit, limit in loads:
        for srv in ("meshgate", "nchan", limit if load != "burst_ws" else None):
            if not srv:
                continue
            rs = res.get(load, {}).get(srv, []) or (res.get("burst", {}).get(srv, []) if srv == limit else [])
            lims = res.get(load, {}).get(limit, []) or res.get("burst", {}).get(limit, []) if limit else []
            if not rs:
                continue
            cpu = med([r["cpu_us_per_op"] for r in rs])
            ksh = med([r["sys_s"] / r["cpu_s"] if r["cpu_s"] else None for r in rs])
            lim = med([r["cpu_us_per_op"] / l["cpu_us_per_op"] for r, l in zip(rs, lims)]) if limit and srv != limit else None
            lines.append(f"| {title} | {srv} | {fmt(med([r['ops_per_s'] for r in rs]))} | {fmt(cpu)} per {unit} | "
                         f"{fmt(ksh * 100 if ksh is not None else None, 0)} % | {fmt(lim) + '×' if lim else ''} |")
    lines.append("")
    lines.append("Paired ratios, meshgate / nchan, per round (and median): server CPU per operation; throughput")
    lines.append("")
    lines.append("| load | CPU per op, meshgate / nchan | median | ops/s, meshgate / nchan | median |")
    lines.append("|---|---|---|---|---|")
    for load in ("single", "burst", "burst_ws", "http"):
        a, b = res.get(load, {}).get("meshgate", []), res.get(load, {}).get("nchan", [])
        cr, tr = paired_ratios(a, b)
        if cr:
            lines.append(f"| {load} | {', '.join(fmt(x) for x in cr)} | **{fmt(med(cr))}** | "
                         f"{', '.join(fmt(x) for x in tr)} | **{fmt(med(tr))}** |")
    return "\n".join(lines)


def profile_report(prof, name, label, ops):
    """Top symbols, kernel share and syscalls per op from DIR/name-label.{data,stat}."""
    base = os.path.join(prof, f"{name}-{label}")
    if not os.path.exists(base + ".data"):
        return
    rep = subprocess.run(["perf", "report", "-i", base + ".data", "--no-children", "--sort", "dso,sym", "--stdio",
                          "--percent-limit", "0.7", "-g", "none"], capture_output=True, text=True).stdout
    inc = subprocess.run(["perf", "report", "-i", base + ".data", "--children", "--sort", "dso,sym", "--stdio",
                          "--percent-limit", "1.5", "-g", "none"], capture_output=True, text=True).stdout
    dso = subprocess.run(["perf", "report", "-i", base + ".data", "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                         capture_output=True, text=True).stdout
    calls = {}
    if os.path.exists(base + ".stat"):
        with open(base + ".stat") as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2].startswith(("syscalls:sys_enter_", "context-switches")):
                    try:
                        calls[parts[2].replace("syscalls:sys_enter_", "")] = int(parts[0])
                    except ValueError:
                        pass
    with open(base + ".txt", "w") as f:
        f.write(f"{name} {label}: {ops} operations\n\n== syscalls and context switches (count, per operation)\n")
        for k, v in sorted(calls.items(), key=lambda kv: -kv[1]):
            if v:
                f.write(f"{k:16} {v:10d} {v / ops:8.4f}\n")
        f.write("\n== by shared object\n")
        f.write("\n".join(ln for ln in dso.splitlines() if ln.strip() and not ln.startswith("#")) + "\n")
        f.write("\n== user-space functions, inclusive of their callees (children), >= 1.5 %\n")
        f.write("\n".join(ln for ln in inc.splitlines() if ln.strip() and not ln.startswith("#") and "[k]" not in ln) + "\n")
        f.write("\n== top symbols (self)\n")
        f.write("\n".join(ln for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")) + "\n")
    log(f"  profile: {base}.txt")


# ------------------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--install", action="store_true", help="apt-get install the peers and tools, then exit")
    ap.add_argument("--server", default=os.path.join(ROOT, "build-release", "meshgate"))
    ap.add_argument("--bin", default=os.path.join(HERE, "results", "bin"), help="where make -C bench put the tools")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subs", type=int, default=10000)
    ap.add_argument("--publishes", type=int, default=50, help="(a): publishes one at a time")
    ap.add_argument("--burst", type=int, default=50, help="(b): publishes written at once")
    ap.add_argument("--size", type=int, default=64, help="payload bytes")
    ap.add_argument("--requests", type=int, default=100000, help="(c): h2load requests")
    ap.add_argument("--conns", type=int, default=50, help="(c): h2load connections")
    ap.add_argument("--raw-rounds", type=int, default=20, help="raw_fanout rounds (frames per socket)")
    ap.add_argument("--queue-clients", type=int, default=100)
    ap.add_argument("--queue-messages", type=int, default=2000)
    ap.add_argument("--loads", default="single,burst,burst_ws,http,queue,limits")
    ap.add_argument("--servers", default="meshgate,nchan")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--profile", metavar="DIR", help="perf record + perf stat of each load (see above)")
    ap.add_argument("--callgraph", default="fp", help="with --profile: perf's call graph, fp or dwarf[,SIZE] "
                    "(dwarf: slower, 499 Hz, but user-space callers without frame pointers)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.install:
        install()
        return 0
    for tool in ("ws_bench", "raw_fanout", "min_http"):
        if not os.path.exists(os.path.join(args.bin, tool)):
            sys.exit(f"{args.bin}/{tool} missing: run `make -C bench`")
    for tool in ("nginx", "h2load") + (("perf",) if args.profile else ()):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: run bench/peers.py --install")
    if not os.path.exists(NCHAN_MODULE):
        sys.exit(f"{NCHAN_MODULE} missing: run bench/peers.py --install")
    loads = set(args.loads.split(","))
    CALLGRAPH[0] = args.callgraph
    names = args.servers.split(",")
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
        args.rounds = 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    outdir = args.out or os.path.join(HERE, "results", time.strftime("peers-%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "commit": git, "server": args.server,
            "args": vars(args), "load_start": os.getloadavg()}
    log(f"peers: commit {git}, load average {meta['load_start']}")
    tmp = tempfile.mkdtemp(prefix="peers-")
    res = {}

    def add(load, srv, r):
        res.setdefault(load, {}).setdefault(srv, []).append(r)
        log(f"  {load:6} {srv:8}: {fmt(r['ops_per_s'])} ops/s, {fmt(r['cpu_us_per_op'])} µs CPU/op "
            f"({r['ops']} ops, cpu {r['cpu_s']:.2f} s = user {r['user_s']:.2f} + sys {r['sys_s']:.2f}, "
            f"wall {r['wall_s']:.2f} s, load {r['load']})")

    servers, wsbs = {}, {}
    try:
        if "meshgate" in names:
            servers["meshgate"] = Meshgate(args.server, tmp, args.subs)
        if "nchan" in names:
            servers["nchan"] = Nchan(tmp, args.subs)
        for s in servers.values():
            s.start()
            log(f"{s.name} started: pids {s.pids()}")
        if loads & {"single", "burst", "burst_ws"}:
            for name, s in servers.items():
                w = WsBench(os.path.join(args.bin, "ws_bench"), s.sub_port, args.subs, 500, s.sub_path, src_ips=8)
                c = w.expect("CONNECT", 120)
                wsbs[name] = w
                log(f"{name}: {c['ok']} subscribers connected ({c['failed']} failed) in {c['elapsed_ms']:.0f} ms")
                if c["ok"] != args.subs:
                    raise RuntimeError(f"{name}: only {c['ok']} of {args.subs} subscribers")
            time.sleep(1)
        for rnd in range(args.rounds):
            order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
            log(f"round {rnd + 1}/{args.rounds}: {' then '.join(order)}, load average {loadavg():.2f}")
            prof = args.profile
            fanouts = {"single": (load_single, args.publishes), "burst": (load_burst, args.burst),
                       "burst_ws": (load_burst_ws, args.burst)}
            for load, (fn, count) in fanouts.items():
                if load in loads:
                    for name in order:
                        add(load, name, fn(servers[name], wsbs[name], args.subs, count, args.size, args.timeout, prof))
            if "http" in loads:
                for name in order:
                    add("http", name, load_http(servers[name], args.requests, args.conns, args.size, tmp, prof))
            if "limits" in loads and not prof:
                add("single", "raw_k1", run_raw_fanout(os.path.join(args.bin, "raw_fanout"), args.subs, args.raw_rounds, 1))
                add("burst", "raw_k2", run_raw_fanout(os.path.join(args.bin, "raw_fanout"), args.subs, args.raw_rounds, 2))
                if "http" in loads:
                    mh = MinHttp(os.path.join(args.bin, "min_http"))
                    mh.start()
                    try:
                        add("http", "min_http", load_http(mh, args.requests, args.conns, args.size, tmp, None))
                    finally:
                        mh.stop()
            if "queue" in loads and "meshgate" in servers:
                add("queue", "meshgate", run_queue(args, prof))
    finally:
        for w in wsbs.values():
            w.stop()
        for s in servers.values():
            s.stop()
    meta["load_end"] = os.getloadavg()
    if args.profile:
        for load, per in res.items():
            for name, rs in per.items():
                profile_report(args.profile, name, load, rs[0]["ops"])
    table = summarize(res, args.rounds)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": res, "summary": table}, f, indent=1)
    print(f"\n== peers, {meta['date']}, commit {git}, load average {meta['load_start'][0]:.2f} at start, "
          f"{meta['load_end'][0]:.2f} at end\n")
    print(table)
    print(f"\nresults: {outdir}/results.json")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
