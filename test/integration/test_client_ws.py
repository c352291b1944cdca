"""Client WebSocket listeners (PROTOCOL.md §3.1) with Debian's python3-websockets and raw frames, seen from
the client and from a queue consumer; mesh.send / publish / broadcast and conn.call / conn.info on them."""

import asyncio
import base64
import os
import subprocess
import time

import pytest
import websockets.exceptions

import harness
from harness import (OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Session, aapi_err, aapi_ok,
                     close_payload, ev_close_of, ev_frame_of, frame_of, split_client_id, ws_connect, ws_recv,
                     ws_wait_closed)

NODE_ID = 5


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "node": {"id": NODE_ID},
        "listener.wsonly": {"type": "ws", "bind": "127.0.0.1", "port": None, "path": "/only"},
        "listener.wssmall": {"type": "ws", "bind": "127.0.0.1", "port": None, "max_message": 1024},
        "listener.wsidle": {"type": "ws", "bind": "127.0.0.1", "port": None, "idle_timeout": 2,
                            "ping_interval": 0},
        "listener.wsping": {"type": "ws", "bind": "127.0.0.1", "port": None, "ping_interval": 1,
                            "idle_timeout": 0},
    })


async def close_event(cons, cid, timeout=5):
    ev = await cons.wait_event(ev_close_of(cid), timeout, what=f"close event of {cid}")
    return ev["p"]["d"]


# ---- upgrade and open events ----

async def test_open_event_fields(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, ev = await s.ws_client(cons, path="/chat?a=1")
        assert ev["e"] == "queue.pop" and ev.get("id", "missing") is None, ev
        p = ev["p"]
        assert p["n"] == NODE_ID and p["t"] == "client" and p["c"] == cid
        assert "x" not in p, f"empty context must be left out: {p!r}"
        assert p["d"] == {"event": "open", "listener": "ws", "remote_addr": f"127.0.0.1:{ws.local_address[1]}",
                          "path": "/chat", "query": "a=1"}


async def test_upgrade_on_any_path(node):
    async with Session(node) as s:
        cons = await s.consumer()
        for path in ("/", "/a/b/c", "/x?y=z&w=1"):
            ws, cid, ev = await s.ws_client(cons, path=path)
            assert ev["p"]["d"]["path"] == path.split("?")[0]
            if "?" in path:
                assert ev["p"]["d"]["query"] == path.split("?", 1)[1]


async def test_path_restricted_listener(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, ev = await s.ws_client(cons, listener="wsonly", path="/only?k=v")
        assert ev["p"]["d"]["listener"] == "wsonly"
        assert ev["p"]["d"]["path"] == "/only" and ev["p"]["d"]["query"] == "k=v"
        for bad in ("/other", "/onlyx", "/", "/only/sub"):
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
                w = await ws_connect(node.port("wsonly"), bad)
                await w.close()
            assert ei.value.status_code == 404, bad


def test_non_upgrade_request_400(node):
    r = harness.http_request(node.port("ws"), "GET", "/")
    assert r.status == 400, r
    r = harness.raw_http(node.port("ws"), b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                          b"Upgrade: websocket\r\n\r\n")  # no key, no version
    assert r is not None and r.status in (400, 426), r


async def test_client_id_layout_and_uniqueness(node):
    async with Session(node) as s:
        cons = await s.consumer()
        before = int(time.time() * 1000)
        ids = []
        for _ in range(3):
            _, cid, _ = await s.ws_client(cons)
            ids.append(cid)
        after = int(time.time() * 1000)
        assert len(set(ids)) == 3, ids
        for cid in ids:
            assert isinstance(cid, str) and cid.isdigit() and str(int(cid)) == cid, cid
            ms, nid, _ = split_client_id(cid)
            assert nid == NODE_ID, f"{cid}: node bits {nid}"
            assert before - 2000 <= ms <= after + 2000, f"{cid}: time {ms} not in [{before}, {after}]"


# ---- client -> consumer ----

async def test_text_and_binary_messages_become_events(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await ws.send('{"hello":"world"}')
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev) == {"type": "text", "data": '{"hello":"world"}', "finish": True}
        assert ev["p"]["t"] == "client" and ev["p"]["n"] == NODE_ID and "x" not in ev["p"]
        await ws.send(b"\x00\x01\xfe\xff")
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev) == {"type": "binary", "data": base64.b64encode(b"\x00\x01\xfe\xff").decode(),
                                "finish": True}
        await ws.send("h\u00e9llo \u2713 \U0001F600")
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev)["data"] == "h\u00e9llo \u2713 \U0001F600"


