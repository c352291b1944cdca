#!/usr/bin/python3
"""Client send -> consumer receipt latency of queue events at a steady rate, memory and disk topics
side by side (issue 20: the disk queue's added latency, and whether its writes and syncs stall the
hub loop).

Each round starts one fresh node per rival (the order turned by one each round) with bench/
queue_rate.py's configuration (`[listener.ws]` topic `client`; a disk rival also gets `[node]
state_dir` in a fresh directory under --state-base and `[queue] store = disk`, `fsync`,
`fsync_interval`), and runs bench/queue_latency.c against it: --clients WebSocket clients send --rate
messages a second in all (one write per message, every millisecond the messages due, the clients in
turn) for --warmup + --seconds seconds; one /ws/v1 consumer (queue.pop, no acks) reads them. Each
message holds the CLOCK_MONOTONIC time just before its write(); its latency is the consumer's read
time minus that (both on this host, the same clock). Only messages sent after the warm-up count.
Meanwhile GET /healthz every 10 ms on the node's API (served by the hub loop) is timed: a write or
sync that held up the hub loop would show there. With perf (root), the fdatasync calls of the
measured seconds are traced (count, duration, interval between syncs: benchlib.SyncTrace).
Server CPU per event is utime + stime over the measured seconds / events sent in them; per thread
(thread_cpu_us_per_event, thread_switches_per_s: the hub's first, on a disk node the store thread's
second, then the workers'), the same from /proc/PID/task/TID/schedstat, and the voluntary context
switches a second.

Per rival: the medians over rounds of p50, p99, p99.9 and max latency, of the /healthz p50/p99/max,
of CPU per event, and of the sync figures.

    make -C bench
    bench/queue_latency.py --server build-release/meshgate --rate 20000 --seconds 10 --rounds 3 \\
        --store memory,disk --fsync batch
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import SyncTrace, cpu_times, free_port, start_node, stop_process
from queue_rate import add_store_args, config, run_rivals

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bin", "queue_latency")


def thread_times(pid):
    """{tid: (ns on a CPU, voluntary context switches)} of every thread of `pid`, in the order they
    were made (the first is the hub's; on a disk node the second is the store's, then the workers),
    from /proc/PID/task/TID/schedstat and status."""
    out = {}
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                vol = next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        except OSError:
            continue
        out[tid] = (ns, vol)
    return out


def one_run(args, store):
    with tempfile.TemporaryDirectory(prefix="queue-latency-") as tmp, \
            tempfile.TemporaryDirectory(prefix="queue-latency-state-", dir=args.state_base) as state:
        api_port, ws_port = free_port(), free_port()
        if store[0] == "disk":
            store = store[:3] + (state,)
        proc = start_node(args.server, os.path.join(tmp, "meshgate.conf"), config(api_port, ws_port, 0, store),
                          api_port)
        trace = None
        try:
            load = subprocess.Popen([BIN, str(ws_port), str(api_port), str(args.clients), str(args.rate),
                                     str(args.seconds), str(args.warmup), str(args.size)],
                                    stdout=subprocess.PIPE, text=True)
            # The measured seconds start about --warmup after the clients are connected (a second or so).
            time.sleep(args.warmup + 0.5)
            if args.perf:
                trace = SyncTrace(proc.pid, os.path.join(tmp, "syncs.data"))
            c0, th0, t0 = cpu_times([proc.pid]), thread_times(proc.pid), time.monotonic()
            time.sleep(max(0.1, args.seconds - (1.0 if args.perf else 0.5)))
            c1, th1, t1 = cpu_times([proc.pid]), thread_times(proc.pid), time.monotonic()
            syncs = trace.stop() if trace else {}
            trace = None
            out, _ = load.communicate(timeout=args.seconds + args.warmup + 60)
            if load.returncode != 0:
                raise RuntimeError(f"queue_latency exited with {load.returncode}")
            r = {k: float(v) if "." in v else int(v) for k, v in (kv.split("=") for kv in out.split())}
            events = args.rate * (t1 - t0)
            r["server_cpu_us_per_event"] = round((sum(c1) - sum(c0)) * 1e6 / events, 3)
            live = [tid for tid in th0 if tid in th1]
            r["thread_cpu_us_per_event"] = [round((th1[t][0] - th0[t][0]) / 1e3 / events, 2) for t in live]
            r["thread_switches_per_s"] = [round((th1[t][1] - th0[t][1]) / (t1 - t0)) for t in live]
            r.update(syncs)
            return r
        finally:
            if trace:
                trace.stop()
            stop_process(proc, 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rate", type=int, default=20000, help="messages a second, all clients together")
    ap.add_argument("--seconds", type=float, default=10, help="measured")
    ap.add_argument("--warmup", type=float, default=2, help="seconds sent first, not measured")
    ap.add_argument("--size", type=int, default=64, help="bytes per message (24 to 120)")
    ap.add_argument("--rounds", type=int, default=3)
    add_store_args(ap, "memory,disk")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run `make -C bench`")
    args.perf = args.perf and SyncTrace.available() and os.geteuid() == 0
    results = run_rivals(args, args.rounds, lambda store: one_run(args, store))
    keys = ["p50_us", "p99_us", "p999_us", "max_us", "healthz_p50_us", "healthz_p99_us", "healthz_max_us",
            "server_cpu_us_per_event", "syncs", "sync_ms_p50", "sync_ms_p99", "interval_ms_p50", "interval_ms_p99",
            "interval_ms_max"]
    for label, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in keys if all(r.get(k) is not None for r in runs)}
        print(f"{label} (medians of {len(runs)} rounds): " + ", ".join(f"{k} {v:g}" for k, v in med.items()))


if __name__ == "__main__":
    sys.exit(main())
