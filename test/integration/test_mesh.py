"""The mesh (PROTOCOL.md §4–§8, issue 3): several meshgate nodes on loopback forming one cluster.

Checks, mostly with three nodes (node 1 is the only seed of nodes 2 and 3, so 2 and 3 must find each
other through node 1's member list):
- membership: `GET /v1/nodes` on every node lists all nodes alive within a few seconds, with id,
  name, state, self, connections (known cluster-wide), route_weight and addresses; mesh metrics;
- forwarding: `mesh.send` (text, binary, large, pipelined in order), `conn.call` and `conn.info` from
  one node to a client on another; `mesh.publish`, `mesh.broadcast` and `channel.count` summed over
  the mesh; 401/301 for a missing client of a live remote node;
- the queue across the mesh: a consumer on one node receives the events of clients on the others
  (with `n` = the producing node and the context in `x`), also events that waited for it; with
  consumers on two nodes each event is delivered exactly once and a node's own consumer is
  preferred; unacknowledged events of a consumer that vanishes, or whose node dies, are redelivered
  to a consumer on another node (at-least-once while the producing node lives, PROTOCOL §4);
- node death: a SIGKILLed node is marked dead within `dead_after`, leaves the route table (only its
  uids move), calls to its clients fail fast with 501; restarted, it rejoins and gets its uids back;
  a stalled (SIGSTOPped) node: a short stall is not death, a long one is (calls fail with 501 within
  `call_timeout`), and it comes back with its clients and subscriptions; losing the seed does not
  split the others; a draining node's close events reach remote consumers; a new node may take a
  dead node's id;
- refusal: a peer with a wrong secret, another cluster name or a duplicate node id never becomes a
  member, sees only itself, and the refusing node logs (and counts) why;
- the route API over the cluster: every node assigns uids the same way, weighted by `route_weight`;
  `GET /route` without uid picks the least loaded node of the cluster.
"""
import asyncio
import base64
import os
import re
import signal
import time

import pytest

from harness import (ApiWs, Session, aapi_call, aapi_ok, api_call, ev_close_of, ev_frame_of, ev_open_from,
                     fake_client_id, frame_of, free_port, http_request, metric_value, metrics, parse_metrics,
                     split_client_id, ws_connect, ws_recv, ws_wait_closed)

DEAD_AFTER = 3
CALL_TIMEOUT = 2
SECRET = "itest-mesh-secret"
CLUSTER = "itest-mesh"
JOIN_TIMEOUT = 10.0   # all nodes alive everywhere, from the start of the last node
EVENT_TIMEOUT = 10.0  # a queue event that crosses the mesh


# ---------------------------------------------------------------------------------------------------
# Cluster helpers
# ---------------------------------------------------------------------------------------------------

def mesh_addr(node):
    return f"127.0.0.1:{node.mesh_port}"


def start_mesh_node(mgr, node_id, seeds=(), weight=1, cluster=CLUSTER, secret=SECRET, extra=None,
                    advertise_mesh=False):
    """Starts one node with a free mesh port (another one when it was taken meanwhile); with
    advertise_mesh, `[mesh] advertise` is given explicitly instead of left to its default."""
    for attempt in range(3):
        port = free_port()
        overrides = {
            "node": {"id": node_id, "name": f"mesh-{node_id}", "advertise": "127.0.0.1", "route_weight": weight},
            "mesh": {"bind": "127.0.0.1", "port": port, "cluster": cluster, "secret": secret,
                     "seeds": ",".join(seeds), "dead_after": DEAD_AFTER, "call_timeout": CALL_TIMEOUT},
        }
        if advertise_mesh:
            overrides["mesh"]["advertise"] = f"127.0.0.1:{port}"
        for section, kv in (extra or {}).items():
            overrides.setdefault(section, {}).update(kv)
        before = len(mgr.nodes)
        try:
            n = mgr.start(overrides)
        except AssertionError as e:
            # Attempts that failed at start-up are not nodes to stop (or report) at teardown.
            del mgr.nodes[before:]
            if attempt == 2 or "in use" not in str(e).lower():
                raise
            continue
        mgr.nodes[before:] = [n]
        n.mesh_port = port
        return n
    raise AssertionError("unreachable")


def intranet_host(node_id):
    return f"10.77.0.{node_id}"


def start_cluster(mgr, ids=(1, 2, 3), weights=None, cluster=CLUSTER, secret=SECRET):
    """Starts len(ids) nodes; the first is the only seed of the others. Waits until all are alive everywhere.
    Each node's intranet host is intranet_host(id) (only handed out by the route API, never dialled).
    The advertised mesh address is given explicitly on the last node, left to its default on the others."""
    weights = weights or [1] * len(ids)
    nodes = []
    for nid, w in zip(ids, weights):
        seeds = (mesh_addr(nodes[0]),) if nodes else ()
        nodes.append(start_mesh_node(mgr, nid, seeds, w, cluster, secret,
                                     {"node": {"intranet_advertise": intranet_host(nid)}},
                                     advertise_mesh=bool(nodes) and nid == ids[-1]))
    wait_all_alive(nodes, JOIN_TIMEOUT)
    return nodes


def node_list(node, timeout=2.0):
    r = http_request(node.api_port, "GET", "/v1/nodes", timeout=timeout)
    assert r.status == 200, f"GET /v1/nodes on node {node.node_id} -> {r.status} {r.body[:300]!r}"
    body = r.json
    assert isinstance(body, dict) and body.get("E") is None and isinstance(body.get("r"), dict) \
        and isinstance(body["r"].get("nodes"), list), f"GET /v1/nodes: unexpected body {body!r}"
    return body["r"]["nodes"]


def node_states(node):
    """{id: state} as `node` sees the cluster."""
    return {int(e["id"]): e.get("state") for e in node_list(node)}


def alive_ids(node):
    return {nid for nid, st in node_states(node).items() if st == "alive"}