async def test_messages_keep_their_order(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        for k in range(30):
            await ws.send(f"m{k}")
        got = []
        for _ in range(30):
            ev = await cons.wait_event(ev_frame_of(cid))
            got.append(frame_of(ev)["data"])
        assert got == [f"m{k}" for k in range(30)]


async def test_fragmented_message_reassembled(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await ws.send(["frag-1 ", "frag-2 ", "frag-3"])
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev) == {"type": "text", "data": "frag-1 frag-2 frag-3", "finish": True}
        await ws.send([b"\x01\x02", b"\x03"])
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev) == {"type": "binary", "data": base64.b64encode(b"\x01\x02\x03").decode(),
                                "finish": True}
        await cons.no_event(ev_frame_of(cid), 0.3)


async def test_fragmented_message_with_ping_in_between(node):
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        await raw.send(OP_TEXT, "ab", fin=False)
        await raw.send(OP_PING, "p1")
        await raw.send(OP_CONT, "cd", fin=False)
        await raw.send(OP_CONT, "ef", fin=True)
        fin, op, payload = await raw.recv_until({OP_PONG})
        assert payload == b"p1"
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev)["data"] == "abcdef"


async def test_utf8_split_across_fragments_is_valid(node):
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        data = "\u2713".encode()  # 3 bytes, split 1 + 2
        await raw.send(OP_TEXT, data[:1], fin=False)
        await raw.send(OP_CONT, data[1:], fin=True)
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev)["data"] == "\u2713"


# ---- consumer/API -> client ----

async def test_send_text_and_binary(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        assert await aapi_ok(node, "mesh.send", {"c": cid, "d": "hello text"}) == {"s": True}
        assert await ws_recv(ws) == "hello text"
        assert await aapi_ok(node, "mesh.send", {"c": cid, "d": "\u00e9\u2713", "t": "text"}) == {"s": True}
        assert await ws_recv(ws) == "\u00e9\u2713"
        payload = bytes(range(256))
        assert await aapi_ok(node, "mesh.send", {"c": cid, "d": base64.b64encode(payload).decode(),
                                                 "t": "binary"}) == {"s": True}
        got = await ws_recv(ws)
        assert isinstance(got, bytes) and got == payload
        # Over /ws/v1, with "id" as the seed writes it.
        resp = await cons.request({"m": "mesh.send", "p": {"c": cid, "d": "via ws"}, "id": 12345}, 12345)
        assert resp == {"E": None, "r": {"s": True}, "i": 12345}
        assert await ws_recv(ws) == "via ws"


async def test_send_invalid_base64_101(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        for bad in ("!!!!", "abc", "a===", "ab cd"):
            await aapi_err(node, "mesh.send", {"c": cid, "d": bad, "t": "binary"}, 101)
        # Nothing was delivered.
        assert await aapi_ok(node, "mesh.send", {"c": cid, "d": "after"}) == {"s": True}
        assert await ws_recv(ws) == "after"


async def test_send_invalid_utf8_json_rejected(node):
    # JSON text must be UTF-8 (RFC 8259): a body with a broken sequence is malformed JSON (400, 101), and
    # nothing reaches the client (a text frame with invalid UTF-8 would make it fail with 1007).
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        body = b'{"c":"%s","d":"ok \xc3("}' % cid.encode()
        r = await asyncio.to_thread(harness.http_request, node.api_port, "POST", "/v1/mesh/send", body,
                                    {"Content-Type": "application/json"})
        assert r.status == 400 and r.json["E"]["c"] == 101, f"invalid UTF-8 in d: {r}"
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "after"})
        assert await ws_recv(ws) == "after"


async def test_send_to_closed_client_401(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await ws.close()
        await close_event(cons, cid)
        await aapi_err(node, "mesh.send", {"c": cid, "d": "x"}, 401)
        await aapi_err(node, "conn.info", {"c": cid}, 301)
        await aapi_err(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["room:z"]}, 301)


