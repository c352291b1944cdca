"""Hostile input: garbage, truncated and oversized HTTP, bad Content-Length, invalid JSON, WebSocket protocol
violations, abrupt disconnects, connection churn. After each, the node still answers /healthz and other
clients keep working."""

import asyncio
import json
import random
import socket
import struct
import time

import pytest

import harness
from harness import (OP_BIN, OP_CLOSE, OP_PING, OP_TEXT, RawWs, Session, aapi_ok, assert_node_healthy,
                     connect_raw, ev_close_of, ev_frame_of, read_http_response, rst_close, sendall_quiet, ws_connect,
                     ws_frame)

MAX_MESSAGE = 4096


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "api": {"max_body": 65536},
        "limits": {"max_header_bytes": 4096, "max_headers": 32},
        "listener.ws": {"max_message": MAX_MESSAGE},
        "listener.tcp": {"max_message": MAX_MESSAGE},
        "listener.tcp32": {"max_message": MAX_MESSAGE},
    })


def http_ports(node):
    return {"api": node.api_port, "route": node.route_port, "ws": node.port("ws")}


def send_and_read(port, data, timeout=3, how="fin"):
    """Sends data; returns the first response (or None when closed without one). how: fin | rst | keep."""
    s = connect_raw(port, timeout)
    try:
        sendall_quiet(s, data)
        try:
            resp, _ = read_http_response(s, timeout)
        except AssertionError:
            resp = None
        return resp
    finally:
        if how == "rst":
            rst_close(s)
        else:
            s.close()


def assert_status(resp, allowed, what):
    assert resp is not None, f"{what}: connection closed without an answer (expected {allowed})"
    assert resp.status in allowed, f"{what}: HTTP {resp.status} {resp.body[:200]!r}, expected {allowed}"


# ---- garbage and truncation ----

@pytest.mark.parametrize("which", ["api", "route", "ws", "tcp", "tcp32"])
async def test_garbage_bytes(node, which):
    rnd = random.Random(1234 + len(which))
    port = {"api": node.api_port, "route": node.route_port}.get(which) or node.port(which)
    for size in (1, 17, 4096, 65536):
        data = bytes(rnd.getrandbits(8) for _ in range(size))
        s = connect_raw(port, 3)
        try:
            sendall_quiet(s, data)
            if which in ("api", "route", "ws") and size >= 17:
                try:
                    resp, _ = read_http_response(s, 3)
                except AssertionError:
                    resp = None
                if resp is not None:
                    assert resp.status in (400, 431), f"garbage on {which}: HTTP {resp.status}"
        finally:
            s.close()
    await assert_node_healthy(node)


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_truncated_requests(node, how):
    partials = [
        b"G", b"GET", b"GET /healthz", b"GET /healthz HTTP/1.1", b"GET /healthz HTTP/1.1\r\nHost: x",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        b"POST /v1/mesh/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"d\":",
        b"POST /v1/mesh/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"d\"",
        b"POST /route/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n[\"a\"",
        harness.ws_upgrade_request(node.port("ws"))[:40],
        harness.ws_upgrade_request(node.port("ws"))[:-2],
    ]
    for port in http_ports(node).values():
        for p in partials:
            s = connect_raw(port, 3)
            sendall_quiet(s, p)
            if how == "rst":
                rst_close(s)
            else:
                s.close()
    await assert_node_healthy(node)


async def test_truncated_body_then_idle_does_not_block_others(node):
    # A request whose body never completes must not stall other connections.
    s = connect_raw(node.api_port, 3)
    try:
        s.sendall(b"POST /v1/mesh/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{\"d\":\"")
        for _ in range(5):
            assert harness.http_request(node.api_port, "GET", "/healthz", timeout=3).status == 200
        await assert_node_healthy(node)
    finally:
        s.close()


# ---- oversized heads ----

