"""Text that leaves the gateway is valid, and payloads are sent as given (issue 18).

- A client whose upgrade path or query is not UTF-8 produces an `open` event a standard WebSocket
  consumer (python3-websockets, which closes with 1007 on an invalid text frame) receives, with the
  bad bytes percent-encoded; the events after it get through, with or without acknowledgements.
- An event whose delivery keeps failing (each consumer that gets it leaves without acknowledging)
  is dropped after `[queue] max_deliveries` failures, counted and logged; the client's later
  events then reach the next consumer.
- An EVENT frame from an authenticated node that cannot be read (its text is not UTF-8) is dropped,
  counted and reported consumed (DONE); the link stays up and the next EVENT is delivered.
- Peer text in the log is escaped: a stranger on the mesh port cannot forge log lines with a
  newline in its HELLO's cluster name or its REFUSE reason.
- A topic name with control bytes reaches /metrics escaped: no raw \\r, and promtool accepts it.
- A JSON `d` reaches the client byte for byte as the backend wrote it: big integers, 1E400, an
  object's spacing and key order (docs/decisions.md, "Payloads").
- A control API error that quotes a request path that is not UTF-8 is still valid JSON (U+FFFD).
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from harness import (RawWs, Session, ev_frame_of, ev_open_from, frame_of, http_request, metric_value, raw_http,
                     wait_metric, ws_connect, ws_recv)
from test_mesh import start_mesh_node
from test_mesh_security import CLUSTER, HELLO, REFUSE, SECRET, FrameReader, connect, frame, hello_of

AUTH, EVENT, DONE = 2, 10, 11


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({"node": {"id": 5}})


def log_lines(node):
    return node.stderr(tail=100000).splitlines()


# ---- 1. client text in events ----

@pytest.mark.parametrize("ack", [False, True])
async def test_a_path_that_is_not_utf8_reaches_a_standard_consumer_percent_encoded(node, ack):
    async with Session(node) as s:
        cons = await s.consumer(ack=ack)
        raw = await RawWs.connect(node.port("ws"), b"/room\xff\xfe?name=\xe9t\xe9&ok=1")
        s.closers.append(raw.close)
        ev = await cons.wait_event(ev_open_from(raw.local_port, "ws", cons), what="open event of the bad path")
        d = ev["p"]["d"]
        assert (d["path"], d["query"]) == ("/room%FF%FE", "name=%E9t%E9&ok=1"), d
        if ack:
            await cons.ok("queue.ack", {"k": [ev["p"]["k"]]})
        # The consumer is still there, and the next client's events get through.
        ws, cid, opened = await s.ws_client(cons)
        if ack:
            await cons.ok("queue.ack", {"k": [opened["p"]["k"]]})
        for i in range(10):
            await ws.send(f"ordinary {i}")
        for i in range(10):
            got = await cons.wait_event(ev_frame_of(cid), what=f"ordinary event {i}")
            assert frame_of(got)["data"] == f"ordinary {i}"
            if ack:
                await cons.ok("queue.ack", {"k": [got["p"]["k"]]})
        assert cons.closed_exc is None, cons.closed_exc


# ---- 2. poison events: bounded deliveries, and the mesh ----

async def test_an_event_whose_delivery_keeps_failing_is_dropped_after_max_deliveries(nodes):
    n = nodes.start({"queue": {"max_deliveries": 3}})
    async with Session(n) as s:
        first = await s.consumer(ack=True)
        ws, cid, opened = await s.ws_client(first)
        await first.ok("queue.ack", {"k": [opened["p"]["k"]]})
        await ws.send("poison")
        await ws.send("after")
        cons = first
        for attempt in range(3):
            if cons is None:
                cons = await s.consumer(ack=True)
            await cons.wait_event(ev_frame_of(cid, "poison"), what=f"delivery {attempt + 1} of the poison event")
            await cons.close()  # a consumer that dies on it, without acknowledging
            cons = None
        last = await s.consumer(ack=True)
        after = await last.wait_event(ev_frame_of(cid, "after"), what="the client's next event")
        assert after["p"].get("r") is True, after
        await last.no_event(ev_frame_of(cid, "poison"), 1.0)
    wait_metric(n, "meshgate_queue_discarded_total", lambda v: v == 1, reason="max_deliveries")
    assert metric_value(n, "meshgate_queue_discarded_total", reason="invalid_text") == 0
    assert any("max_deliveries" in ln and "dropped 1 event" in ln for ln in log_lines(n)), n.stderr()


def be32(n):
    return struct.pack(">I", n)


class MeshPeer:
    """A node of the cluster written here: it knows the secret, dials, completes the v2 handshake
    (docs/mesh-protocol.md §4) and then seals and opens frames, encrypted."""

    def __init__(self, node, node_id):
        self.sock = connect(node)
        self.reader = FrameReader(self.sock)
        hello = json.dumps(hello_of(node_id, nonce=base64.b64encode(os.urandom(16)).decode(), cluster=CLUSTER),
                           separators=(",", ":")).encode()
        self.sock.sendall(frame(HELLO, hello))
        t, theirs, _ = self.reader.next()
        assert t == HELLO, (t, theirs)
        transcript = hashlib.sha256(b"meshgate mesh v2 transcript\0" + be32(len(hello)) + hello +
                                    be32(len(theirs)) + theirs).digest()
        mac = hmac.new(SECRET.encode(), b"meshgate mesh v2 dialler proof\0" + transcript, hashlib.sha256).digest()
        self.sock.sendall(frame(AUTH, {"mac": base64.b64encode(mac).decode()}))
        t, body, _ = self.reader.next()
        assert t == AUTH, (t, body)
        keys = HKDF(algorithm=hashes.SHA256(), length=88, salt=transcript,
                    info=b"meshgate mesh v2 session keys").derive(SECRET.encode())
        self.out_key, self.out_iv, self.in_key, self.in_iv = keys[:32], keys[32:44], keys[44:76], keys[76:88]
        self.out_seq = self.in_seq = 0

    @staticmethod
    def nonce(iv, seq):
        return iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], struct.pack(">Q", seq)))

    def send(self, ftype, body):
        header = struct.pack(">IB", 1 + len(body) + 16, ftype)
        sealed = AESGCM(self.out_key).encrypt(self.nonce(self.out_iv, self.out_seq), body, header)
        self.out_seq += 1
        self.sock.sendall(header + sealed)

    def frames(self, timeout):
        """The node's frames, opened, until `timeout` passes with none (or the link closes)."""
        while True:
            f = self.reader.next(timeout=timeout)
            if f is None:
                return
            t, payload, raw = f
            body = AESGCM(self.in_key).decrypt(self.nonce(self.in_iv, self.in_seq), payload, raw[:5])
            self.in_seq += 1
            yield t, body


