#!/usr/bin/python3
"""A publish to a channel held on 2 of N nodes (issue 22, interest routing): what it costs the origin.

N nodes on loopback (workers = 1, node 1 the only seed, as bench/mesh16.py starts them). One raw
WebSocket client on node N-1 and one on node N, both subscribed to one channel with conn.call
subscribe through node 1's /ws/v1. Then P mesh.publish calls from node 1, pipelined (W in flight);
both clients must get every message and every answer must be {"s":2,"f":0}. Measured on the origin
(node 1): calls it made per publish (meshgate_mesh_calls_total, in every version), frames it sent
per publish by type (meshgate_mesh_frames_sent_total, version 3 only; the mesh's own traffic in a
window as long just after, with nothing published, subtracted; _raw keeps it in), the mesh links
whose bytes grew by 100 B or more per publish (`ss`, from outside), and its CPU per publish
(utime + stime); and the CPU of all N processes per publish (bench/meshlib.py publish_to_holders).

Run it against two binaries to compare (before: the version 2 build; after: this one). Figures on
a shared machine are noisy: take medians of several rounds.

Example:
  bench/mesh_interest.py --server build/meshgate --rounds 3
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meshlib import Node, publish_to_holders, safe_port, stop_nodes, wait_all_alive  # noqa: E402


def one_round(server, n, publishes, window):
    with tempfile.TemporaryDirectory(prefix="mesh-interest-") as d:
        mesh_ports = {i: safe_port() for i in range(1, n + 1)}
        nodes = {i: Node(d, i, mesh_ports, server=server) for i in range(1, n + 1)}
        try:
            for node in nodes.values():
                node.launch()
            for node in nodes.values():
                node.wait_healthy(time.monotonic() + 30)
            if wait_all_alive(list(nodes.values()), set(range(1, n + 1)), 60) is None:
                raise SystemExit("the nodes did not all list each other alive within 60 s")
            res = publish_to_holders(nodes.values(), 1, (n - 1, n), publishes, window,
                                     mesh_ports=set(mesh_ports.values()))
            res["origin_call_frames_per_publish"] = res["origin_frames_per_publish_by_type"].get("CALL")
            res.update(nodes=n, load=os.getloadavg()[0])
            return res
        finally:
            stop_nodes(list(nodes.values()), timeout=5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--publishes", type=int, default=2000)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = []
    for r in range(args.rounds):
        res = one_round(os.path.abspath(args.server), args.nodes, args.publishes, args.window)
        print(json.dumps(res), flush=True)
        rounds.append(res)
    keys = [k for k in rounds[0] if k.endswith("per_publish") and rounds[0][k] is not None]
    print(json.dumps({"median": {k: statistics.median(x[k] for x in rounds) for k in keys}}))


if __name__ == "__main__":
    main()