def wait_until(fn, timeout, what, interval=0.1):
    """Calls fn() until it returns a truthy value (returned) or timeout; fn may raise AssertionError/OSError
    while the cluster settles. Returns (value, seconds waited)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    for _ in range(100000):
        try:
            v = fn()
            if v:
                return v, time.monotonic() - t0
            last = v
        except (AssertionError, OSError) as e:
            last = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def views(nodes):
    return {n.node_id: node_states(n) for n in nodes}


def wait_all_alive(nodes, timeout):
    want = {n.node_id for n in nodes}

    def check():
        for n in nodes:
            if alive_ids(n) != want:
                return False
        return True
    try:
        return wait_until(check, timeout, "cluster membership")[1]
    except AssertionError:
        try:
            seen = views(nodes)
        except (AssertionError, OSError) as e:
            seen = repr(e)
        raise AssertionError(f"not every node lists {sorted(want)} alive within {timeout}s; views: {seen}\n"
                             + "\n".join(n.describe() for n in nodes))


def sigkill(node):
    """SIGKILL; the node then counts as stopped (no crash report, nothing to stop at teardown)."""
    node.stopping = True
    node.kill()
    try:
        node.errf.close()
    except Exception:
        pass
    node.proc = None


def restart(node):
    """Starts a killed node again with the same configuration (ports, id, seeds)."""
    if os.path.exists(node.stderr_path):
        os.replace(node.stderr_path, node.stderr_path + ".before-restart")
    node.stopping = False
    node.failed_reported = False
    node.start()
    return node


def addrs(node):
    return {"tcp_addr": f"127.0.0.1:{node.port('tcp')}", "ws_addr": f"ws://127.0.0.1:{node.port('ws')}",
            "wss_addr": ""}


def route_batch(node, uids):
    r = http_request(node.route_port, "POST", "/route/batch?intranet=0", body=uids,
                     headers={"Content-Type": "application/json"})
    assert r.status == 200, f"POST /route/batch on node {node.node_id} -> {r.status} {r.body[:300]!r}"
    body = r.json
    assert isinstance(body, list), f"POST /route/batch: not an array: {body!r}"
    return body


def uid_map(node, uids):
    """{uid: tcp_addr} from POST /route/batch on `node`; checks that each uid appears once."""
    out = {}
    for group in route_batch(node, uids):
        for u in group["uids"]:
            assert u not in out, f"uid {u} in two groups on node {node.node_id}"
            out[u] = group["tcp_addr"]
    assert set(out) == set(uids), f"route batch on node {node.node_id} lost uids: {set(uids) - set(out)}"
    return out


def get_route(node, query=""):
    r = http_request(node.route_port, "GET", "/route?intranet=0" + query)
    assert r.status == 200, f"GET /route{query} on node {node.node_id} -> {r.status} {r.body[:300]!r}"
    return r.json


class Mesh(Session):
    """A Session over several nodes: every API connection and client is closed at exit."""

    def __init__(self):
        super().__init__(None)

    async def api_on(self, node):
        a = await ApiWs.open(node)
        self.closers.append(a.close)
        return a

    async def consumer_on(self, node, topics=("client",), ack=None):
        a = await self.api_on(node)
        await a.pop(topics, ack)
        return a

    async def ws_on(self, node, path="/mesh"):
        ws = await ws_connect(node.port("ws"), path)

        async def _close():
            await ws.close()
        self.closers.append(_close)
        return ws

    async def client_on(self, node, consumers, path="/mesh", timeout=EVENT_TIMEOUT):
        """A ws client on `node`; its open event is looked for in every consumer of `consumers`.
        Returns (ws, client id, index of the consumer that got the open event, open event)."""
        ws = await self.ws_on(node, path)
        idx, ev = await wait_any(consumers, ev_open_at(node, ws.local_address[1], consumers, path), timeout,
                                 f"open event of a ws client of node {node.node_id}")
        cid = ev["p"]["c"]
        assert split_client_id(cid)[1] == node.node_id, f"client id {cid} of node {node.node_id} has other node bits"
        return ws, cid, idx, ev


def ev_open_at(node, port, consumers, path):
    """Open event of the ws client from 127.0.0.1:port on `node` that asked for `path` (not an older
    connection's: see ev_open_from)."""
    base = ev_open_from(port, "ws")

    def pred(e):
        if e["p"]["n"] != node.node_id or not base(e) or e["p"]["d"].get("path") != path.split("?")[0]:
            return False
        return not any(o["p"]["c"] == e["p"]["c"] and o["p"]["d"].get("event") == "close"
                       for c in consumers for o in c.events)
    return pred


async def wait_any(consumers, pred, timeout=EVENT_TIMEOUT, what="event"):
    """(index of consumer, event) for the first consumer holding a matching event (removed from it)."""
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        for idx, c in enumerate(consumers):
            got = c.take_events(pred)
            if got:
                c.events[:0] = got[1:]
                return idx, got[0]
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    held = [c.events[-5:] for c in consumers]
    raise AssertionError(f"{what} not received by any consumer within {timeout}s; last events held: {held!r}")


async def nodes_view(node):
    return await asyncio.to_thread(node_list, node)


# ---------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(module_nodes):
    """Nodes 1, 2, 3 with route_weight 1, 1, 2; shared by the tests that leave it as they found it."""
    return start_cluster(module_nodes, (1, 2, 3), (1, 1, 2))


@pytest.fixture(scope="module")
def pair(module_nodes):
    """Nodes 1 and 2 of another cluster: the target of the refused peers."""
    return start_cluster(module_nodes, (1, 2), cluster="itest-pair", secret="pair-secret-0123456789")


# ---------------------------------------------------------------------------------------------------
# Membership
# ---------------------------------------------------------------------------------------------------

def test_membership_every_node_lists_all_alive(cluster):
    by_id = {n.node_id: n for n in cluster}
    for n in cluster:
        entries = node_list(n)
        ids = sorted(int(e["id"]) for e in entries)
        assert ids == [1, 2, 3], f"node {n.node_id} lists {ids}: {entries!r}"
        for e in entries:
            nid = int(e["id"])
            other = by_id[nid]
            for key in ("id", "name", "state", "self", "connections", "addresses"):
                assert key in e, f"node {n.node_id}: entry of node {nid} without {key!r}: {e!r}"
            assert e["state"] == "alive", f"node {n.node_id} sees node {nid} as {e['state']!r}"
            assert e["name"] == f"mesh-{nid}", f"node {n.node_id}: name of node {nid}: {e!r}"
            assert e["self"] is (nid == n.node_id), f"node {n.node_id}: 'self' of node {nid}: {e!r}"
            assert isinstance(e["connections"], int) and e["connections"] >= 0, e
            if "route_weight" in e:
                assert e["route_weight"] == (2 if nid == 3 else 1), f"node {n.node_id}: {e!r}"
            a = e["addresses"]
            assert isinstance(a, dict), e
            want = addrs(other)
            assert {k: a.get(k) for k in want} == want, \
                f"node {n.node_id}: addresses of node {nid}: {a!r}, expected {want!r}"


def test_join_time_and_transitive_discovery(nodes):
    """2 and 3 know each other only through 1; all alive everywhere within a few seconds of start."""
    t0 = time.monotonic()
    ns = start_cluster(nodes, (4, 5, 6), cluster="itest-join", secret="join-secret-0123456789")
    elapsed = time.monotonic() - t0
    assert elapsed < JOIN_TIMEOUT, elapsed
    # Node 5 sees node 6 (and vice versa) though neither lists the other as a seed.
    assert alive_ids(ns[1]) == {4, 5, 6} and alive_ids(ns[2]) == {4, 5, 6}


# ---------------------------------------------------------------------------------------------------
# Forwarding: send, conn.call, conn.info, publish, broadcast, channel.count
# ---------------------------------------------------------------------------------------------------

async def test_send_call_info_to_client_on_other_node(cluster):
    n1, n2, n3 = cluster
    async with Mesh() as m:
        cons2 = await m.consumer_on(n2)
        ws, cid, _, _ = await m.client_on(n2, [cons2], "/fwd?q=1")

        # mesh.send from node 1 and from node 3 (text and binary).
        assert await aapi_ok(n1, "mesh.send", {"c": cid, "d": "from node 1"}) == {"s": True}
        assert await ws_recv(ws) == "from node 1"
        assert await aapi_ok(n3, "mesh.send", {"c": cid, "d": "AAEC/w==", "t": "binary"}) == {"s": True}
        assert await ws_recv(ws) == b"\x00\x01\x02\xff"
        # Non-string data is sent as its JSON text (decisions.md), also when forwarded.
        assert await aapi_ok(n1, "mesh.send", {"c": cid, "d": {"a": [1, 2]}}) == {"s": True}
        got = await ws_recv(ws)
        assert got.replace(" ", "") == '{"a":[1,2]}', got

        # conn.call from node 1: context and channels.
        assert await aapi_ok(n1, "conn.call", {"c": cid, "f": "set_context_value", "a": ["user_id", 10000]}) \
            == {"s": True}
        assert await aapi_ok(n1, "conn.call", {"c": cid, "f": "subscribe", "a": ["fwd:room", "fwd:other"]}) \
            == {"s": True}
        assert await aapi_ok(n3, "conn.call", {"c": cid, "f": "unsubscribe", "a": ["fwd:other"]}) == {"s": True}

        # conn.info from node 1 and node 3 shows them.
        for n in (n1, n3):
            info = await aapi_ok(n, "conn.info", {"c": cid})
            assert info.get("s") is True and info.get("x") == {"user_id": 10000}, f"node {n.node_id}: {info!r}"
            assert sorted(info.get("ch") or []) == ["fwd:room"], f"node {n.node_id}: {info!r}"
            assert info.get("listener") == "ws" and info.get("remote_addr") == f"127.0.0.1:{ws.local_address[1]}", info
            assert isinstance(info.get("since"), int) and abs(info["since"] - time.time() * 1000) < 60000, info

        # The remote node's refusals come back as they are.
        st, body = await aapi_call(n1, "conn.call", {"c": cid, "f": "set_context",
                                                     "a": [{f"k{k}": k for k in range(65)}]})
        assert st == 200 and isinstance(body.get("E"), dict) and body["E"].get("c") == 301, \
            f"set_context over max_context_keys on a remote client: {st} {body!r}"
        st, body = await aapi_call(n3, "conn.call", {"c": cid, "f": "subscribe", "a": ["bad channel"]})
        assert st == 400 and isinstance(body.get("E"), dict) and body["E"].get("c") == 101, \
            f"subscribe to an invalid channel name on a remote client: {st} {body!r}"
        st, body = await aapi_call(n3, "conn.call", {"c": cid, "f": "no_such_function", "a": []})
        assert st == 400 and isinstance(body.get("E"), dict) and body["E"].get("c") == 101, (st, body)

        # Over /ws/v1 of node 3 too, with the id echoed.
        api3 = await m.api_on(n3)
        r = await api3.call("conn.info", {"c": cid}, i="x-1")
        assert r["i"] == "x-1" and r["E"] is None and r["r"]["x"] == {"user_id": 10000}, r

        # mesh.publish from node 3 to its channel.
        assert await aapi_ok(n3, "mesh.publish", {"c": "fwd:room", "d": "room msg"}) == {"s": 1, "f": 0}
        assert await ws_recv(ws) == "room msg"
        assert await aapi_ok(n3, "mesh.publish", {"c": "fwd:other", "d": "nobody"}) == {"s": 0, "f": 0}

        # What the client sends carries the context set from node 1.
        await ws.send("hello from 2")
        ev = await cons2.wait_event(ev_frame_of(cid, "hello from 2"))
        assert ev["p"]["n"] == 2 and ev["p"]["x"] == {"user_id": 10000}, ev

        # conn.call close from node 3.
        assert await aapi_ok(n3, "conn.call", {"c": cid, "f": "close", "a": [4001, "bye"]}) == {"s": True}
        code, reason = await ws_wait_closed(ws)
        assert (code, reason) == (4001, "bye")
        ev = await cons2.wait_event(ev_close_of(cid))
        assert ev["p"]["d"]["code"] == 4001


@pytest.mark.parametrize("owner", [2, 77])
async def test_remote_client_not_connected_errors(cluster, owner):
    """A client id of a live remote node that has no such connection, or of a node that was never a
    member (decisions.md, Mesh): 401 / 301 "client not connected", answered at once."""
    n1 = cluster[0]
    gone = fake_client_id(owner)
    t0 = time.monotonic()
    st, body = await aapi_call(n1, "mesh.send", {"c": gone, "d": "x"})
    assert st == 200 and isinstance(body.get("E"), dict) and body["E"].get("c") == 401, (st, body)
    for f, p in (("conn.info", {"c": gone}), ("conn.call", {"c": gone, "f": "subscribe", "a": ["x"]})):
        st, body = await aapi_call(n1, f, p)
        assert st == 200 and isinstance(body.get("E"), dict) and body["E"].get("c") == 301, (f, st, body)
    assert time.monotonic() - t0 < 1.0


async def test_publish_broadcast_count_over_mesh(cluster):
    async with Mesh() as m:
        conss = [await m.consumer_on(n) for n in cluster]
        clients = []
        for n, cons in zip(cluster, conss):
            ws, cid, _, _ = await m.client_on(n, [cons], "/pub")
            clients.append((n, ws, cid))
        # Each subscribed by a node other than its own.
        for k, (n, ws, cid) in enumerate(clients):
            caller = cluster[(k + 1) % 3]
            assert await aapi_ok(caller, "conn.call", {"c": cid, "f": "subscribe", "a": ["pub:all"]}) == {"s": True}
        for n in cluster:
            assert await aapi_ok(n, "channel.count", {"c": "pub:all"}) == {"s": 3}, f"channel.count on {n.node_id}"
        for n in cluster:
            data = f"pub from {n.node_id}"
            r = await aapi_ok(n, "mesh.publish", {"c": "pub:all", "d": data})
            assert r == {"s": 3, "f": 0}, f"mesh.publish on node {n.node_id}: {r!r}"
            for _, ws, cid in clients:
                assert await ws_recv(ws) == data
        # Broadcast from node 1 reaches every client of the cluster; s counts them all.
        r = await aapi_ok(cluster[0], "mesh.broadcast", {"d": "to everyone"})
        assert r == {"s": 3, "f": 0}, f"mesh.broadcast: {r!r} (3 clients in the cluster)"
        for _, ws, cid in clients:
            assert await ws_recv(ws) == "to everyone"
        r = await aapi_ok(cluster[2], "mesh.broadcast", {"d": "AP8=", "t": "binary"})
        assert r == {"s": 3, "f": 0}, r
        for _, ws, cid in clients:
            assert await ws_recv(ws) == b"\x00\xff"
        # One unsubscribes (remotely): the count follows, everywhere.
        assert await aapi_ok(cluster[0], "conn.call", {"c": clients[2][2], "f": "unsubscribe", "a": ["pub:all"]}) \
            == {"s": True}
        for n in cluster:
            assert await aapi_ok(n, "channel.count", {"c": "pub:all"}) == {"s": 2}
        assert await aapi_ok(cluster[1], "mesh.publish", {"c": "pub:all", "d": "two"}) == {"s": 2, "f": 0}
        # A client that leaves is no longer counted.
        await clients[0][1].close()
        await wait_any([conss[0]], ev_close_of(clients[0][2]), what="close event")

        async def count_is_1():
            for _ in range(50):
                if await aapi_ok(cluster[2], "channel.count", {"c": "pub:all"}) == {"s": 1}:
                    return True
                await asyncio.sleep(0.1)
            return False
        assert await count_is_1(), "channel.count did not drop to 1 after a subscriber left"


async def test_publish_fan_out_many_clients_per_node(cluster):
    per_node = 40
    async with Mesh() as m:
        conss = [await m.consumer_on(n) for n in cluster]
        clients = []
        for n, cons in zip(cluster, conss):
            wss = [await m.ws_on(n, "/fan") for _ in range(per_node)]
            for ws in wss:
                _, ev = await wait_any([cons], ev_open_at(n, ws.local_address[1], [cons], "/fan"), EVENT_TIMEOUT,
                                       "open event")
                clients.append((ws, ev["p"]["c"]))
        # Subscribe them over /ws/v1 of node 1, pipelined.
        api = await m.api_on(cluster[0])
        answers = await asyncio.gather(*[api.call("conn.call", {"c": cid, "f": "subscribe", "a": ["fan:out"]},
                                                  timeout=10) for _, cid in clients])
        bad = [a for a in answers if a.get("E") is not None]
        assert not bad, f"{len(bad)} subscribes failed, e.g. {bad[:3]}"
        total = per_node * len(cluster)
        for n in cluster:
            assert await aapi_ok(n, "channel.count", {"c": "fan:out"}) == {"s": total}
        for n in cluster:
            data = f"fan from {n.node_id}"
            assert await aapi_ok(n, "mesh.publish", {"c": "fan:out", "d": data}) == {"s": total, "f": 0}
            got = await asyncio.gather(*[ws_recv(ws) for ws, _ in clients])
            assert got == [data] * total


def test_mesh_metrics(cluster):
    """/metrics shows the mesh (PROTOCOL §8: links and round-trip times; names from docs/cluster.md)."""
    for n in cluster:
        assert metric_value(n, "meshgate_mesh_members", state="alive") == 2, f"node {n.node_id}"
        assert metric_value(n, "meshgate_mesh_members", state="dead") == 0, f"node {n.node_id}"
        others = {str(o.node_id) for o in cluster if o is not n}

        def rtt_known(n=n, others=others):
            rtt = {lab.get("node") for name, lab, _ in parse_metrics(metrics(n))
                   if name == "meshgate_mesh_rtt_seconds"}
            assert others <= rtt, f"round-trip times for {sorted(rtt)}, expected {sorted(others)}"
            return True
        # Round-trip times appear once a direct probe has been answered (one probe per node every
        # dead_after/10, each member once per pass).
        wait_until(rtt_known, DEAD_AFTER, f"node {n.node_id}: meshgate_mesh_rtt_seconds for every other node")


async def test_nodes_report_connections_and_route_picks_least_loaded(cluster):
    """connections in /v1/nodes are known cluster-wide; GET /route without uid picks the least loaded node."""
    n1, n2, n3 = cluster
    async with Mesh() as m:
        for n, k in ((n1, 2), (n3, 3)):
            for _ in range(k):
                await m.ws_on(n, "/load")

        def counts_seen():
            for n in cluster:
                c = {int(e["id"]): e["connections"] for e in node_list(n)}
                if c != {1: 2, 2: 0, 3: 3}:
                    return False
            return True
        wait_until(counts_seen, 8.0, "every node sees connections 1:2, 2:0, 3:3")
        for n in cluster:
            assert get_route(n) == addrs(n2), f"GET /route (no uid) on node {n.node_id}"


async def test_forwarded_sends_large_and_in_order(cluster):
    """Big payloads cross the mesh intact; pipelined sends from one /ws/v1 connection arrive in order."""
    n1, n2, n3 = cluster
    async with Mesh() as m:
        cons2 = await m.consumer_on(n2)
        ws, cid, _, _ = await m.client_on(n2, [cons2], "/big")
        big = "".join(chr(0x41 + (k % 26)) for k in range(700_000))
        assert await aapi_ok(n1, "mesh.send", {"c": cid, "d": big}) == {"s": True}
        got = await ws_recv(ws)
        assert got == big, f"700 kB text: got {len(got)} characters"
        blob = os.urandom(300_000)
        assert await aapi_ok(n3, "mesh.send", {"c": cid, "d": base64.b64encode(blob).decode(), "t": "binary"}) \
            == {"s": True}
        assert await ws_recv(ws) == blob
        api1 = await m.api_on(n1)
        count = 300
        futs = [asyncio.ensure_future(api1.call("mesh.send", {"c": cid, "d": f"seq{k}"}, timeout=10))
                for k in range(count)]
        answers = await asyncio.gather(*futs)
        bad = [a for a in answers if a.get("E") is not None or a.get("r") != {"s": True}]
        assert not bad, f"{len(bad)} of {count} pipelined sends failed, e.g. {bad[:3]!r}"
        received = [await ws_recv(ws) for _ in range(count)]
        assert received == [f"seq{k}" for k in range(count)], \
            f"pipelined sends arrived out of order: first differences " \
            f"{[(k, r) for k, r in enumerate(received) if r != f'seq{k}'][:5]}"


# ---------------------------------------------------------------------------------------------------
# The queue across the mesh
# ---------------------------------------------------------------------------------------------------

async def test_consumer_on_one_node_gets_events_of_all_nodes(cluster):
    n1, n2, n3 = cluster
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        for n in (n2, n3):
            ws, cid, _, ev = await m.client_on(n, [cons], "/remote?z=9")
            assert ev["p"]["n"] == n.node_id and ev["p"]["t"] == "client", ev
            d = ev["p"]["d"]
            assert d["event"] == "open" and d["listener"] == "ws" and d["path"] == "/remote" and d["query"] == "z=9", ev
            await aapi_ok(n1, "conn.call", {"c": cid, "f": "set_context", "a": [{"user": n.node_id}]})
            for k in range(3):
                await ws.send(f"m{k}@{n.node_id}")
            for k in range(3):
                ev = await cons.wait_event(ev_frame_of(cid), EVENT_TIMEOUT, f"message {k} of the client on node "
                                           f"{n.node_id}")
                assert frame_of(ev) == {"type": "text", "data": f"m{k}@{n.node_id}", "finish": True}, ev
                assert ev["p"]["n"] == n.node_id and ev["p"]["x"] == {"user": n.node_id}, ev
            await ws.send(b"\x01\x02")
            ev = await cons.wait_event(ev_frame_of(cid), EVENT_TIMEOUT)
            assert frame_of(ev)["type"] == "binary" and frame_of(ev)["data"] == "AQI=", ev
            await ws.close()
            ev = await cons.wait_event(ev_close_of(cid), EVENT_TIMEOUT, f"close event of node {n.node_id}'s client")
            assert ev["p"]["n"] == n.node_id and ev["p"]["d"]["code"] == 1000 and ev["p"]["x"] == {"user": n.node_id}


async def test_events_wait_on_producing_node_until_a_remote_consumer_pops(cluster):
    n1, n2, n3 = cluster
    async with Mesh() as m:
        ws = await m.ws_on(n2, "/early")
        port = ws.local_address[1]
        for k in range(3):
            await ws.send(f"early{k}")
        await asyncio.sleep(0.5)
        cons = await m.consumer_on(n3)
        _, ev = await wait_any([cons], ev_open_at(n2, port, [cons], "/early"), EVENT_TIMEOUT, "buffered open event")
        cid = ev["p"]["c"]
        got = []
        for k in range(3):
            ev = await cons.wait_event(ev_frame_of(cid), EVENT_TIMEOUT, f"buffered message {k}")
            assert ev["p"]["n"] == 2, ev
            got.append(frame_of(ev)["data"])
        assert got == ["early0", "early1", "early2"]


async def test_two_consumers_each_event_once_local_first(cluster):
    n1, n2, n3 = cluster
    async with Mesh() as m:
        conss = [await m.consumer_on(n1), await m.consumer_on(n2)]
        await asyncio.sleep(0.5)  # both consumers known cluster-wide (events would wait otherwise, not be lost)
        clients = []  # (node, ws, cid)
        for n in (n1, n2, n3, n3, n3, n3, n1, n2):
            ws, cid, idx, _ = await m.client_on(n, conss, "/once")
            clients.append((n, ws, cid, idx))
        per_client = 5
        for n, ws, cid, _ in clients:
            for k in range(per_client):
                await ws.send(f"{cid}/{k}")
        for n, ws, cid, _ in clients:
            await ws.close()
        cids = {cid: n for n, _, cid, _ in clients}
        want = len(clients) * (per_client + 1)  # messages and close (the opens were taken above)

        def ours():
            return [(i, e) for i, c in enumerate(conss) for e in c.events if e["p"]["c"] in cids]
        deadline = time.monotonic() + EVENT_TIMEOUT
        while len(ours()) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.7)  # late duplicates
        got = ours()
        seen = {}
        for i, e in got:
            d = e["p"]["d"]
            key = (e["p"]["c"], frame_of(e)["data"] if "frame" in d else d.get("event"))
            seen.setdefault(key, []).append(i)
        expected = {(cid, f"{cid}/{k}") for cid in cids for k in range(per_client)} | {(cid, "close") for cid in cids}
        missing = expected - set(seen)
        dups = {k: v for k, v in seen.items() if len(v) > 1}
        extra = set(seen) - expected
        assert not missing and not dups and not extra, \
            f"missing {sorted(missing)[:5]}, duplicated {list(dups.items())[:5]}, unexpected {sorted(extra)[:5]}"
        for n, _, cid, open_idx in clients:
            owners = {i for (c, _), v in seen.items() if c == cid for i in v} | {open_idx}
            assert len(owners) == 1, f"events of client {cid} (node {n.node_id}) went to consumers {owners}"
            if n is n1:
                assert owners == {0}, "client of node 1 served by the consumer on node 2 (local consumer first)"
            if n is n2:
                assert owners == {1}, "client of node 2 served by the consumer on node 1 (local consumer first)"
        # Order of one client's messages.
        for i, c in enumerate(conss):
            for cid in cids:
                data = [frame_of(e)["data"] for e in c.events if e["p"]["c"] == cid and "frame" in e["p"]["d"]]
                if data:
                    assert data == [f"{cid}/{k}" for k in range(per_client)], f"order of {cid}: {data}"


