#!/usr/bin/python3
"""Publish fan-out over TLS and plain, side by side with nginx+nchan and the floors, in one run
(issue 21). bench/peers.py's machinery (its Meshgate and Nchan configurations, its Window of server
CPU, raw_fanout), with:

Servers (each started once, on 127.0.0.1):
  meshgate  peers.py's configuration (the shipped conf/meshgate.conf, workers = 2, events off, no
            idle timeout or ping, a token_secret: subscribers are subscribed at connect by their
            token's "ch" claim) with [listener.wss] (tls = on, shipped) given the run's certificate
            and the same settings as [listener.ws]. wss subscribers are on channel "tls", ws ones on
            "plain". Publish: POST /v1/mesh/publish on the plain HTTP API.
  nchan     peers.py's nginx.conf with a second listen line, `listen ... ssl reuseport`, and
            ssl_certificate / ssl_certificate_key of the same certificate (nginx's TLS defaults
            otherwise). /sub?id=tls over TLS, /sub?id=plain over plain. Publish: POST /pub?id=... plain.
  min_ws    /work/shared/bench/min_ws_fanout.c (--minws PATH; plain only): the WebSocket fan-out floor
            with the same client as the servers: one thread, a POST body framed once and written to
            every subscriber with one write() each. Its subscribers use ws_bench --fixed-key.
  raw       bench/raw_fanout, one 70-byte write per socket to 10,000 sockets drained by another
            process: --sync (waits after each round until the drainer has read it: the docs' issue 13
            limit, -r 20) and --nosync (does not wait: the independent run's limit, -r --publishes);
            with --raw ...,sync_uring,nosync_uring also the same sends submitted through io_uring.
The certificate: EC P-256, self-signed, CN=localhost, made with the openssl command (one for both).

Subscribers: --subs per (server, transport), held for the whole run: bench/wss_bench (epoll + OpenSSL,
TLS 1.3) for TLS, bench/ws_bench for plain.

Loads, per round, per transport, each server in turn (A B, then B A in the next round):
  single  --publishes publishes one at a time: publish k+1 when publish k is answered and every
          subscriber has it (as peers.py (a)).
  burst   --burst publishes pipelined on one keep-alive HTTP connection in one write (peers.py (b)).
Server CPU = utime + stime of the server's processes (/proc/PID/stat: meshgate's one process, nginx
master + workers) read just before and after the publishing window, divided by the deliveries
ws_bench/wss_bench counted. The connects are measured the same way, apart (CPU per connection), and
the table also gives what the single-publish figure becomes if the connects were in the window.

  make -C bench && meson setup build-release --buildtype=release -Dtests=false && ninja -C build-release meshgate
  bench/peers.py --install        # nginx, libnginx-mod-nchan (once)
  bench/tls_fanout.py --server build-release/meshgate --rounds 3 --subs 10000
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, ROOT, HttpConn, WsBench, connect_token, edit_config, free_port,  # noqa: E402
                      http_request, log)
from peers import SECRET, Meshgate, Nchan, Window, fmt, load_burst, load_single, loadavg, med, profile_report  # noqa: E402

MINWS_SRC = "/work/shared/bench/min_ws_fanout.c"
TRANSPORTS = ("tls", "plain")


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


class MeshgateTls(Meshgate):
    def __init__(self, exe, tmp, subs, cert, key):
        super().__init__(exe, tmp, subs * 2)
        self.wss = free_port()
        self.conf = edit_config(self.conf, {"listener.wss": {
            "port": self.wss, "cert": cert, "key": key, "events": "off", "idle_timeout": 0, "ping_interval": 0,
            "token_secret": SECRET}})

    def sub(self, transport):
        path = "/?token=" + connect_token(SECRET, 3 * 3600, ch=[transport])
        return (self.wss if transport == "tls" else self.ws), path


class NchanTls(Nchan):
    def __init__(self, tmp, subs, cert, key):
        super().__init__(tmp, subs * 2)
        self.tls_port = free_port()
        plain = f"listen 127.0.0.1:{self.port} reuseport backlog=4096;"
        assert plain in self.conf
        self.conf = self.conf.replace(plain, plain + f"""
        listen 127.0.0.1:{self.tls_port} ssl reuseport backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};""")

    def sub(self, transport):
        return (self.tls_port if transport == "tls" else self.port), f"/sub?id={transport}"


class MinWs:
    """min_ws_fanout: every GET becomes a subscriber, every POST goes to all of them."""
    name = "min_ws"

    def __init__(self, exe):
        self.exe, self.port, self.proc = exe, free_port(), None
        self.pub_port = self.port

    def start(self):
        self.proc = subprocess.Popen([self.exe, str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                HttpConn(self.port, 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("min_ws_fanout did not start")

    def sub(self, transport):
        return self.port, "/"

    def publish(self, channel, data):
        return http_request("POST", "/pub", data, "text/plain")

    def pids(self):
        return [self.proc.pid]

    perf_pids = pids

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Subscribers(WsBench):
    """WsBench with the tool and options chosen per transport (wss_bench speaks the same protocol)."""

    def __init__(self, exe, port, n, conc, path, src_ips, extra=()):
        import queue
        import threading
        self.p = subprocess.Popen([exe, "-p", str(port), "-n", str(n), "-c", str(conc), "-P", path,
                                   "-s", str(src_ips), "--control"] + list(extra),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()


def run_raw(exe, n, rounds, mode):
    """raw_fanout -k 1 in `mode`: sync or nosync, each optionally with _uring (--uring)."""
    cmd = [exe, "-n", str(n), "-r", str(rounds), "-k", "1", "--nosync" if mode.startswith("nosync") else "--sync"]
    if mode.endswith("_uring"):
        cmd.append("--uring")
    load0 = loadavg()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RAW_FANOUT"))
    kv = dict(tok.split("=", 1) for tok in line.split()[1:])
    return {"ops": int(kv["frames"]), "wall_s": float(kv["wall_s"]), "user_s": float(kv["user_s"]),
            "sys_s": float(kv["sys_s"]), "cpu_s": float(kv["user_s"]) + float(kv["sys_s"]),
            "cpu_us_per_op": float(kv["cpu_us_per_frame"]), "load": round(load0, 2), "command": " ".join(cmd)}


def summarize(res, connects):
    lines = ["| transport | load | server | server CPU µs per delivery, median (range) | kernel share | "
             "meshgate ÷ this, paired by round → median |", "|---|---|---|---|---|---|"]
    for (tr, load), per in res.items():
        mg = per.get("meshgate", [])
        for name, rs in per.items():
            cpu = [r["cpu_us_per_op"] for r in rs]
            ksh = med([r["sys_s"] / r["cpu_s"] for r in rs if r["cpu_s"]])
            ratio = ""
            if name != "meshgate" and mg:
                rr = [a["cpu_us_per_op"] / b["cpu_us_per_op"] for a, b in zip(mg, rs)]
                ratio = f"{', '.join(fmt(x) for x in rr)} → **{fmt(med(rr))}**"
            lines.append(f"| {tr} | {load} | {name} | **{fmt(med(cpu))}** ({fmt(min(cpu))}–{fmt(max(cpu))}) | "
                         f"{fmt(ksh * 100 if ksh is not None else None, 0)} % | {ratio} |")
    lines.append("")
    lines.append("| transport | server | connects: server CPU µs per connection | single-publish figure with the connects in the window |")
    lines.append("|---|---|---|---|")
    for (tr, name), c in connects.items():
        singles = res.get((tr, "single"), {}).get(name, [])
        if not singles:
            continue
        with_conn = [(c["cpu_s"] + r["cpu_s"]) * 1e6 / r["ops"] for r in singles]
        lines.append(f"| {tr} | {name} | {fmt(c['cpu_s'] * 1e6 / c['n'])} | {fmt(med(with_conn))} µs per delivery |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=os.path.join(ROOT, "build-release", "meshgate"))
    ap.add_argument("--bin", default=os.path.join(HERE, "results", "bin"))
    ap.add_argument("--minws", default=MINWS_SRC, help="min_ws_fanout.c (compiled into --bin); '' to leave it out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subs", type=int, default=10000)
    ap.add_argument("--publishes", type=int, default=50)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--transports", default="tls,plain")
    ap.add_argument("--loads", default="single,burst")
    ap.add_argument("--servers", default="meshgate,nchan")
    ap.add_argument("--raw", default="sync,nosync", help="raw_fanout modes each round: sync, nosync, sync_uring, "
                    "nosync_uring ('' for none)")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--profile", metavar="DIR", help="perf record + perf stat of meshgate and nginx during each load "
                    "(peers.py --profile; use one transport, so that DIR/<server>-<load>.txt is that transport's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    transports = [t for t in args.transports.split(",") if t]
    loads = [x for x in args.loads.split(",") if x]
    want = args.servers.split(",")
    for tool in ("ws_bench", "wss_bench", "raw_fanout"):
        if not os.path.exists(os.path.join(args.bin, tool)):
            sys.exit(f"{args.bin}/{tool} missing: run `make -C bench`")
    # 2 x subs connections in each server and up to 2 x subs in a client: past the usual 20,000.
    need = 4 * args.subs + 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_server = args.subs * len(transports) + 200
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < per_server:
        sys.exit(f"meshgate would hold {per_server} descriptors, over this process's RLIMIT_NOFILE "
                 f"({resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, and no privilege to raise it): run one "
                 f"--transports at a time or fewer --subs")
    minws_exe = None
    if args.minws and "plain" in transports:
        minws_exe = os.path.join(args.bin, "min_ws_fanout")
        subprocess.run(["gcc", "-O2", "-o", minws_exe, args.minws], check=True)

    outdir = args.out or os.path.join(HERE, "results", time.strftime("tls-fanout-%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "commit": git, "args": vars(args), "load_start": os.getloadavg()}
    log(f"tls_fanout: commit {git}, load average {meta['load_start']}")
    tmp = tempfile.mkdtemp(prefix="tls-fanout-")
    cert, key = make_cert(tmp)
    res, connects, raw = {}, {}, []
    servers, subs = {}, {}

    def add(tr, load, name, r):
        res.setdefault((tr, load), {}).setdefault(name, []).append(r)
        log(f"  {tr:5} {load:6} {name:8}: {fmt(r['cpu_us_per_op'])} µs CPU/delivery ({r['ops']} ops, cpu {r['cpu_s']:.2f} s "
            f"= user {r['user_s']:.2f} + sys {r['sys_s']:.2f}, wall {r['wall_s']:.2f} s, load {r['load']})")

    try:
        if "meshgate" in want:
            servers["meshgate"] = MeshgateTls(args.server, tmp, args.subs, cert, key)
        if "nchan" in want:
            servers["nchan"] = NchanTls(tmp, args.subs, cert, key)
        if minws_exe:
            servers["min_ws"] = MinWs(minws_exe)
        for s in servers.values():
            s.start()
            log(f"{s.name} started: pids {s.pids()}")
        for name, s in servers.items():
            for tr in transports:
                if name == "min_ws" and tr != "plain":
                    continue
                port, path = s.sub(tr)
                exe = os.path.join(args.bin, "wss_bench" if tr == "tls" else "ws_bench")
                extra = ["--fixed-key"] if name == "min_ws" else []
                with Window(s) as w:
                    b = Subscribers(exe, port, args.subs, 200 if tr == "tls" else 500, path, 8, extra)
                    c = b.expect("CONNECT", 300)
                subs[(name, tr)] = b
                connects[(tr, name)] = {"cpu_s": w.cpu, "n": c["ok"], "wall_s": w.wall}
                log(f"{name} {tr}: {c['ok']} subscribers ({c['failed']} failed) in {c['elapsed_ms']} ms, "
                    f"server CPU {w.cpu * 1e6 / max(1, c['ok']):.0f} µs per connection")
                if c["ok"] != args.subs:
                    raise RuntimeError(f"{name} {tr}: only {c['ok']} of {args.subs} subscribers: {c}")
        time.sleep(1)
        for rnd in range(args.rounds):
            rivals = [n for n in ("meshgate", "nchan") if n in servers]
            order = rivals if rnd % 2 == 0 else list(reversed(rivals))
            log(f"round {rnd + 1}/{args.rounds}: {' then '.join(order)}, load average {loadavg():.2f}")
            for tr in transports:
                for load in loads:
                    fn, count = (load_single, args.publishes) if load == "single" else (load_burst, args.burst)
                    for name in order:
                        add(tr, load, name, fn(servers[name], subs[(name, tr)], args.subs, count, args.size, args.timeout,
                                               args.profile, channel=tr))
                    if tr == "plain" and load == "single" and "min_ws" in servers:
                        add(tr, load, "min_ws", load_single(servers["min_ws"], subs[("min_ws", "plain")], args.subs,
                                                            args.publishes, args.size, args.timeout, None, warmup=False))
            for mode in [m for m in args.raw.split(",") if m]:
                # sync: the docs' limit (issue 13), 20 rounds each waited for; nosync: the independent
                # run's, --publishes rounds not waited for
                r = run_raw(os.path.join(args.bin, "raw_fanout"), args.subs, 20 if mode.startswith("sync") else args.publishes, mode)
                add("plain", "single", f"raw_{mode}", r)
    finally:
        for b in subs.values():
            b.stop()
        for s in servers.values():
            s.stop()
    meta["load_end"] = os.getloadavg()
    if args.profile:
        for (tr, load), per in res.items():
            for name, rs in per.items():
                if name in ("meshgate", "nchan"):
                    profile_report(args.profile, name, load, rs[0]["ops"])
    table = summarize(res, connects)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": {f"{k[0]}/{k[1]}": v for k, v in res.items()},
                   "connects": {f"{k[0]}/{k[1]}": v for k, v in connects.items()}, "summary": table}, f, indent=1)
    print(f"\n== tls_fanout, {meta['date']}, commit {git}, load average {meta['load_start'][0]:.2f} at start, "
          f"{meta['load_end'][0]:.2f} at end, {args.subs} subscribers per server and transport\n")
    print(table)
    print(f"\nresults: {outdir}/results.json")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
