"""Helpers shared by the mesh benchmarks (bench/mesh16.py, bench/mesh_interest.py, bench/mesh_scale.py):
one node of a loopback cluster (its configuration, launch in its own process group, log), the raw
WebSocket client and /ws/v1 API client, node lists polled in parallel over keep-alive connections,
the mesh sockets' bytes from `ss`, /proc/PID/io wchar, /metrics samples, route answers, and a publish
to a channel held on a few nodes. Python 3 standard library only."""
import calendar
import http.client
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from benchlib import FrameReader, cpu_seconds, proc_io, wait_healthz, ws_connect, ws_frame

SECRET = "mesh16-bench-secret-0123456789"   # 30 bytes
DEAD_AFTER = 3
HERE_SERVER = [None]   # the meshgate binary, when a Node is not given one
DEAD_RE = re.compile(r"mesh: node (\d+) \(([^)]*)\) is dead: (.*)")


# ------------------------------------------------------------------------------------- limits, ports

def raise_fd_limit(want):
    """Raises this process's RLIMIT_NOFILE soft limit (children inherit it) towards `want`, up to the
    hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_SAFE_USED = set()


def safe_port(host="127.0.0.1"):
    """A listening port for a node: below the kernel's ephemeral range (so that none of the thousands
    of outbound mesh connections of a large cluster can take it between this check and the node's
    bind, as can happen with a port the kernel handed out), free on `host` now, and not handed out
    before by this process."""
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(10000, max(10001, low))
        if port in _SAFE_USED:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _SAFE_USED.add(port)
        return port
    raise SystemExit("no free port below the ephemeral range")


# ------------------------------------------------------------------------------------------- /proc

def wchar(pid):
    """Bytes the process handed to write()/send() and the like (sockets and files alike)."""
    return proc_io(pid, "wchar")


def idle_window(pids, mesh_ports, seconds):
    """Per process over `seconds` s in which the caller does nothing: {pid: {links, bytes, segs,
    wchar, cpu}}, the last four per second: bytes and TCP segments sent on the mesh sockets open at
    both ends of the window (`ss`), /proc/PID/io wchar, CPU seconds (utime + stime)."""
    def snap():
        return mesh_socket_bytes(pids, mesh_ports), {p: wchar(p) for p in pids}, {p: cpu_seconds(p) for p in pids}, \
            time.monotonic()
    (s0, w0, c0, t0) = snap()
    time.sleep(seconds)
    (s1, w1, c1, t1) = snap()
    dt, out = t1 - t0, {}
    for p in pids:
        common = set(s0[p]) & set(s1[p])
        out[p] = {"links": len(common), "bytes": sum(s1[p][k][0] - s0[p][k][0] for k in common) / dt,
                  "segs": sum(s1[p][k][1] - s0[p][k][1] for k in common) / dt,
                  "wchar": (w1[p] - w0[p]) / dt, "cpu": (c1[p] - c0[p]) / dt}
    return out, dt


# -------------------------------------------------------------------------------------------- HTTP

def http_json(port, path, body=None, timeout=3, host="127.0.0.1"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{host}:{port}{path}", data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})  # the API takes JSON only
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def parse_metrics(text, name):
    """{labels string: value} of one metric family in a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            out[head[len(name):]] = float(value)
    return out


def metric_sum(port, name, host="127.0.0.1", **labels):
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = None
    for head, value in parse_metrics(text, name).items():
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total = (total or 0) + value
    return total


def frames_by_type(text):
    """{type: frames} from meshgate_mesh_frames_sent_total in a /metrics page."""
    out = {}
    for head, value in parse_metrics(text, "meshgate_mesh_frames_sent_total").items():
        m = re.search(r'type="([^"]*)"', head)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + value
    return out


# ------------------------------------------------------------------------------------------- a node