async def test_ack_mode_redelivered_across_nodes(cluster):
    n1, n2, n3 = cluster
    N = 20
    async with Mesh() as m:
        a = await m.consumer_on(n1, ack=True)
        ws, cid, _, ev = await m.client_on(n2, [a], "/acked")
        assert isinstance(ev["p"].get("k"), int), f"ack mode event without k: {ev!r}"
        for k in range(N):
            await ws.send(f"ack{k}")
        ks = []
        for k in range(N):
            ev = await a.wait_event(ev_frame_of(cid, f"ack{k}"), EVENT_TIMEOUT, f"message ack{k} at consumer A")
            assert ev["p"]["n"] == 2 and isinstance(ev["p"].get("k"), int), ev
            ks.append(ev["p"]["k"])
        assert len(set(ks)) == N, f"k not distinct: {ks}"
        # A vanishes without acknowledging anything (no close handshake).
        a.ws.transport.abort()
        await a.close()
        b = await m.consumer_on(n3, ack=True)
        got = []
        for _ in range(N):
            ev = await b.wait_event(ev_frame_of(cid), EVENT_TIMEOUT, f"redelivered message ({len(got)} of {N} so far)")
            got.append(frame_of(ev)["data"])
            assert ev["p"]["n"] == 2, ev
            await b.ok("queue.ack", {"k": [ev["p"]["k"]]})
        assert sorted(got) == sorted(f"ack{k}" for k in range(N)), got
        # The unacknowledged open event is redelivered too.
        ev = await b.wait_event(lambda e: e["p"]["c"] == cid and e["p"]["d"].get("event") == "open", EVENT_TIMEOUT,
                                "redelivered open event")
        await b.ok("queue.ack", {"k": [ev["p"]["k"]]})
        # Nothing more after the acknowledgements.
        await ws.send("after")
        ev = await b.wait_event(ev_frame_of(cid, "after"), EVENT_TIMEOUT)
        await b.ok("queue.ack", {"k": [ev["p"]["k"]]})


