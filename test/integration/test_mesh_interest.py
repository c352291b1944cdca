"""Interest routing and mesh protocol version 3 (issue 22, docs/cluster.md "Interest routing").

Five nodes on loopback (node 1 the seed). Checks:
- a publish to a channel held on 2 of 5 nodes reaches exactly its subscribers, and the origin sends
  2 CALL frames, not 4 (meshgate_mesh_frames_sent_total{type="CALL"}); channel.count the same; s and f
  stay exact;
- a node whose last subscriber of a channel unsubscribes (or leaves) drops out of the channel's set on
  every node: a later publish sends it no frame;
- the sets follow deaths and new links: a node that dies is dropped from every set; when the origin
  itself dies and comes back, the holders announce their sets again on the new links, and its
  publishes go to the holders only once it knows;
- the subscribe rule: a publish started anywhere after a subscribe's answer reaches the subscriber
  (many iterations, subscribe called on the subscriber's node and on another node), and the answer
  waits for a peer that has not applied the change yet (SIGSTOPped for a second), but no longer
  than call_timeout (then counted);
- a peer speaking an older protocol version (3, before SWIM; version 2 was refused the same way when
  this node spoke 3) is refused with a clear reason, logged and counted, whether it
  dials a node or the node dials it.
"""
import asyncio
import json
import os
import signal
import socket
import threading
import time

import pytest

from harness import aapi_ok, metric_value, metrics, parse_metrics, ws_recv
from test_mesh import (Mesh, mesh_addr, restart, sigkill, start_mesh_node, wait_all_alive,
                       wait_until, JOIN_TIMEOUT)
from test_mesh_security import HELLO, REFUSE, FrameReader, frame, hello_of, log_lines_since, log_mark

RECV_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def five(module_nodes):
    """Nodes 1..5, node 1 the seed of the others; every mesh address advertised as 127.0.0.1 (the
    others find each other through node 1's member list)."""
    nodes = [start_mesh_node(module_nodes, 1, (), advertise_mesh=True)]
    for nid in (2, 3, 4, 5):
        nodes.append(start_mesh_node(module_nodes, nid, (mesh_addr(nodes[0]),), advertise_mesh=True))
    wait_all_alive(nodes, JOIN_TIMEOUT)
    return nodes


def calls_sent(node):
    return metric_value(node, "meshgate_mesh_frames_sent_total", type="CALL") or 0


def interest_of(node, peer):
    """How many channels `node` knows `peer` holds; None while it does not know (or `peer` said "all")."""
    for name, labels, v in parse_metrics(metrics(node)):
        if name == "meshgate_mesh_interest_channels" and labels.get("node") == str(peer):
            return v
    return None


def wait_interest(nodes, peer, count, timeout=5.0):
    wait_until(lambda: all(interest_of(n, peer) == count for n in nodes if n.node_id != peer), timeout,
               f"every node to know that node {peer} holds {count} channel(s)")


async def recv(ws, timeout=RECV_TIMEOUT):
    return await asyncio.wait_for(ws_recv(ws), timeout)


async def nothing_more(ws, wait=0.3):
    try:
        got = await asyncio.wait_for(ws_recv(ws), wait)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"a client got {got!r}, which was not for it")


async def publish_counting(origin, channel, data, quiet=()):
    """mesh.publish on `origin`: (answer, CALL frames the origin sent for it). `quiet` nodes must send
    no REPLY meanwhile (they were not called)."""
    before = calls_sent(origin)
    replies = [metric_value(n, "meshgate_mesh_frames_sent_total", type="REPLY") for n in quiet]
    r = await aapi_ok(origin, "mesh.publish", {"c": channel, "d": data})
    sent = calls_sent(origin) - before
    for n, b in zip(quiet, replies):
        assert metric_value(n, "meshgate_mesh_frames_sent_total", type="REPLY") == b, \
            f"node {n.node_id} holds no subscriber of {channel} but answered a call"
    return r, sent


async def clients_on(m, cons, nodes, path):
    """[(ws, client id)] of one WebSocket client on each of `nodes`."""
    out = []
    for n in nodes:
        ws, cid, _, _ = await m.client_on(n, [cons], path)
        out.append((ws, cid))
    return out


