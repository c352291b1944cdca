"""The cluster scenarios against both backbones (issue 23): the same checks with `[cluster] backbone =
mesh` and with `backbone = nats`, one module parameterised over the backbone (ids [mesh] and [nats]).

Each variant runs three meshgate nodes (ids 1, 2, 3) on loopback. With NATS they are given every URL
of a real three-server NATS cluster started by the test from Debian's nats-server (nats_cluster.py:
routed full mesh, JetStream on); the mesh variant is test_mesh.py's cluster (node 1 the seed).

Scenarios of test_mesh.py that hold for any backbone are run from here as they are, on this module's
cluster (`cluster`), or on a fresh one started on the variant's backbone (`own_cluster`, for those
that kill or stop nodes): calls to a client on another node, large and pipelined sends, fan-out, the
queue across nodes (waiting events, local consumers first, acknowledged redelivery, a consumer's node
dying), node death (SIGKILL: dead within dead_after, 501, route table, rejoin), a hung node, a drain.

Written here, for both variants:
- membership: every node lists 1, 2, 3 alive within a few seconds (with NATS, no "mesh_addr");
- `mesh.publish` from node 1 to a channel held by clients of nodes 2 and 3: every subscriber gets it
  and `s` counts them; `mesh.broadcast`; `channel.count` summed over the nodes;
- the route API: every node gives the same answer for a set of uids.
NATS only:
- the NATS cluster itself (three servers routed to each other, JetStream with a meta leader);
- one NATS server of the three SIGKILLed mid-run: calls and publishes go on once the nodes'
  connections moved to the others, nothing lost of what is sent, published or queued after that;
- the whole backbone down: a node's own clients still get its `mesh.publish`, a cross-node
  `mesh.send` gets 501; after the servers restart the cross-node calls work again;
- queue events the stream acknowledged outlive the producing node (the consuming node and then the
  producing node SIGKILLed, the consuming node restarted gets them all, in order);
- no server at start: the node starts, says so, and connects when the servers come.

`[nats] publish_wait_ms` is raised from its default (20 ms) to PUBLISH_WAIT_MS: `s` counts the answers
that arrive within it, and on a loaded two-core test machine 20 ms is not always enough.
"""
import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import (Node, NodeManager, aapi_call, aapi_ok, api_call, api_ok, ev_frame_of, frame_of, meshgate_bin,
                     metric_value, ws_recv)
from nats_cluster import NatsCluster, require_nats_server
import test_mesh
from test_mesh import (CALL_TIMEOUT, EVENT_TIMEOUT, JOIN_TIMEOUT, SECRET, Mesh, addrs, get_route, intranet_host,
                       node_list, start_cluster, start_mesh_node, uid_map,
                       wait_all_alive, wait_any, wait_until)

PUBLISH_WAIT_MS = 250
RECONNECT_TIMEOUT = 20.0  # cross-node calls work again after NATS servers went away or came back

_cluster_names = itertools.count(1)


def cluster_name():
    """A cluster name (the NATS subject prefix) of its own for each cluster, so that nodes of one test
    never see another's on the shared NATS servers."""
    return f"itest-bb-{os.getpid()}-{next(_cluster_names)}"


class Backbone:
    """What a cluster of the test runs on: kind "mesh" or "nats" (then `nats` is a NatsCluster)."""

    def __init__(self, kind, nats=None):
        self.kind = kind
        self.nats = nats

    def __repr__(self):
        return self.kind

    def node_extra(self, node_id):
        """Per-node overrides beyond start_mesh_node's own."""
        extra = {"node": {"intranet_advertise": intranet_host(node_id)}}
        if self.kind == "nats":
            extra.update(nats_overrides(self.nats.servers_value()))
        return extra

    def start_nodes(self, mgr, ids=(1, 2, 3), name=None):
        """Starts nodes `ids` on this backbone and waits until every one lists all alive."""
        name = name or cluster_name()
        if self.kind == "mesh":
            return start_cluster(mgr, ids, cluster=name)
        ns = [start_mesh_node(mgr, nid, (), 1, name, SECRET, self.node_extra(nid)) for nid in ids]
        wait_all_alive(ns, JOIN_TIMEOUT)
        return ns