class Node:
    """One meshgate process of a loopback cluster: workers = 1, one shared secret, `seeds` names the
    nodes in `seeds` (node 1 by default; a node skips its own address), a ws listener producing into
    queue topic `client`; `mesh_extra` lines ("key = value") are added to [mesh]. Its log (stderr)
    goes to WORKDIR/nodeN.log."""

    def __init__(self, workdir, nid, mesh_ports, server=None, seeds=(1,), dead_after=DEAD_AFTER, secret=SECRET,
                 host="127.0.0.1", port=None, mesh_extra=()):
        port = port or (lambda: safe_port(host))
        self.id, self.dir, self.host, self.server = nid, workdir, host, server
        self.mesh, self.api, self.route, self.ws = mesh_ports[nid], port(), port(), port()
        self.conf = os.path.join(workdir, f"node{nid}.conf")
        self.log = os.path.join(workdir, f"node{nid}.log")
        seed_line = ", ".join(f"{host}:{mesh_ports[s]}" for s in seeds)
        with open(self.conf, "w") as f:
            f.write(f"""[node]
id = {nid}
name = n{nid}
workers = 1
advertise = {host}
[log]
level = info
[api]
bind = {host}
port = {self.api}
[route]
bind = {host}
port = {self.route}
[queue]
ack_timeout = 5
[mesh]
bind = {host}
port = {self.mesh}
secret = {secret}
seeds = {seed_line}
dead_after = {dead_after}
{"".join(line + chr(10) for line in mesh_extra)}[listener.ws]
type = ws
bind = {host}
port = {self.ws}
topic = client
idle_timeout = 0
ping_interval = 0
""")
        self.proc = None

    def launch(self):
        """Starts the server in a process group of its own (kill() ends it whatever happens to us)."""
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([self.server or HERE_SERVER[0], "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig` to the node's process group; True when it was running."""
        if not self.proc or self.proc.poll() is not None:
            return False
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def wait_healthy(self, deadline):
        try:
            wait_healthz(self.api, max(0.1, deadline - time.monotonic()), self.proc)
        except (OSError, RuntimeError):
            raise SystemExit(f"node {self.id} did not answer /healthz (exit code {self.proc.poll()}); log {self.log}:\n"
                             f"{self.log_tail()}")

    def log_tail(self, n=2000):
        with open(self.log, errors="replace") as f:
            return f.read()[-n:]

    def states(self):
        body = http_json(self.api, "/v1/nodes", timeout=2, host=self.host)
        return {n["id"]: n["state"] for n in body["r"]["nodes"]}

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_lines(self, pattern, since=0):
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return [l.rstrip() for l in text.splitlines() if re.search(pattern, l)]

    def dead_lines(self, since=0):
        """(observer, subject id, why, time) of every `mesh: node N (name) is dead: why` line from byte
        `since` on; time is the line's UTC timestamp as seconds since the epoch (None if it has none)."""
        out = []
        for line in self.log_lines("is dead", since):
            m = DEAD_RE.search(line)
            if m:
                out.append((self.id, int(m.group(1)), m.group(3), log_time(line)))
        return out


def log_time(line):
    """The leading `2026-12-06T08:34:30.067Z` of a log line, as seconds since the epoch, or None."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", line)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    return calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) + float(m.group(7) or 0)


def stop_nodes(nodes, timeout=15):
    """SIGTERM to every running node's process group, then SIGKILL to those still there after
    `timeout` s; waits for all."""
    for n in nodes:
        n.kill(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for n in nodes:
        if not n.proc:
            continue
        try:
            n.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            n.kill(signal.SIGKILL)
            n.proc.wait(5)


# --------------------------------------------------------------------------------- polling node lists

class Poller:
    """GET on every node in parallel (a thread pool, one keep-alive connection per node)."""

    def __init__(self, nodes, workers=16, timeout=2.0):
        self.nodes = {n.id: n for n in nodes}
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(self.nodes))))
        self.conns, self.timeout = {}, timeout

    def get(self, node, path, raw=False):
        """The JSON answer of one node (its bytes when raw), or None (refused, timed out, not JSON)."""
        for attempt in (0, 1):
            conn = self.conns.get(node.id)
            if conn is None:
                conn = self.conns[node.id] = http.client.HTTPConnection(node.host, node.api, timeout=self.timeout)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    return None
                return body if raw else json.loads(body)
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                self.conns.pop(node.id, None)
                if attempt:
                    return None
        return None

    def states(self, node):
        """(monotonic time of the answer, {id: state}) or (time, None)."""
        body = self.get(node, "/v1/nodes")
        try:
            st = {n["id"]: n["state"] for n in body["r"]["nodes"]} if body else None
        except (KeyError, TypeError):
            st = None
        return time.monotonic(), st

    def round(self, ids=None):
        """{id: (time of the answer, states or None)} over these nodes (all by default)."""
        ids = list(self.nodes) if ids is None else list(ids)
        futs = {i: self.pool.submit(self.states, self.nodes[i]) for i in ids}
        return {i: f.result() for i, f in futs.items()}

    def map(self, fn, ids=None):
        ids = list(self.nodes) if ids is None else list(ids)
        futs = {i: self.pool.submit(fn, self.nodes[i]) for i in ids}
        return {i: f.result() for i, f in futs.items()}

    def close(self):
        self.pool.shutdown(wait=True)
        for c in self.conns.values():
            c.close()


def alive_sets(nodes):
    out = {}
    for n in nodes:
        try:
            st = n.states()
            out[n.id] = {i for i, s in st.items() if s == "alive"}
        except (OSError, ValueError):
            out[n.id] = None
    return out


def wait_all_alive(nodes, want, limit):
    """Until every node in `nodes` lists exactly `want` alive; returns seconds, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        sets = alive_sets(nodes)
        if all(s == want for s in sets.values()):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


# ------------------------------------------------------------------------------------- mesh sockets

def mesh_socket_bytes(pids, mesh_ports):
    """{pid: {(local, peer): (bytes_sent, segs_out)}} for the mesh sockets of these processes (ss -tinp)."""
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True, text=True, timeout=60).stdout
    res = {p: {} for p in pids}
    lines = out.split("\n")
    for i, line in enumerate(lines):
        m = re.search(r'users:\(\("meshgate",pid=(\d+)', line)
        if not m or int(m.group(1)) not in res:
            continue
        parts = line.split()
        local, peer = parts[2], parts[3]
        lport, pport = int(local.rsplit(":", 1)[1]), int(peer.rsplit(":", 1)[1])
        if lport not in mesh_ports and pport not in mesh_ports:
            continue
        info = lines[i + 1] if i + 1 < len(lines) else ""
        b = re.search(r"bytes_sent:(\d+)", line + " " + info)
        segs = re.search(r"segs_out:(\d+)", line + " " + info)
        res[int(m.group(1))][(local, peer)] = (int(b.group(1)) if b else 0, int(segs.group(1)) if segs else 0)
    return res


# ---------------------------------------------------------------------------------------- routes

def route_answer(node, uids):
    req = urllib.request.Request(f"http://{node.host}:{node.route}/route/batch", data=json.dumps(uids).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        groups = json.load(r)
    return {u: g["ws_addr"] for g in groups for u in g["uids"]}


def route_agreement(nodes, uids, pool=None):
    """(every node gave the same answer, the first node's answer); the nodes asked in parallel when
    given a Poller."""
    nodes = list(nodes)
    if pool is None:
        answers = [route_answer(n, uids) for n in nodes]
    else:
        got = pool.map(lambda n: route_answer(n, uids), [n.id for n in nodes])
        answers = [got[n.id] for n in nodes]
    same = all(a == answers[0] for a in answers)
    return same, answers[0]


# ---------------------------------------------------------------------- raw WebSocket, /ws/v1 client

class Ws(FrameReader):
    """A WebSocket connection; a thread hands every text message to on_message(text)."""

    def __init__(self, port, path, on_message=None):
        sock, rest = ws_connect(port, path, timeout=5)
        sock.settimeout(None)
        self.local = "%s:%d" % sock.getsockname()
        self.on_message = on_message
        self.wlock = threading.Lock()
        super().__init__(sock, rest, self._frame)

    def _frame(self, op, payload):
        if op in (1, 2) and self.on_message:
            self.on_message(payload.decode(errors="replace"))

    def send(self, text):
        with self.wlock:
            self.sock.sendall(ws_frame(text))


class Api(Ws):
    """/ws/v1 with request/answer matching by id and a queue-event callback."""

    def __init__(self, port, on_event=None):
        self.answers, self.on_event, self.next_id = {}, on_event, 0
        self.acond = threading.Condition()
        super().__init__(port, "/ws/v1", self.dispatch)

    def dispatch(self, text):
        msg = json.loads(text)
        if msg.get("e") == "queue.pop":
            if self.on_event:
                self.on_event(self, msg["p"])
            return
        with self.acond:
            self.answers[msg.get("i")] = msg
            self.acond.notify_all()

    def call(self, m, p, timeout=5):
        with self.acond:
            self.next_id += 1
            i = self.next_id
        self.send(json.dumps({"m": m, "p": p, "i": i}))
        with self.acond:
            if not self.acond.wait_for(lambda: i in self.answers, timeout):
                raise SystemExit(f"no answer to {m} within {timeout}s")
            return self.answers.pop(i)


# ------------------------------------------------------------------- a publish to a few holders

def publish_to_holders(nodes, origin, holders, publishes, window, chan="bench:two", settle=1.0, mesh_ports=None,
                       background=2.0):
    """One raw WebSocket client on each node of `holders`, subscribed to `chan` with conn.call subscribe
    through the origin's /ws/v1; then `publishes` mesh.publish calls from `origin`, pipelined (`window`
    in flight). Every client must get every message and every answer must be {"s": len(holders), "f": 0}.

    Measured on the origin: mesh calls (meshgate_mesh_calls_total) and frames by type
    (meshgate_mesh_frames_sent_total) per publish, the frames of the mesh's own background (from a
    window of at least `background` s just after, with nothing published) subtracted; CPU per publish of the origin
    and of all nodes; and, from outside when `mesh_ports` is given, the origin's mesh links whose
    bytes_sent grew by at least 100 B per publish (the links the publishes went on) and the bytes per
    publish on them."""
    nodes = {n.id: n for n in nodes}
    o = nodes[origin]
    apis, clients = [], []
    try:
        opens = {}
        cond = threading.Condition()

        def on_event(api, p):
            if p.get("d", {}).get("event") == "open":
                with cond:
                    opens[p["d"].get("remote_addr")] = p["c"]
                    cond.notify_all()
        api = Api(o.api, on_event)
        apis.append(api)
        assert api.call("queue.pop", {"t": ["client"]}).get("r") == {"s": True}
        received = {"n": 0}
        rcond = threading.Condition()

        def on_message(_text):
            with rcond:
                received["n"] += 1
                rcond.notify_all()
        for nid in holders:
            ws = Ws(nodes[nid].ws, "/bench", on_message)
            clients.append(ws)
            with cond:
                if not cond.wait_for(lambda: ws.local in opens, 10):
                    raise SystemExit(f"no open event for the client on node {nid}")
            r = api.call("conn.call", {"c": opens[ws.local], "f": "subscribe", "a": [chan]})
            assert r.get("r") == {"s": True}, r
        pub = Api(o.api)
        apis.append(pub)
        time.sleep(settle)  # every node has its peers' sets

        def page():
            with urllib.request.urlopen(f"http://{o.host}:{o.api}/metrics", timeout=10) as r:
                return r.read().decode()

        def calls(text):
            return sum(parse_metrics(text, "meshgate_mesh_calls_total").values())

        def links():
            if mesh_ports is None:
                return {}
            return mesh_socket_bytes({o.proc.pid}, mesh_ports)[o.proc.pid]
        pids = [x.proc.pid for x in nodes.values() if x.proc and x.proc.poll() is None]
        answers = {"n": 0, "bad": 0}
        acond = threading.Condition()

        def on_answer(text):
            msg = json.loads(text)
            with acond:
                answers["n"] += 1
                if msg.get("E") is not None or msg.get("r") != {"s": len(holders), "f": 0}:
                    answers["bad"] += 1
                acond.notify_all()
        pub.on_message = on_answer
        # the publishes, between two snapshots
        p0, l0 = page(), links()
        cpu_origin0, cpu_all0 = cpu_seconds(o.proc.pid), cpu_seconds(*pids)
        t0 = time.monotonic()
        for i in range(publishes):
            if i >= window:
                with acond:
                    acond.wait_for(lambda: answers["n"] >= i - window + 1, 30)
            pub.send(json.dumps({"m": "mesh.publish", "p": {"c": chan, "d": "x" * 100}, "i": i}))
        with acond:
            acond.wait_for(lambda: answers["n"] >= publishes, 60)
        with rcond:
            rcond.wait_for(lambda: received["n"] >= len(holders) * publishes, 60)
        elapsed = time.monotonic() - t0
        cpu_origin, cpu_all = cpu_seconds(o.proc.pid) - cpu_origin0, cpu_seconds(*pids) - cpu_all0
        p1, l1 = page(), links()
        # the background: the frames of a window with nothing published (at least `background` s),
        # scaled to the publishes' time
        quiet = max(background, elapsed)
        time.sleep(quiet)
        p2 = page()
        f0, f1, f2 = frames_by_type(p0), frames_by_type(p1), frames_by_type(p2)
        per_type = {}
        for t in f1:
            excess = (f1[t] - f0.get(t, 0)) - (f2.get(t, 0) - f1[t]) * elapsed / quiet
            if f1[t] - f0.get(t, 0):
                per_type[t] = round(excess / publishes, 3)
        res = {
            "holders": list(holders), "publishes": publishes, "answers_bad": answers["bad"],
            "delivered": received["n"], "delivered_expected": len(holders) * publishes, "elapsed_s": round(elapsed, 3),
            "origin_calls_per_publish": round((calls(p1) - calls(p0)) / publishes, 3),
            "origin_frames_per_publish_by_type": per_type,
            "origin_frames_per_publish": round(sum(per_type.values()), 3),
            "origin_frames_per_publish_raw": round(sum(f1.get(t, 0) - f0.get(t, 0) for t in f1) / publishes, 3),
            "origin_cpu_us_per_publish": round(cpu_origin / publishes * 1e6, 1),
            "all_cpu_us_per_publish": round(cpu_all / publishes * 1e6, 1),
        }
        if mesh_ports is not None:
            grown = {k: l1[k][0] - l0[k][0] for k in set(l0) & set(l1)}
            used = {k: v for k, v in grown.items() if v >= 100 * publishes}
            res["outside_links_used"] = len(used)
            res["outside_links_total"] = len(grown)
            res["outside_bytes_per_publish_on_used_links"] = round(sum(used.values()) / publishes, 1)
            res["outside_bytes_per_publish_all_links"] = round(sum(grown.values()) / publishes, 1)
        return res
    finally:
        for a in apis + clients:
            a.close()
