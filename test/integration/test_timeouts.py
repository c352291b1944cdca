"""Connections that never finish: a WebSocket upgrade or TCP connect token trickled byte by byte is
closed 10 s after accept (not 10 s after the last byte); an HTTP connection that does not complete a
request within 15 s of being ready for one (idle keep-alive, slow sender) is closed; an unauthenticated
mesh peer cannot announce a frame larger than a handshake needs. Meanwhile the node serves others.
Also: HEAD answers carry no body, and a client's messages sent after the server closed it do not
reach consumers after its close event."""

import asyncio
import socket
import struct
import time

import pytest

import harness
from harness import Session, aapi_ok, assert_node_healthy, connect_raw, ev_close_of, ev_frame_of


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "mesh": {"bind": "127.0.0.1", "port": harness.free_port(), "secret": "timeouts-secret-0123456789", "dead_after": 3},
        "listener.tcptok": {"type": "tcp", "bind": "127.0.0.1", "port": harness.free_port(), "token_secret": "timeouts-token-0123456789"},
    })


def still_open(sock):
    """False when the peer has closed (EOF or reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except (ConnectionResetError, BrokenPipeError):
        return False
    finally:
        sock.setblocking(True)


async def test_trickled_handshakes_and_idle_http_are_closed(node):
    ws = connect_raw(node.port("ws"))
    tok = connect_raw(node.port("tcptok"))
    idle_api = connect_raw(node.api_port)
    idle_route = connect_raw(node.route_port)
    request = harness.ws_upgrade_request(node.port("ws"), "/slow")
    timeouts_before = harness.metric_value(node, "meshgate_connections_refused_total", reason="handshake_timeout")
    t0 = time.monotonic()
    ws_closed_at = None
    for i in range(60):  # one byte every 0.5 s: the upgrade would take 100 s to arrive
        if ws_closed_at is None:
            try:
                ws.send(request[i:i + 1])
                tok.send(b"x")
            except OSError:
                pass
            if not still_open(ws):
                ws_closed_at = time.monotonic() - t0
        if time.monotonic() - t0 > 17:
            break
        await asyncio.sleep(0.5)
    assert ws_closed_at is not None and 9 <= ws_closed_at <= 13, f"trickled upgrade closed at {ws_closed_at}"
    assert not still_open(tok), "a TCP token trickled for 17 s is still open"
    assert not still_open(idle_api) and not still_open(idle_route), "idle HTTP connections open after 17 s"
    # the trickled upgrade and the trickled token line, each counted once (the HTTP ones have their own)
    timeouts = harness.metric_value(node, "meshgate_connections_refused_total", reason="handshake_timeout")
    assert timeouts - timeouts_before == 2, (timeouts_before, timeouts)
    await assert_node_healthy(node)


def test_head_has_no_body(node):
    s = connect_raw(node.api_port)
    s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 3
    while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"ok\n"):
        assert time.monotonic() < deadline, f"answers: {data!r}"
        s.settimeout(max(0.01, deadline - time.monotonic()))
        data += s.recv(4096)
    first, second = data.split(b"HTTP/1.1 200", 2)[1:]
    assert b"Content-Length: 3" in first and first.endswith(b"\r\n\r\n"), f"HEAD answer {first!r}"
    assert second.endswith(b"\r\n\r\nok\n"), f"GET answer {second!r}"


def test_unauthenticated_mesh_peer_cannot_announce_a_big_frame(node):
    s = connect_raw(node.cfg["mesh"]["port"])
    s.sendall(struct.pack("!IB", 1 << 20, 1) + b"{" * 1000)  # a 1 MiB "HELLO"
    assert harness.wait_closed_by_peer(s, 3), "a 1 MiB frame before authentication was accepted"


async def test_messages_after_the_server_closed_a_client_are_not_events(node):
    async with Session(node) as s:
        cons = await s.consumer()
        raw, cid, _ = await s.raw_ws(cons)
        await aapi_ok(node, "conn.call", {"c": cid, "f": "close", "a": [4000, "bye"]})
        code, _ = await raw.expect_close()
        assert code == 4000
        await raw.send_raw(harness.ws_frame(harness.OP_TEXT, "late"))  # before our own close frame
        ev = await cons.wait_event(ev_close_of(cid))
        assert ev["p"]["d"]["code"] == 4000
        await cons.no_event(ev_frame_of(cid), 0.5)


async def test_a_message_trickled_a_byte_a_second_is_closed_at_the_message_deadline(nodes):
    """Issue 11: a client that begins a message and never finishes it is closed (1008) after
    [limits] message_timeout, TCP and WebSocket alike; one that sends whole messages slowly is not."""
    n = nodes.start({"limits": {"message_timeout": 2}, "listener.ws": {"idle_timeout": 30},
                     "listener.tcp": {"idle_timeout": 30}})
    async with Session(n) as s:
        cons = await s.consumer()
        tcp, tcp_id, _ = await s.tcp_client(cons)
        slow, slow_id, _ = await s.tcp_client(cons)
        raw, ws_id, _ = await s.raw_ws(cons)
        # A WebSocket frame header announcing 100 bytes, then a byte a second.
        await raw.send_raw(bytes([0x81, 0x80 | 100]) + b"\x00\x00\x00\x00")
        start = time.monotonic()
        closed = {}
        for i in range(8):
            if i < 7:
                await tcp.send_raw(b"x")        # never a newline: one unfinished message
                await slow.send_raw(b"m%d\n" % i)  # whole messages, slowly
                try:
                    await raw.send_raw(b"y")
                except (ConnectionError, OSError):
                    pass
            for cid in (tcp_id, ws_id):
                if cid not in closed:
                    got = cons.take_events(ev_close_of(cid))
                    if got:
                        closed[cid] = got[0]
            await asyncio.sleep(1)
        for cid, what in ((tcp_id, "tcp"), (ws_id, "ws")):
            ev = closed.get(cid) or await cons.wait_event(ev_close_of(cid), timeout=5, what=f"close of the {what} trickler")
            assert ev["p"]["d"]["code"] == 1008, f"{what}: {ev!r}"
            assert "not completed" in ev["p"]["d"]["reason"], ev
        await cons.no_event(ev_close_of(slow_id), 0.1)
        for i in range(7):
            await cons.wait_event(ev_frame_of(slow_id, f"m{i}"))
        assert time.monotonic() - start < 15


async def test_a_partial_frame_header_counts_against_the_message_deadline(nodes):
    """Issue 18: one byte of a frame header (or a whole header and no payload) and then nothing is a
    message begun: the client is closed (1008) after [limits] message_timeout, on both codecs."""
    n = nodes.start({"limits": {"message_timeout": 2}, "listener.ws": {"idle_timeout": 30}})
    async with Session(n) as s:
        cons = await s.consumer()
        one_byte, one_id, _ = await s.raw_ws(cons)
        header_only, header_id, _ = await s.raw_ws(cons)
        await one_byte.send_raw(b"\x81")
        await header_only.send_raw(bytes([0x82, 0x80 | 10]) + b"\x01\x02\x03\x04")
        start = time.monotonic()
        for cid, what in ((one_id, "one header byte"), (header_id, "a header and no payload")):
            ev = await cons.wait_event(ev_close_of(cid), timeout=8, what=f"close of the client that sent {what}")
            assert ev["p"]["d"]["code"] == 1008, f"{what}: {ev!r}"
            assert "not completed" in ev["p"]["d"]["reason"], ev
        assert time.monotonic() - start < 7