def nats_overrides(servers):
    """The configuration of a node on NATS (`servers`: the value of [nats] servers), no mesh port (nor
    seeds or secret)."""
    return {"cluster": {"backbone": "nats"},
            "nats": {"servers": servers, "publish_wait_ms": PUBLISH_WAIT_MS, "stream_replicas": 3,
                     "stream_max_bytes": 16 << 20},
            "mesh": {"port": 0, "seeds": None, "secret": None}}


def skip_unless_built_with_nats():
    """Skips when this meshgate was built without NATS (-Dnats=disabled), as its --check-config says;
    any other refusal of the configuration is left to fail the node's start."""
    workdir = own_workdir("meshgate-nats-probe-")
    try:
        probe = Node(workdir, nats_overrides("nats://127.0.0.1:4222"), name="nats-probe")
        r = subprocess.run([meshgate_bin(), "--check-config", "-c", probe.conf_path], capture_output=True,
                           text=True, timeout=10)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if r.returncode != 0 and "no NATS support" in (r.stdout + r.stderr):
        pytest.skip(f"this meshgate was built without NATS: {(r.stdout + r.stderr).strip()}")


def need_nats(backbone):
    if backbone.kind != "nats":
        pytest.skip("NATS only")
    return backbone.nats


def fail_on(errors):
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


def own_workdir(prefix):
    # Not pytest's tmp_path (see conftest._workdir): kept when something failed, for its logs.
    return tempfile.mkdtemp(prefix=prefix)


@contextlib.contextmanager
def running_nats():
    """A started NatsCluster in a directory of its own (kept, with the servers' logs, when the cluster
    failed to stop cleanly)."""
    require_nats_server()
    workdir = own_workdir("meshgate-nats-")
    nats = NatsCluster(workdir)
    errors = []
    try:
        nats.start_all()
        yield nats
    finally:
        errors = nats.stop_all()
    fail_on(errors)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module", params=["mesh", "nats"])
def backbone(request):
    """The backbone of the module's variant; for "nats", a three-server NATS cluster shared by the
    variant's tests (those that kill NATS servers start their own: own_nats)."""
    if request.param == "mesh":
        yield Backbone("mesh")
        return
    require_nats_server()
    skip_unless_built_with_nats()
    with running_nats() as nats:
        yield Backbone("nats", nats)


@pytest.fixture(scope="module")
def cluster(backbone):
    """Nodes 1, 2, 3 on the variant's backbone, shared by the tests that leave them as they found them."""
    workdir = own_workdir("meshgate-it-")
    mgr = NodeManager(workdir)
    try:
        yield backbone.start_nodes(mgr, name="itest-bb-shared")
    finally:
        errors = mgr.stop_all()
    fail_on(errors)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def own_nats(backbone):
    """A NATS cluster for one test, which may kill its servers (NATS variant only)."""
    need_nats(backbone)
    with running_nats() as nats:
        yield Backbone("nats", nats)


async def subscribed_clients(m, where, channel, caller, conss=None):
    """Clients on the nodes of `where` (a list of nodes, one client per entry), each found through a
    consumer on its own node (one per node, made here unless `conss` {node id: consumer} has it),
    subscribed to `channel` by a conn.call on `caller`. Returns [(node, ws, cid)]."""
    out = []
    conss = {} if conss is None else conss
    for n in where:
        if n.node_id not in conss:
            conss[n.node_id] = await m.consumer_on(n)
        ws, cid, _, _ = await m.client_on(n, [conss[n.node_id]], "/bb")
        assert await aapi_ok(caller, "conn.call", {"c": cid, "f": "subscribe", "a": [channel]}) == {"s": True}
        out.append((n, ws, cid))
    return out


# ---------------------------------------------------------------------------------------------------
# The NATS cluster itself
# ---------------------------------------------------------------------------------------------------

def test_nats_cluster_routed_with_jetstream(backbone):
    """Three servers, each routed to both others, JetStream on with its own store and one meta leader:
    when this fails, the meshgate tests of the NATS variant tell nothing about meshgate."""
    nats = need_nats(backbone)
    names = {s.name for s in nats.servers}
    assert len(names) == 3
    for s in nats.servers:
        st, varz = s.monitor("varz")
        assert st == 200 and varz["server_name"] == s.name and varz["cluster"]["name"] == nats.name, varz
        st, routez = s.monitor("routez")
        assert st == 200 and routez["num_routes"] == 2, f"{s.name}: {routez!r}"
        st, jsz = s.monitor("jsz")
        assert st == 200 and jsz["config"]["store_dir"].startswith(s.store_dir), f"{s.name}: {jsz!r}"
        meta = jsz["meta_cluster"]
        assert meta["leader"] in names, f"{s.name}: {meta!r}"
        if meta["leader"] == s.name:
            assert meta["cluster_size"] == 3 and len(meta["replicas"]) == 2, f"{s.name}: {meta!r}"