@pytest.mark.parametrize("where", ["api", "route", "ws"])
async def test_huge_headers_431(node, where):
    port = http_ports(node)[where]
    path = "/healthz" if where == "api" else "/route" if where == "route" else "/"
    cases = {
        "one 100 KB header": f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'a' * 100000}\r\n\r\n".encode(),
        "1000 headers": (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"X-{i}: v\r\n" for i in range(1000))
                         + "\r\n").encode(),
        "100 KB request line": f"GET {path}?q={'u' * 100000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    }
    for what, data in cases.items():
        resp = send_and_read(port, data)
        assert_status(resp, (431,), f"{where}: {what}")
    # A head that never ends (no CRLF at all), 1 MB of it.
    s = connect_raw(port, 3)
    try:
        sendall_quiet(s, b"GET / HTTP/1.1\r\nX-Endless: " + b"e" * 1000000)
        try:
            resp, _ = read_http_response(s, 3)
        except AssertionError:
            resp = None
        assert resp is None or resp.status == 431, f"{where}: endless head -> {resp.status}"
        assert harness.wait_closed_by_peer(s, 3), f"{where}: endless head: connection not closed"
    finally:
        s.close()
    await assert_node_healthy(node)


# ---- bad Content-Length and framing ----

@pytest.mark.parametrize("head,allowed", [
    ("Content-Length: abc", (400,)),
    ("Content-Length: -1", (400,)),
    ("Content-Length: 1e3", (400,)),
    ("Content-Length: 5\r\nContent-Length: 6", (400,)),
    ("Content-Length: 99999999999999999999999", (400, 413)),
    ("Content-Length: 12\r\nTransfer-Encoding: chunked", (400,)),
    ("Transfer-Encoding: chunked", (400,)),  # the body below is not valid chunked encoding
    ("Transfer-Encoding: gzip", (400, 501)),
])
async def test_bad_content_length(node, head, allowed):
    body = b'{"d":"hello"}'
    req = (f"POST /v1/mesh/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{head}\r\n\r\n"
           .encode() + b"zz\r\n" + body)
    resp = send_and_read(node.api_port, req)
    assert_status(resp, allowed, head)
    if resp.status == 400:
        assert resp.json["E"]["c"] == 101
    await assert_node_healthy(node)


@pytest.mark.parametrize("data", [
    b"HELLO\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHo\x00st: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: \x01\x02\x7f\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"\r\n\r\n\r\n\r\n",
    b"GET /healthz HTTP/1.1\nHost: x\n\n\x00\x00",
])
async def test_malformed_http(node, data):
    for where, port in http_ports(node).items():
        resp = send_and_read(port, data)
        if resp is not None:
            assert resp.status in (200, 400, 404, 405, 426, 505), f"{where}: {data!r} -> HTTP {resp.status}"
    resp = send_and_read(node.api_port, b"HELLO\r\n\r\n")
    assert_status(resp, (400,), "HELLO")
    await assert_node_healthy(node)


