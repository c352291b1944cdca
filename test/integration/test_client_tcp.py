"""Client TCP listeners (PROTOCOL.md §3.2): line and len32 framing, both directions, limits, closes."""

import asyncio
import base64
import socket
import struct
import time

import pytest

from harness import (Session, aapi_err, aapi_ok, ev_close_of, ev_frame_of, frame_of)


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "listener.tcp": {"max_message": 1024},
        "listener.tcp32": {"max_message": 1024},
        "listener.tcpidle": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "line",
                             "idle_timeout": 2},
    })


async def next_frame(cons, cid):
    return frame_of(await cons.wait_event(ev_frame_of(cid)))


async def close_event(cons, cid, timeout=5):
    return (await cons.wait_event(ev_close_of(cid), timeout, what=f"close event of {cid}"))["p"]["d"]


# ---- line framing ----

async def test_open_event_fields(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, ev = await s.tcp_client(cons)
        assert ev["p"]["d"] == {"event": "open", "listener": "tcp", "remote_addr": f"127.0.0.1:{c.local_port}"}
        assert ev["p"]["t"] == "client" and "x" not in ev["p"]
        assert cid.isdigit()
        c32, cid32, ev32 = await s.tcp_client(cons, listener="tcp32")
        assert ev32["p"]["d"]["listener"] == "tcp32" and cid32 != cid


async def test_line_messages(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"hello\n")
        assert await next_frame(cons, cid) == {"type": "text", "data": "hello", "finish": True}
        # Several in one write; \r before \n dropped.
        await c.send_raw(b"a\r\nb\nc c\n")
        assert [(await next_frame(cons, cid))["data"] for _ in range(3)] == ["a", "b", "c c"]
        # One message in several writes.
        for part in (b"he", b"l", b"lo wor", b"ld\r", b"\n"):
            await c.send_raw(part)
            await asyncio.sleep(0.02)
        assert (await next_frame(cons, cid))["data"] == "hello world"
        await c.send_raw("h\u00e9llo \u2713\n".encode())
        assert (await next_frame(cons, cid))["data"] == "h\u00e9llo \u2713"


async def test_empty_line_is_keepalive(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"\n\n\r\n")
        await c.send_raw(b"after\n")
        assert (await next_frame(cons, cid))["data"] == "after"
        await cons.no_event(ev_frame_of(cid), 0.3)


async def test_line_non_utf8_is_binary(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"\xff\xfe\x00ok\n")
        f = await next_frame(cons, cid)
        assert f == {"type": "binary", "data": base64.b64encode(b"\xff\xfe\x00ok").decode(), "finish": True}


async def test_line_many_messages_in_order(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"".join(b"n%d\n" % k for k in range(200)))
        got = [(await next_frame(cons, cid))["data"] for _ in range(200)]
        assert got == [f"n{k}" for k in range(200)]


async def test_line_send_text_and_binary(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        assert await aapi_ok(node, "mesh.send", {"c": cid, "d": "to device"}) == {"s": True}
        assert await c.recv() == b"to device"
        await aapi_ok(node, "mesh.send", {"c": cid, "d": base64.b64encode(b"\x01\x02\xff").decode(), "t": "binary"})
        assert await c.recv() == b"\x01\x02\xff"
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "\u00e9\u2713"})
        assert await c.recv() == "\u00e9\u2713".encode()


async def test_line_subscribe_and_publish(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        c2, cid2, _ = await s.tcp_client(cons, listener="tcp32")
        await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["tcproom"]})
        await aapi_ok(node, "conn.call", {"c": cid2, "f": "subscribe", "a": ["tcproom"]})
        assert await aapi_ok(node, "mesh.publish", {"c": "tcproom", "d": "news"}) == {"s": 2, "f": 0}
        assert await c.recv() == b"news"
        assert await c2.recv() == b"news"


async def test_line_at_max_message_accepted(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"q" * 1024 + b"\n")
        assert (await next_frame(cons, cid))["data"] == "q" * 1024


async def test_line_over_max_message_closes_1009(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"z" * 3000)  # no newline at all
        assert await c.expect_eof(), "connection not closed after an over-long line"
        assert (await close_event(cons, cid))["code"] == 1009
        await cons.no_event(ev_frame_of(cid), 0.2)