def event_body(fwd, client, text):
    d = b'{"frame":{"type":"text","data":"' + text + b'","finish":true}}'
    return (b'{"n":7,"c":"' + str(client).encode() + b'","t":"client","d":' + d +
            b',"f":' + str(fwd).encode() + b',"h":1}')


async def test_an_event_frame_that_cannot_be_read_is_dropped_and_the_link_kept(nodes):
    n = start_mesh_node(nodes, 2, cluster=CLUSTER, secret=SECRET)
    async with Session(n) as s:
        cons = await s.consumer()
        peer = await asyncio.to_thread(MeshPeer, n, 7)
        peer.send(EVENT, event_body(1, 7001, b"bad \xff\xfe"))
        peer.send(EVENT, event_body(2, 7002, b"good"))
        got = await cons.wait_event(lambda e: e["p"]["c"] == "7002", what="the EVENT after the bad one")
        assert frame_of(got)["data"] == "good" and got["p"]["n"] == 7, got
        seen = await asyncio.to_thread(lambda: list(peer.frames(timeout=1.5)))
        peer.sock.close()
        assert REFUSE not in [t for t, _ in seen], f"the node refused the link: {seen}"
        done = sorted(json.loads(b)["f"] for t, b in seen if t == DONE)
        assert done == [1, 2], f"both events reported consumed (the bad one dropped), got {seen}"
        await cons.no_event(lambda e: e["p"]["c"] == "7001", 0.5)
    assert metric_value(n, "meshgate_queue_discarded_total", reason="invalid_text") == 1
    assert metric_value(n, "meshgate_mesh_bad_frames_total") == 0


# ---- 3. log lines and metric labels ----

FORGED = "2026-01-01T00:00:00.000Z error FORGED-BY-A-STRANGER"


