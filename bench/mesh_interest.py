#!/usr/bin/python3
"""A publish to a channel held on 2 of N nodes (issue 22, interest routing): what it costs the origin.

N nodes on loopback (workers = 1, node 1 the only seed, as bench/mesh16.py starts them). One raw
WebSocket client on node N-1 and one on node N, both subscribed to one channel with conn.call
subscribe through node 1's /ws/v1. Then P mesh.publish calls from node 1, pipelined (W in flight);
both clients must get every message and every answer must be {"s":2,"f":0}. Measured on the origin
(node 1): calls it made per publish (meshgate_mesh_calls_total, in every version), frames it sent
per publish (meshgate_mesh_frames_sent_total, version 3 only: every type, so REPLY, PING and the
rest of the mesh's own traffic during the run are in it too), and its CPU per publish (utime + stime);
and the CPU of all N processes per publish.

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
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh16  # noqa: E402  (its Node, Api and Ws; N and the server path are set below)
from benchlib import cpu_seconds, free_port  # noqa: E402


def metric_sum(port, name, **labels):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = None
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total = (total or 0) + float(value)
    return total


def one_round(server, n, publishes, window):
    mesh16.HERE_SERVER[0] = server
    with tempfile.TemporaryDirectory(prefix="mesh-interest-") as d:
        mesh_ports = {i: free_port() for i in range(1, n + 1)}
        nodes = {i: mesh16.Node(d, i, mesh_ports) for i in range(1, n + 1)}
        apis, clients = [], []
        try:
            for node in nodes.values():
                node.launch()
            for node in nodes.values():
                node.wait_healthy(time.monotonic() + 30)
            if mesh16.wait_all_alive(list(nodes.values()), set(range(1, n + 1)), 60) is None:
                raise SystemExit("the nodes did not all list each other alive within 60 s")
            opens = {}
            cond = threading.Condition()

            def on_event(api, p):
                if p.get("d", {}).get("event") == "open":
                    with cond:
                        opens[p["d"].get("remote_addr")] = p["c"]
                        cond.notify_all()
            api = mesh16.Api(nodes[1].api, on_event)
            apis.append(api)
            assert api.call("queue.pop", {"t": ["client"]}).get("r") == {"s": True}
            received = {"n": 0}
            rcond = threading.Condition()

            def on_message(_text):
                with rcond:
                    received["n"] += 1
                    rcond.notify_all()
            for nid in (n - 1, n):
                ws = mesh16.Ws(nodes[nid].ws, "/bench", on_message)
                clients.append(ws)
                with cond:
                    if not cond.wait_for(lambda: ws.local in opens, 10):
                        raise SystemExit(f"no open event for the client on node {nid}")
                r = api.call("conn.call", {"c": opens[ws.local], "f": "subscribe", "a": ["bench:two"]})
                assert r.get("r") == {"s": True}, r
            pub = mesh16.Api(nodes[1].api)
            apis.append(pub)
            time.sleep(1)  # every node has its peers' sets (version 3)
            calls0 = metric_sum(nodes[1].api, "meshgate_mesh_calls_total")
            frames0 = metric_sum(nodes[1].api, "meshgate_mesh_frames_sent_total")
            callframes0 = metric_sum(nodes[1].api, "meshgate_mesh_frames_sent_total", type="CALL")
            pids = [x.proc.pid for x in nodes.values()]
            cpu_origin0, cpu_all0 = cpu_seconds(nodes[1].proc.pid), cpu_seconds(*pids)
            answers = {"n": 0, "bad": 0}
            acond = threading.Condition()

            def on_answer(text):
                msg = json.loads(text)
                with acond:
                    answers["n"] += 1
                    if msg.get("E") is not None or msg.get("r") != {"s": 2, "f": 0}:
                        answers["bad"] += 1
                    acond.notify_all()
            pub.on_message = on_answer
            t0 = time.monotonic()
            for i in range(publishes):
                if i >= window:
                    with acond:
                        acond.wait_for(lambda: answers["n"] >= i - window + 1, 30)
                pub.send(json.dumps({"m": "mesh.publish", "p": {"c": "bench:two", "d": "x" * 100}, "i": i}))
            with acond:
                acond.wait_for(lambda: answers["n"] >= publishes, 60)
            with rcond:
                rcond.wait_for(lambda: received["n"] >= 2 * publishes, 60)
            elapsed = time.monotonic() - t0
            cpu_origin, cpu_all = cpu_seconds(nodes[1].proc.pid) - cpu_origin0, cpu_seconds(*pids) - cpu_all0
            calls = metric_sum(nodes[1].api, "meshgate_mesh_calls_total") - calls0
            frames = metric_sum(nodes[1].api, "meshgate_mesh_frames_sent_total")
            callframes = metric_sum(nodes[1].api, "meshgate_mesh_frames_sent_total", type="CALL")
            return {
                "nodes": n, "publishes": publishes, "answers_bad": answers["bad"],
                "delivered": received["n"], "elapsed_s": round(elapsed, 3),
                "origin_calls_per_publish": round(calls / publishes, 3),
                "origin_call_frames_per_publish": None if callframes is None else round((callframes - callframes0) / publishes, 3),
                "origin_frames_per_publish": None if frames is None else round((frames - frames0) / publishes, 3),
                "origin_cpu_us_per_publish": round(cpu_origin / publishes * 1e6, 1),
                "all_cpu_us_per_publish": round(cpu_all / publishes * 1e6, 1),
                "load": os.getloadavg()[0],
            }
        finally:
            for a in apis + clients:
                try:
                    a.sock.close()
                except OSError:
                    pass
            for node in nodes.values():
                if node.proc:
                    node.proc.kill()
                    node.proc.wait()


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
