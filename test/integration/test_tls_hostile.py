"""Hostile TLS clients on a wss:// listener (issue 21): what a TLS client can ask for that the server
must refuse, and what it can withhold that the server must time out, each checked for what the client
sees on the wire and for the node serving everyone else meanwhile.

- Renegotiation (TLS 1.2, which the listener allows): refused with OpenSSL's no_renegotiation alert
  (SSL_OP_NO_RENEGOTIATION, src/net/tls.cpp); the client's handshake attempt fails, that connection
  ends, the node serves others.
- KeyUpdate (TLS 1.3, which has no renegotiation): answered as the RFC says; a flood of KeyUpdates
  with no data is answered one for one (no amplification), and the answers a client never reads
  stay under output_hard_limit like any other output.
- Slow handshakes: a client that opens TCP and says nothing, and one that sends its ClientHello one
  byte a second, are both closed at the handshake timeout (10 s from accept, docs/security.md), while
  other clients are served.
- Many half-open handshakes (500) do not keep an established wss client from a publish, nor a new
  one from connecting; they are all closed by the timeout and the node's count goes back.
(A bad TLS record after the upgrade is test_security.py's
test_bad_tls_record_after_upgrade_ends_the_connection_once.)

The renegotiation and KeyUpdate clients drive libssl through ctypes (Python's ssl module has neither
call); everything else uses the ssl module or raw sockets."""

import asyncio
import ctypes
import ctypes.util
import os
import socket
import ssl
import struct
import threading
import time

import pytest
import websockets

import harness
from harness import Session, aapi_ok, ev_close_of, ev_open_from, wait_closed_by_peer, ws_upgrade_request

ACCEPTED = "meshgate_connections_accepted_total"
HANDSHAKE_TIMEOUT_S = 10  # src/client/client_conn.cpp kHandshakeTimeoutS, docs/security.md


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "node": {"workers": 2},
        "listener.wss": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client", "tls": True},
    })