# RFC 9112 says a server must refuse these (issue 18): each port that speaks HTTP answers the status
# and reads nothing more (the bytes after it would be a smuggled request if a proxy read it otherwise).
STRICT_HTTP = [
    ("obs-fold", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: one\r\n two\r\n\r\n", 400),
    ("obs-fold hides Transfer-Encoding", b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
     b" Transfer-Encoding: chunked\r\n\r\nhello", 400),
    ("no Host", b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: y\r\n\r\n", 400),
    ("TE gzip, chunked", b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 501),
    ("TE identity", b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: identity\r\n\r\nhello", 400),
    ("TE chunked twice", b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("no version", b"GET /healthz\r\n\r\n", 400),
    ("HTTP/2.0 request line", b"GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505),
]


@pytest.mark.parametrize("where", ["api", "route", "ws"])
@pytest.mark.parametrize("what,data,status", STRICT_HTTP, ids=[c[0] for c in STRICT_HTTP])
async def test_http_strict_where_rfc9112_says_refuse(node, where, what, data, status):
    port = http_ports(node)[where]
    follow = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    s = connect_raw(port, 3)
    try:
        sendall_quiet(s, data + follow)
        resp, rest = read_http_response(s, 3)
        assert resp.status == status, f"{where}: {what}: HTTP {resp.status} {resp.body[:200]!r}, expected {status}"
        assert (resp.header("Connection") or "").lower() == "close", f"{where}: {what}: the connection stays open"
        s.settimeout(3)
        while (chunk := s.recv(65536)):
            rest += chunk
        assert b"HTTP/1.1" not in rest, f"{where}: {what}: the request after it was answered: {rest[:200]!r}"
    finally:
        s.close()
    await assert_node_healthy(node)


MUST_BE_400 = [
    b"{", b"}", b"{\"c\":", b"{\"c\":\"room\",\"d\":\"unterminated}", b"{'c':'room'}", b"{\"c\":\"room\" \"d\":\"x\"}",
    b"[" * 60000, b"{\"a\":" * 10000 + b"1" + b"}" * 10000, b"\x00\x00\x00", b"{\"c\":\"room\",\"d\":\"x\"}\x00",
    b"\xff\xfe{\"c\":\"room\"}", b"{\"c\":\"room\",\"d\":\"\xc3\x28\"}", b"nul", b"tru", b"{\"c\":1e999999,\"d\":\"x\"}",
    b"{\"c\":\"room\",\"d\":\"x\",}", b"   ",
]


async def test_invalid_json_bodies(node):
    for body in MUST_BE_400:
        r = harness.http_request(node.api_port, "POST", "/v1/mesh/publish", body=body,
                                 headers={"Content-Type": "application/json"})
        assert r.status == 400, f"{body[:60]!r}: HTTP {r.status} {r.body[:200]!r}"
        assert r.json["E"]["c"] == 101
    # Valid JSON with odd content: answered, one way or the other.
    for body in (b"{\"c\":\"room\",\"d\":\"\\ud800\"}", b"{\"c\":\"room\",\"d\":\"\\u0000\"}",
                 b"{\"c\":\"room\",\"c\":\"room2\",\"d\":\"x\"}", b"{\"c\":\"room\",\"d\":\"" + b"x" * 60000 + b"\"}"):
        r = harness.http_request(node.api_port, "POST", "/v1/mesh/publish", body=body,
                                 headers={"Content-Type": "application/json"})
        assert r.status in (200, 400), f"{body[:60]!r}: HTTP {r.status}"
        assert "E" in r.json
    await assert_node_healthy(node)


async def test_invalid_json_on_route_batch(node):
    for body in (b"[" * 100000, b"[\"a\"" + b",\"a\"" * 20000, b"\xff\xfe", b"[\"\xc3\x28\"]"):
        r = harness.http_request(node.route_port, "POST", "/route/batch?intranet=0", body=body)
        assert r.status in ((200, 400) if len(body) <= 65536 else (413,)), r  # [route] max_body
        if r.status == 400:
            assert r.json["status"] == 400
    await assert_node_healthy(node)


async def test_byte_by_byte_request(node):
    s = connect_raw(node.api_port, 5)
    try:
        body = b'{"c":"slow"}'
        req = (b"POST /v1/channel/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        for b in req:
            s.sendall(bytes([b]))
            time.sleep(0.002)
        resp, _ = read_http_response(s)
    finally:
        s.close()
    assert resp is not None and resp.status == 200 and resp.json == {"E": None, "r": {"s": 0}}


async def test_pipelined_requests(node):
    body = b'{"c":"pipe"}'
    reqs = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            + b"POST /v1/channel/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body) + body
            + b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            + b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s = connect_raw(node.api_port)
    try:
        s.sendall(reqs)
        statuses = []
        rest = b""
        for _ in range(4):
            resp, rest = read_http_response(s, buf=rest)
            assert resp is not None, f"connection closed after {statuses}"
            statuses.append(resp.status)
    finally:
        s.close()
    assert statuses == [200, 200, 404, 200]


# ---- WebSocket violations and abrupt ends ----

@pytest.mark.parametrize("where", ["client", "api"])
async def test_ws_violations(node, where):
    port, path = (node.port("ws"), "/") if where == "client" else (node.api_port, "/ws/v1")
    limit = MAX_MESSAGE if where == "client" else int(node.cfg["api"].get("max_body", 1048576))
    cases = [
        ("unmasked", ws_frame(OP_TEXT, "hi", mask=False), (1002,)),
        ("rsv bits", ws_frame(OP_TEXT, "hi", rsv=7), (1002,)),
        ("opcode 0xB", ws_frame(0xB, b""), (1002,)),
        ("close with 1-byte payload", ws_frame(OP_CLOSE, b"\x03"), (1002,)),
        ("close with code 999", ws_frame(OP_CLOSE, struct.pack("!H", 999)), (1002,)),
        ("close with code 1005 on the wire", ws_frame(OP_CLOSE, struct.pack("!H", 1005)), (1002,)),
        ("close with invalid UTF-8 reason", ws_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff"), (1002, 1007)),
        ("126-byte ping", ws_frame(OP_PING, b"x" * 126), (1002,)),
        ("length with the top bit set", ws_frame(OP_BIN, b"", length=1 << 63)[:10], (1002, 1009)),
        # Refused at the header (issue 11), before any payload byte: no waiting for max_message bytes.
        ("2^40-byte frame, header only", ws_frame(OP_BIN, b"", length=1 << 40)[:14], (1009,)),
        ("2^63-1-byte frame, header only", ws_frame(OP_BIN, b"", length=(1 << 63) - 1)[:14], (1009,)),
        ("a frame one byte over the limit, header only", ws_frame(OP_TEXT, b"", length=limit + 1), (1009,)),
    ]
    failures = []
    for what, data, codes in cases:
        raw = await RawWs.connect(port, path)
        try:
            await raw.send_raw(data)
            try:
                code, _ = await raw.expect_close(timeout=3)
            except AssertionError as e:
                failures.append(f"{what}: {e}")
                continue
            if code not in codes:
                failures.append(f"{what}: close code {code}, expected {codes}")
                continue
            await raw.send(OP_CLOSE, harness.close_payload(code))  # complete the closing handshake
            if not await raw.expect_eof(3):
                failures.append(f"{what}: TCP connection left open after the close handshake")
        finally:
            await raw.close()
    await assert_node_healthy(node)
    assert not failures, f"{where}: " + "; ".join(failures)


async def test_ws_message_over_max_message_1009(node):
    raw = await RawWs.connect(node.port("ws"))
    try:
        await raw.send(OP_TEXT, "m" * (MAX_MESSAGE + 1))
        code, _ = await raw.expect_close()
        assert code == 1009
    finally:
        await raw.close()
    await assert_node_healthy(node)


@pytest.mark.parametrize("where", ["client", "api"])
async def test_ws_abrupt_disconnects(node, where):
    port, path = (node.port("ws"), "/") if where == "client" else (node.api_port, "/ws/v1")
    mid_frames = [
        ws_frame(OP_TEXT, "x" * 1000)[:20],                  # inside the payload
        ws_frame(OP_TEXT, "x" * 1000)[:3],                   # inside the extended length
        ws_frame(OP_TEXT, "x" * 10)[:5],                     # inside the masking key
        ws_frame(OP_TEXT, "part", fin=False),                # inside a fragmented message
        ws_frame(OP_CLOSE, struct.pack("!H", 1000))[:4],     # inside a close frame
    ]
    for data in mid_frames:
        for abort in (False, True):
            raw = await RawWs.connect(port, path)
            await raw.send_raw(data)
            if abort:
                raw.abort()
            else:
                await raw.close()
    await assert_node_healthy(node)


async def test_ws_bad_upgrades(node):
    port = node.port("ws")
    key_ok = "dGhlIHNhbXBsZSBub25jZQ=="
    cases = [
        ("version 8", ["GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
                       f"Sec-WebSocket-Key: {key_ok}", "Sec-WebSocket-Version: 8"], (400, 426)),
        ("no key", ["GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
                    "Sec-WebSocket-Version: 13"], (400,)),
        ("POST upgrade", ["POST / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
                          f"Sec-WebSocket-Key: {key_ok}", "Sec-WebSocket-Version: 13", "Content-Length: 0"],
         (400, 405)),
        ("HTTP/1.0 upgrade", ["GET / HTTP/1.0", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
                              f"Sec-WebSocket-Key: {key_ok}", "Sec-WebSocket-Version: 13"], (400, 426, 505)),
    ]
    for what, lines, allowed in cases:
        resp = send_and_read(port, ("\r\n".join(lines) + "\r\n\r\n").encode())
        assert_status(resp, allowed, what)
    await assert_node_healthy(node)


async def test_ws_upgrade_then_garbage_frames(node):
    rnd = random.Random(99)
    for _ in range(20):
        raw = await RawWs.connect(node.port("ws"))
        await raw.send_raw(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))))
        await raw.expect_eof(0.2)
        raw.abort()
    await assert_node_healthy(node)


async def test_api_ws_malformed_message_storm(node):
    async with Session(node) as s:
        api = await s.api()
        rnd = random.Random(7)
        for k in range(200):
            junk = "".join(chr(rnd.randint(32, 126)) for _ in range(rnd.randint(1, 50)))
            await api.send_text("{" + junk)
        errors = [await api.next_other() for _ in range(200)]
        assert all(isinstance(e, dict) and e["E"]["c"] == 101 and e["i"] is None for e in errors)
        assert await api.ok("channel.count", {"c": "storm"}) == {"s": 0}
        # A binary message on /ws/v1 is not a request: 101, and the connection stays open.
        await api.ws.send(b"\x00\xff\x00")
        e = await api.next_other()
        assert isinstance(e, dict) and e["E"]["c"] == 101 and e.get("i") is None, e
        assert await api.ok("channel.count", {"c": "storm"}) == {"s": 0}
    await assert_node_healthy(node)


async def test_tcp_abrupt_disconnects(node):
    async with Session(node) as s:
        cons = await s.consumer()
        cases = [("tcp", b"partial line without newline"), ("tcp32", struct.pack("!I", 100) + b"0123456789"),
                 ("tcp32", b"\x00\x00"), ("tcp", b"\xff" * 100)]
        for listener, data in cases:
            for abort in (False, True):
                c, cid, _ = await s.tcp_client(cons, listener=listener)
                await c.send_raw(data)
                if abort:
                    sock = c.writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.writer.close()
                ev = await cons.wait_event(ev_close_of(cid), what=f"close event after {data[:20]!r}")
                assert isinstance(ev["p"]["d"]["code"], int)
                # Half a message is never delivered as a message.
                await cons.no_event(ev_frame_of(cid), 0)
    await assert_node_healthy(node)


async def test_connection_churn(node):
    ports = [node.api_port, node.route_port, node.port("ws"), node.port("tcp"), node.port("tcp32")]
    rnd = random.Random(42)
    for k in range(300):
        port = ports[k % len(ports)]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(("127.0.0.1", port))
        mode = rnd.randint(0, 3)
        if mode == 1:
            sendall_quiet(s, b"GET /healthz HTTP/1.1\r\nHost")
        elif mode == 2 and port == node.port("ws"):
            sendall_quiet(s, harness.ws_upgrade_request(port))
        elif mode == 2:
            sendall_quiet(s, b"abc\n")
        if rnd.random() < 0.5:
            rst_close(s)
        else:
            s.close()
    # Many websockets clients that connect and leave at once.
    for _ in range(30):
        ws = await ws_connect(node.port("ws"), "/churn")
        await ws.close()
    await assert_node_healthy(node)
    # No leaked client connection: with one client connected, a broadcast reaches exactly one.
    ws = await ws_connect(node.port("ws"), "/last")
    try:
        deadline = time.monotonic() + 5
        r = None
        while time.monotonic() < deadline:
            r = await aapi_ok(node, "mesh.broadcast", {"d": "count"})
            if r["s"] == 1:
                break
            await asyncio.sleep(0.2)
        assert r == {"s": 1, "f": 0}, f"broadcast after churn: {r} (connections leaked?)"
    finally:
        await ws.close()


async def test_concurrent_clients_under_load(node):
    async with Session(node) as s:
        cons = await s.consumer()
        clients = [await s.ws_client(cons, path=f"/load{k}") for k in range(20)]
        tcps = [await s.tcp_client(cons) for _ in range(5)]

        async def talk_ws(ws, cid):
            for k in range(20):
                await ws.send(f"{cid}:{k}")

        async def talk_tcp(c, cid):
            await c.send_raw(b"".join(f"{cid}:{k}\n".encode() for k in range(20)))

        await asyncio.gather(*[talk_ws(ws, cid) for ws, cid, _ in clients], *[talk_tcp(c, cid) for c, cid, _ in tcps])
        for _, cid, _ in clients + tcps:
            for k in range(20):
                await cons.wait_event(ev_frame_of(cid, f"{cid}:{k}"))
        # Meanwhile, pushes reach everybody.
        r = await aapi_ok(node, "mesh.broadcast", {"d": "bcast"})
        assert r["s"] >= 25 and r["f"] == 0
    await assert_node_healthy(node)


async def test_consumer_vanishes_mid_stream(node):
    async with Session(node) as s:
        a = await s.consumer()
        c, cid, _ = await s.tcp_client(a)
        await c.send_raw(b"".join(b"flood%d\n" % k for k in range(500)))
        a.ws.transport.abort()  # the consumer disappears without a close handshake
        await asyncio.sleep(0.3)
        b = await s.consumer()
        await c.send("after")
        await b.wait_event(ev_frame_of(cid, "after"), timeout=5)
    await assert_node_healthy(node)


async def test_json_deeply_nested_on_api_ws(node):
    async with Session(node) as s:
        api = await s.api()
        await api.send_text("[" * 50000)
        e = await api.next_other()
        assert e["E"]["c"] == 101 and e["i"] is None
        await api.send_text(json.dumps({"m": "conn.call", "p": {"c": "1", "f": "set_context",
                                                                 "a": [json.loads("[" * 500 + "]" * 500)]}, "i": 1}))
        resp = await api.next_other()
        assert resp["i"] == 1 and isinstance(resp.get("E"), dict), resp  # 101 or 301: answered either way
        assert await api.ok("channel.count", {"c": "deep"}) == {"s": 0}
    await assert_node_healthy(node)


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_pipelined_requests_never_read_stay_bounded(node):
    """A client that pipelines requests and never reads the answers is paused (the node stops reading
    it once 1 MiB of answers wait), so the node's memory does not follow what the client sends."""
    before = _rss_kb(node.proc.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", node.api_port))
    s.setblocking(False)
    batch = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 200
    sent = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and sent < 64 << 20:
        try:
            sent += s.send(batch)
        except BlockingIOError:
            await asyncio.sleep(0.01)
    grown_kb = _rss_kb(node.proc.pid) - before
    # /metrics answers are ~5 KB each: unpaused, 3 s of requests would queue hundreds of MiB.
    assert grown_kb < 32 * 1024, f"node grew by {grown_kb} KiB while a client sent {sent} bytes of requests"
    await assert_node_healthy(node)
    s.close()