async def test_publish_and_count_go_only_to_the_holders(five):
    n1, n2, n3, n4, n5 = five
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        # node 3's client holds another channel only
        (ws4, c4), (ws5, c5), (ws3, c3) = await clients_on(m, cons, (n4, n5, n3), "/interest")
        for c in (c4, c5):
            assert await aapi_ok(n1, "conn.call", {"c": c, "f": "subscribe", "a": ["int:two"]}) == {"s": True}
        assert await aapi_ok(n3, "conn.call", {"c": c3, "f": "subscribe", "a": ["int:other"]}) == {"s": True}
        # The answer came after every node applied the change: no waiting here.
        for peer in (4, 5):
            assert all(interest_of(n, peer) == 1 for n in five if n.node_id != peer), f"node {peer}'s set"
        skipped = metric_value(n2, "meshgate_mesh_fanout_skipped_total")
        r, sent = await publish_counting(n2, "int:two", "to two", quiet=(n1, n3))
        assert r == {"s": 2, "f": 0}, r
        assert sent == 2, f"node 2 sent {sent} CALL frames for a channel held on 2 nodes (want 2, not 4)"
        assert metric_value(n2, "meshgate_mesh_fanout_skipped_total") - skipped == 2  # nodes 1 and 3
        assert await recv(ws4) == "to two" and await recv(ws5) == "to two"
        await nothing_more(ws3)
        # From a holder: its own client locally, one CALL for the other holder.
        r, sent = await publish_counting(n4, "int:two", "from a holder", quiet=(n1, n2, n3))
        assert (r, sent) == ({"s": 2, "f": 0}, 1), (r, sent)
        assert await recv(ws4) == "from a holder" and await recv(ws5) == "from a holder"
        # channel.count: the same two calls, the same exact sum.
        before = calls_sent(n2)
        assert await aapi_ok(n2, "channel.count", {"c": "int:two"}) == {"s": 2}
        assert calls_sent(n2) - before == 2
        # A channel nobody holds costs no frame at all; broadcast still goes everywhere.
        r, sent = await publish_counting(n2, "int:nobody", "lost", quiet=(n1, n3, n4, n5))
        assert (r, sent) == ({"s": 0, "f": 0}, 0), (r, sent)
        before = calls_sent(n2)
        assert await aapi_ok(n2, "mesh.broadcast", {"d": "all"}) == {"s": 3, "f": 0}
        assert calls_sent(n2) - before == 4
        for ws in (ws3, ws4, ws5):
            assert await recv(ws) == "all"

        # The last subscriber on node 5 unsubscribes: node 5 leaves the set everywhere.
        assert await aapi_ok(n2, "conn.call", {"c": c5, "f": "unsubscribe", "a": ["int:two"]}) == {"s": True}
        wait_interest(five, 5, 0)
        r, sent = await publish_counting(n2, "int:two", "to one", quiet=(n1, n3, n5))
        assert (r, sent) == ({"s": 1, "f": 0}, 1), (r, sent)
        assert await recv(ws4) == "to one"
        await nothing_more(ws5)
        # A subscriber that leaves takes its node out too.
        await ws4.close()
        wait_interest(five, 4, 0)
        r, sent = await publish_counting(n2, "int:two", "to none", quiet=(n1, n3, n4, n5))
        assert (r, sent) == ({"s": 0, "f": 0}, 0), (r, sent)
        assert await aapi_ok(n2, "conn.call", {"c": c3, "f": "unsubscribe", "a": ["int:other"]}) == {"s": True}
        wait_interest(five, 3, 0)


async def test_subscribe_then_publish_race(five):
    """The rule: once a subscribe was answered, a publish started on any node reaches the subscriber.
    Each iteration takes a fresh channel (the node's first subscriber: a change every node must learn),
    subscribes on node 4 (the call made on node 4 itself, or forwarded from node 3), and publishes on
    another node at once."""
    n1, n2, n3, n4, n5 = five
    iterations = 150
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        ws, cid, _, _ = await m.client_on(n4, [cons], "/race")
        api_local = await m.api_on(n4)
        api_remote = await m.api_on(n3)
        publishers = [await m.api_on(n) for n in (n1, n2, n3, n5)]
        for i in range(iterations):
            ch = f"race:{i}"
            caller = api_local if i % 2 == 0 else api_remote
            r = await caller.call("conn.call", {"c": cid, "f": "subscribe", "a": [ch]}, timeout=10)
            assert r.get("r") == {"s": True}, f"iteration {i}: subscribe answered {r!r}"
            pub = publishers[i % len(publishers)]
            r = await pub.call("mesh.publish", {"c": ch, "d": f"m{i}"}, timeout=10)
            assert r.get("r") == {"s": 1, "f": 0}, f"iteration {i}: publish on a node after the subscribe: {r!r}"
            assert await recv(ws) == f"m{i}", f"iteration {i}"
            if i % 3 == 0:  # some drop out again: removals interleave with additions
                r = await caller.call("conn.call", {"c": cid, "f": "unsubscribe", "a": [ch]}, timeout=10)
                assert r.get("r") == {"s": True}, r
        await ws.close()
    wait_interest(five, 4, 0)


