"""A network partition between two meshgate nodes (PROTOCOL.md §7, issue 3).

Two network namespaces joined by a veth pair (169.254.231.1 and .2, link-local, only inside the
namespaces this test creates), one node in each. The link is cut with blackhole routes on both sides
(iproute2 only): each node must mark the other dead within `dead_after` (plus polling slack), keep
itself alive, and fail calls to the other's clients with 501. When the routes are removed, the mesh
must heal: both alive again on both sides within ~10 s.

Needs root and `ip netns`; skipped otherwise. Namespaces and processes are removed even on failure.
The control API of each node listens on 127.0.0.1 inside its namespace; the test talks to it through
`ip netns exec NS /usr/bin/python3 <small HTTP client>`.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import harness

DEAD_AFTER = 3
SLACK = 2.5          # polling through `ip netns exec python3` costs ~0.1 s per look
HEAL_TIMEOUT = 10.0
START_TIMEOUT = 10.0
SUBNET = "169.254.231"
API_PORT = 6789
MESH_PORT = 6788
ROUTE_PORT = 5001
UIDS = [f"p{k}" for k in range(60)]

CLIENT = r'''
import sys, json, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
# urllib would say application/x-www-form-urlencoded: the API takes JSON only.
req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=3) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
except Exception as e:
    print(json.dumps({"error": repr(e)}))
    sys.exit(0)
print(json.dumps({"status": status, "body": body.decode("utf-8", "replace")}))
'''


def run(*args, check=True, timeout=10):
    p = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> exit {p.returncode}: {p.stderr.strip()}")
    return p


class NsNode:
    """A meshgate process inside a network namespace."""

    def __init__(self, workdir, ns, node_id, addr, seeds):
        self.ns = ns
        self.node_id = node_id
        self.addr = addr
        cfg = harness.merge_config(harness.default_config(), {
            "node": {"id": node_id, "name": f"part-{node_id}", "advertise": addr},
            "api": {"bind": "127.0.0.1", "port": API_PORT},
            "route": {"bind": "127.0.0.1", "port": ROUTE_PORT},
            "listener.ws": {"port": 5200},
            "listener.tcp": {"port": 5100},
            "listener.tcp32": {"port": 5101},
            "mesh": {"bind": addr, "port": MESH_PORT, "cluster": "itest-partition", "secret": "partition-secret",
                     "seeds": ",".join(seeds), "dead_after": DEAD_AFTER, "call_timeout": 2},
        })
        self.conf_path = os.path.join(workdir, f"{ns}.conf")
        with open(self.conf_path, "w") as f:
            f.write(harness.render_config(cfg))
        self.client_path = os.path.join(workdir, "nsclient.py")
        with open(self.client_path, "w") as f:
            f.write(CLIENT)
        self.stderr_path = os.path.join(workdir, f"{ns}.stderr.log")
        self.proc = None

    def start(self):
        self.errf = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, harness.meshgate_bin(), "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf)
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.node_id} exited with {self.proc.returncode} at start\n"
                                     f"{self.stderr()}")
            last = self.http("GET", "/healthz")
            if last.get("status") == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"node {self.node_id} in {self.ns}: no /healthz 200 within {START_TIMEOUT}s "
                             f"(last {last})\n{self.stderr()}")

    def http(self, method, path, body=None, port=API_PORT):
        args = ["ip", "netns", "exec", self.ns, "/usr/bin/python3", self.client_path, method,
                f"http://127.0.0.1:{port}{path}"]
        if body is not None:
            args.append(json.dumps(body))
        p = run(*args, check=False, timeout=10)
        try:
            return json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": f"helper output {p.stdout!r} {p.stderr!r}"}

    def states(self):
        """{id: state} as this node sees the cluster, or None when the API did not answer."""
        r = self.http("GET", "/v1/nodes")
        if r.get("status") != 200:
            return None
        try:
            return {int(e["id"]): e["state"] for e in json.loads(r["body"])["r"]["nodes"]}
        except (ValueError, KeyError, TypeError):
            return None

    def route(self):
        """{uid: tcp_addr} for UIDS from POST /route/batch, or None when it did not answer 200."""
        r = self.http("POST", "/route/batch?intranet=0", UIDS, port=ROUTE_PORT)
        if r.get("status") != 200:
            return None
        return {u: g["tcp_addr"] for g in json.loads(r["body"]) for u in g["uids"]}

    def call(self, method, params):
        group, name = method.split(".", 1)
        return self.http("POST", f"/v1/{group}/{name}", params)

    def stderr(self, tail=40):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return "".join(f.readlines()[-tail:])
        except OSError:
            return "(no stderr)"

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            self.errf.close()
        except Exception:
            pass


@pytest.fixture
def netns_pair():
    """Two namespaces joined by a veth pair; yields (workdir, (nsA, addrA), (nsB, addrB)); removes them after."""
    if os.geteuid() != 0:
        pytest.skip("the partition test needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.skip("the partition test needs iproute2 (`ip`)")
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b = f"mgpartA{tag}", f"mgpartB{tag}"
    addr_a, addr_b = f"{SUBNET}.1", f"{SUBNET}.2"
    created = []
    workdir = tempfile.mkdtemp(prefix="meshgate-partition-")
    try:
        for ns in (ns_a, ns_b):
            p = run("ip", "netns", "add", ns, check=False)
            if p.returncode != 0:
                pytest.skip(f"`ip netns add` failed: {p.stderr.strip()}")
            created.append(ns)
        run("ip", "-n", ns_a, "link", "add", "mgveth", "type", "veth", "peer", "name", "mgveth", "netns", ns_b)
        for ns, addr in ((ns_a, addr_a), (ns_b, addr_b)):
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "mgveth")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "link", "set", "mgveth", "up")
        yield workdir, (ns_a, addr_a), (ns_b, addr_b)
    finally:
        for ns in created:
            run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_views(nodes, want, timeout, what):
    """Polls until every node's view satisfies want[node_id] (a dict of id -> state). Returns seconds waited."""
    t0 = time.monotonic()
    last = {}
    for _ in range(100000):
        ok = True
        for n in nodes:
            st = n.states()
            last[n.node_id] = st
            if st is None or any(st.get(k) != v for k, v in want[n.node_id].items()):
                ok = False
        if ok:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            break
        time.sleep(0.1)
    logs = "\n".join(f"--- node {n.node_id} ({n.ns}) stderr ---\n{n.stderr()}" for n in nodes)
    raise AssertionError(f"{what}: not within {timeout}s; last views {last}\n{logs}")