# ---------------------------------------------------------------------------------------------------
# Route API over the cluster
# ---------------------------------------------------------------------------------------------------

def test_route_batch_same_on_every_node_and_weighted(cluster):
    uids = [f"user-{i}" for i in range(3000)]
    maps = [uid_map(n, uids) for n in cluster]
    for n, mp in zip(cluster[1:], maps[1:]):
        diff = [u for u in uids if mp[u] != maps[0][u]]
        assert not diff, f"node {n.node_id} assigns {len(diff)} uids differently from node 1, e.g. {diff[:3]}"
    share = {n.node_id: sum(1 for u in uids if maps[0][u] == addrs(n)["tcp_addr"]) / len(uids) for n in cluster}
    assert abs(share[1] - 0.25) <= 0.06 and abs(share[2] - 0.25) <= 0.06 and abs(share[3] - 0.5) <= 0.06, \
        f"shares with route_weight 1,1,2: {share}"
    # Groups carry each node's addresses.
    known = [addrs(n) for n in cluster]
    for g in route_batch(cluster[1], uids[:50]):
        assert {k: g[k] for k in ("tcp_addr", "ws_addr", "wss_addr")} in known, g
    # intranet=1 hands out every node's intranet addresses, the same on every node.
    for n in cluster:
        r = http_request(n.route_port, "POST", "/route/batch?intranet=1", body=uids[:300],
                         headers={"Content-Type": "application/json"})
        assert r.status == 200, r
        for g in r.json:
            owner = [o for o in cluster if maps[0][g["uids"][0]] == addrs(o)["tcp_addr"]][0]
            want = {"tcp_addr": f"{intranet_host(owner.node_id)}:{owner.port('tcp')}",
                    "ws_addr": f"ws://{intranet_host(owner.node_id)}:{owner.port('ws')}", "wss_addr": ""}
            assert {k: g[k] for k in want} == want, f"intranet group on node {n.node_id}: {g!r}"
            assert all(maps[0][u] == addrs(owner)["tcp_addr"] for u in g["uids"]), "intranet grouping differs"
    # GET /route?uid= agrees with the batch, on every node.
    for u in uids[:20]:
        for n in cluster:
            assert get_route(n, f"&uid={u}")["tcp_addr"] == maps[0][u], f"GET /route uid={u} on node {n.node_id}"