async def test_subscribe_publish_unsubscribe(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws1, c1, _ = await s.ws_client(cons)
        ws2, c2, _ = await s.ws_client(cons)
        assert await aapi_ok(node, "conn.call", {"c": c1, "f": "subscribe", "a": ["wsroom:a", "wsroom:b"]}) \
            == {"s": True}
        assert await aapi_ok(node, "conn.call", {"c": c2, "f": "subscribe", "a": ["wsroom:a"]}) == {"s": True}
        assert await aapi_ok(node, "channel.count", {"c": "wsroom:a"}) == {"s": 2}
        assert await aapi_ok(node, "channel.count", {"c": "wsroom:b"}) == {"s": 1}
        assert await aapi_ok(node, "mesh.publish", {"c": "wsroom:a", "d": "to a"}) == {"s": 2, "f": 0}
        assert await ws_recv(ws1) == "to a" and await ws_recv(ws2) == "to a"
        assert await aapi_ok(node, "mesh.publish", {"c": "wsroom:b", "d": base64.b64encode(b"\x00b").decode(),
                                                    "t": "binary"}) == {"s": 1, "f": 0}
        assert await ws_recv(ws1) == b"\x00b"
        info = await aapi_ok(node, "conn.info", {"c": c1})
        assert sorted(info["ch"]) == ["wsroom:a", "wsroom:b"]
        # Subscribing again to the same channel does not duplicate delivery.
        await aapi_ok(node, "conn.call", {"c": c1, "f": "subscribe", "a": ["wsroom:b"]})
        assert await aapi_ok(node, "mesh.publish", {"c": "wsroom:b", "d": "once"}) == {"s": 1, "f": 0}
        assert await ws_recv(ws1) == "once"
        assert await aapi_ok(node, "conn.call", {"c": c1, "f": "unsubscribe", "a": ["wsroom:a", "wsroom:b"]}) \
            == {"s": True}
        assert await aapi_ok(node, "mesh.publish", {"c": "wsroom:b", "d": "gone"}) == {"s": 0, "f": 0}
        assert await aapi_ok(node, "mesh.publish", {"c": "wsroom:a", "d": "only 2"}) == {"s": 1, "f": 0}
        assert await ws_recv(ws2) == "only 2"
        assert (await aapi_ok(node, "conn.info", {"c": c1}))["ch"] == []
        # Unsubscribing from a channel it is not in is fine.
        assert await aapi_ok(node, "conn.call", {"c": c1, "f": "unsubscribe", "a": ["wsroom:never"]}) \
            == {"s": True}
        # A client that leaves is no longer counted.
        await ws2.close()
        await close_event(cons, c2)
        assert await aapi_ok(node, "channel.count", {"c": "wsroom:a"}) == {"s": 0}
        assert await aapi_ok(node, "mesh.publish", {"c": "wsroom:a", "d": "x"}) == {"s": 0, "f": 0}


async def test_broadcast_reaches_every_client(node):
    async with Session(node) as s:
        cons = await s.consumer()
        clients = [await s.ws_client(cons, listener=lst, path=path)
                   for lst, path in (("ws", "/"), ("ws", "/b"), ("wsonly", "/only"))]
        tcp, _, _ = await s.tcp_client(cons)
        r = await aapi_ok(node, "mesh.broadcast", {"d": "all-hands"})
        assert r["s"] >= 4 and r["f"] == 0, r
        for ws, _, _ in clients:
            for _ in range(10):  # skip broadcasts of other tests, bounded
                msg = await ws_recv(ws)
                if msg == "all-hands":
                    break
            assert msg == "all-hands"
        for _ in range(10):
            line = await tcp.recv()
            if line == b"all-hands":
                break
        assert line == b"all-hands"


async def test_context_set_and_reported(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        assert await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["user_id", 10000]}) \
            == {"s": True}
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["name", "ann"]})
        info = await aapi_ok(node, "conn.info", {"c": cid})
        assert info["x"] == {"user_id": 10000, "name": "ann"}
        await ws.send("m1")
        ev = await cons.wait_event(ev_frame_of(cid, "m1"))
        assert ev["p"]["x"] == {"user_id": 10000, "name": "ann"}
        # set_context replaces the whole context.
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context", "a": [{"role": "admin", "n": [1, 2]}]})
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == {"role": "admin", "n": [1, 2]}
        await ws.send("m2")
        ev = await cons.wait_event(ev_frame_of(cid, "m2"))
        assert ev["p"]["x"] == {"role": "admin", "n": [1, 2]}
        # Overwriting a key; an empty context is left out of events again.
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["role", None]})
        assert (await aapi_ok(node, "conn.info", {"c": cid}))["x"] == {"role": None, "n": [1, 2]}
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context", "a": [{}]})
        await ws.send("m3")
        ev = await cons.wait_event(ev_frame_of(cid, "m3"))
        assert "x" not in ev["p"], ev
        # The close event carries the context as well.
        await aapi_ok(node, "conn.call", {"c": cid, "f": "set_context", "a": [{"k": "v"}]})
        await ws.close()
        ev = await cons.wait_event(ev_close_of(cid))
        assert ev["p"]["x"] == {"k": "v"}