def test_partition_marks_dead_and_heals(netns_pair):
    workdir, (ns_a, addr_a), (ns_b, addr_b) = netns_pair
    a = NsNode(workdir, ns_a, 1, addr_a, [])
    b = NsNode(workdir, ns_b, 2, addr_b, [f"{addr_a}:{MESH_PORT}"])
    routes = []
    try:
        a.start()
        b.start()
        both_alive = {1: {1: "alive", 2: "alive"}, 2: {1: "alive", 2: "alive"}}
        wait_views([a, b], both_alive, 10.0, "the two nodes join")
        joined = a.route()
        assert joined is not None and joined == b.route(), "the two nodes assign uids differently"
        assert set(joined.values()) == {f"{addr_a}:5100", f"{addr_b}:5100"}, joined

        # Cut the link both ways.
        t_cut = time.monotonic()
        for ns, other in ((ns_a, addr_b), (ns_b, addr_a)):
            run("ip", "-n", ns, "route", "add", "blackhole", f"{other}/32")
            routes.append((ns, other))
        waited = wait_views([a, b], {1: {1: "alive", 2: "dead"}, 2: {1: "dead", 2: "alive"}},
                            DEAD_AFTER + SLACK + 2, "both sides mark the other dead")
        took = time.monotonic() - t_cut
        print(f"partition: both sides marked the other dead {took:.2f}s after the cut")
        assert took <= DEAD_AFTER + SLACK, f"dead after {took:.1f}s (dead_after {DEAD_AFTER}s); waited {waited:.1f}"

        # A call to a client of the unreachable node fails fast with 501.
        fake_b = harness.fake_client_id(2)
        t0 = time.monotonic()
        r = a.call("mesh.send", {"c": fake_b, "d": "x"})
        took = time.monotonic() - t0
        body = json.loads(r.get("body") or "null")
        assert isinstance(body, dict) and isinstance(body.get("E"), dict) and body["E"].get("c") == 501, \
            f"mesh.send to a client of the partitioned node: expected E.c=501, got {r}"
        assert took < 1.5, f"mesh.send to the partitioned node took {took:.2f}s (includes ~0.1s of helper start)"

        # Still partitioned a little later: no flapping back to alive while the link is cut.
        time.sleep(1.0)
        for n, other in ((a, 2), (b, 1)):
            st = n.states()
            assert st is not None and st.get(other) == "dead" and st.get(n.node_id) == "alive", \
                f"node {n.node_id} during the partition: {st}"

        # Each side routes every uid to itself.
        assert set(a.route().values()) == {f"{addr_a}:5100"}, "node 1 routes uids to the unreachable node 2"
        assert set(b.route().values()) == {f"{addr_b}:5100"}, "node 2 routes uids to the unreachable node 1"

        # Heal.
        for ns, other in routes:
            run("ip", "-n", ns, "route", "del", "blackhole", f"{other}/32")
        routes.clear()
        healed = wait_views([a, b], both_alive, HEAL_TIMEOUT, "the mesh heals after the partition")
        print(f"partition: healed {healed:.2f}s after the routes were removed")
        t_heal = time.monotonic()
        for _ in range(100):
            if a.route() == joined and b.route() == joined:
                break
            assert time.monotonic() - t_heal < 5, "route tables do not return to the joined assignment"
            time.sleep(0.1)

        # And it works again: a call to a (missing) client of B is answered by B: 401, not 501.
        r = a.call("mesh.send", {"c": harness.fake_client_id(2), "d": "x"})
        body = json.loads(r.get("body") or "null")
        assert isinstance(body, dict) and isinstance(body.get("E"), dict) and body["E"].get("c") == 401, \
            f"after healing, mesh.send to a missing client of node 2: expected 401, got {r}"
    finally:
        for ns, other in routes:
            run("ip", "-n", ns, "route", "del", "blackhole", f"{other}/32", check=False)
        for n in (a, b):
            n.stop()
