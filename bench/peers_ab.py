#!/usr/bin/python3
"""Two meshgate binaries (A: before, B: after) on bench/peers.py's loads, in one run: each load on
A then B (B then A in the next round), --rounds rounds, medians and paired ratios B / A of server
CPU per operation and of throughput. The servers, loads and CPU accounting are peers.py's own
(see its --help); only the pairing differs. With --strace, one more round runs each load under
`strace -c -f` on each server (syscalls per operation; CPU figures of that round are not used).

  bench/peers_ab.py --a build-base/meshgate --b build-release/meshgate --rounds 3 \\
      --loads single,burst,burst_ws,http,queue
"""
import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import Meshgate, WsBench, fmt, med, log, loadavg, paired_ratios  # noqa: E402


class Strace:
    """strace -c -f attached to a server for one window; counts per syscall."""

    def __init__(self, pid, path):
        self.pid, self.path = pid, path

    def __enter__(self):
        self.p = subprocess.Popen(["strace", "-c", "-f", "-p", str(self.pid), "-o", self.path],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(60)
        return False

    def counts(self):
        out = {}
        with open(self.path) as f:
            for line in f:
                m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
                if m and m.group(2) != "total":
                    out[m.group(2)] = int(m.group(1))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="meshgate binary before")
    ap.add_argument("--b", required=True, help="meshgate binary after")
    ap.add_argument("--bin", default=os.path.join(peers.HERE, "results", "bin"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subs", type=int, default=10000)
    ap.add_argument("--publishes", type=int, default=50)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--queue-clients", type=int, default=100)
    ap.add_argument("--queue-messages", type=int, default=2000)
    ap.add_argument("--loads", default="single,burst,burst_ws,http,queue")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--strace", action="store_true", help="one more round under strace -c -f")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    loads = args.loads.split(",")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    outdir = args.out or os.path.join(peers.HERE, "results", time.strftime("ab-%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    tmp = os.path.join(outdir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "args": vars(args), "load_start": os.getloadavg()}
    res, sys_counts = {}, {}
    servers, wsbs = {}, {}

    def run(load, name, strace_path=None):
        srv = servers[name]
        if load == "queue":
            qa = argparse.Namespace(server=getattr(args, name), queue_clients=args.queue_clients,
                                    queue_messages=args.queue_messages, size=args.size)
            if not strace_path:
                return peers.run_queue(qa, None)
            st = {}

            def hook(pid, phase):
                if phase == "start":
                    st["s"] = Strace(pid, strace_path).__enter__()
                else:
                    st["s"].__exit__(None, None, None)
            import queue_rate
            r = queue_rate.one_run(argparse.Namespace(server=qa.server, clients=qa.queue_clients,
                                                      messages=qa.queue_messages, size=qa.size, timeout=120), hook)
            return {"ops": r["messages"], "strace": st["s"].counts()}
        if load == "http":
            fn = lambda: peers.load_http(srv, args.requests, args.conns, args.size, tmp, None)  # noqa: E731
        else:
            f = {"single": peers.load_single, "burst": peers.load_burst, "burst_ws": peers.load_burst_ws}[load]
            count = args.publishes if load == "single" else args.burst
            fn = lambda: f(srv, wsbs[name], args.subs, count, args.size, args.timeout, None)  # noqa: E731
        if not strace_path:
            return fn()
        with Strace(srv.proc.pid, strace_path) as s:
            r = fn()
        r["strace"] = s.counts()
        return r

    try:
        for name in ("a", "b"):
            servers[name] = Meshgate(getattr(args, name), os.path.join(tmp), args.subs)
            os.makedirs(os.path.join(tmp, name), exist_ok=True)
            servers[name].tmp = os.path.join(tmp, name)
            servers[name].start()
            if set(loads) & {"single", "burst", "burst_ws"}:
                w = WsBench(os.path.join(args.bin, "ws_bench"), servers[name].sub_port, args.subs, 500,
                            servers[name].sub_path, src_ips=8)
                c = w.expect("CONNECT", 120)
                if c["ok"] != args.subs:
                    raise RuntimeError(f"{name}: only {c['ok']} of {args.subs} subscribers")
                wsbs[name] = w
        time.sleep(1)
        for rnd in range(args.rounds):
            order = ["a", "b"] if rnd % 2 == 0 else ["b", "a"]
            log(f"round {rnd + 1}/{args.rounds}: {' then '.join(order)}, load average {loadavg():.2f}")
            for load in loads:
                for name in order:
                    r = run(load, name)
                    res.setdefault(load, {}).setdefault(name, []).append(r)
                    log(f"  {load:8} {name}: {fmt(r['ops_per_s'])} ops/s, {fmt(r['cpu_us_per_op'])} µs CPU/op "
                        f"(user {r['user_s']:.2f} + sys {r['sys_s']:.2f} s, load {r['load']})")
        if args.strace:
            log("strace round")
            for load in loads:
                for name in ("a", "b"):
                    r = run(load, name, os.path.join(outdir, f"strace-{name}-{load}.txt"))
                    per = {k: v / r["ops"] for k, v in r["strace"].items() if v / r["ops"] >= 0.001}
                    sys_counts.setdefault(load, {})[name] = per
                    log(f"  {load:8} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])))
    finally:
        for w in wsbs.values():
            w.stop()
        for s in servers.values():
            s.stop()
    meta["load_end"] = os.getloadavg()
    lines = ["| load | A: CPU µs/op (median) | B: CPU µs/op (median) | B / A CPU per op, by round | median | B / A ops/s, by round | median |",
             "|---|---|---|---|---|---|---|"]
    for load in loads:
        a, b = res.get(load, {}).get("a", []), res.get(load, {}).get("b", [])
        cr, tr = paired_ratios(b, a)
        if cr:
            lines.append(f"| {load} | {fmt(med([x['cpu_us_per_op'] for x in a]))} | {fmt(med([y['cpu_us_per_op'] for y in b]))} | "
                         f"{', '.join(fmt(x) for x in cr)} | **{fmt(med(cr))}** | {', '.join(fmt(x) for x in tr)} | **{fmt(med(tr))}** |")
    if sys_counts:
        lines += ["", "| load | syscalls per op, A | syscalls per op, B |", "|---|---|---|"]
        for load, per in sys_counts.items():
            cell = lambda d: ", ".join(f"{k} {v:.3f}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:6])  # noqa: E731
            lines.append(f"| {load} | {cell(per.get('a', {}))} | {cell(per.get('b', {}))} |")
    table = "\n".join(lines)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": res, "syscalls": sys_counts, "summary": table}, f, indent=1)
    print(f"\n== A/B, {meta['date']}, load average {meta['load_start'][0]:.2f} at start, {meta['load_end'][0]:.2f} at end")
    print(f"A = {args.a}\nB = {args.b}\n")
    print(table)
    print(f"\nresults: {outdir}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