# ---------------------------------------------------------------------------------------------------
# Node death and rejoin
# ---------------------------------------------------------------------------------------------------

async def test_node_death_and_rejoin(nodes):
    n1, n2, n3 = await asyncio.to_thread(start_cluster, nodes, (1, 2, 3))
    uids = [f"death-{i}" for i in range(300)]
    before = await asyncio.to_thread(uid_map, n1, uids)
    on3 = {u for u, a in before.items() if a == addrs(n3)["tcp_addr"]}
    assert 40 <= len(on3) <= 160, f"{len(on3)} of 300 uids on node 3 with equal weights"
    async with Mesh() as m:
        cons3 = await m.consumer_on(n3)
        ws3, cid3, _, _ = await m.client_on(n3, [cons3], "/doomed")
        assert await aapi_ok(n1, "mesh.send", {"c": cid3, "d": "still here"}) == {"s": True}
        assert await ws_recv(ws3) == "still here"

        t_kill = time.monotonic()
        sigkill(n3)

        def dead_on(n):
            return node_states(n).get(3) == "dead"
        waited = {}
        for n in (n1, n2):
            _, _ = await asyncio.to_thread(wait_until, lambda n=n: dead_on(n), DEAD_AFTER + 4,
                                           f"node {n.node_id} marks node 3 dead", 0.1)
            waited[n.node_id] = time.monotonic() - t_kill
        print(f"node death: node 3 marked dead after {waited} s")
        assert max(waited.values()) <= DEAD_AFTER + 2.0, \
            f"node 3 marked dead after {waited} s (dead_after = {DEAD_AFTER} s)"
        for n in (n1, n2):
            st = await asyncio.to_thread(node_states, n)
            assert st.get(1) == "alive" and st.get(2) == "alive", f"node {n.node_id}: {st}"

        # Calls to its client fail fast with 501.
        for method, params in (("mesh.send", {"c": cid3, "d": "x"}), ("conn.info", {"c": cid3}),
                               ("conn.call", {"c": cid3, "f": "subscribe", "a": ["r"]})):
            for n in (n1, n2):
                t0 = time.monotonic()
                st, body = await aapi_call(n, method, params)
                took = time.monotonic() - t0
                assert isinstance(body.get("E"), dict) and body["E"].get("c") == 501, \
                    f"{method} to a client of dead node 3 via node {n.node_id}: expected E.c=501, got {st} {body!r}"
                assert st == 200, f"{method} -> 501 should be HTTP 200 (decisions.md), got {st}"
                assert took < 1.0, f"{method} to a dead node's client took {took:.2f}s via node {n.node_id}"
        # Over /ws/v1 too.
        api1 = await m.api_on(n1)
        t0 = time.monotonic()
        r = await api1.call("mesh.send", {"c": cid3, "d": "x"})
        assert isinstance(r.get("E"), dict) and r["E"].get("c") == 501 and time.monotonic() - t0 < 1.0, r
        # Publish and broadcast still answer (without node 3).
        r = await aapi_ok(n1, "mesh.broadcast", {"d": "b"})
        assert r["s"] == 0, f"broadcast with no live client: {r!r}"

    # The route table no longer has node 3; only its uids moved.
    def route_without_3():
        after = uid_map(n1, uids)
        return after if all(a != addrs(n3)["tcp_addr"] for a in after.values()) else None
    after, _ = await asyncio.to_thread(wait_until, route_without_3, 3.0, "node 3 leaves the route table")
    moved = {u for u in uids if after[u] != before[u]}
    assert moved == on3, f"uids that moved {len(moved)} != uids of node 3 {len(on3)}; " \
                         f"moved but not on 3: {sorted(moved - on3)[:5]}"
    after2 = await asyncio.to_thread(uid_map, n2, uids)
    assert after2 == after, "nodes 1 and 2 disagree after node 3 died"
    for _ in range(20):
        r = await asyncio.to_thread(get_route, n1)
        assert r != addrs(n3), "GET /route on node 1 returned dead node 3"
    for u in sorted(on3)[:10]:
        r = await asyncio.to_thread(get_route, n1, f"&uid={u}")
        assert r != addrs(n3) and r in (addrs(n1), addrs(n2)), f"GET /route uid={u}: {r!r}"

    # Restarted with the same configuration, it rejoins and gets its uids back.
    t_restart = time.monotonic()
    await asyncio.to_thread(restart, n3)
    await asyncio.to_thread(wait_all_alive, [n1, n2, n3], JOIN_TIMEOUT)
    assert time.monotonic() - t_restart < JOIN_TIMEOUT

    def back():
        return all(uid_map(n, uids) == before for n in (n1, n2, n3))
    await asyncio.to_thread(wait_until, back, 5.0, "uids go back to node 3 on every node")