def client_ctx(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def client_hello():
    """The bytes of a real ClientHello, captured with memory BIOs."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert len(hello) > 100 and hello[0] == 0x16, hello[:10]
    return hello


def node_connections(node):
    return harness.api_ok(node, "node.stats", {})["connections"]


async def wait_connections(node, want, timeout):
    deadline = time.monotonic() + timeout
    while (n := await asyncio.to_thread(node_connections, node)) != want:
        assert time.monotonic() < deadline, f"node.stats counts {n} connections, not {want}"
        await asyncio.sleep(0.1)


async def wss_served(node, text="served"):
    """A fresh wss client (Python's websockets) connects, and a broadcast reaches it."""
    ws = await asyncio.wait_for(websockets.connect(f"wss://127.0.0.1:{node.port('wss')}/", ssl=client_ctx(),
                                                   ping_interval=None, close_timeout=2, open_timeout=harness.T),
                                harness.T + 1)
    try:
        prefix = f"{text}-{os.urandom(3).hex()}-"
        for attempt in range(20):  # registered asynchronously: broadcast until it arrives (bounded)
            await aapi_ok(node, "mesh.broadcast", {"d": f"{prefix}{attempt}"})
            try:
                got = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            assert got.startswith(prefix), got
            return
        pytest.fail("a new wss client did not receive a broadcast")
    finally:
        await ws.close()


# ---------------------------------------------------------------------------------------------------
# libssl through ctypes: a client that can renegotiate and send KeyUpdates
# ---------------------------------------------------------------------------------------------------

_lib = None


def libssl():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(ctypes.util.find_library("ssl") or "libssl.so.3")
        p, i, ul = ctypes.c_void_p, ctypes.c_int, ctypes.c_ulong
        for name, res, args in [("TLS_client_method", p, []), ("SSL_CTX_new", p, [p]), ("SSL_CTX_free", None, [p]),
                                ("SSL_CTX_ctrl", ctypes.c_long, [p, i, ctypes.c_long, p]),
                                ("SSL_CTX_set_verify", None, [p, i, p]), ("SSL_new", p, [p]), ("SSL_free", None, [p]),
                                ("SSL_set_fd", i, [p, i]), ("SSL_connect", i, [p]), ("SSL_do_handshake", i, [p]),
                                ("SSL_read", i, [p, p, i]), ("SSL_write", i, [p, p, i]), ("SSL_get_error", i, [p, i]),
                                ("SSL_renegotiate", i, [p]), ("SSL_key_update", i, [p, i]), ("SSL_version", i, [p]),
                                ("ERR_get_error", ul, []), ("ERR_error_string_n", None, [ul, p, ctypes.c_size_t])]:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _lib = lib
    return _lib


TLS1_2, TLS1_3 = 0x0303, 0x0304
SSL_CTRL_SET_MIN_PROTO_VERSION, SSL_CTRL_SET_MAX_PROTO_VERSION = 123, 124
SSL_ERROR_WANT_READ, SSL_ERROR_ZERO_RETURN = 2, 6
SSL_KEY_UPDATE_REQUESTED = 1


class CTls:
    """A blocking TLS client on libssl itself; reads time out after `timeout` (SO_RCVTIMEO)."""

    def __init__(self, port, version, timeout=harness.T, rcvbuf=None):
        lib = libssl()
        self.lib = lib
        self.sock = socket.socket()
        if rcvbuf:  # before connect, so that the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(True)  # libssl does the reads; the timeout is the kernel's
        tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        self.ctx = lib.SSL_CTX_new(lib.TLS_client_method())
        lib.SSL_CTX_ctrl(self.ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, version, None)
        lib.SSL_CTX_ctrl(self.ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, version, None)
        lib.SSL_CTX_set_verify(self.ctx, 0, None)
        self.ssl = lib.SSL_new(self.ctx)
        lib.SSL_set_fd(self.ssl, self.sock.fileno())
        r = lib.SSL_connect(self.ssl)
        assert r == 1, f"TLS handshake failed: {self.errors()}"
        assert lib.SSL_version(self.ssl) == version
        self.buf = b""

    def errors(self):
        out = []
        while e := self.lib.ERR_get_error():
            b = ctypes.create_string_buffer(256)
            self.lib.ERR_error_string_n(e, b, 256)
            out.append(b.value.decode())
        return "; ".join(out)

    def write(self, data):
        r = self.lib.SSL_write(self.ssl, data, len(data))
        assert r == len(data), f"SSL_write: {r} ({self.errors()})"

    def read_some(self):
        """Plaintext bytes, b"" on a clean close; raises OSError on an error or a timeout."""
        b = ctypes.create_string_buffer(65536)
        r = self.lib.SSL_read(self.ssl, b, 65536)
        if r > 0:
            return b.raw[:r]
        err = self.lib.SSL_get_error(self.ssl, r)
        if err == SSL_ERROR_ZERO_RETURN:
            return b""
        raise OSError(f"SSL_read: error {err} ({self.errors()})")

    def upgrade(self, port, path="/"):
        self.write(ws_upgrade_request(port, path))
        while b"\r\n\r\n" not in self.buf:
            chunk = self.read_some()
            assert chunk, "closed before the upgrade answer"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head[:200]

    def read_text(self):
        """The payload of the next server frame (short unmasked text frames only)."""
        while len(self.buf) < 2 or len(self.buf) < 2 + (self.buf[1] & 0x7F):
            chunk = self.read_some()
            assert chunk, "closed while waiting for a frame"
            self.buf += chunk
        n = self.buf[1] & 0x7F
        assert n < 126 and self.buf[0] == 0x81, self.buf[:4]
        payload, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
        return payload.decode()

    def local_port(self):
        return self.sock.getsockname()[1]

    def close(self):
        if self.ssl:
            self.lib.SSL_free(self.ssl)
            self.lib.SSL_CTX_free(self.ctx)
            self.ssl = None
        self.sock.close()


def read_until(c, text, limit=100):
    """The next frame whose text is `text`, skipping the broadcasts other checks sent (bounded)."""
    for _ in range(limit):
        got = c.read_text()
        if got == text:
            return got
    return None


async def open_ctls(node, cons, version):
    c = await asyncio.to_thread(CTls, node.port("wss"), version)
    await asyncio.to_thread(c.upgrade, node.port("wss"))
    ev = await cons.wait_event(ev_open_from(c.local_port(), "wss", cons))
    return c, ev["p"]["c"]


async def send_to(node, c, cid, text):
    await aapi_ok(node, "mesh.send", {"c": cid, "d": text})
    assert await asyncio.to_thread(c.read_text) == text


# ---------------------------------------------------------------------------------------------------
# (a) renegotiation and KeyUpdate
# ---------------------------------------------------------------------------------------------------

async def test_tls12_client_renegotiation_is_refused(node):
    """A TLS 1.2 client (the listener allows 1.2) that asks to renegotiate after its upgrade gets the
    no_renegotiation alert: its second handshake fails, the client gives up and the connection ends
    once (close event 1006); the node goes on serving others."""
    base = await asyncio.to_thread(node_connections, node)
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid = await open_ctls(node, cons, TLS1_2)
        try:
            await send_to(node, c, cid, "before renegotiation")
            lib = c.lib
            assert lib.SSL_renegotiate(c.ssl) == 1  # scheduled on the client's side
            r = lib.SSL_do_handshake(c.ssl)
            errors = c.errors()
            assert r != 1, "the server renegotiated"
            assert "no renegotiation" in errors, errors
            # The client sent its fatal alert: the server ends the connection, once.
            assert await asyncio.to_thread(wait_closed_by_peer, c.sock)
            ev = await cons.wait_event(ev_close_of(cid))
            assert ev["p"]["d"]["code"] == 1006, ev
        finally:
            c.close()
        await wss_served(node)
    await wait_connections(node, base, harness.T)


async def test_tls13_key_updates_with_data_are_answered(node):
    """TLS 1.3 has no renegotiation, only KeyUpdate: a client that asks for one before each of 40
    messages (each time requesting the server's update too) keeps its connection, and what the server
    sends after all of them still decrypts."""
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid = await open_ctls(node, cons, TLS1_3)
        try:
            for k in range(40):
                assert c.lib.SSL_key_update(c.ssl, SSL_KEY_UPDATE_REQUESTED) == 1
                # A masked text frame after the KeyUpdate: data under the new keys.
                await asyncio.to_thread(c.write, harness.ws_frame(harness.OP_TEXT, f"m{k}"))
                await cons.wait_event(harness.ev_frame_of(cid, f"m{k}"))
            await send_to(node, c, cid, "after 40 key updates")
        finally:
            c.close()


def key_update_flood(c, count):
    """Writes up to `count` KeyUpdate(update_requested) records, nothing else; returns how many went out
    (fewer when the server closed or stopped reading for the socket's send timeout)."""
    sent = 0
    for _ in range(count):
        if c.lib.SSL_key_update(c.ssl, SSL_KEY_UPDATE_REQUESTED) != 1:
            break
        if c.lib.SSL_do_handshake(c.ssl) != 1:  # writes the scheduled KeyUpdate, a record of its own
            break
        sent += 1
    return sent


async def test_tls13_key_update_flood_is_answered_one_for_one(node):
    """What the server does with KeyUpdates and no data between them: OpenSSL 3.0 answers each
    update_requested with a KeyUpdate of its own (its limit of 32 consecutive KeyUpdates does not hold
    across the separate reads a stream server makes), so a flood costs the server one re-key and one
    27-byte record per 27-byte record received: no amplification. The connection stays usable (what
    the server sends afterwards decrypts under the latest keys) and another client is not disturbed."""
    async with Session(node) as s:
        cons = await s.consumer()
        other, other_cid = await open_ctls(node, cons, TLS1_3)
        c, cid = await open_ctls(node, cons, TLS1_3)
        try:
            assert await asyncio.to_thread(key_update_flood, c, 500) == 500
            await send_to(node, other, other_cid, "undisturbed")
            await send_to(node, c, cid, "after 500 key updates")  # read through the server's 500 answers
        finally:
            c.close()
            other.close()


async def test_tls13_key_update_flood_of_a_client_that_never_reads_hits_the_hard_limit(module_nodes):
    """A client that floods KeyUpdates and never reads makes the server queue one KeyUpdate answer per
    KeyUpdate. That output is bounded like any other: once it passes [limits] output_hard_limit the
    connection is closed at once (counted as meshgate_output_buffer_closes_total{limit="hard"}), not
    after output_soft_seconds over the soft limit. Here: hard limit 64 KiB, soft limit 32 KiB held for
    120 s, so only the hard limit can close it within the test. (Before Stream::admit_tls_records the
    records the server wrote while reading bypassed the hard limit and only the soft limit's timer
    closed such a client.)"""
    n = module_nodes.start({"node": {"workers": 1},
                            "limits": {"output_hard_limit": 65536, "output_soft_limit": 32768,
                                       "output_soft_seconds": 120},
                            "listener.wss": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                                             "tls": True}})
    before = await asyncio.to_thread(harness.metric_value, n, "meshgate_output_buffer_closes_total", limit="hard") or 0
    c = await asyncio.to_thread(CTls, n.port("wss"), TLS1_3, 2.0, 4096)
    try:
        await asyncio.to_thread(c.upgrade, n.port("wss"))
        t0 = time.monotonic()
        sent = 0
        # 1.6 MB of answers at most: past socket buffers and the 64 KiB limit many times over.
        while sent < 60000 and time.monotonic() - t0 < 40:
            k = await asyncio.to_thread(key_update_flood, c, 2000)
            sent += k
            if k < 2000:
                break
        closed = await asyncio.to_thread(wait_closed_by_peer, c.sock, 3)
        after = await asyncio.to_thread(harness.metric_value, n, "meshgate_output_buffer_closes_total", limit="hard") or 0
        assert closed and after == before + 1, \
            f"{sent} KeyUpdates in {time.monotonic() - t0:.1f} s: closed={closed}, hard-limit closes {before} -> {after}"
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------------
# (b) slow handshakes, (c) many half-open handshakes
# ---------------------------------------------------------------------------------------------------

async def test_silent_and_trickling_handshakes_closed_at_the_timeout(node):
    """Two clients withhold their handshake: one opens TCP and sends nothing, one sends a ClientHello
    one byte a second. Both are closed by the server at the handshake timeout (10 s from accept:
    trickling does not extend it), not before 8 s, and meanwhile other wss clients are served.
    Both are counted as meshgate_connections_refused_total{reason="handshake_timeout"}."""
    timeouts_before = harness.metric_value(node, "meshgate_connections_refused_total", reason="handshake_timeout")
    hello = client_hello()
    silent = await asyncio.to_thread(harness.connect_raw, node.port("wss"))
    trickle = await asyncio.to_thread(harness.connect_raw, node.port("wss"))
    t0 = time.monotonic()
    stop = threading.Event()
    sent = [0]

    def trickler():
        for b in hello:
            if stop.wait(1.0):
                return
            try:
                trickle.send(bytes([b]))
            except OSError:
                return
            sent[0] += 1

    th = threading.Thread(target=trickler, daemon=True)
    th.start()
    closed_at = {}

    def watch(name, sock):
        sock.settimeout(HANDSHAKE_TIMEOUT_S + 4)
        while True:
            try:
                if not sock.recv(65536):
                    break
            except (ConnectionResetError, BrokenPipeError):
                break
            except socket.timeout:
                return
        closed_at[name] = time.monotonic() - t0

    try:
        watchers = [asyncio.to_thread(watch, "silent", silent), asyncio.to_thread(watch, "trickle", trickle)]
        served = 0
        while time.monotonic() - t0 < 7:  # other clients, meanwhile
            await wss_served(node, f"meanwhile-{served}")
            served += 1
            await asyncio.sleep(0.5)
        await asyncio.gather(*watchers)
    finally:
        stop.set()
        silent.close()
        trickle.close()
    assert served >= 5, served
    for name in ("silent", "trickle"):
        assert name in closed_at, f"{name}: still open {HANDSHAKE_TIMEOUT_S + 4} s after accept"
        assert HANDSHAKE_TIMEOUT_S - 2 <= closed_at[name] <= HANDSHAKE_TIMEOUT_S + 2.5, (name, closed_at)
    assert sent[0] >= HANDSHAKE_TIMEOUT_S - 3, f"the trickler sent only {sent[0]} bytes"
    await wss_served(node, "after")
    timeouts = harness.metric_value(node, "meshgate_connections_refused_total", reason="handshake_timeout")
    assert timeouts - timeouts_before == 2, (timeouts_before, timeouts)


async def test_many_half_open_handshakes_do_not_stop_a_publish(node):
    """500 clients open TCP to the wss port and send half a ClientHello each. Meanwhile an
    established wss client subscribed to a channel receives a publish, and a new wss client connects
    and is served. The 500 are all closed by the handshake timeout and the node's connection count
    comes back to what it was (half-open handshakes are not in it: it counts upgraded connections)."""
    n = 500
    hello = client_hello()
    base = await asyncio.to_thread(node_connections, node)
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid = await open_ctls(node, cons, TLS1_3)
        accepted = await asyncio.to_thread(harness.metric_value, node, ACCEPTED, listener="wss")
        half = []
        try:
            await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["room:tls"]})

            def open_half():
                for _ in range(n):
                    h = harness.connect_raw(node.port("wss"))
                    h.sendall(hello[: len(hello) // 2])
                    half.append(h)
            t0 = time.monotonic()
            await asyncio.to_thread(open_half)
            # All 500 reached the server (accepted; node.stats counts a connection once it is upgraded).
            await asyncio.to_thread(harness.wait_metric, node, ACCEPTED, lambda v: v >= accepted + n, harness.T,
                                    listener="wss")
            r = await aapi_ok(node, "mesh.publish", {"c": "room:tls", "d": "through the crowd"})
            assert r == {"s": 1, "f": 0}, r
            assert await asyncio.to_thread(c.read_text) == "through the crowd"
            await wss_served(node, "newcomer")
            assert time.monotonic() - t0 < HANDSHAKE_TIMEOUT_S - 1, "too slow to test before the timeout"

            def all_closed():
                deadline = t0 + HANDSHAKE_TIMEOUT_S + 4
                return sum(1 for h in half if wait_closed_by_peer(h, max(0.01, deadline - time.monotonic())))
            closed = await asyncio.to_thread(all_closed)
            assert closed == n, f"{n - closed} of {n} half-open handshakes still open after the timeout"
            await wait_connections(node, base + 1, harness.T)
            r = await aapi_ok(node, "mesh.publish", {"c": "room:tls", "d": "after the crowd"})
            assert r == {"s": 1, "f": 0}, r
            # (The broadcasts that served the newcomer reached this client too: skip them.)
            assert await asyncio.to_thread(read_until, c, "after the crowd") == "after the crowd"
        finally:
            for h in half:
                h.close()
            c.close()
    await wait_connections(node, base, harness.T)
