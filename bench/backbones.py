#!/usr/bin/python3
"""The two cluster backbones side by side (issue 23): the mesh and NATS, in one run.

Each round starts, for each backbone in turn (the order alternates from round to round), a fresh
cluster of 3 meshgate nodes on loopback (workers = 1, as bench/mesh_scale.py starts them:
bench/meshlib.py Node), measures three things, and stops it:
 - mesh: [mesh] port/secret/seeds as in bench/meshlib.py (seeds = node 1).
 - nats: [cluster] backbone = nats, [mesh] port = 0, [nats] servers = the three URLs of a fresh
   3-server nats-server cluster on loopback (server_name n1..n3, cluster routes to one another,
   JetStream on with its store in the run's temporary directory; the nats-server found in PATH,
   Debian 12's 2.9). Other [nats] keys are the defaults (publish_wait_ms 20, stream_replicas 1).
 Both: [mesh] dead_after 3, the rest of the configuration as meshlib writes it.

 1. send   a raw WebSocket client on node 2; a keep-alive HTTP/1.1 connection to node 1 makes
           --sends POST /v1/mesh/send calls to it one after another (the next once the previous
           message arrived). Per call, from outside: the time until the client's reader thread had
           the message (send -> receive) and until the HTTP answer (answer). p50 and p99.
 2. fanout --subs WebSocket clients, a third on each node, subscribed to one channel with
           POST /v1/conn/call {"c":id,"f":"subscribe","a":["bench:fan"]} on node 1 (their ids from
           the `open` events of one /ws/v1 queue consumer per node); then --publishes
           mesh.publish of 100 bytes from node 1's /ws/v1, pipelined (--window in flight). Server
           CPU per delivery = utime + stime (/proc/PID/stat) of the 3 meshgate processes, and of the
           3 nats-server processes in the NATS run, from before the first publish until every
           client had every message, / deliveries seen by the clients. Also the same CPU measured
           over an idle window of the same length just before (the backbone's own background:
           heartbeats, gossip, NATS pings), and the per-delivery figure with it subtracted.
 3. queue  the node 1 and 2 queue consumers leave; one /ws/v1 consumer on node 3 (queue.pop with
           "ack": true, acks sent in batches of up to 100 and at least every 5 ms); --qclients
           WebSocket clients on node 2 each write --qmessages text frames of 64 bytes (built
           beforehand, one sendall per client). Node 2 has no consumer, so every event crosses to
           node 3 (mesh: forwarded over the links; NATS: through the JetStream work-queue stream).
           Each message is distinct (client and sequence number in its text): the events
           received, the distinct messages among them, and those marked "r":true are counted.
           Events/s = message events / (last received - first byte sent); CPU per event as above.
           A warm-up burst (--qwarm events) goes first, unmeasured (its duration and its events
           marked "r":true are in the result). When not every event arrives within 30 s the result
           says "complete": false (its CPU figure is then meaningless) and lists the nodes' non-zero
           meshgate_queue_* (topic client) and meshgate_nats_* metrics at that moment.
The clients are threads of this Python process, on the same 2 cores as the servers; the figures
compare the backbones under the same client, not the server's ceiling.

Prints one JSON line per (round, backbone), then medians per backbone, and writes everything to
bench/results/backbones-<time>.json.

    bench/backbones.py --server build-rel/meshgate --rounds 3
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import HttpConn, cpu_seconds, http_request, ws_frame  # noqa: E402
from meshlib import Api, Node, Ws, raise_fd_limit, safe_port, stop_nodes, wait_all_alive  # noqa: E402

CHAN = "bench:fan"


# ------------------------------------------------------------------------------------ NATS cluster

class NatsCluster:
    """Three nats-server processes on loopback, clustered (routes to one another), JetStream on."""

    def __init__(self, workdir, n=3, exe="nats-server"):
        self.exe, self.procs, self.dir = exe, [], workdir
        self.client = [safe_port() for _ in range(n)]
        self.route = [safe_port() for _ in range(n)]
        self.http = [safe_port() for _ in range(n)]
        self.confs = []
        for i in range(n):
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route) if j != i)
            conf = os.path.join(workdir, f"nats{i + 1}.conf")
            with open(conf, "w") as f:
                f.write(f"""server_name: n{i + 1}