# ---------------------------------------------------------------------------------------------------
# Membership
# ---------------------------------------------------------------------------------------------------

def test_membership_every_node_lists_all_alive(backbone, cluster):
    by_id = {n.node_id: n for n in cluster}
    for n in cluster:
        entries = node_list(n)
        assert sorted(int(e["id"]) for e in entries) == [1, 2, 3], f"node {n.node_id} lists {entries!r}"
        for e in entries:
            nid = int(e["id"])
            assert e["state"] == "alive", f"node {n.node_id} sees node {nid} as {e['state']!r}"
            assert e["name"] == f"mesh-{nid}" and e["self"] is (nid == n.node_id), f"node {n.node_id}: {e!r}"
            assert isinstance(e["connections"], int) and e["connections"] >= 0, e
            want = addrs(by_id[nid])
            assert {k: e["addresses"].get(k) for k in want} == want, f"node {n.node_id}: node {nid}: {e!r}"
            if backbone.kind == "nats":
                assert "mesh_addr" not in e, f"node {n.node_id}: a NATS member with a mesh address: {e!r}"


# ---------------------------------------------------------------------------------------------------
# Calls to a client on another node
# ---------------------------------------------------------------------------------------------------

async def test_send_call_info_to_a_client_on_another_node(cluster):
    """test_mesh.py's scenario: mesh.send (text, binary, JSON), conn.call (context, subscribe,
    unsubscribe, close) and conn.info from nodes 1 and 3 to a client of node 2; its refusals come back
    as they are; a publish from node 3 reaches it; what it sends carries the context."""
    await test_mesh.test_send_call_info_to_client_on_other_node(cluster)


@pytest.mark.parametrize("owner", [2, 77])
async def test_client_not_connected_errors(cluster, owner):
    """401 / 301 at once for a client id of live node 2 that has no such connection, or of a node that
    was never a member (test_mesh.py's scenario)."""
    await test_mesh.test_remote_client_not_connected_errors(cluster, owner)


async def test_sends_large_and_pipelined_in_order(cluster):
    """700 kB text and 300 kB binary cross intact; 300 pipelined sends arrive in order (test_mesh.py)."""
    await test_mesh.test_forwarded_sends_large_and_in_order(cluster)


# ---------------------------------------------------------------------------------------------------
# Publish, broadcast, channel.count
# ---------------------------------------------------------------------------------------------------

async def test_publish_reaches_subscribers_on_two_other_nodes(cluster):
    n1, n2, n3 = cluster
    async with Mesh() as m:
        clients = await subscribed_clients(m, [n2, n3, n3], "bbp:room", n1)
        r = await aapi_ok(n1, "mesh.publish", {"c": "bbp:room", "d": "from node 1"})
        assert r == {"s": 3, "f": 0}, f"mesh.publish from node 1 to 1 subscriber of node 2 and 2 of node 3: {r!r}"
        for _, ws, _ in clients:
            assert await ws_recv(ws) == "from node 1"
        # From a node that holds some of them, binary.
        r = await aapi_ok(n3, "mesh.publish", {"c": "bbp:room", "d": "AP8=", "t": "binary"})
        assert r == {"s": 3, "f": 0}, f"mesh.publish from node 3: {r!r}"
        for _, ws, _ in clients:
            assert await ws_recv(ws) == b"\x00\xff"
        # Several in a row from node 1 arrive in order at every subscriber.
        for k in range(20):
            assert await aapi_ok(n1, "mesh.publish", {"c": "bbp:room", "d": f"seq{k}"}) == {"s": 3, "f": 0}
        for _, ws, cid in clients:
            got = [await ws_recv(ws) for _ in range(20)]
            assert got == [f"seq{k}" for k in range(20)], f"client {cid}: {got}"
        # A channel nobody holds.
        assert await aapi_ok(n1, "mesh.publish", {"c": "bbp:nobody", "d": "x"}) == {"s": 0, "f": 0}


