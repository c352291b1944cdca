#!/usr/bin/python3
"""The mesh at 16 nodes on one machine (issue 11): formation, idle heartbeat traffic, publish fan-out,
route agreement, and SIGKILL of 4 nodes at once with queue traffic running, then their restart.

16 nodes on loopback, workers = 1, [mesh] dead_after = 3, one shared secret (30 bytes), encrypt on
(the default). Every node has the same `seeds` line naming node 1 only (node 1 skips its own
address), so the other 15 learn each other from node 1's MEMBERS gossip. All 16 are launched at once.

One round:
 1. formation: time from the first launch until every node's GET /v1/nodes lists 16 alive;
    no node may log "is dead" meanwhile.
 2. idle heartbeats: for SECONDS (10) with nothing else running, per node: bytes sent on its mesh
    sockets (TCP payload, `ss -tinp` bytes_sent), /proc/PID/io wchar, and CPU (utime + stime);
    compared with the model (every dead_after/4 s a PING to every other node, each answered by a
    PONG; sealed frame = 4 length + 1 type + JSON + 16 tag).
 3. publish fan-out: one raw WebSocket client per node, subscribed to one channel with conn.call
    subscribe through node 1's /ws/v1 (the client ids come from the queue's `open` events);
    P mesh.publish calls from node 1, then P from node 8, pipelined (W in flight); every client
    must get every message. Publishes/s and server CPU (all 16 processes) per publish.
 4. route agreement: POST /route/batch with the same 1,000 uids on every node; identical answers.
 5. failure: the 16 clients send numbered messages (queue events, topic "client") at a steady
    rate; consumers (acknowledged mode) on node 1 and node 16. Nodes 4, 8, 12, 16 get SIGKILL at
    once. Measured: time until each of the 12 others lists exactly those 4 dead, route agreement
    among the 12, then the 4 restarted on the same ports and the time until all 16 list 16 alive
    again. Then the clients stop, and after the events drain: every message from a client of a
    surviving node must have reached a consumer (the at-least-once promise of docs/api.md and
    docs/decisions.md: it holds while the producing node lives; duplicates counted apart);
    messages from clients of the killed nodes may be lost (counted).
 6. the same 4 frozen with SIGSTOP (their links stay open): time until the 12 list them dead
    (bound: dead_after), then SIGCONT and the time until all 16 list 16 alive (--no-freeze skips it).

Standard library only. Figures on a shared 2-core machine are noisy: compare medians.

Example:
  meson setup /tmp/mg16-release --buildtype=release -Dtests=false && ninja -C /tmp/mg16-release meshgate
  bench/mesh16.py --server /tmp/mg16-release/meshgate --rounds 2
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import cpu_seconds, free_port
from meshlib import (DEAD_AFTER, HERE_SERVER, Api, Node, Ws, alive_sets, idle_window, mesh_socket_bytes,
                     route_agreement, wait_all_alive)

N = 16                 # --nodes changes these three
KILL = (4, 8, 12, 16)  # SIGKILLed in step 5; node N also has a queue consumer
MIDDLE = 8
HERE = os.path.dirname(os.path.abspath(__file__))


def publish_run(api, chan, count, window, clients, base):
    data = "x" * 100
    frames = [json.dumps({"m": "mesh.publish", "p": {"c": chan, "d": data}, "i": f"p{i}"}) for i in range(count)]
    got = {"n": 0, "bad": 0}
    cond = threading.Condition()
    old = api.on_message

    def on(text):
        msg = json.loads(text)
        with cond:
            got["n"] += 1
            r = msg.get("r") or {}
            if msg.get("E") or r.get("s") != len(clients):
                got["bad"] += 1
            cond.notify_all()
    api.on_message = on
    t0 = time.monotonic()
    for i, f in enumerate(frames):
        if i >= window:
            with cond:
                cond.wait_for(lambda: got["n"] >= i - window + 1, 30)
        api.send(f)
    with cond:
        ok = cond.wait_for(lambda: got["n"] >= count, 60)
    ok = ok and all(c.wait(base + count, 60) for c in clients)
    elapsed = time.monotonic() - t0
    api.on_message = old
    return ok, elapsed, got["bad"]


def one_round(server, rnd, args):
    HERE_SERVER[0] = server
    res = {"round": rnd, "nodes": N, "workers": 1, "dead_after": DEAD_AFTER, "seeds": "node 1 only",
           "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="mesh16-") as d:
        mesh_ports = {i: free_port() for i in range(1, N + 1)}
        nodes = {i: Node(d, i, mesh_ports) for i in range(1, N + 1)}
        everyone = set(range(1, N + 1))
        apis, clients = [], {}
        try:
            # 1. formation -------------------------------------------------------------------------
            t0 = time.monotonic()
            for n in nodes.values():
                n.launch()
            deadline = t0 + 20 + N
            for n in nodes.values():
                n.wait_healthy(deadline)
            t_up = time.monotonic() - t0
            wait = wait_all_alive(nodes.values(), everyone, 60)
            if wait is None:
                raise SystemExit(f"no full mesh within 60 s: {alive_sets(nodes.values())}")
            res["form_s"] = round(time.monotonic() - t0, 3)
            # bytes sent on the links that exist now (duplicate links already closed are not counted):
            # handshakes, MEMBERS gossip, TOPICS and the heartbeats of the first seconds
            pids = {n.proc.pid: n.id for n in nodes.values()}
            snap = mesh_socket_bytes(pids, set(mesh_ports.values()))
            res["formation_mesh_bytes_total"] = sum(b for p in snap.values() for b, _ in p.values())
            res["formation_mesh_segments_total"] = sum(sg for p in snap.values() for _, sg in p.values())
            res["formation_cpu_s_total"] = round(sum(cpu_seconds(p) for p in pids), 2)   # all N processes
            res["all_healthz_s"] = round(t_up, 3)
            dead_lines = [l for n in nodes.values() for l in n.log_lines("is dead")]
            res["formation_dead_lines"] = len(dead_lines)
            if dead_lines:
                print("  formation: 'is dead' logged:", *dead_lines[:5], sep="\n    ")

            # 2. idle heartbeats ----------------------------------------------------------------------
            time.sleep(1)
            pids = {n.proc.pid: n.id for n in nodes.values()}
            mports = set(mesh_ports.values())
            win, dt = idle_window(pids, mports, args.idle)
            links, sent, segs = [w["links"] for w in win.values()], [w["bytes"] for w in win.values()], \
                [w["segs"] for w in win.values()]
            res["idle_links_per_node"] = statistics.median(links)
            res["idle_mesh_bytes_per_s_per_node"] = round(statistics.median(sent), 1)
            res["idle_mesh_bytes_per_s_per_node_minmax"] = [round(min(sent), 1), round(max(sent), 1)]
            res["idle_segments_per_s_per_node"] = round(statistics.median(segs), 1)
            res["idle_wchar_per_s_per_node"] = round(statistics.median(w["wchar"] for w in win.values()), 1)
            res["idle_cpu_ms_per_s_per_node"] = round(statistics.median(w["cpu"] * 1000 for w in win.values()), 2)
            tick = max(0.1, DEAD_AFTER / 4)
            per_link = statistics.median(sent) / (N - 1) * tick   # bytes one node sends one peer per tick
            res["idle_bytes_per_link_per_tick"] = round(per_link, 1)   # = one PING + one PONG

            if args.formation_only:
                # one node SIGKILLed and restarted on an idle cluster: bytes sent on the mesh until all
                # N list N alive again (handshakes + MEMBERS + TOPICS), heartbeats of the interval removed
                def flat(snap):
                    return {k: v[0] for p in snap.values() for k, v in p.items()}
                before = flat(mesh_socket_bytes(pids, mports))
                tq = time.monotonic()
                victim = nodes[N]
                os.kill(victim.proc.pid, signal.SIGKILL)
                victim.proc.wait(5)
                victim.launch()
                victim.wait_healthy(time.monotonic() + 20)
                w = wait_all_alive(nodes.values(), everyone, 60)
                pids2 = {n.proc.pid: n.id for n in nodes.values()}
                after = flat(mesh_socket_bytes(pids2, mports))
                el = time.monotonic() - tq
                total = sum(b - before.get(k, 0) for k, b in after.items())
                res["rejoin_one_s"] = round(w, 3) if w is not None else None
                res["rejoin_one_mesh_bytes"] = int(total - statistics.median(sent) * N * el)
                return res

            # consumers (ack mode) on node 1 and node 16; client ids from `open` events -------------
            events = {}          # (origin client local addr or id) -> list of seq
            ev_lock = threading.Lock()
            opens = {}
            stats = {"events": 0, "redelivered_flag": 0}

            def on_event(api, p):
                d = p.get("d") or {}
                with ev_lock:
                    stats["events"] += 1
                    if p.get("r"):
                        stats["redelivered_flag"] += 1
                    if d.get("event") == "open":
                        opens[d.get("remote_addr")] = p["c"]
                    elif "frame" in d:
                        events.setdefault(p["c"], []).append(d["frame"]["data"])
                if "k" in p:
                    try:
                        api.send(json.dumps({"m": "queue.ack", "p": {"k": [p["k"]]}}))
                    except OSError:
                        pass
            cons1 = Api(nodes[1].api, on_event)
            cons16 = Api(nodes[N].api, on_event)
            apis += [cons1, cons16]
            for c in (cons1, cons16):
                r = c.call("queue.pop", {"t": ["client"], "ack": True})
                assert r.get("E") is None, r
            time.sleep(0.3)   # TOPICS reach every node
            for i in range(1, N + 1):
                clients[i] = Ws(nodes[i].ws, "/c")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with ev_lock:
                    if all(c.local in opens for c in clients.values()):
                        break
                time.sleep(0.05)
            cid = {i: opens.get(c.local) for i, c in clients.items()}
            if None in cid.values():
                raise SystemExit(f"no open event for some clients: {cid}")

            # 3. publish fan-out ---------------------------------------------------------------------
            ctl = Api(nodes[1].api)
            apis.append(ctl)
            for i in range(1, N + 1):
                r = ctl.call("conn.call", {"c": cid[i], "f": "subscribe", "a": ["room"]})
                assert r.get("E") is None, (i, r)
            r = ctl.call("channel.count", {"c": "room"})
            res["channel_count"] = r["r"]["s"]
            ctl_mid = Api(nodes[MIDDLE].api)
            apis.append(ctl_mid)
            base = 0
            for label, api in (("node1", ctl), (f"node{MIDDLE}", ctl_mid)):
                allpids = [n.proc.pid for n in nodes.values()]
                c0 = sum(cpu_seconds(p) for p in allpids)
                ok, el, bad = publish_run(api, "room", args.publishes, args.window, list(clients.values()), base)
                cpu = sum(cpu_seconds(p) for p in allpids) - c0
                base += args.publishes
                got = [c.count for c in clients.values()]
                res[f"pub_{label}"] = {"ok": ok, "publishes": args.publishes, "per_s": round(args.publishes / el),
                                       "server_cpu_us_per_publish": round(cpu / args.publishes * 1e6, 1),
                                       "server_cpu_us_per_delivery": round(cpu / args.publishes / N * 1e6, 2),
                                       "replies_not_16": bad, "min_client_frames": min(got) - (base - args.publishes)}

            # 4. route agreement ---------------------------------------------------------------------
            uids = [f"user{i}" for i in range(1000)]
            same, full_map = route_agreement(list(nodes.values()), uids)
            res["route_agree_16"] = same
            per_node = {}
            for a in full_map.values():
                per_node[a] = per_node.get(a, 0) + 1
            res["route_uids_per_node_minmax"] = [min(per_node.values()), max(per_node.values())]

            # 5. SIGKILL 4 while clients send queue events -------------------------------------------
            sent_ok = {i: 0 for i in clients}
            stop = threading.Event()

            def producer(i, c):
                seq = 0
                period = 1.0 / args.rate
                nxt = time.monotonic()
                while not stop.is_set():
                    try:
                        c.send(f"{i}:{seq}")
                    except OSError:
                        return
                    seq += 1
                    sent_ok[i] = seq
                    nxt += period
                    time.sleep(max(0.0, nxt - time.monotonic()))
            threads = [threading.Thread(target=producer, args=(i, c), daemon=True) for i, c in clients.items()]
            for t in threads:
                t.start()
            time.sleep(2)
            survivors = [nodes[i] for i in everyone - set(KILL)]
            tk = time.monotonic()
            for i in KILL:
                os.kill(nodes[i].proc.pid, signal.SIGKILL)
            for i in KILL:
                nodes[i].proc.wait(5)
            want12 = everyone - set(KILL)
            seen = {}
            while time.monotonic() - tk < DEAD_AFTER + 3 and len(seen) < len(survivors):
                for n in survivors:
                    if n.id in seen:
                        continue
                    try:
                        if {i for i, s in n.states().items() if s == "alive"} == want12:
                            seen[n.id] = time.monotonic() - tk
                    except OSError:
                        pass
                time.sleep(0.02)
            res["kill_detect_s_max"] = round(max(seen.values()), 3) if len(seen) == len(survivors) else None
            res["kill_detect_s_median"] = round(statistics.median(seen.values()), 3) if seen else None
            res["kill_detected_by"] = len(seen)
            same12, map12 = route_agreement(survivors, uids)
            res["route_agree_12"] = same12
            killed_ws = {f"ws://127.0.0.1:{nodes[i].ws}" for i in KILL}
            moved = sum(1 for u in uids if full_map[u] != map12[u])
            res["route_uids_moved"] = moved
            res["route_uids_moved_expected"] = sum(1 for u in uids if full_map[u] in killed_ws)
            res["route_moved_only_killed"] = all(full_map[u] == map12[u] for u in uids if full_map[u] not in killed_ws)
            time.sleep(1)
            tr = time.monotonic()
            for i in KILL:
                nodes[i].launch()
            for i in KILL:
                nodes[i].wait_healthy(tr + 15)
            w = wait_all_alive(nodes.values(), everyone, 30)
            res["reform_s"] = round(time.monotonic() - tr, 3) if w is not None else None
            same16b, map16b = route_agreement(list(nodes.values()), uids)
            res["route_agree_after_restart"] = same16b
            res["route_map_restored"] = map16b == full_map
            time.sleep(1)
            stop.set()
            for t in threads:
                t.join(5)
            # drain: every surviving client's last message arrives, bounded
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with ev_lock:
                    done = all(f"{i}:{sent_ok[i] - 1}" in events.get(cid[i], []) for i in want12)
                if done:
                    break
                time.sleep(0.1)
            time.sleep(2)   # late duplicates
            lost_s, dup_s, lost_k, sent_s, sent_k = 0, 0, 0, 0, 0
            lost_detail = {}
            for i in clients:
                got = events.get(cid[i], [])
                want = {f"{i}:{s}" for s in range(sent_ok[i])}
                uniq = set(got) & want
                if i in KILL:
                    sent_k += sent_ok[i]
                    lost_k += len(want - uniq)
                    # which of its messages were lost: the last ones written before the client saw the reset?
                    lost_detail[i] = {"sent": sent_ok[i], "lost_seqs": sorted(int(x.split(":")[1]) for x in want - uniq)[:10]}
                else:
                    sent_s += sent_ok[i]
                    lost_s += len(want - uniq)
                    dup_s += len(got) - len(set(got))
            res["queue"] = {"sent_by_survivor_clients": sent_s, "lost_from_survivors": lost_s,
                            "duplicates_from_survivors": dup_s, "sent_by_killed_node_clients": sent_k,
                            "lost_from_killed_nodes": lost_k, "killed_node_clients": lost_detail,
                            "events_marked_r": stats["redelivered_flag"]}
            unexpected = [l for n in nodes.values() for l in n.log_lines("is dead")
                          if not any(f"node {k} (n{k}) is dead" in l for k in KILL)]
            res["unexpected_dead_lines"] = len(unexpected)
            if unexpected:
                print("  unexpected 'is dead':", *unexpected[:8], sep="\n    ")
            crashed = [n.id for n in nodes.values() if n.proc.poll() is not None]
            res["crashed"] = crashed

            # 6. the same 4 frozen (SIGSTOP): no link closes, so only the heartbeat timeout finds them
            if args.freeze and not crashed:
                tf = time.monotonic()
                for i in KILL:
                    os.kill(nodes[i].proc.pid, signal.SIGSTOP)
                seen = {}
                try:
                    while time.monotonic() - tf < DEAD_AFTER + 5 and len(seen) < len(survivors):
                        for n in survivors:
                            if n.id not in seen:
                                try:
                                    if {i for i, s in n.states().items() if s == "alive"} == want12:
                                        seen[n.id] = time.monotonic() - tf
                                except OSError:
                                    pass
                        time.sleep(0.02)
                finally:
                    for i in KILL:
                        os.kill(nodes[i].proc.pid, signal.SIGCONT)
                tc = time.monotonic()
                w = wait_all_alive(nodes.values(), everyone, 30)
                res["freeze_detect_s_min"] = round(min(seen.values()), 3) if seen else None
                res["freeze_detect_s_max"] = round(max(seen.values()), 3) if len(seen) == len(survivors) else None
                res["freeze_reform_s"] = round(time.monotonic() - tc, 3) if w is not None else None
            res["load_after"] = os.getloadavg()[0]
        finally:
            if args.keep_logs:
                import shutil
                dst = os.path.join(HERE, "results", f"logs-n{N}-r{rnd}-{int(time.time())}")
                shutil.copytree(d, dst)
            for c in list(clients.values()) + apis:
                c.close()
            for n in nodes.values():
                if n.proc and n.proc.poll() is None:
                    n.proc.terminate()
            for n in nodes.values():
                if n.proc:
                    try:
                        n.proc.wait(15)
                    except subprocess.TimeoutExpired:
                        n.proc.kill()
                        n.proc.wait(5)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle heartbeat measurement")
    ap.add_argument("--publishes", type=int, default=2000, help="per publishing node")
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--rate", type=float, default=50.0, help="messages/s each client sends in step 5")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--nodes", type=int, default=16, help="other sizes for the model (>= 8 for step 5)")
    ap.add_argument("--formation-only", action="store_true", help="steps 1 and 2 only")
    ap.add_argument("--no-freeze", dest="freeze", action="store_false",
                    help="skip step 6 (SIGSTOP the same 4 for up to dead_after + 5 s, then SIGCONT)")
    a = ap.parse_args()
    global N, KILL, MIDDLE
    N, KILL, MIDDLE = a.nodes, (a.nodes // 4, a.nodes // 2, 3 * a.nodes // 4, a.nodes), a.nodes // 2
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", time.strftime("mesh16-%Y%m%dT%H%M%SZ.jsonl", time.gmtime()))
    rounds = []
    for r in range(1, a.rounds + 1):
        res = one_round(a.server, r, a)
        rounds.append(res)
        print(json.dumps(res), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(res) + "\n")
    if a.formation_only:
        for k in ("form_s", "formation_mesh_bytes_total", "formation_cpu_s_total", "formation_dead_lines", "idle_mesh_bytes_per_s_per_node",
                  "idle_bytes_per_link_per_tick", "idle_cpu_ms_per_s_per_node", "rejoin_one_s",
                  "rejoin_one_mesh_bytes"):
            print(f"  {N} nodes: median {k} = {statistics.median(x[k] for x in rounds)}")
        return 0

    def med(key, sub=None):
        vals = [(x[key][sub] if sub else x[key]) for x in rounds]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None
    print(f"\n{N} nodes, {a.rounds} round(s), medians (shared 2-core machine: timings are noisy); {out}")
    print(f"  formation: {med('form_s')} s to 16 alive everywhere; 'is dead' during formation: "
          f"{[x['formation_dead_lines'] for x in rounds]}")
    print(f"  idle: {med('idle_mesh_bytes_per_s_per_node')} B/s mesh TCP payload sent per node "
          f"({med('idle_bytes_per_link_per_tick')} B per link per tick = PING+PONG), "
          f"{med('idle_segments_per_s_per_node')} segments/s, {med('idle_cpu_ms_per_s_per_node')} ms CPU/s per node")
    for label in ("node1", f"node{MIDDLE}"):
        k = f"pub_{label}"
        print(f"  publish from {label}: {med(k, 'per_s')} publishes/s, {med(k, 'server_cpu_us_per_publish')} us "
              f"server CPU per publish (16 deliveries); all delivered: {[x[k]['ok'] for x in rounds]}")
    print(f"  route agreement 16: {[x['route_agree_16'] for x in rounds]}; 12 after kill: "
          f"{[x['route_agree_12'] for x in rounds]}; moved only killed nodes' uids: "
          f"{[x['route_moved_only_killed'] for x in rounds]}")
    print(f"  SIGKILL 4: seen dead by all 12 after (max) {[x['kill_detect_s_max'] for x in rounds]} s; "
          f"re-formation after restart {[x['reform_s'] for x in rounds]} s")
    if a.freeze:
        print(f"  SIGSTOP 4: seen dead by all 12 after {[(x.get('freeze_detect_s_min'), x.get('freeze_detect_s_max')) for x in rounds]}"
              f" s (min, max; bound dead_after = {DEAD_AFTER} s); alive again after SIGCONT "
              f"{[x.get('freeze_reform_s') for x in rounds]} s")
    print(f"  queue: {[x['queue'] for x in rounds]}")
    print(f"  unexpected 'is dead' lines: {[x['unexpected_dead_lines'] for x in rounds]}; "
          f"crashed: {[x['crashed'] for x in rounds]}")
    bad = any(x["queue"]["lost_from_survivors"] or x["unexpected_dead_lines"] or x["crashed"]
              or x["formation_dead_lines"] or not x["route_agree_16"] or not x["route_agree_12"]
              or x["kill_detect_s_max"] is None or x["kill_detect_s_max"] > DEAD_AFTER * 1.25
              or x["reform_s"] is None or not x["route_moved_only_killed"]
              or (a.freeze and (x.get("freeze_detect_s_max") is None or x["freeze_detect_s_max"] > DEAD_AFTER * 1.25
                                or x.get("freeze_reform_s") is None)) for x in rounds)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