async def test_hung_node_calls_time_out_then_dead_then_back(nodes):
    """A node that stops answering (SIGSTOP: its TCP links stay open) is found by the probes: calls to its
    clients fail with 501 within call_timeout, it is marked dead within dead_after, and after SIGCONT it
    rejoins and its clients are reachable again, subscriptions intact."""
    n1, n2, n3 = await asyncio.to_thread(start_cluster, nodes, (1, 2, 3))
    async with Mesh() as m:
        cons1 = await m.consumer_on(n1)
        cons3 = await m.consumer_on(n3)
        ws1, cid1, _, _ = await m.client_on(n1, [cons1], "/hang")
        ws3, cid3, _, _ = await m.client_on(n3, [cons3], "/hang")
        for cid in (cid1, cid3):
            assert await aapi_ok(n2, "conn.call", {"c": cid, "f": "subscribe", "a": ["hang:room"]}) == {"s": True}
        assert await aapi_ok(n1, "channel.count", {"c": "hang:room"}) == {"s": 2}

        # A stall shorter than dead_after is not death, and a call that the stalled node answers
        # within call_timeout succeeds.
        os.kill(n3.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            send = asyncio.ensure_future(aapi_call(n1, "mesh.send", {"c": cid3, "d": "late but in time"}))
            seen = []
            while time.monotonic() - t0 < 1.2:
                seen.append((await nodes_view(n2), time.monotonic() - t0))
                await asyncio.sleep(0.1)
        finally:
            os.kill(n3.proc.pid, signal.SIGCONT)
        st, body = await send
        assert st == 200 and body.get("E") is None and body.get("r") == {"s": True}, \
            f"mesh.send to a client of a node stalled for 1.2s (call_timeout {CALL_TIMEOUT}s): {st} {body!r}"
        assert await ws_recv(ws3) == "late but in time"
        while time.monotonic() - t0 < DEAD_AFTER + 0.5:
            seen.append((await nodes_view(n2), time.monotonic() - t0))
            await asyncio.sleep(0.1)
        flaps = [(round(t, 2), [(e["id"], e["state"]) for e in v]) for v, t in seen
                 if any(int(e["id"]) == 3 and e["state"] != "alive" for e in v)]
        assert not flaps, f"node 3 marked dead after a 1.2s stall (dead_after {DEAD_AFTER}s): {flaps[:3]}"

        os.kill(n3.proc.pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            t0 = time.monotonic()
            st, body = await aapi_call(n1, "mesh.send", {"c": cid3, "d": "into the void"})
            took = time.monotonic() - t0
            assert isinstance(body.get("E"), dict) and body["E"].get("c") == 501, \
                f"mesh.send to a client of a hung node: expected E.c=501, got {st} {body!r}"
            assert took <= CALL_TIMEOUT + 1.0, f"mesh.send to a hung node answered after {took:.2f}s " \
                                               f"(call_timeout {CALL_TIMEOUT}s)"
            # A publish still answers, and counts the live subscriber.
            t0 = time.monotonic()
            st, body = await aapi_call(n2, "mesh.publish", {"c": "hang:room", "d": "partial"})
            took = time.monotonic() - t0
            assert st == 200 and body.get("E") is None and body["r"]["s"] >= 1, \
                f"mesh.publish with a hung node: {st} {body!r}"
            assert took <= CALL_TIMEOUT + 1.0, f"mesh.publish with a hung node answered after {took:.2f}s"
            assert await ws_recv(ws1) == "partial"

            def dead_everywhere():
                return all(node_states(n).get(3) == "dead" for n in (n1, n2))
            await asyncio.to_thread(wait_until, dead_everywhere, DEAD_AFTER + 4, "nodes 1 and 2 mark hung node 3 dead")
            took = time.monotonic() - t_stop
            assert took <= DEAD_AFTER + 2.0, f"hung node 3 marked dead {took:.1f}s after SIGSTOP"
            t0 = time.monotonic()
            st, body = await aapi_call(n1, "conn.info", {"c": cid3})
            assert isinstance(body.get("E"), dict) and body["E"].get("c") == 501 and time.monotonic() - t0 < 1.0, \
                f"conn.info to a dead node's client: {st} {body!r} after {time.monotonic() - t0:.2f}s"
            assert await aapi_ok(n1, "channel.count", {"c": "hang:room"}) == {"s": 1}
        finally:
            os.kill(n3.proc.pid, signal.SIGCONT)

        await asyncio.to_thread(wait_all_alive, [n1, n2, n3], JOIN_TIMEOUT)

        def reachable():
            st, body = api_call(n1, "mesh.send", {"c": cid3, "d": "welcome back"})
            return body.get("E") is None and body.get("r") == {"s": True}
        await asyncio.to_thread(wait_until, reachable, 5.0, "a client of node 3 reachable again after it rejoined",
                                0.3)
        got = [await ws_recv(ws3)]
        while got[-1] != "welcome back":  # bounded: each recv times out
            got.append(await ws_recv(ws3))
            assert len(got) < 20, got
        assert await aapi_ok(n1, "channel.count", {"c": "hang:room"}) == {"s": 2}
        assert await aapi_ok(n2, "mesh.publish", {"c": "hang:room", "d": "all again"}) == {"s": 2, "f": 0}
        assert await ws_recv(ws1) == "all again"
        assert await ws_recv(ws3) == "all again"


async def test_seed_dies_others_stay_linked_seed_rejoins_late_joiner(nodes):
    """Every pair of live nodes holds its own link: losing the seed does not split 2 and 3. The seed,
    restarted with no seeds of its own, is found again by the others; a fourth node that knows only
    node 3 joins everyone."""
    n1, n2, n3 = await asyncio.to_thread(start_cluster, nodes, (1, 2, 3))
    async with Mesh() as m:
        cons3 = await m.consumer_on(n3)
        ws3, cid3, _, _ = await m.client_on(n3, [cons3], "/seedless")
        sigkill(n1)

        def seed_dead():
            return all(node_states(n) == {1: "dead", 2: "alive", 3: "alive"} for n in (n2, n3))
        await asyncio.to_thread(wait_until, seed_dead, DEAD_AFTER + 4,
                                "nodes 2 and 3 see node 1 dead, each other alive")
        # Still one mesh without the seed: forwarding and the route table work between 2 and 3.
        assert await aapi_ok(n2, "mesh.send", {"c": cid3, "d": "no seed needed"}) == {"s": True}
        assert await ws_recv(ws3) == "no seed needed"
        uids = [f"s{k}" for k in range(200)]
        m2 = await asyncio.to_thread(uid_map, n2, uids)
        assert m2 == await asyncio.to_thread(uid_map, n3, uids)
        assert set(m2.values()) == {addrs(n2)["tcp_addr"], addrs(n3)["tcp_addr"]}, set(m2.values())
        # A consumer on node 2 gets node 3's client events once node 3's local consumer leaves.
        await cons3.close()
        cons2 = await m.consumer_on(n2)
        await ws3.send("to node 2's consumer")
        ev = await cons2.wait_event(ev_frame_of(cid3, "to node 2's consumer"), EVENT_TIMEOUT)
        assert ev["p"]["n"] == 3

    await asyncio.to_thread(restart, n1)
    await asyncio.to_thread(wait_all_alive, [n1, n2, n3], JOIN_TIMEOUT)
    n4 = await asyncio.to_thread(start_mesh_node, nodes, 4, (mesh_addr(n3),))
    await asyncio.to_thread(wait_all_alive, [n1, n2, n3, n4], JOIN_TIMEOUT)
    full = await asyncio.to_thread(uid_map, n1, uids)
    for n in (n2, n3, n4):
        assert await asyncio.to_thread(uid_map, n, uids) == full, f"node {n.node_id} routes differently"
    assert len(set(full.values())) == 4


async def test_consumer_node_dies_unacked_events_redelivered(nodes):
    """At-least-once while the producing node lives: the consumer's whole node dies, its unacknowledged
    events (held by the producing node) go to a consumer on another node."""
    n1, n2, n3 = await asyncio.to_thread(start_cluster, nodes, (1, 2, 3))
    N = 10
    async with Mesh() as m:
        a = await m.consumer_on(n3, ack=True)
        ws, cid, _, _ = await m.client_on(n2, [a], "/consumer-dies")
        for k in range(N):
            await ws.send(f"cd{k}")
        for k in range(N):
            await a.wait_event(ev_frame_of(cid, f"cd{k}"), EVENT_TIMEOUT, f"cd{k} at the consumer on node 3")
        sigkill(n3)
        b = await m.consumer_on(n1, ack=True)
        got = []
        for _ in range(N):
            ev = await b.wait_event(ev_frame_of(cid), DEAD_AFTER + EVENT_TIMEOUT,
                                    f"redelivered message ({len(got)} of {N} so far)")
            got.append(frame_of(ev)["data"])
            await b.ok("queue.ack", {"k": [ev["p"]["k"]]})
        assert sorted(got) == sorted(f"cd{k}" for k in range(N)), got
        await ws.send("next")
        ev = await b.wait_event(ev_frame_of(cid, "next"), EVENT_TIMEOUT)
        assert ev["p"]["n"] == 2


async def test_drain_flushes_close_events_to_remote_consumer(nodes):
    """SIGTERM on a node: its clients are closed with 1001 and their close events reach a consumer on
    another node before it exits; the others then see it dead and stop routing to it."""
    n1, n2, n3 = await asyncio.to_thread(start_cluster, nodes, (1, 2, 3))
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        clients = [await m.client_on(n3, [cons], "/drain") for _ in range(3)]
        await clients[0][0].send("before drain")
        await cons.wait_event(ev_frame_of(clients[0][1], "before drain"), EVENT_TIMEOUT)
        n3.terminate()
        for ws, cid, _, _ in clients:
            code, _ = await ws_wait_closed(ws, n3.cfg["node"]["drain_timeout"] + 2)
            assert code == 1001, f"client of a draining node closed with {code}"
        for ws, cid, _, _ in clients:
            ev = await cons.wait_event(ev_close_of(cid), EVENT_TIMEOUT, f"close event of {cid} from the drained node")
            assert ev["p"]["n"] == 3 and ev["p"]["d"]["code"] == 1001, ev
        err = await asyncio.to_thread(n3.wait_exit)
        assert err is None, err

        def gone():
            return all(node_states(n).get(3) in ("dead", None) for n in (n1, n2))
        await asyncio.to_thread(wait_until, gone, DEAD_AFTER + 2, "nodes 1 and 2 see the drained node 3 gone")
        r = await asyncio.to_thread(uid_map, n1, [f"d{k}" for k in range(100)])
        assert addrs(n3)["tcp_addr"] not in set(r.values())


async def test_new_node_takes_the_id_of_a_dead_node(nodes):
    """Only a *live* node's id is refused: a new process with the id of a dead node, on other ports,
    joins and the cluster uses its new addresses."""
    n1, n2, n3 = await asyncio.to_thread(start_cluster, nodes, (1, 2, 3))
    sigkill(n3)

    def dead():
        return all(node_states(n).get(3) == "dead" for n in (n1, n2))
    await asyncio.to_thread(wait_until, dead, DEAD_AFTER + 4, "node 3 dead")
    n3b = await asyncio.to_thread(start_mesh_node, nodes, 3, (mesh_addr(n2),), 1, CLUSTER, SECRET,
                                  {"node": {"name": "mesh-3-new"}})
    await asyncio.to_thread(wait_all_alive, [n1, n2, n3b], JOIN_TIMEOUT)
    for n in (n1, n2):
        e3 = [e for e in await nodes_view(n) if int(e["id"]) == 3]
        assert len(e3) == 1 and e3[0]["name"] == "mesh-3-new" and e3[0]["state"] == "alive", e3
        assert {k: e3[0]["addresses"].get(k) for k in addrs(n3b)} == addrs(n3b), e3
    uids = [f"new{k}" for k in range(300)]
    mp = await asyncio.to_thread(uid_map, n1, uids)
    assert addrs(n3b)["tcp_addr"] in set(mp.values()), "the new node 3 gets no uids"
    if addrs(n3)["tcp_addr"] != addrs(n3b)["tcp_addr"]:  # the new node may have got the old one's free port
        assert addrs(n3)["tcp_addr"] not in set(mp.values()), "uids routed to the old node 3's address"
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        ws, cid, _, _ = await m.client_on(n3b, [cons], "/new3")
        assert await aapi_ok(n2, "mesh.send", {"c": cid, "d": "hello new 3"}) == {"s": True}
        assert await ws_recv(ws) == "hello new 3"


# ---------------------------------------------------------------------------------------------------
# Refused peers
# ---------------------------------------------------------------------------------------------------

REFUSAL_WORDS = r"refus|reject|denied|mismatch|wrong|invalid|fail|bad|differ|unknown|duplicate|already|auth"


@pytest.mark.parametrize("case", ["wrong_secret", "other_cluster", "duplicate_id"])
def test_refused_peer(pair, nodes, case):
    p1, p2 = pair
    bad_id, cluster, secret, reason = {
        "wrong_secret": (7, "itest-pair", "not-the-secret-0123456789", r"secret|hmac|auth"),
        "other_cluster": (8, "itest-other", "pair-secret-0123456789", r"cluster"),
        "duplicate_id": (2, "itest-pair", "pair-secret-0123456789", r"duplicate|node id|same id|\bid\b|already"),
    }[case]
    # Only what node 1 logs and counts from now on is about this peer (the pair is shared by the cases).
    log_before = len(p1.stderr(tail=100000).splitlines())
    refused_before = metric_value(p1, "meshgate_mesh_refused_total") or 0
    bad = start_mesh_node(nodes, bad_id, (mesh_addr(p1),), 1, cluster, secret,
                          {"node": {"name": "intruder"}})
    name_of_2 = "mesh-2"
    # Watch for a while: long enough for a join (which takes well under a second on loopback) and for
    # one dead_after period.
    deadline = time.monotonic() + DEAD_AFTER + 2
    polls = 0
    while time.monotonic() < deadline:
        for n in pair:
            entries = node_list(n)
            alive = {int(e["id"]) for e in entries if e["state"] == "alive"}
            assert alive == {1, 2}, f"{case}: node {n.node_id} of the cluster lists alive {sorted(alive)}: {entries!r}"
            e2 = [e for e in entries if int(e["id"]) == 2]
            assert len(e2) == 1 and e2[0]["name"] == name_of_2, f"{case}: node {n.node_id}: entry of id 2 {e2!r}"
        own = node_list(bad)
        own_alive = [e for e in own if e["state"] == "alive"]
        assert len(own_alive) == 1 and own_alive[0]["self"] is True and int(own_alive[0]["id"]) == bad_id, \
            f"{case}: the refused node lists alive {own_alive!r}"
        polls += 1
        time.sleep(0.2)
    assert polls >= 5
    # The refusing node (the seed that was contacted) says why.
    pat_reason = re.compile(reason, re.I)
    pat_refused = re.compile(REFUSAL_WORDS, re.I)
    log = p1.stderr(tail=100000).splitlines()[log_before:]
    lines = [ln for ln in log if pat_reason.search(ln) and pat_refused.search(ln)]
    bad_lines = [ln for ln in bad.stderr(tail=5000).splitlines() if pat_reason.search(ln)]
    refused = metric_value(p1, "meshgate_mesh_refused_total") or 0
    assert refused > refused_before, f"{case}: refusal not counted (meshgate_mesh_refused_total {refused})"
    assert lines, (f"{case}: the log of node 1 (the refusing seed) has no line matching /{reason}/ and "
                   f"/{REFUSAL_WORDS}/; refused node's log lines matching the reason: {bad_lines[:5]!r}\n"
                   f"--- node 1 stderr since the peer started ---\n" + "\n".join(log[-40:]))
    # The cluster itself is untouched.
    for n in pair:
        assert alive_ids(n) == {1, 2}