async def test_publish_fan_out_many_clients_per_node(cluster):
    """40 subscribers on each node, subscribed through node 1: a publish from each node reaches all 120
    and counts them (test_mesh.py)."""
    await test_mesh.test_publish_fan_out_many_clients_per_node(cluster)


async def test_channel_count_summed_over_nodes(cluster):
    n1, n2, n3 = cluster
    async with Mesh() as m:
        clients = await subscribed_clients(m, [n1, n2, n3, n3], "bbc:room", n2)
        for n in cluster:
            assert await aapi_ok(n, "channel.count", {"c": "bbc:room"}) == {"s": 4}, f"channel.count on {n.node_id}"
        # A remote unsubscribe, then a client that leaves: the count follows on every node.
        assert await aapi_ok(n1, "conn.call", {"c": clients[3][2], "f": "unsubscribe", "a": ["bbc:room"]}) \
            == {"s": True}
        for n in cluster:
            assert await aapi_ok(n, "channel.count", {"c": "bbc:room"}) == {"s": 3}, f"channel.count on {n.node_id}"
        await clients[1][1].close()

        def count_is_2():
            return all(api_ok(n, "channel.count", {"c": "bbc:room"}) == {"s": 2} for n in cluster)
        await asyncio.to_thread(wait_until, count_is_2, 5.0, "channel.count 2 everywhere after a subscriber left")
        assert await aapi_ok(n3, "channel.count", {"c": "bbc:nobody"}) == {"s": 0}


async def test_broadcast_reaches_every_client(cluster):
    async with Mesh() as m:
        clients = []
        for n in cluster:
            cons = await m.consumer_on(n)
            ws, cid, _, _ = await m.client_on(n, [cons], "/bb-all")
            clients.append((n, ws, cid))
        r = await aapi_ok(cluster[0], "mesh.broadcast", {"d": "to everyone"})
        assert r == {"s": 3, "f": 0}, f"mesh.broadcast from node 1: {r!r} (3 clients in the cluster)"
        for _, ws, _ in clients:
            assert await ws_recv(ws) == "to everyone"
        r = await aapi_ok(cluster[2], "mesh.broadcast", {"d": "AP8=", "t": "binary"})
        assert r == {"s": 3, "f": 0}, f"mesh.broadcast from node 3: {r!r}"
        for _, ws, _ in clients:
            assert await ws_recv(ws) == b"\x00\xff"


# ---------------------------------------------------------------------------------------------------
# Route API
# ---------------------------------------------------------------------------------------------------

def test_route_same_answer_on_every_node(cluster):
    uids = [f"bb-user-{i}" for i in range(1000)]
    maps = [uid_map(n, uids) for n in cluster]
    for n, mp in zip(cluster[1:], maps[1:]):
        diff = [u for u in uids if mp[u] != maps[0][u]]
        assert not diff, f"node {n.node_id} assigns {len(diff)} uids differently from node 1, e.g. {diff[:3]}"
    assert set(maps[0].values()) == {addrs(n)["tcp_addr"] for n in cluster}, \
        f"uids spread over {sorted(set(maps[0].values()))}"
    for u in uids[:20]:
        for n in cluster:
            assert get_route(n, f"&uid={u}")["tcp_addr"] == maps[0][u], f"GET /route uid={u} on node {n.node_id}"


# ---------------------------------------------------------------------------------------------------
# Queue events across nodes
# ---------------------------------------------------------------------------------------------------

async def test_client_of_node_2_consumed_on_node_3(cluster):
    """Events of a client of node 2 that it sent before any consumer existed, consumed in order by a
    consumer on node 3 (test_mesh.py's scenario)."""
    await test_mesh.test_events_wait_on_producing_node_until_a_remote_consumer_pops(cluster)


async def test_consumer_on_node_1_gets_events_of_nodes_2_and_3(cluster):
    """Open, text and binary frames, close, with `n` and the context set from node 1 (test_mesh.py)."""
    await test_mesh.test_consumer_on_one_node_gets_events_of_all_nodes(cluster)


async def test_two_consumers_each_event_once_local_first(cluster):
    """Consumers on nodes 1 and 2, clients everywhere: each event once, a node's own consumer first,
    one client's events to one consumer, in order (test_mesh.py)."""
    await test_mesh.test_two_consumers_each_event_once_local_first(cluster)


async def test_acked_events_redelivered_to_a_consumer_on_another_node(cluster):
    """A consumer on node 1 vanishes without acknowledging a client of node 2's events: a consumer on
    node 3 gets them all again, the open event too (test_mesh.py)."""
    await test_mesh.test_ack_mode_redelivered_across_nodes(cluster)


