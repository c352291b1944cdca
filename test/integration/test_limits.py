"""[limits] and friends: max_connections, output buffers of clients that stop reading, context and channel
limits, request head limits on every HTTP port, /ws/v1 message size."""

import asyncio
import json

import pytest
import websockets.exceptions

import harness
from harness import (Session, aapi_call, aapi_err, aapi_ok, ev_close_of, ev_open_from, http_request, metric_value,
                     wait_metric, ws_connect, ws_recv, ws_wait_closed)


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "api": {"max_body": 4096},
        "limits": {"max_context_bytes": 256, "max_context_keys": 4, "max_channels": 4,
                   "max_header_bytes": 2048, "max_headers": 16},
    })


# ---- context and channels ----

async def test_context_key_limit_301_unchanged(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        for k in range(4):
            await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context_value", "a": [f"k{k}", k]})
        await aapi_err(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["k4", 4]}, 301)
        want = {"k0": 0, "k1": 1, "k2": 2, "k3": 3}
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == want
        # Overwriting an existing key does not add one.
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["k0", "zero"]})
        want["k0"] = "zero"
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == want
        await aapi_err(node, "conn.call", {"c": cid, "f": "set_context",
                                           "a": [{f"n{k}": k for k in range(5)}]}, 301)
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == want


async def test_context_byte_limit_301_unchanged(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context", "a": [{"user_id": 10000}]})
        await aapi_err(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["blob", "x" * 300]}, 301)
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == {"user_id": 10000}
        await aapi_err(node, "conn.call", {"c": cid, "f": "set_context", "a": [{"blob": "y" * 300}]}, 301)
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == {"user_id": 10000}
        # Comfortably under the limit is fine.
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["blob", "z" * 100]})
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == {"user_id": 10000, "blob": "z" * 100}
        # Events still carry the unchanged context.
        await ws.send("m")
        ev = await cons.wait_event(harness.ev_frame_of(cid, "m"))
        assert ev["p"]["x"] == {"user_id": 10000, "blob": "z" * 100}


async def test_channel_limit_301_nothing_applied(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["lc1", "lc2", "lc3"]})
        await aapi_err(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["lc4", "lc5"]}, 301)
        assert sorted((await aapi_ok(node, "conn.info", {"c": cid}))["ch"]) == ["lc1", "lc2", "lc3"]
        assert await aapi_ok(node, "channel.count", {"c": "lc4"}) == {"s": 0}
        assert await aapi_ok(node, "mesh.publish", {"c": "lc4", "d": "x"}) == {"s": 0, "f": 0}
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["lc4"]})
        await aapi_err(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["lc5"]}, 301)
        # Already subscribed: not past the limit.
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["lc1"]})
        assert sorted((await aapi_ok(node, "conn.info", {"c": cid}))["ch"]) == ["lc1", "lc2", "lc3", "lc4"]
        await aapi_ok(node, "conn.call", {"c": cid, "f": "unsubscribe", "a": ["lc2"]})
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["lc5"]})
        assert await aapi_ok(node, "mesh.publish", {"c": "lc5", "d": "five"}) == {"s": 1, "f": 0}
        assert await ws_recv(ws) == "five"


# ---- sizes of API messages and request heads ----

async def test_api_ws_message_over_max_body_1009(node):
    ws = await ws_connect(node.api_port, "/ws/v1")
    try:
        await ws.send(json.dumps({"m": "mesh.broadcast", "p": {"d": "x" * 5000}, "i": 1}))
        code, _ = await ws_wait_closed(ws)
        assert code == 1009
    finally:
        await ws.close()


def test_head_limits_on_route_port(node):
    r = http_request(node.route_port, "GET", "/route?intranet=0", headers={f"X-H{i}": "v" for i in range(20)})
    assert r.status == 431, r
    r = http_request(node.route_port, "GET", "/route?intranet=0", headers={"X-Big": "b" * 3000})
    assert r.status == 431, r
    assert http_request(node.route_port, "GET", "/route?intranet=0").status == 200


async def test_head_limits_on_ws_listener(node):
    for headers in ({f"X-H{i}": "v" for i in range(20)}, {"X-Big": "b" * 3000}):
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            ws = await ws_connect(node.port("ws"), "/", headers)
            await ws.close()
        assert ei.value.status_code == 431


# ---- max_connections ----

