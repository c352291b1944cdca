"""Route API (PROTOCOL.md §6): GET /route, POST /route/batch, on the [route] port."""

import asyncio
import json
import time

import pytest

import harness
from harness import http_request


@pytest.fixture(scope="module")
def node(module_nodes):
    # External and intranet hosts differ so that the test can tell which one was used.
    return module_nodes.start({
        "node": {"advertise": "gw.example.test", "intranet_advertise": "10.1.2.3"},
        "route": {"max_batch": 5, "cors_origin": "*"},
    })


@pytest.fixture(scope="module")
def explicit_node(module_nodes):
    # Only a ws listener; an explicit external wss address and an explicit intranet ws address.
    return module_nodes.start({
        "node": {"id": 2, "intranet_advertise": ""},
        "route": {"wss_addr": "wss://edge.example.test:443", "intranet_ws_addr": "ws://ws-in.example.test:81"},
        "listener.tcp": None,
        "listener.tcp32": None,
    })


def get_route(node, query):
    r = http_request(node.route_port, "GET", "/route" + query)
    assert r.status == 200, f"GET /route{query} -> {r.status} {r.body[:300]!r}"
    return r, r.json


def post_batch(node, query, body):
    return http_request(node.route_port, "POST", "/route/batch" + query, body=body,
                        headers={"Content-Type": "application/json"})


def external(node):
    return {"tcp_addr": f"gw.example.test:{node.port('tcp')}",
            "ws_addr": f"ws://gw.example.test:{node.port('ws')}",
            "wss_addr": ""}


def intranet(node):
    return {"tcp_addr": f"10.1.2.3:{node.port('tcp')}",
            "ws_addr": f"ws://10.1.2.3:{node.port('ws')}",
            "wss_addr": ""}


def test_route_external_addresses(node):
    r, body = get_route(node, "?intranet=0")
    # First listener of each kind (tcp, not tcp32); no wss listener on this node -> "".
    assert body == external(node)
    assert "json" in (r.header("Content-Type") or ""), r.headers


def test_route_intranet_addresses(node):
    _, body = get_route(node, "?intranet=1")
    assert body == intranet(node)


def test_route_without_query_is_external(node):
    _, body = get_route(node, "")
    assert body == external(node)


def test_route_with_uid_single_node(node):
    _, a = get_route(node, "?intranet=0&uid=alice")
    _, b = get_route(node, "?uid=bob&intranet=0")
    assert a == external(node) and b == external(node)
    _, c = get_route(node, "?intranet=1&uid=alice")
    assert c == intranet(node)


def test_route_cors_header(node):
    r, _ = get_route(node, "?intranet=0")
    assert r.header("Access-Control-Allow-Origin") == "*", r.headers


def test_route_no_cors_header_by_default(explicit_node):
    r, _ = get_route(explicit_node, "?intranet=0")
    assert r.header("Access-Control-Allow-Origin") is None, r.headers


def test_route_explicit_and_missing_addresses(explicit_node):
    n = explicit_node
    _, body = get_route(n, "?intranet=0")
    # No tcp listener and no explicit tcp_addr -> ""; ws from advertise (127.0.0.1); wss explicit.
    assert body == {"tcp_addr": "", "ws_addr": f"ws://127.0.0.1:{n.port('ws')}",
                    "wss_addr": "wss://edge.example.test:443"}
    _, body = get_route(n, "?intranet=1")
    assert body["tcp_addr"] == ""
    assert body["ws_addr"] == "ws://ws-in.example.test:81"


def test_batch_groups_uids_in_order_without_duplicates(node):
    r = post_batch(node, "?intranet=0", ["user1", "user2", "user1", "user3", "user2"])
    assert r.status == 200, r
    body = r.json
    assert isinstance(body, list) and len(body) == 1, body
    want = dict(external(node), uids=["user1", "user2", "user3"])
    assert body[0] == want


def test_batch_intranet(node):
    r = post_batch(node, "?intranet=1", ["u9"])
    assert r.status == 200, r
    assert r.json == [dict(intranet(node), uids=["u9"])]


def test_batch_at_max_batch_is_accepted(node):
    uids = [f"u{i}" for i in range(5)]
    r = post_batch(node, "?intranet=0", uids)
    assert r.status == 200, r
    assert r.json[0]["uids"] == uids