# ---------------------------------------------------------------------------------------------------
# Node death and rejoin
# ---------------------------------------------------------------------------------------------------

@pytest.fixture
def own_cluster(backbone, nodes, monkeypatch):
    """For test_mesh.py's scenarios that start a cluster of their own (test_mesh.start_cluster(nodes,
    (1, 2, 3))): that cluster starts on this variant's backbone, with a cluster name of its own."""
    def start_on_backbone(mgr, ids=(1, 2, 3), weights=None, **_):
        assert weights is None, "a scenario with route weights: not supported here"
        return backbone.start_nodes(mgr, ids)
    monkeypatch.setattr(test_mesh, "start_cluster", start_on_backbone)
    return nodes


async def test_node_death_seen_calls_501_rejoin(own_cluster):
    """Node 3 SIGKILLed: nodes 1 and 2 mark it dead within dead_after + 2 s, calls to its client get
    501 in under a second (HTTP and /ws/v1), it leaves the route table (only its uids move), and
    restarted it rejoins and gets its uids back (test_mesh.py's scenario)."""
    await test_mesh.test_node_death_and_rejoin(own_cluster)


async def test_hung_node_calls_time_out_then_dead_then_back(own_cluster):
    """Node 3 SIGSTOPped: a short stall is not death; a long one gives 501 within call_timeout, then
    dead; after SIGCONT it is back with its clients and subscriptions (test_mesh.py)."""
    await test_mesh.test_hung_node_calls_time_out_then_dead_then_back(own_cluster)


async def test_consumer_node_dies_unacked_events_redelivered(own_cluster):
    """The node of an acknowledging consumer dies: the unacknowledged events of a client of node 2 go
    to a consumer on node 1 (test_mesh.py)."""
    await test_mesh.test_consumer_node_dies_unacked_events_redelivered(own_cluster)


async def test_drain_flushes_close_events_to_remote_consumer(own_cluster):
    """Node 3 drained (SIGTERM): its clients' close events reach a consumer on node 1, then node 3 is
    gone everywhere (test_mesh.py)."""
    await test_mesh.test_drain_flushes_close_events_to_remote_consumer(own_cluster)


# ---------------------------------------------------------------------------------------------------
# NATS faults
# ---------------------------------------------------------------------------------------------------

def cross_calls_work(pairs):
    """True when conn.info from each (caller node, client id of another node) answers the client."""
    for caller, cid in pairs:
        st, body = api_call_quiet(caller, "conn.info", {"c": cid})
        if not (st == 200 and body.get("E") is None and (body.get("r") or {}).get("s") is True):
            return False
    return True


def api_call_quiet(node, method, params):
    try:
        return api_call(node, method, params)
    except (AssertionError, OSError) as e:
        return None, {"E": repr(e)}