@pytest.mark.parametrize("case", ["hello_cluster", "refuse_reason"])
def test_a_stranger_on_the_mesh_port_cannot_forge_log_lines(nodes, case):
    n = start_mesh_node(nodes, 2, cluster=CLUSTER, secret=SECRET)
    s = connect(n)
    r = FrameReader(s)
    if case == "hello_cluster":
        s.sendall(frame(HELLO, hello_of(9, cluster="x\n" + FORGED + "\r\x1b[2J")))
    else:
        s.sendall(frame(REFUSE, {"reason": "bye\n" + FORGED + "\r\x1b[2J"}))
    while r.next(timeout=2) is not None:
        pass
    s.close()
    lines = log_lines(n)
    hits = [ln for ln in lines if "FORGED-BY-A-STRANGER" in ln]
    assert hits, "the node did not log the stranger at all:\n" + n.stderr()
    for ln in hits:
        assert not ln.startswith(FORGED) and " mesh: " in ln, f"a forged line: {ln!r}"
        assert "\\x0a" + FORGED + "\\x0d\\x1b[2J" in ln, ln
    assert not any("\r" in ln or "\x1b" in ln for ln in lines)


def test_strangers_rotating_their_cluster_name_do_not_hide_other_warnings(nodes):
    """The rate limit of warnings about strangers is per kind of failure, and the kind leaves out the
    stranger's own text: 40 strangers each with another cluster name are one kind (one line a
    minute), so they cannot fill the 32 kinds tracked and push a different failure (a protocol
    version this node does not speak) into the shared limit."""
    n = start_mesh_node(nodes, 2, cluster=CLUSTER, secret=SECRET)

    def hello_refused(hello):
        s = connect(n)
        r = FrameReader(s)
        s.sendall(frame(HELLO, hello))
        while r.next(timeout=2) is not None:
            pass
        s.close()

    for i in range(40):
        hello_refused(hello_of(9, cluster=f"rotating-{i}"))
    hello_refused(hello_of(9, v=99))
    lines = log_lines(n)
    mismatch = [ln for ln in lines if "does not match this cluster" in ln]
    assert len(mismatch) == 1, f"cluster-name refusals are one kind, logged once a minute: {mismatch}"
    assert [ln for ln in lines if "protocol version 99 is not supported" in ln], \
        "a different kind of failure was not logged:\n" + "\n".join(lines[-20:])


async def test_a_topic_name_with_control_bytes_reaches_metrics_escaped(node):
    async with Session(node) as s:
        api = await s.api()
        await api.pop(["evil\r\nmeshgate_fake_total 1\r", "tab\there"])
        page = (await asyncio.to_thread(http_request, node.api_port, "GET", "/metrics")).body
    assert b"\r" not in page and b"\t" not in page
    assert b'topic="evil\\\\x0d\\\\x0ameshgate_fake_total 1\\\\x0d"' in page
    assert not any(ln.startswith(b"meshgate_fake_total") for ln in page.split(b"\n"))
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's prometheus package (scripts/install-deps.sh test)"
    p = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, timeout=60)
    assert b"error" not in p.stdout + p.stderr and p.returncode == 0, p.stdout + p.stderr


# ---- 4. payloads as given ----

PAYLOADS = [b"12345678901234567890", b"1E400", b"-0.0", b'{ "b" : 1,\t"a" :[1 ,2.50] }', b'[true,null , "x"]']


@pytest.mark.parametrize("d", PAYLOADS)
@pytest.mark.parametrize("via", ["http", "ws"])
async def test_a_json_d_reaches_the_client_as_written(node, d, via):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        body = b'{"c":"' + cid.encode() + b'","d":' + d + b"}"
        if via == "http":
            r = await asyncio.to_thread(http_request, node.api_port, "POST", "/v1/mesh/send", body,
                                        {"Content-Type": "application/json"})
            assert r.status == 200 and r.json["E"] is None, r
        else:
            api = await s.api()
            resp = await api.request_text(b'{"m":"mesh.send","p":' + body + b',"i":77}', 77)
            assert resp["E"] is None, resp
        assert (await ws_recv(ws)).encode() == d


async def test_an_error_that_quotes_a_path_that_is_not_utf8_is_valid_json(node):
    for path in (b"/v1/\xff\xfe", b"/dashboard/\xc3\x28"):
        r = await asyncio.to_thread(raw_http, node.api_port,
                                    b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert r.status == 404, r
        body = json.loads(r.body.decode("utf-8"))  # strict: invalid UTF-8 raises
        assert "\ufffd" in body["E"]["m"], body