async def test_subscribe_answer_waits_for_a_stalled_peer(five):
    """A peer that has not applied the change holds the subscribe's answer back (up to call_timeout):
    node 3 is stopped for 1 s (less than dead_after), the answer comes only after it resumed, and a
    publish on node 3 right after the answer reaches the subscriber."""
    n1, n2, n3, n4, n5 = five
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        ws, cid, _, _ = await m.client_on(n4, [cons], "/stall")
        api = await m.api_on(n4)
        os.kill(n3.proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            task = asyncio.ensure_future(api.call("conn.call", {"c": cid, "f": "subscribe", "a": ["stall:1"]},
                                                  timeout=10))
            await asyncio.sleep(1.0)
            assert not task.done(), f"the subscribe was answered while node 3 had not applied it: {task.result()!r}"
        finally:
            os.kill(n3.proc.pid, signal.SIGCONT)
        r = await task
        waited = time.monotonic() - t0
        assert r.get("r") == {"s": True}, r
        assert 1.0 <= waited < 2.5, f"answered after {waited:.2f} s (node 3 resumed after 1 s)"
        assert await aapi_ok(n3, "mesh.publish", {"c": "stall:1", "d": "after the stall"}) == {"s": 1, "f": 0}
        assert await recv(ws) == "after the stall"
        await ws.close()
    wait_interest(five, 4, 0)


async def test_subscribe_wait_is_bounded_by_call_timeout(nodes):
    """A peer stalled longer than call_timeout (1 s here) but not yet dead does not hold a subscribe's
    answer longer: it comes between call_timeout and call_timeout plus a tick, while the peer is still
    stopped, and is counted."""
    trio = [start_mesh_node(nodes, 1, (), advertise_mesh=True, extra={"mesh": {"call_timeout": 1}})]
    for nid in (2, 3):
        trio.append(start_mesh_node(nodes, nid, (mesh_addr(trio[0]),), advertise_mesh=True,
                                    extra={"mesh": {"call_timeout": 1}}))
    wait_all_alive(trio, JOIN_TIMEOUT)
    n1, n2, n3 = trio
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        [(ws, cid)] = await clients_on(m, cons, (n2,), "/bounded")
        api = await m.api_on(n2)
        os.kill(n3.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = await api.call("conn.call", {"c": cid, "f": "subscribe", "a": ["bounded:1"]}, timeout=10)
            waited = time.monotonic() - t0
        finally:
            os.kill(n3.proc.pid, signal.SIGCONT)
        assert r.get("r") == {"s": True}, r
        # dead_after 3: node 3 is silent-dead only after 2.25 s, so the answer came from the timeout.
        assert 0.9 <= waited < 2.0, f"answered after {waited:.2f} s (call_timeout 1 s, tick 0.75 s)"
        assert metric_value(n2, "meshgate_mesh_subscribe_wait_timeouts_total") == 1
        # Node 3 catches up after it resumes: its next publish reaches the subscriber.
        wait_until(lambda: interest_of(n3, 2) == 1, 5.0, "node 3 to apply node 2's change")
        assert await aapi_ok(n3, "mesh.publish", {"c": "bounded:1", "d": "late"}) == {"s": 1, "f": 0}
        assert await recv(ws) == "late"


async def test_sets_follow_deaths_and_new_links(five):
    n1, n2, n3, n4, n5 = five
    async with Mesh() as m:
        cons = await m.consumer_on(n1)
        (ws4, c4), (ws5, c5) = await clients_on(m, cons, (n4, n5), "/life")
        for c in (c4, c5):
            assert await aapi_ok(n1, "conn.call", {"c": c, "f": "subscribe", "a": ["life:1"]}) == {"s": True}
        # The origin dies and comes back: it knows nothing of the others' sets until their full sets
        # arrive on the new links (meanwhile it would call every node), then it calls the holders only.
        sigkill(n2)
        restart(n2)
        wait_all_alive(five, JOIN_TIMEOUT)
        wait_until(lambda: interest_of(n2, 4) == 1 and interest_of(n2, 5) == 1 and interest_of(n2, 3) == 0,
                   5.0, "node 2 to learn the holders' sets on its new links")
        r, sent = await publish_counting(n2, "life:1", "after the restart", quiet=(n1, n3))
        assert (r, sent) == ({"s": 2, "f": 0}, 2), (r, sent)
        assert await recv(ws4) == "after the restart" and await recv(ws5) == "after the restart"
        # A holder dies: every node drops its set; a publish no longer calls it.
        sigkill(n5)
        wait_until(lambda: all(interest_of(n, 5) is None for n in (n1, n2, n3, n4)), 10.0,
                   "every node to drop the dead node's set")
        r, sent = await publish_counting(n2, "life:1", "one left", quiet=(n1, n3))
        assert (r, sent) == ({"s": 1, "f": 0}, 1), (r, sent)
        assert await recv(ws4) == "one left"
        # It comes back (its clients gone): it announces an empty set; a new subscriber puts it back.
        restart(n5)
        wait_all_alive(five, JOIN_TIMEOUT)
        wait_interest(five, 5, 0)
        ws5b, c5b, _, _ = await m.client_on(n5, [cons], "/life")
        assert await aapi_ok(n5, "conn.call", {"c": c5b, "f": "subscribe", "a": ["life:1"]}) == {"s": True}
        r, sent = await publish_counting(n2, "life:1", "back", quiet=(n1, n3))
        assert (r, sent) == ({"s": 2, "f": 0}, 2), (r, sent)
        assert await recv(ws4) == "back" and await recv(ws5b) == "back"
        await ws4.close()
        await ws5b.close()


# ---------------------------------------------------------------------------------------------------
# Protocol version 4 (SWIM): version 3 peers are refused, both ways
# ---------------------------------------------------------------------------------------------------

def old_version_hello(node_id, cluster, **extra):
    return hello_of(node_id, **dict({"v": 3, "cluster": cluster}, **extra))


def test_older_version_peer_dialling_is_refused(five):
    n1 = five[0]
    mark = log_mark(n1)
    before = metric_value(n1, "meshgate_mesh_version_refused_total") or 0
    refused = metric_value(n1, "meshgate_mesh_refused_total") or 0
    s = socket.create_connection(("127.0.0.1", n1.mesh_port), timeout=3)
    try:
        r = FrameReader(s)
        s.sendall(frame(HELLO, old_version_hello(9, "itest-mesh")))
        t, body, _ = r.next()
        assert t == HELLO and json.loads(body)["v"] == 4, (t, body)
        t, body, _ = r.next()
        assert t == REFUSE, (t, body)
        reason = json.loads(body)["reason"]
        assert "protocol version 3 is not supported (this node speaks 4" in reason, reason
        assert r.next(timeout=2) is None, "the node kept the link open after refusing it"
    finally:
        s.close()
    assert metric_value(n1, "meshgate_mesh_version_refused_total") == before + 1
    assert metric_value(n1, "meshgate_mesh_refused_total") == refused + 1
    wait_until(lambda: any("protocol version 3 is not supported" in ln for ln in log_lines_since(n1, mark)), 3.0,
               "the refusal in node 1's log")


def test_older_version_peer_dialled_is_refused(nodes):
    """A node whose seed speaks version 3: the node dials it, reads its HELLO and refuses it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(10)
    addr = f"127.0.0.1:{srv.getsockname()[1]}"
    got = {}

    def old_node():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            r = FrameReader(conn)
            f = r.next(timeout=5)
            got["hello"] = f and json.loads(f[1])
            conn.sendall(frame(HELLO, old_version_hello(9, "itest-mesh", mesh=addr)))
            f = r.next(timeout=5)
            got["reply"] = f and (f[0], json.loads(f[1]))
    t = threading.Thread(target=old_node, daemon=True)
    t.start()
    n = start_mesh_node(nodes, 1, (addr,))
    t.join(15)
    srv.close()
    assert got.get("hello", {}).get("v") == 4, got
    assert got.get("reply", (None,))[0] == REFUSE, got
    assert "protocol version 3 is not supported" in got["reply"][1]["reason"], got
    assert metric_value(n, "meshgate_mesh_version_refused_total") >= 1
    wait_until(lambda: any("refused peer" in ln and "protocol version 3" in ln for ln in n.stderr(tail=200).splitlines()),
               3.0, "the refusal in the node's log")