async def test_eof_reports_close_1000(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await c.send_raw(b"last words\n")
        c.writer.write_eof()
        assert (await next_frame(cons, cid))["data"] == "last words"
        d = await close_event(cons, cid)
        assert d["event"] == "close" and d["code"] == 1000, d
        await aapi_err(node, "mesh.send", {"c": cid, "d": "x"}, 401)


async def test_conn_call_close_disconnects(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        assert await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": []}) == {"s": True}
        assert await c.expect_eof(), "tcp client not disconnected by conn.call close"
        assert (await close_event(cons, cid))["code"] == 1000
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": [4002, "bye"]})
        assert await c.expect_eof()
        d = await close_event(cons, cid)
        assert d["code"] == 4002 and d["reason"] == "bye", d


async def test_data_before_close_is_delivered(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "goodbye"})
        await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": []})
        assert await c.recv() == b"goodbye"
        assert await c.expect_eof()


async def test_conn_info_tcp(node):
    async with Session(node) as s:
        cons = await s.consumer()
        before = int(time.time() * 1000)
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        info = await aapi_ok(node, "conn.info", {"c": cid})
        assert info["listener"] == "tcp32"
        assert info["remote_addr"] == f"127.0.0.1:{c.local_port}"
        assert info["x"] == {} and info["ch"] == [] and info["s"] is True
        assert before - 1000 <= info["since"] <= int(time.time() * 1000) + 1000


async def test_idle_timeout_closes_1001(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcpidle")
        t0 = time.monotonic()
        assert await c.expect_eof(timeout=6), "idle tcp client not closed"
        assert time.monotonic() - t0 >= 1.0
        assert (await close_event(cons, cid))["code"] == 1001


async def test_keepalive_lines_prevent_idle_close(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcpidle")
        for _ in range(8):  # 4 s of empty lines, twice the idle timeout
            await c.send_raw(b"\n")
            await asyncio.sleep(0.5)
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "alive"})
        assert await c.recv() == b"alive"


# ---- len32 framing ----

async def test_len32_messages(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        await c.send("hello")
        assert await next_frame(cons, cid) == {"type": "text", "data": "hello", "finish": True}
        await c.send(b"line1\nline2\r\n")  # newlines are payload here
        assert (await next_frame(cons, cid))["data"] == "line1\nline2\r\n"
        await c.send(b"\x00\xff\x10")
        assert await next_frame(cons, cid) == {"type": "binary", "data": base64.b64encode(b"\x00\xff\x10").decode(),
                                               "finish": True}
        # Two frames in one write, then one frame a byte at a time.
        await c.send_raw(struct.pack("!I", 1) + b"A" + struct.pack("!I", 2) + b"BC")
        assert [(await next_frame(cons, cid))["data"] for _ in range(2)] == ["A", "BC"]
        for b in struct.pack("!I", 3) + b"xyz":
            await c.send_raw(bytes([b]))
            await asyncio.sleep(0.01)
        assert (await next_frame(cons, cid))["data"] == "xyz"


async def test_len32_send(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "framed\nreply"})
        assert await c.recv() == b"framed\nreply"
        await aapi_ok(node, "mesh.send", {"c": cid, "d": base64.b64encode(bytes(range(256))).decode(), "t": "binary"})
        assert await c.recv() == bytes(range(256))


async def test_len32_at_max_message_accepted(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        await c.send(b"m" * 1024)
        assert (await next_frame(cons, cid))["data"] == "m" * 1024


async def test_len32_over_max_message_closes_1009(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        # The header alone announces too much; the payload never comes.
        await c.send_raw(struct.pack("!I", 5000) + b"partial")
        assert await c.expect_eof(), "connection not closed after an over-long len32 header"
        assert (await close_event(cons, cid))["code"] == 1009


async def test_len32_huge_length_closes_1009(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons, listener="tcp32")
        await c.send_raw(b"\xff\xff\xff\xff")
        assert await c.expect_eof()
        assert (await close_event(cons, cid))["code"] == 1009


async def test_rst_reports_close(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, _ = await s.tcp_client(cons)
        sock = c.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.writer.close()
        d = await close_event(cons, cid)
        assert d["event"] == "close" and isinstance(d["code"], int)