listen: 127.0.0.1:{self.client[i]}
http: 127.0.0.1:{self.http[i]}
jetstream {{
  store_dir: "{os.path.join(workdir, f"js{i + 1}")}"
  max_memory_store: 268435456
  max_file_store: 1073741824
}}
cluster {{
  name: bench
  listen: 127.0.0.1:{self.route[i]}
  routes: [{routes}]
}}
""")
            self.confs.append(conf)

    def urls(self):
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client)

    def start(self, timeout=30):
        for i, conf in enumerate(self.confs):
            with open(os.path.join(self.dir, f"nats{i + 1}.log"), "ab") as err:
                self.procs.append(subprocess.Popen([self.exe, "-c", conf], stdin=subprocess.DEVNULL,
                                                   stdout=err, stderr=err, start_new_session=True))
        # routes up and JetStream ready (/healthz answers ok once the meta group has a leader)
        deadline = time.monotonic() + timeout
        for port in self.http:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/routez", timeout=2) as r:
                        routes = json.load(r).get("num_routes", 0)
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        ok = json.load(r).get("status") == "ok"
                    if routes >= len(self.procs) - 1 and ok:
                        break
                except (OSError, ValueError):
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    raise SystemExit(f"the NATS cluster did not form; logs in {self.dir}")
                time.sleep(0.1)

    def pids(self):
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def nats_conf(node, urls):
    """Turns a meshlib node's configuration into a NATS-backbone one: [mesh] port 0, no secret or
    seeds, [cluster] backbone = nats, [nats] servers."""
    with open(node.conf) as f:
        text = f.read()
    head, mesh, tail = re.split(r"(?m)^(\[mesh\]\n(?:(?!\[).*\n)*)", text, maxsplit=1)
    kept = [line for line in mesh.splitlines() if not re.match(r"(port|secret|seeds)\s*=", line)]
    mesh = "\n".join(kept[:1] + ["port = 0"] + kept[1:]) + "\n"
    with open(node.conf, "w") as f:
        f.write(head + mesh + f"[cluster]\nbackbone = nats\n[nats]\nservers = {urls}\n" + tail)


# ------------------------------------------------------------------------------------------ helpers

def pct(values, p):
    s = sorted(values)
    if not s:
        return None
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def r3(x):
    return None if x is None else round(x, 3)


class Opens:
    """One /ws/v1 queue consumer per node, popping topic `client` (no ack) to learn client ids from
    the `open` events: {(node, remote_addr): client id}. The node is part of the key: the kernel
    gives two connections to different ports the same local port, so clients of two nodes may
    share a remote_addr."""

    def __init__(self, nodes):
        self.ids, self.cond = {}, threading.Condition()
        self.apis = {}
        for n in nodes:
            api = Api(n.api, lambda _api, p, nid=n.id: self.on_event(nid, p))
            assert api.call("queue.pop", {"t": ["client"]}).get("r") == {"s": True}
            self.apis[n.id] = api

    def on_event(self, nid, p):
        if p.get("d", {}).get("event") == "open" and p.get("n") == nid:
            with self.cond:
                self.ids[(nid, p["d"].get("remote_addr"))] = p["c"]
                self.cond.notify_all()

    def id_of(self, nid, ws, timeout=10):
        key = (nid, ws.local)
        with self.cond:
            if not self.cond.wait_for(lambda: key in self.ids, timeout):
                raise SystemExit(f"no open event for client {ws.local} of node {nid}")
            return self.ids.pop(key)

    def close(self, ids=None):
        for i in list(self.apis) if ids is None else ids:
            close(self.apis.pop(i))


def close(ws):
    """Closes a meshlib Ws/Api for real: shutdown() first. A bare close() while the reader thread is
    blocked in recv() on it leaves the TCP connection open (Linux), so the server would go on
    seeing, say, a queue consumer there."""
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    ws.close()


def api_post(conn, path, body):
    status, data = conn.call(http_request("POST", path, json.dumps(body)))
    return status, json.loads(data) if data else None


# ----------------------------------------------------------------------------------------- part 1

def part_send(nodes, opens, sends):
    got, cond = {}, threading.Condition()

    def on_message(text):
        t = time.monotonic()
        with cond:
            got[text] = t
            cond.notify_all()
    ws = Ws(nodes[2].ws, "/bench", on_message)
    try:
        cid = opens.id_of(2, ws)
        conn = HttpConn(nodes[1].api, timeout=10)
        lat, ans, lost, bad = [], [], 0, 0
        for i in range(sends + 20):      # the first 20 warm up, unmeasured
            text = f"m{i}"
            req = http_request("POST", "/v1/mesh/send", json.dumps({"c": cid, "d": text}))
            t0 = time.monotonic()
            status, body = conn.call(req)
            t1 = time.monotonic()
            if status != 200 or json.loads(body).get("r") != {"s": True}:
                bad += 1
            with cond:
                if not cond.wait_for(lambda: text in got, 5):
                    lost += 1
                    continue
                t2 = got[text]
            if i >= 20:
                lat.append((t2 - t0) * 1e3)
                ans.append((t1 - t0) * 1e3)
        conn.close()
        return {"sends": sends, "lost": lost, "bad_answers": bad,
                "recv_p50_ms": r3(pct(lat, 50)), "recv_p99_ms": r3(pct(lat, 99)),
                "answer_p50_ms": r3(pct(ans, 50)), "answer_p99_ms": r3(pct(ans, 99))}
    finally:
        close(ws)


# ----------------------------------------------------------------------------------------- part 2

def part_fanout(nodes, opens, pids, subs, publishes, window):
    clients = []
    try:
        for k in range(subs):
            clients.append((1 + k % 3, Ws(nodes[1 + k % 3].ws, "/sub")))     # frames only counted
        conn = HttpConn(nodes[1].api, timeout=10)
        for nid, ws in clients:
            status, body = api_post(conn, "/v1/conn/call", {"c": opens.id_of(nid, ws), "f": "subscribe", "a": [CHAN]})
            assert status == 200 and body.get("r") == {"s": True}, (status, body)
        conn.close()
        time.sleep(1.5)   # every node knows the channel's holders
        pub = Api(nodes[1].api)
        answers, acond = {"n": 0, "bad": 0, "s": {}}, threading.Condition()

        def on_answer(text):
            msg = json.loads(text)
            with acond:
                answers["n"] += 1
                r = msg.get("r") or {}
                key = f"s={r.get('s')},f={r.get('f')}" if msg.get("E") is None else f"E={msg.get('E')}"
                answers["s"][key] = answers["s"].get(key, 0) + 1
                acond.notify_all()
        pub.on_message = on_answer

        def delivered():
            return sum(c.count for _, c in clients)
        # the background over an idle window of about the publishes' length (measured first: 1 s)
        c0, t0 = cpu_seconds(*pids), time.monotonic()
        time.sleep(1.0)
        idle_rate = (cpu_seconds(*pids) - c0) / (time.monotonic() - t0)
        base = delivered()
        want = base + subs * publishes
        data = "x" * 100
        c0, t0 = cpu_seconds(*pids), time.monotonic()
        for i in range(publishes):
            if i >= window:
                with acond:
                    acond.wait_for(lambda: answers["n"] >= i - window + 1, 30)
            pub.send(json.dumps({"m": "mesh.publish", "p": {"c": CHAN, "d": data}, "i": i}))
        deadline = time.monotonic() + 20
        while delivered() < want and time.monotonic() < deadline:
            time.sleep(0.002)
        with acond:
            acond.wait_for(lambda: answers["n"] >= publishes, 30)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(*pids) - c0
        got = delivered() - base
        close(pub)
        return {"subs": subs, "publishes": publishes, "delivered": got, "expected": subs * publishes,
                "answers": answers["s"], "elapsed_s": r3(elapsed), "cpu_s": r3(cpu),
                "cpu_us_per_delivery": r3(cpu / max(1, got) * 1e6),
                "idle_cpu_per_s": r3(idle_rate),
                "net_cpu_us_per_delivery": r3(max(0.0, cpu - idle_rate * elapsed) / max(1, got) * 1e6)}
    finally:
        for _, c in clients:
            close(c)


# ----------------------------------------------------------------------------------------- part 3

class Consumer:
    """A /ws/v1 consumer with acks: counts message events, acks in batches (100, or every 5 ms)."""

    def __init__(self, port):
        self.n, self.first, self.last, self.redelivered = 0, None, None, 0
        self.pending, self.lock, self.cond = [], threading.Lock(), threading.Condition()
        self.stop, self.seen = False, set()
        self.api = Api(port, self.on_event)
        assert self.api.call("queue.pop", {"t": ["client"], "ack": True}).get("r") == {"s": True}
        self.api.on_message = self.raw    # events and answers alike; answers to acks are ignored
        threading.Thread(target=self.flusher, daemon=True).start()

    def raw(self, text):
        if not text.startswith('{"e":"queue.pop"'):
            return
        k = re.search(r'"k":(\d+)', text)
        flush = None
        with self.lock:
            if k:
                self.pending.append(int(k.group(1)))
                if len(self.pending) >= 100:
                    flush, self.pending = self.pending, []
        if flush:
            self.ack(flush)
        if '"frame"' in text:
            t = time.monotonic()
            m = re.search(r'"data":"(q[0-9]+-[0-9]+)', text)
            with self.cond:
                self.n += 1
                self.last = t
                if m:
                    self.seen.add(m.group(1))
                if '"r":true' in text:
                    self.redelivered += 1
                self.cond.notify_all()

    def on_event(self, _api, _p):
        pass

    def ack(self, ks):
        self.api.send(json.dumps({"m": "queue.ack", "p": {"k": ks}, "i": 0}))

    def flusher(self):
        while not self.stop:
            time.sleep(0.005)
            with self.lock:
                flush, self.pending = self.pending, []
            if flush:
                try:
                    self.ack(flush)
                except OSError:
                    return

    def wait(self, n, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.n >= n, timeout)

    def close(self):
        self.stop = True
        close(self.api)


def queue_metrics(nodes):
    out = []
    for n in nodes.values():
        try:
            with urllib.request.urlopen(f"http://{n.host}:{n.api}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError as e:
            out.append(f"node {n.id}: {e}")
            continue
        out += [f"node {n.id}: {line}" for line in text.splitlines()
                if (re.match(r"meshgate_queue\w*\{[^}]*topic=\"client\"", line) or line.startswith("meshgate_nats_"))
                and not line.endswith(" 0")]
    return "\n".join(out)


def part_queue(nodes, opens, pids, nclients, messages, warm):
    opens.close()             # no consumer left on nodes 1 and 2 (nor on 3)
    time.sleep(1.0)
    cons = Consumer(nodes[3].api)
    clients = []
    try:
        time.sleep(1.0)       # the other nodes know of node 3's consumer
        clients = [Ws(nodes[2].ws, "/q") for _ in range(nclients)]
        def text(ci, seq):    # 64 bytes, unique: duplicates and losses are counted
            return f"q{ci}-{seq}-".ljust(64, "y")
        # warm-up, unmeasured
        per = max(1, warm // nclients)
        tw = time.monotonic()
        for ci, c in enumerate(clients):
            c.sock.sendall(b"".join(ws_frame(text(ci, -1 - i)) for i in range(per)))
        if not cons.wait(per * nclients, 20):
            raise SystemExit(f"queue warm-up: {cons.n} of {per * nclients} events arrived; "
                             f"queue metrics:\n{queue_metrics(nodes)}")
        warm_s = time.monotonic() - tw
        time.sleep(0.5)
        bursts = [b"".join(ws_frame(text(ci, i)) for i in range(messages)) for ci in range(nclients)]
        base, seen0, red0 = cons.n, len(cons.seen), cons.redelivered
        want = base + nclients * messages
        c0, t0 = cpu_seconds(*pids), time.monotonic()
        for c, b in zip(clients, bursts):
            c.sock.sendall(b)
        ok = cons.wait(want, 30)
        t1 = cons.last
        time.sleep(0.05)           # the last acks
        cpu = cpu_seconds(*pids) - c0
        got = cons.n - base
        stuck = None if ok else queue_metrics(nodes).splitlines()   # where the rest waits
        elapsed = (t1 or time.monotonic()) - t0
        return {"clients": nclients, "messages": nclients * messages, "received": got, "complete": ok,
                "distinct": len(cons.seen) - seen0, "marked_redelivered": cons.redelivered - red0,
                "warmup_s": r3(warm_s), "warmup_marked_redelivered": red0, "elapsed_s": r3(elapsed),
                "events_per_s": round(got / elapsed) if elapsed > 0 else None,
                "cpu_s": r3(cpu), "cpu_us_per_event": r3(cpu / max(1, got) * 1e6),
                **({"metrics_when_incomplete": stuck} if stuck else {})}
    finally:
        for c in clients:
            close(c)
        time.sleep(0.5)    # their close events consumed: nothing left for the nodes to drain at stop
        cons.close()


# ------------------------------------------------------------------------------------------- a run

def one(args, backbone, workdir):
    nats = None
    mesh_ports = {i: safe_port() for i in (1, 2, 3)}
    nodes = {i: Node(workdir, i, mesh_ports, server=args.server) for i in (1, 2, 3)}
    try:
        if backbone == "nats":
            nats = NatsCluster(workdir)
            nats.start()
            for n in nodes.values():
                nats_conf(n, nats.urls())
        for n in nodes.values():
            n.launch()
        deadline = time.monotonic() + 20
        for n in nodes.values():
            n.wait_healthy(deadline)
        if wait_all_alive(nodes.values(), {1, 2, 3}, 30) is None:
            raise SystemExit(f"{backbone}: the 3 nodes did not all list one another alive")
        pids = [n.proc.pid for n in nodes.values()] + (nats.pids() if nats else [])
        res = {"backbone": backbone}
        opens = Opens(nodes.values())
        try:
            res["send"] = part_send(nodes, opens, args.sends)
            res["fanout"] = part_fanout(nodes, opens, pids, args.subs, args.publishes, args.window)
            res["queue"] = part_queue(nodes, opens, pids, args.qclients, args.qmessages, args.qwarm)
        finally:
            opens.close()
        res["crashed"] = [n.id for n in nodes.values() if n.proc.poll() is not None]
        return res
    finally:
        stop_nodes(nodes.values())
        if nats:
            nats.stop()


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


METRICS = [("send", "recv_p50_ms"), ("send", "recv_p99_ms"), ("send", "answer_p50_ms"), ("send", "answer_p99_ms"),
           ("fanout", "cpu_us_per_delivery"), ("fanout", "net_cpu_us_per_delivery"), ("fanout", "idle_cpu_per_s"),
           ("fanout", "elapsed_s"), ("queue", "events_per_s"), ("queue", "cpu_us_per_event")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backbones", default="mesh,nats")
    ap.add_argument("--sends", type=int, default=500)
    ap.add_argument("--subs", type=int, default=300)
    ap.add_argument("--publishes", type=int, default=200)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--qclients", type=int, default=20)
    ap.add_argument("--qmessages", type=int, default=400)
    ap.add_argument("--qwarm", type=int, default=1000)
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()
    args.server = os.path.abspath(args.server)
    if not shutil.which("nats-server") and "nats" in args.backbones:
        raise SystemExit("nats-server is not in PATH (Debian: apt-get install nats-server)")
    raise_fd_limit(4096)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    backbones = args.backbones.split(",")
    runs = []
    started = time.strftime("%Y%m%d-%H%M%S")
    for rnd in range(args.rounds):
        order = backbones if rnd % 2 == 0 else backbones[::-1]
        for b in order:
            workdir = tempfile.mkdtemp(prefix=f"backbones-{b}-")
            l0 = load()
            try:
                res = one(args, b, workdir)
            finally:
                if args.keep_logs:
                    dest = os.path.join(HERE, "results", f"backbones-{started}-r{rnd}-{b}")
                    shutil.copytree(workdir, dest, ignore=shutil.ignore_patterns("js*"))
                shutil.rmtree(workdir, ignore_errors=True)
            res["round"], res["load_before"], res["load_after"] = rnd, l0, load()
            runs.append(res)
            print(json.dumps(res), flush=True)
    summary = {}
    for b in backbones:
        mine = [r for r in runs if r["backbone"] == b]
        summary[b] = {f"{part}.{key}": {"median": r3(statistics.median(v)), "all": v}
                      for part, key in METRICS
                      if (v := [r[part][key] for r in mine if r[part].get(key) is not None])}
    print("\nmedians over", args.rounds, "rounds")
    print(f"{'':32}" + "".join(f"{b:>12}" for b in backbones))
    for part, key in METRICS:
        name = f"{part}.{key}"
        print(f"{name:32}" + "".join(f"{summary[b].get(name, {}).get('median', '-'):>12}" for b in backbones))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", f"backbones-{started}.json")
    with open(out, "w") as f:
        json.dump({"args": vars(args), "runs": runs, "summary": summary,
                   "nats_server": subprocess.run(["nats-server", "--version"], capture_output=True,
                                                 text=True).stdout.strip()}, f, indent=1)
    print("written to", out)


if __name__ == "__main__":
    main()
