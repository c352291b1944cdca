#!/usr/bin/python3
"""What mesh link protection costs: `[mesh] encrypt = on` against `off`, side by side in one run.

Two nodes on loopback (workers = 1 each), node 1 seeded with node 2. One WebSocket client on node 2
reads everything. A backend on node 1's /ws/v1 sends P `mesh.broadcast` calls of S bytes, pipelined
(W in flight): each one crosses the link as a CALL frame and comes back as a REPLY, and node 2
delivers it to its client. For each run: server CPU (utime + stime of both node processes, from
/proc) per broadcast, and broadcasts per second. The two settings alternate (A B A B ...), each
round with freshly started nodes, and the summary gives medians and the paired ratio on/off.

Example (the figures in docs/benchmarks.md):
  meson setup /tmp/mg-release --buildtype=release -Dtests=false && ninja -C /tmp/mg-release meshgate
  bench/mesh_bench.py --server /tmp/mg-release/meshgate --publishes 20000 --size 100 --rounds 5
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

from benchlib import FrameReader, cpu_seconds, free_port, start_node as launch, stop_process, ws_connect, ws_frame


def start_node(server, workdir, node_id, mesh_port, seeds, encrypt):
    api, ws = free_port(), free_port()
    conf = f"""[node]
id = {node_id}
name = bench-{node_id}
workers = 1
advertise = 127.0.0.1
[log]
level = warn
[api]
bind = 127.0.0.1
port = {api}
[route]
bind = 127.0.0.1
port = {free_port()}
[mesh]
bind = 127.0.0.1
port = {mesh_port}
cluster = bench
secret = bench-secret-0123456789abcdef
seeds = {seeds}
encrypt = {encrypt}
[listener.ws]
type = ws
bind = 127.0.0.1
port = {ws}
idle_timeout = 0
ping_interval = 0
max_message = 1048576
"""
    proc = launch(server, os.path.join(workdir, f"node{node_id}.conf"), conf, api,
                  os.path.join(workdir, f"node{node_id}.log"))
    return proc, api, ws


def wait_linked(api_port):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = json.load(urllib.request.urlopen(f"http://127.0.0.1:{api_port}/v1/nodes", timeout=2))
        if sum(1 for n in body["r"]["nodes"] if n.get("state") == "alive") == 2:
            return
        time.sleep(0.1)
    raise SystemExit("the nodes did not link")


def one_run(server, encrypt, publishes, size, window):
    with tempfile.TemporaryDirectory() as d:
        mesh2 = free_port()
        p2, api2, ws2 = start_node(server, d, 2, mesh2, "", encrypt)
        p1, api1, _ = start_node(server, d, 1, free_port(), f"127.0.0.1:{mesh2}", encrypt)
        try:
            wait_linked(api1)
            received = FrameReader(*ws_connect(ws2, "/bench"))
            api, rest = ws_connect(api1, "/ws/v1")
            answers = FrameReader(api, rest)
            data = "x" * size
            frames = [ws_frame(json.dumps({"m": "mesh.broadcast", "p": {"d": data}, "i": i})) for i in range(publishes)]
            cpu0 = cpu_seconds(p1.pid, p2.pid)
            t0 = time.monotonic()
            for i, f in enumerate(frames):
                if i >= window:
                    answers.wait(i - window + 1, 30)
                api.sendall(f)
            ok = answers.wait(publishes, 60) and received.wait(publishes, 60)
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(p1.pid, p2.pid) - cpu0
            if not ok:
                raise SystemExit(f"lost: {answers.count} answers, {received.count} deliveries of {publishes}")
            return {"encrypt": encrypt, "cpu_us_per_op": cpu / publishes * 1e6, "ops_per_s": publishes / elapsed}
        finally:
            for p in (p1, p2):
                stop_process(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--publishes", type=int, default=20000)
    ap.add_argument("--size", type=int, default=100, help="bytes of data per broadcast")
    ap.add_argument("--window", type=int, default=64, help="calls in flight")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    runs = {"on": [], "off": []}
    for r in range(a.rounds):
        for enc in (("on", "off") if r % 2 == 0 else ("off", "on")):
            res = one_run(a.server, enc, a.publishes, a.size, a.window)
            runs[enc].append(res)
            print(json.dumps(res), flush=True)
    med = {k: statistics.median(x["cpu_us_per_op"] for x in v) for k, v in runs.items()}
    rate = {k: statistics.median(x["ops_per_s"] for x in v) for k, v in runs.items()}
    ratios = [on["cpu_us_per_op"] / off["cpu_us_per_op"] for on, off in zip(runs["on"], runs["off"])]
    print(f"size {a.size} B, {a.publishes} broadcasts x {a.rounds} rounds")
    for k in ("off", "on"):
        print(f"  encrypt={k:3}: median {med[k]:.2f} us server CPU per broadcast, {rate[k]:.0f} broadcasts/s")
    print(f"  paired CPU ratio on/off: median {statistics.median(ratios):.3f} (each: "
          + ", ".join(f"{x:.3f}" for x in ratios) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