async def test_nats_server_killed_calls_and_publishes_go_on(own_nats, nodes):
    nats = own_nats.nats
    n1, n2, n3 = await asyncio.to_thread(own_nats.start_nodes, nodes)
    async with Mesh() as m:
        conss = {}
        clients = await subscribed_clients(m, [n2, n3], "bbk:room", n1, conss)
        (_, ws2, cid2), (_, ws3, cid3) = clients
        assert await aapi_ok(n1, "mesh.publish", {"c": "bbk:room", "d": "before"}) == {"s": 2, "f": 0}
        for _, ws, _ in clients:
            assert await ws_recv(ws) == "before"

        # The server with the most client connections (the nodes pick their server at random).
        counts = await asyncio.to_thread(nats.client_counts)
        victim = max(sorted(counts), key=lambda i: counts[i])
        print(f"client connections per NATS server: {counts}; killing server {victim}")
        await asyncio.to_thread(nats.kill, victim)
        pairs = [(n1, cid2), (n1, cid3), (n2, cid3), (n3, cid2)]
        _, took = await asyncio.to_thread(wait_until, lambda: cross_calls_work(pairs), RECONNECT_TIMEOUT,
                                          f"cross-node calls after NATS server {victim} was killed", 0.2)
        print(f"cross-node calls answered again {took:.2f}s after the kill")
        await asyncio.to_thread(wait_all_alive, [n1, n2, n3], JOIN_TIMEOUT)

        # Nothing lost of what is sent or published now.
        assert await aapi_ok(n3, "mesh.send", {"c": cid2, "d": "send after"}) == {"s": True}
        assert await ws_recv(ws2) == "send after"
        assert await aapi_ok(n2, "mesh.send", {"c": cid3, "d": "send after"}) == {"s": True}
        assert await ws_recv(ws3) == "send after"
        for n in (n1, n2, n3):
            for k in range(10):
                r = await aapi_ok(n, "mesh.publish", {"c": "bbk:room", "d": f"after {n.node_id}/{k}"})
                assert r == {"s": 2, "f": 0}, f"mesh.publish {k} from node {n.node_id} after the kill: {r!r}"
            for _, ws, cid in clients:
                got = [await ws_recv(ws) for _ in range(10)]
                assert got == [f"after {n.node_id}/{k}" for k in range(10)], f"client {cid}: {got}"
        for n in (n1, n2, n3):
            assert await aapi_ok(n, "channel.count", {"c": "bbk:room"}) == {"s": 2}, f"channel.count on {n.node_id}"
        # Queue events of a client of node 1 (no consumer there) reach the consumers of nodes 2 and 3.
        ws1, cid1, idx, _ = await m.client_on(n1, [conss[2], conss[3]], "/bbk-q")
        for k in range(10):
            await ws1.send(f"q{k}")
        got = []
        for k in range(10):
            _, ev = await wait_any([conss[2], conss[3]], ev_frame_of(cid1), EVENT_TIMEOUT,
                                   f"message {k} of node 1's client after the kill")
            got.append(frame_of(ev)["data"])
        assert got == [f"q{k}" for k in range(10)], f"queue events of node 1's client after the kill: {got}"

        # The server comes back; everything still works.
        await asyncio.to_thread(nats.start, victim)
        assert await aapi_ok(n1, "mesh.publish", {"c": "bbk:room", "d": "all servers"}) == {"s": 2, "f": 0}
        for _, ws, _ in clients:
            assert await ws_recv(ws) == "all servers"


async def test_nats_backbone_down_local_publish_cross_501_then_back(own_nats, nodes):
    nats = own_nats.nats
    n1, n2, n3 = await asyncio.to_thread(own_nats.start_nodes, nodes)
    async with Mesh() as m:
        (_, ws1, cid1), (_, ws2, cid2) = await subscribed_clients(m, [n1, n2], "bbd:room", n3)
        assert await aapi_ok(n1, "mesh.publish", {"c": "bbd:room", "d": "up"}) == {"s": 2, "f": 0}
        assert await ws_recv(ws1) == "up" and await ws_recv(ws2) == "up"

        for i in range(len(nats.servers)):
            await asyncio.to_thread(nats.kill, i)
        # Local clients still get node 1's publish and sends; s counts at least them.
        t0 = time.monotonic()
        st, body = await aapi_call(n1, "mesh.publish", {"c": "bbd:room", "d": "backbone down"})
        took = time.monotonic() - t0
        assert st == 200 and body.get("E") is None and body["r"]["s"] >= 1, \
            f"mesh.publish on node 1 with the backbone down: {st} {body!r}"
        assert took <= CALL_TIMEOUT + 1.0, f"mesh.publish with the backbone down answered after {took:.2f}s"
        assert await ws_recv(ws1) == "backbone down"
        assert await aapi_ok(n1, "mesh.send", {"c": cid1, "d": "local send"}) == {"s": True}
        assert await ws_recv(ws1) == "local send"
        # Cross-node calls: 501, as to a dead node, within call_timeout.
        for method, params in (("mesh.send", {"c": cid2, "d": "lost"}), ("conn.info", {"c": cid2})):
            t0 = time.monotonic()
            st, body = await aapi_call(n1, method, params)
            took = time.monotonic() - t0
            assert st == 200 and (body.get("E") or {}).get("c") == 501, \
                f"{method} from node 1 to a client of node 2, backbone down: expected E.c=501, got {st} {body!r}"
            assert took <= CALL_TIMEOUT + 1.0, f"{method} with the backbone down answered after {took:.2f}s"

        # The servers come back (all at once: one alone has no JetStream quorum): cross-node calls work again.
        await asyncio.to_thread(nats.start, *range(len(nats.servers)))
        pairs = [(n1, cid2), (n2, cid1), (n3, cid1), (n3, cid2)]
        _, took = await asyncio.to_thread(wait_until, lambda: cross_calls_work(pairs), RECONNECT_TIMEOUT,
                                          "cross-node calls after the NATS servers restarted", 0.3)
        print(f"cross-node calls answered again {took:.2f}s after the servers were ready")
        await asyncio.to_thread(wait_all_alive, [n1, n2, n3], JOIN_TIMEOUT)
        assert await aapi_ok(n1, "mesh.send", {"c": cid2, "d": "back"}) == {"s": True}
        # A 501 says the call is not known to be delivered, not that it never will be (test_mesh.py's
        # hung node too): what node 1 sent while the backbone was down may arrive late, before "back".
        got = [await ws_recv(ws2)]
        while got[-1] != "back" and len(got) < 3:
            got.append(await ws_recv(ws2))
        assert got[-1] == "back" and set(got[:-1]) <= {"lost", "backbone down"}, \
            f"client of node 2 received {got!r}, expected 'back' (after at most what was sent while down)"
        print(f"client of node 2 received after the outage: {got!r}")
        assert await aapi_ok(n2, "mesh.publish", {"c": "bbd:room", "d": "together"}) == {"s": 2, "f": 0}
        assert await ws_recv(ws1) == "together" and await ws_recv(ws2) == "together"