async def test_max_connections(nodes):
    n = nodes.start({"limits": {"max_connections": 3}})
    async with Session(n) as s:
        cons = await s.consumer()
        ws1, c1, _ = await s.ws_client(cons)
        t1, _, _ = await s.tcp_client(cons)
        t2, _, _ = await s.tcp_client(cons, listener="tcp32")
        # A fourth TCP client: closed right away, no open event.
        extra = harness.connect_raw(n.port("tcp"))
        try:
            assert harness.wait_closed_by_peer(extra, 3), "connection over max_connections not closed"
            await cons.no_event(ev_open_from(extra.getsockname()[1]), 0.3)
        finally:
            extra.close()
        # A fourth WebSocket client: the handshake cannot complete.
        with pytest.raises((websockets.exceptions.InvalidHandshake, websockets.exceptions.ConnectionClosed,
                            OSError, EOFError, asyncio.TimeoutError)):
            w = await ws_connect(n.port("ws"), "/", timeout=3)
            await w.close()
        refused = await asyncio.to_thread(wait_metric, n, "meshgate_connections_refused_total", lambda v: v >= 2)
        assert refused >= 2
        # The control API is not a client connection: it keeps working at the limit.
        assert await aapi_ok(n, "mesh.send", {"c": c1, "d": "still served"}) == {"s": True}
        assert await ws_recv(ws1) == "still served"
        # One leaves, another gets in.
        await ws1.close()
        await cons.wait_event(ev_close_of(c1))
        ws4, c4, _ = await s.ws_client(cons)
        assert c4 != c1


# ---- output buffers of clients that stop reading ----

async def test_output_hard_limit_closes_1008(nodes):
    n = nodes.start({"limits": {"output_hard_limit": 262144, "output_soft_limit": 262144,
                                "output_soft_seconds": 60}})
    async with Session(n) as s:
        cons = await s.consumer()
        ok_ws, ok_cid, _ = await s.ws_client(cons)
        slow = harness.connect_raw(n.port("tcp"), rcvbuf=4096)
        try:
            ev = await cons.wait_event(ev_open_from(slow.getsockname()[1], cons=cons))
            cid = ev["p"]["c"]
            chunk = "o" * 60000
            closed = None
            for k in range(400):  # at most 24 MB
                status, body = await aapi_call(n, "mesh.send", {"c": cid, "d": chunk})
                assert status == 200, body
                if body["E"] is not None:
                    assert body["E"]["c"] == 401, body
                    break
                if k % 10 == 0:
                    got = cons.take_events(ev_close_of(cid))
                    if got:
                        closed = got[0]
                        break
            if closed is None:
                closed = await cons.wait_event(ev_close_of(cid), what="close event of the slow reader")
            assert closed["p"]["d"]["code"] == 1008, closed
            await aapi_err(n, "mesh.send", {"c": cid, "d": "x"}, 401)
            v = await asyncio.to_thread(wait_metric, n, "meshgate_output_buffer_closes_total", lambda v: v >= 1)
            assert v >= 1
            # Other clients were not affected.
            await aapi_ok(n, "mesh.send", {"c": ok_cid, "d": "fine"})
            assert await ws_recv(ok_ws) == "fine"
        finally:
            harness.rst_close(slow)


async def test_output_soft_limit_closes_1008(nodes):
    n = nodes.start({"limits": {"output_hard_limit": 268435456, "output_soft_limit": 65536,
                                "output_soft_seconds": 1}})
    async with Session(n) as s:
        cons = await s.consumer()
        slow = harness.connect_raw(n.port("ws"), rcvbuf=4096)
        try:
            slow.sendall(harness.ws_upgrade_request(n.port("ws"), "/slow"))
            resp, _ = harness.read_http_response(slow)
            assert resp is not None and resp.status == 101, resp
            ev = await cons.wait_event(ev_open_from(slow.getsockname()[1], cons=cons))
            cid = ev["p"]["c"]
            await aapi_ok(n, "conn.call", {"c": cid, "f": "subscribe", "a": ["slowroom"]})
            chunk = "p" * 60000
            closed = None
            for k in range(150):  # about 9 MB: more than the kernel buffers hold
                await aapi_call(n, "mesh.publish", {"c": "slowroom", "d": chunk})
                got = cons.take_events(ev_close_of(cid))
                if got:
                    closed = got[0]
                    break
            # Stay over the soft limit for longer than soft_seconds (small pushes keep it there).
            for _ in range(30):
                if closed is not None:
                    break
                await aapi_call(n, "mesh.publish", {"c": "slowroom", "d": "tick"})
                try:
                    closed = await cons.wait_event(ev_close_of(cid), timeout=0.2)
                except AssertionError:
                    pass
            assert closed is not None, "slow reader over the soft limit was not closed"
            assert closed["p"]["d"]["code"] == 1008, closed
            assert await aapi_ok(n, "channel.count", {"c": "slowroom"}) == {"s": 0}
            assert metric_value(n, "meshgate_output_buffer_closes_total") >= 1
        finally:
            harness.rst_close(slow)


async def test_reading_client_survives_large_traffic(nodes):
    # A client that reads is never closed, even for traffic far above the soft limit.
    n = nodes.start({"limits": {"output_hard_limit": 1048576, "output_soft_limit": 262144,
                                "output_soft_seconds": 1}})
    async with Session(n) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        chunk = "r" * 50000
        for k in range(60):  # 3 MB
            assert await aapi_ok(n, "mesh.send", {"c": cid, "d": f"{k}:{chunk}"}) == {"s": True}
            assert (await ws_recv(ws)).startswith(f"{k}:")
        assert ws.open
        await cons.no_event(ev_close_of(cid), 0)