@pytest.mark.parametrize("body,what", [
    (b"", "empty body"),
    (b"[\"a\",", "malformed JSON"),
    (b"{\"uids\":[\"a\"]}", "an object instead of an array"),
    (b"\"user1\"", "a string instead of an array"),
    (b"[\"a\", 1]", "a number uid"),
    (b"[null]", "a null uid"),
    (b"[[\"a\"]]", "an array uid"),
    (b"[\"\"]", "an empty uid"),
    (json.dumps([f"u{i}" for i in range(6)]).encode(), "more than max_batch uids"),
])
def test_batch_errors(node, body, what):
    r = post_batch(node, "?intranet=0", body)
    assert r.status == 400, f"{what}: expected 400, got {r}"
    b = r.json
    assert isinstance(b, dict) and b.get("status") == 400, f"{what}: {b!r}"
    assert isinstance(b.get("msg"), str) and b["msg"], f"{what}: error without a message: {b!r}"


def test_batch_error_does_not_break_keepalive(node):
    # A 400 followed by a good request on a fresh connection: the API keeps answering.
    r = post_batch(node, "?intranet=0", b"nope")
    assert r.status == 400
    r = post_batch(node, "?intranet=0", ["x"])
    assert r.status == 200 and r.json[0]["uids"] == ["x"]


def test_route_port_does_not_serve_the_control_api(node):
    # The route API is public; the control API must not be reachable through it.
    for method, path in (("GET", "/v1/nodes"), ("GET", "/metrics")):
        r = http_request(node.route_port, method, path)
        assert r.status == 404, f"{method} {path} on the route port -> {r.status}"
    r = http_request(node.route_port, "POST", "/v1/mesh/broadcast", body={"d": "x"})
    assert r.status == 404, f"POST /v1/mesh/broadcast on the route port -> {r.status}"


def test_route_unknown_path_404(node):
    r = http_request(node.route_port, "GET", "/nope")
    assert r.status == 404


def test_route_raw_request_keepalive(node):
    # Two requests pipelined on one connection get two answers, in order.
    req = (b"GET /route?intranet=0 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /route?intranet=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    s = harness.connect_raw(node.route_port)
    try:
        s.sendall(req)
        r1, rest = harness.read_http_response(s)
        r2, _ = harness.read_http_response(s, buf=rest)
    finally:
        s.close()
    assert r1 is not None and r1.status == 200 and r1.json == external(node)
    assert r2 is not None and r2.status == 200 and r2.json == intranet(node)


# ---- bounds: the route API is public and unauthenticated (issue 18) ----

def test_batch_over_max_body_is_413_before_it_is_read(node):
    """The default [route] max_body is 64 KiB: a bigger body is refused from its Content-Length,
    before the node buffers it, and counted."""
    before = harness.metric_value(node, "meshgate_http_refused_total", listener="route", reason="body_too_large") or 0
    s = harness.connect_raw(node.route_port)
    try:
        s.sendall(b"POST /route/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1600000\r\n\r\n[\"u1\",")
        resp, _ = harness.read_http_response(s)
    finally:
        s.close()
    assert resp.status == 413, f"a 1.6 MB batch -> HTTP {resp.status} {resp.body[:200]!r}"
    assert "65536" in resp.json["msg"], resp.json
    # Chunked, so the length is not known up front: refused as it passes the limit.
    chunk = b"[" + b"\"u\"," * 30000
    resp = harness.raw_http(node.route_port, b"POST /route/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    assert resp is not None and resp.status == 413, f"a chunked 90 KB batch -> {resp!r}"
    harness.wait_metric(node, "meshgate_http_refused_total", lambda v: v >= before + 2, listener="route",
                        reason="body_too_large")
    # Up to the limit is read (max_batch is 5 here: a body of 5 long uids near 64 KiB).
    r = post_batch(node, "?intranet=0", [f"{i}" + "x" * 13000 for i in range(5)])
    assert r.status == 200, r


async def test_slow_body_is_answered_408_and_closed_at_the_deadline(node):
    """A body that trickles in is cut off 10 s after the connection was ready for the request,
    however much keeps arriving: 408, then closed; counted. Others are served meanwhile."""
    before = harness.metric_value(node, "meshgate_http_refused_total", listener="route", reason="timeout") or 0
    s = harness.connect_raw(node.route_port)
    t0 = time.monotonic()
    got = b""
    try:
        s.sendall(b"POST /route/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 60000\r\n\r\n[")
        s.setblocking(False)
        while time.monotonic() - t0 < 16:
            try:
                s.send(b"\"u\",")
            except (BlockingIOError, OSError):
                pass
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            except BlockingIOError:
                pass
            except OSError:
                break
            get_route(node, "?intranet=0")  # the port serves others meanwhile
            await asyncio.sleep(0.5)
        closed_at = time.monotonic() - t0
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 408 "), f"the slow body got {got[:200]!r}"
    assert 9 <= closed_at <= 13, f"closed {closed_at:.1f} s after the request began"
    harness.wait_metric(node, "meshgate_http_refused_total", lambda v: v >= before + 1, listener="route",
                        reason="timeout")
