"""The seeds' end-to-end scenario (seeds/002): a backend authenticates a client through the queue, sets its
context, subscribes it, pushes to it, reads what it sends, and disconnects it."""

import pytest

from harness import (Session, TcpClient, aapi_ok, ev_close_of, ev_frame_of, ev_open_from, frame_of, ws_connect,
                     ws_recv, ws_wait_closed)


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({"node": {"id": 1}})


async def test_seed_scenario_websocket(node):
    async with Session(node) as s:
        cons = await s.consumer(["client"])

        # A browser connects.
        ws = await ws_connect(node.port("ws"), "/chat?a=1")
        s.closers.append(ws.close)
        ev = await cons.wait_event(ev_open_from(ws.local_address[1], cons=cons), what="open event")
        cid = ev["p"]["c"]
        assert ev["p"]["n"] == 1 and ev["p"]["t"] == "client"
        assert ev["p"]["d"]["event"] == "open" and ev["p"]["d"]["path"] == "/chat" and ev["p"]["d"]["query"] == "a=1"

        # The backend authenticates it and remembers who it is (the seed's conn.call example).
        r = await cons.call("conn.call", {"c": cid, "f": "set_context_value", "a": ["user_id", 10000]}, i=12345)
        assert r == {"E": None, "r": {"s": True}, "i": 12345}
        r = await cons.call("conn.call", {"c": cid, "f": "subscribe", "a": ["room:1"]}, i=12346)
        assert r == {"E": None, "r": {"s": True}, "i": 12346}

        # Publishing to its room reaches it; a room nobody is in reaches nobody.
        assert await aapi_ok(node, "mesh.publish", {"c": "room:1", "d": "hello room"}) == {"s": 1, "f": 0}
        assert await ws_recv(ws) == "hello room"
        assert await aapi_ok(node, "mesh.publish", {"c": "room:2", "d": "nobody"}) == {"s": 0, "f": 0}
        r = await cons.call("mesh.publish", {"c": "room:1", "d": "via ws api"})
        assert r["E"] is None and r["r"] == {"s": 1, "f": 0}
        assert await ws_recv(ws) == "via ws api"

        # A direct send reaches it.
        assert await aapi_ok(node, "mesh.send", {"c": cid, "d": "just for you"}) == {"s": True}
        assert await ws_recv(ws) == "just for you"

        # What it sends reaches the consumer with its context.
        await ws.send('{"say":"hi"}')
        ev = await cons.wait_event(ev_frame_of(cid))
        assert ev["p"]["c"] == cid and ev["p"]["n"] == 1 and ev["p"]["t"] == "client"
        assert ev["p"]["d"] == {"frame": {"type": "text", "data": '{"say":"hi"}', "finish": True}}
        assert ev["p"]["x"] == {"user_id": 10000}

        # The backend disconnects it; the consumer sees it go.
        assert await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": []}) == {"s": True}
        code, _ = await ws_wait_closed(ws)
        assert code == 1000
        ev = await cons.wait_event(ev_close_of(cid), what="close event")
        assert ev["p"]["d"]["code"] == 1000 and ev["p"]["x"] == {"user_id": 10000}
        assert await aapi_ok(node, "mesh.publish", {"c": "room:1", "d": "left"}) == {"s": 0, "f": 0}
        assert await aapi_ok(node, "channel.count", {"c": "room:1"}) == {"s": 0}


async def test_seed_scenario_tcp_device(node):
    async with Session(node) as s:
        cons = await s.consumer(["client"])
        dev = await TcpClient.connect(node.port("tcp"))
        s.closers.append(dev.close)
        ev = await cons.wait_event(ev_open_from(dev.local_port, cons=cons), what="open event")
        cid = ev["p"]["c"]
        await dev.send('{"auth":"secret"}')
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev)["data"] == '{"auth":"secret"}' and "x" not in ev["p"]
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context", "a": [{"user_id": 7, "dev": "d1"}]})
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["devices:all"]})
        assert await aapi_ok(node, "mesh.publish", {"c": "devices:all", "d": "fw 1.2"}) == {"s": 1, "f": 0}
        assert await dev.recv() == b"fw 1.2"
        await dev.send("ack fw")
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev)["data"] == "ack fw" and ev["p"]["x"] == {"user_id": 7, "dev": "d1"}
        await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": []})
        assert await dev.expect_eof()
        ev = await cons.wait_event(ev_close_of(cid))
        assert ev["p"]["d"]["code"] == 1000