@pytest.mark.parametrize("f,a", [
    ("nope", []),
    ("subscribe", "room:1"),
    ("subscribe", [5]),
    ("subscribe", ["bad channel"]),
    ("subscribe", [""]),
    ("unsubscribe", [None]),
    ("set_context_value", [1, 2]),
    ("set_context_value", ["only-key"]),
    ("set_context_value", []),
    ("set_context", [5]),
    ("set_context", [[1]]),
    ("set_context", []),
    ("close", ["x"]),
    ("close", [1000, 5]),
    (5, []),
])
async def test_conn_call_bad_function_or_args_101(node, f, a):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await aapi_err(node, "conn.call", {"c": cid, "f": f, "a": a}, 101)
        info = await aapi_ok(node, "conn.info", {"c": cid})
        assert info["x"] == {} and info["ch"] == [], info
        # Still connected.
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "alive"})
        assert await ws_recv(ws) == "alive"


async def test_conn_call_missing_fields_101(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await aapi_err(node, "conn.call", {"c": cid, "a": ["x"]}, 101)
        await aapi_err(node, "conn.call", {"c": cid, "f": "subscribe"}, 101)
        await aapi_err(node, "conn.call", {"f": "subscribe", "a": ["x"]}, 101)
        await aapi_err(node, "conn.info", {}, 101)


async def test_conn_info_fields(node):
    async with Session(node) as s:
        cons = await s.consumer()
        before = int(time.time() * 1000)
        ws, cid, _ = await s.ws_client(cons, path="/info")
        after = int(time.time() * 1000)
        info = await aapi_ok(node, "conn.info", {"c": cid})
        assert info["s"] is True
        assert info["x"] == {} and info["ch"] == []
        assert info["remote_addr"] == f"127.0.0.1:{ws.local_address[1]}"
        assert info["listener"] == "ws"
        assert isinstance(info["since"], int) and before - 1000 <= info["since"] <= after + 1000, info


# ---- closing ----

async def test_conn_call_close_default_1000(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        assert await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": []}) == {"s": True}
        code, _ = await ws_wait_closed(ws)
        assert code == 1000
        d = await close_event(cons, cid)
        assert d["code"] == 1000


async def test_conn_call_close_code_and_reason(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        assert await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": [4001, "kicked"]}) == {"s": True}
        code, reason = await ws_wait_closed(ws)
        assert (code, reason) == (4001, "kicked")
        d = await close_event(cons, cid)
        assert d == {"event": "close", "code": 4001, "reason": "kicked"}
        await aapi_err(node, "mesh.send", {"c": cid, "d": "x"}, 401)


async def test_client_close_code_reported(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        await ws.close(4000, "bye")
        d = await close_event(cons, cid)
        assert d == {"event": "close", "code": 4000, "reason": "bye"}
        ws, cid, _ = await s.ws_client(cons)
        await ws.close()
        assert (await close_event(cons, cid))["code"] == 1000


async def test_client_close_without_code_1005(node):
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        await raw.send(OP_CLOSE, b"")
        await raw.recv_until({OP_CLOSE})  # the server answers the close
        d = await close_event(cons, cid)
        assert d["code"] == 1005, d


async def test_client_abrupt_disconnect_reports_close(node):
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        raw.abort()
        d = await close_event(cons, cid)
        assert d["event"] == "close" and isinstance(d["code"], int), d


# ---- limits and violations ----

async def test_message_at_max_message_accepted(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons, listener="wssmall")
        await ws.send("x" * 1024)
        ev = await cons.wait_event(ev_frame_of(cid))
        assert frame_of(ev)["data"] == "x" * 1024


async def test_message_over_max_message_1009(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons, listener="wssmall")
        await ws.send("x" * 1025)
        code, _ = await ws_wait_closed(ws)
        assert code == 1009
        assert (await close_event(cons, cid))["code"] == 1009
        await cons.no_event(ev_frame_of(cid), 0.2)


async def test_fragmented_message_over_max_message_1009(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons, listener="wssmall")
        await ws.send(["y" * 600, "y" * 600])
        code, _ = await ws_wait_closed(ws)
        assert code == 1009
        assert (await close_event(cons, cid))["code"] == 1009


async def test_invalid_utf8_text_1007(node):
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        await raw.send(OP_TEXT, b"ok \xff\xfe")
        code, _ = await raw.expect_close()
        assert code == 1007
        assert (await close_event(cons, cid))["code"] == 1007
        await cons.no_event(ev_frame_of(cid), 0.2)


@pytest.mark.parametrize("kind", ["unmasked", "rsv1", "rsv3", "opcode3", "cont_without_start",
                                  "text_inside_fragmented", "big_ping", "fragmented_ping"])
async def test_protocol_violation_1002(node, kind):
    frames = {
        "unmasked": harness.ws_frame(OP_TEXT, "hi", mask=False),
        "rsv1": harness.ws_frame(OP_TEXT, "hi", rsv=4),
        "rsv3": harness.ws_frame(OP_TEXT, "hi", rsv=1),
        "opcode3": harness.ws_frame(0x3, "hi"),
        "cont_without_start": harness.ws_frame(OP_CONT, "hi"),
        "text_inside_fragmented": harness.ws_frame(OP_TEXT, "a", fin=False) + harness.ws_frame(OP_TEXT, "b"),
        "big_ping": harness.ws_frame(OP_PING, b"p" * 126),
        "fragmented_ping": harness.ws_frame(OP_PING, b"p", fin=False),
    }
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        await raw.send_raw(frames[kind])
        code, _ = await raw.expect_close()
        assert code == 1002, f"{kind}: close code {code}"
        assert (await close_event(cons, cid))["code"] == 1002
        await cons.no_event(ev_frame_of(cid), 0.2)


async def test_idle_timeout_1001(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons, listener="wsidle")
        t0 = time.monotonic()
        code, _ = await ws_wait_closed(ws, timeout=6)
        elapsed = time.monotonic() - t0
        assert code == 1001
        assert elapsed >= 1.0, f"closed after {elapsed:.1f}s, idle_timeout is 2s"
        assert (await close_event(cons, cid))["code"] == 1001


async def test_active_client_not_idle_closed(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons, listener="wsidle")
        for k in range(8):  # 4 s of activity, twice the idle timeout
            await ws.send(f"tick{k}")
            await asyncio.sleep(0.5)
        assert ws.open, f"closed with {ws.close_code} although the client kept sending"
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "still here"})
        assert await ws_recv(ws) == "still here"


async def test_server_pings(node):
    async with Session(node) as s:
        raw, _, _ = await s.raw_ws(listener="wsping")
        for _ in range(2):
            _, op, payload = await raw.recv_until({OP_PING}, timeout=4)
            await raw.send(OP_PONG, payload)


async def test_client_ping_answered_with_pong(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        waiter = await ws.ping(b"are you there")
        await asyncio.wait_for(waiter, 5)
        raw, _, _ = await s.raw_ws(cons)
        await raw.send(OP_PING, b"xyz")
        _, op, payload = await raw.recv_until({OP_PONG})
        assert payload == b"xyz"
        # Pings and pongs are not queue events.
        await cons.no_event(lambda e: "frame" in e["p"]["d"] and e["p"]["c"] == cid, 0.3)


async def test_close_frame_answered(node):
    async with Session(node) as s:
        raw, _, _ = await s.raw_ws()
        await raw.send(OP_CLOSE, close_payload(1000, "done"))
        code, _ = await raw.expect_close()
        assert code == 1000
        assert await raw.expect_eof(), "server did not close the TCP connection after the close handshake"


def test_binary_names_its_websocket_codec():
    """`meshgate --version` names the codec built in; meson sets MESHGATE_WS_CODEC to the one each
    registration of this file must be testing, so running the WebSocket files twice really covers both."""
    out = subprocess.run([harness.meshgate_bin(), "--version"], capture_output=True, text=True, timeout=10).stdout
    want = os.environ.get("MESHGATE_WS_CODEC")
    assert "WebSocket codec: " in out
    if want:
        assert f"WebSocket codec: {want})" in out, out