async def test_nats_queue_events_survive_the_producing_node(backbone, own_cluster):
    """What the stream acknowledged outlives the node that took it (issue 23): node 3, the only
    consuming node, is SIGKILLed; within dead_after node 2 still sends its client's events on (into
    the stream); node 2 is SIGKILLed too; node 3 restarted pulls them all, in order. (Over the mesh
    they would die with node 2, which held them for the dead consumer's node.)"""
    need_nats(backbone)
    n1, n2, n3 = await asyncio.to_thread(test_mesh.start_cluster, own_cluster, (1, 2, 3))
    N = 8
    async with Mesh() as m:
        a = await m.consumer_on(n3, ack=True)
        ws, cid, _, ev = await m.client_on(n2, [a], "/survive")
        await a.ok("queue.ack", {"k": [ev["p"]["k"]]})
        await asyncio.to_thread(test_mesh.sigkill, n3)
        for k in range(N):
            await ws.send(f"s{k}")
        # Node 2 forwards while node 3 is still alive in its view; give the stream time to take them all.
        await asyncio.to_thread(
            wait_until, lambda: metric_value(n2, "meshgate_nats_events_forwarded_total") >= N + 1, 3.0,
            "node 2 forwarded its client's events into the stream", 0.05)
        await asyncio.to_thread(wait_until, lambda: all(
            q == 0 for q in [metric_value(n2, "meshgate_queue_depth", topic="client")]), 3.0,
            "node 2 holds none of them any more (the stream acknowledged them)", 0.05)
        await asyncio.to_thread(test_mesh.sigkill, n2)
        await asyncio.to_thread(test_mesh.restart, n3)
        b = await m.consumer_on(n3, ack=True)
        got = []
        while len(got) < N:
            ev = await b.wait_event(ev_frame_of(cid), EVENT_TIMEOUT + 3,
                                    f"event of the dead node 2's client ({len(got)} of {N} so far)")
            assert ev["p"]["n"] == 2, ev
            got.append(frame_of(ev)["data"])
            await b.ok("queue.ack", {"k": [ev["p"]["k"]]})
        assert got == [f"s{k}" for k in range(N)], f"events of node 2's client after its death: {got}"


def test_nats_no_server_at_start_then_one_comes(backbone, nodes):
    """No NATS server answers at start: the node starts anyway (and says so), serves its own API, and
    joins the cluster once a server is there (docs/cluster.md "Faults")."""
    need_nats(backbone)
    with running_nats() as nats:
        urls = nats.servers_value()
        for i in range(len(nats.servers)):
            nats.kill(i)
        n1 = start_mesh_node(nodes, 1, (), 1, cluster_name(), SECRET,
                             {"node": {"intranet_advertise": intranet_host(1)}, **nats_overrides(urls)})
        assert "no server of [nats] servers answers yet" in n1.stderr(), n1.stderr()
        assert [e["id"] for e in node_list(n1)] == [1]
        nats.start(*range(len(nats.servers)))
        wait_until(lambda: metric_value(n1, "meshgate_nats_connected") == 1, RECONNECT_TIMEOUT,
                   "node 1 connected once the servers were up", 0.2)
