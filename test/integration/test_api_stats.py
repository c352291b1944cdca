"""node.stats and channel.top (docs/api.md "Node statistics"): what the dashboard reads, checked as any
API user sees it.
- node.stats: connections and per-listener counts follow clients; message counters, publishes and
  deliveries follow traffic; refusals and closes by reason; queue topics with consumers, pending and
  unacknowledged events; the process block; 101 for a bad "node";
- channel.top: channels by subscribers summed over the node's workers, largest first, "n" bounds it;
- "node": both methods answer for another node of the mesh, forwarded to it; 501 for a node that is
  not an alive member.
"""
import asyncio

import pytest

from harness import Session, aapi_call, aapi_ok, api_err, api_ok, http_request, ws_connect, ws_recv
from test_mesh import sigkill, start_cluster


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({"listener.ws": {"max_message": 1024}})


def listener(stats, name):
    return next(l for l in stats["listeners"] if l["name"] == name)


async def test_node_stats_follow_clients_and_traffic(node):
    before = await aapi_ok(node, "node.stats", {})
    assert before["node"] == node.node_id and before["name"] == "itest-1" and before["draining"] is False
    assert before["process"]["resident_bytes"] > 0 and before["process"]["open_fds"] > 0
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["room:stats"]})
        await ws.send("hello")
        await cons.wait_event(lambda e: e["p"]["d"].get("frame", {}).get("data") == "hello")
        r = await aapi_ok(node, "mesh.publish", {"c": "room:stats", "d": "x"})
        assert r == {"s": 1, "f": 0}
        assert await ws_recv(ws) == "x"
        during = await aapi_ok(node, "node.stats", {})
        assert during["connections"] == before["connections"] + 1
        ws_l, ws_l0 = listener(during, "ws"), listener(before, "ws")
        assert ws_l["connections"] == ws_l0["connections"] + 1 and ws_l["accepted"] == ws_l0["accepted"] + 1
        assert ws_l["messages_in"] == ws_l0["messages_in"] + 1 and ws_l["messages_out"] == ws_l0["messages_out"] + 1
        assert during["publishes"] == before["publishes"] + 1
        assert during["deliveries"]["ok"] == before["deliveries"]["ok"] + 1
        topic = next(t for t in during["queue"] if t["topic"] == "client")
        assert topic["consumers"] == 1
        await ws.send("x" * 2000)  # over max_message: closed with 1009
        await asyncio.wait_for(ws.wait_closed(), 5)
    after = await aapi_ok(node, "node.stats", {})
    assert after["closes"].get("1009", 0) == before["closes"].get("1009", 0) + 1, after["closes"]
    assert after["connections"] == before["connections"]
    assert set(after["refused"]) == {"max_connections", "bad_handshake", "per_ip", "accept_rate", "token", "origin",
                                     "tls_handshake", "handshake_timeout"}


async def test_node_stats_queue_pending_and_unacked(node):
    async with Session(node) as s:
        # No consumer yet: the client's events wait in its topic; then an acknowledging consumer
        # takes them and holds them unacknowledged.
        ws = await ws_connect(node.port("ws"), "/q")
        try:
            for i in range(3):
                await ws.send(f"m{i}")
            deadline = asyncio.get_running_loop().time() + 5
            while True:
                t = next(t for t in (await aapi_ok(node, "node.stats", {}))["queue"] if t["topic"] == "client")
                if t["pending"] >= 4 or asyncio.get_running_loop().time() > deadline:  # open + 3 messages
                    break
                await asyncio.sleep(0.05)
            assert t["pending"] >= 4 and t["consumers"] == 0, t
            cons = await s.consumer(ack=True)
            await cons.wait_event(lambda e: e["p"]["d"].get("frame", {}).get("data") == "m2")
            t = next(t for t in (await aapi_ok(node, "node.stats", {}))["queue"] if t["topic"] == "client")
            assert t["consumers"] == 1 and t["pending"] == 0 and t["unacked"] >= 4, t
        finally:
            await ws.close()


async def test_channel_top(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ids = []
        for _ in range(4):
            _, cid, _ = await s.ws_client(cons)
            ids.append(cid)
        # room:big 4 subscribers, room:mid 2, room:one 1 (spread over the node's two workers).
        for i, cid in enumerate(ids):
            chans = ["room:big"] + (["room:mid"] if i < 2 else []) + (["room:one"] if i == 0 else [])
            await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": chans})
        top = (await aapi_ok(node, "channel.top", {}))["channels"]
        assert top[:3] == [{"c": "room:big", "s": 4}, {"c": "room:mid", "s": 2}, {"c": "room:one", "s": 1}], top
        assert (await aapi_ok(node, "channel.top", {"n": 1}))["channels"] == [{"c": "room:big", "s": 4}]


def test_bad_params(node):
    api_err(node, "channel.top", {"n": 0}, 101)
    api_err(node, "channel.top", {"n": 101}, 101)
    api_err(node, "node.stats", {"node": "one"}, 101)
    api_err(node, "node.stats", {"node": 5000}, 101)
    e = api_err(node, "node.stats", {"node": 9}, 501)  # single node: no node 9
    assert "node 9" in e["m"]


async def test_another_node_through_the_mesh(nodes):
    a, b, c = start_cluster(nodes)
    ws = await ws_connect(c.port("ws"), "/remote")
    try:
        stats_c = None
        for _ in range(50):
            stats_c = await aapi_ok(a, "node.stats", {"node": 3})
            if stats_c["connections"] == 1:
                break
            await asyncio.sleep(0.05)
        assert stats_c["node"] == 3 and stats_c["name"] == "mesh-3" and stats_c["connections"] == 1
        assert (await aapi_ok(a, "node.stats", {"node": 1}))["node"] == 1  # itself
        assert (await aapi_ok(a, "channel.top", {"node": 2, "n": 5})) == {"channels": []}
    finally:
        await ws.close()
    sigkill(c)
    for _ in range(100):
        _, body = await aapi_call(a, "node.stats", {"node": 3})
        if body["E"] and body["E"]["c"] == 501:
            break
        await asyncio.sleep(0.1)
    assert body["E"]["c"] == 501, body


def test_dashboard_files_are_served_from_the_binary(node):
    r = http_request(node.api_port, "GET", "/dashboard")
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8"
    assert b'src="/dashboard/dashboard.js"' in r.body and b'href="/dashboard/dashboard.css"' in r.body
    csp = r.header("Content-Security-Policy") or ""
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    js = http_request(node.api_port, "GET", "/dashboard/dashboard.js")
    assert js.status == 200 and js.header("Content-Type").startswith("text/javascript") and b"node.stats" in js.body
    assert http_request(node.api_port, "GET", "/dashboard/dashboard.css").status == 200
    assert http_request(node.api_port, "GET", "/dashboard/").body == r.body
    assert http_request(node.api_port, "GET", "/dashboard/embed.py").status == 404
    assert http_request(node.api_port, "POST", "/dashboard", body={}).status == 405


def test_listener_names_are_json_escaped(nodes):
    odd = 'we"ird\\name'
    n = nodes.start({f"listener.{odd}": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client"}})
    names = {l["name"] for l in api_ok(n, "node.stats", {})["listeners"]}
    assert odd in names, names
