"""Control API (PROTOCOL.md §5): HTTP /v1/..., /healthz, /readyz, /metrics, GET /v1/nodes, the /ws/v1
envelope, the API token, HTTP-level errors."""

import asyncio
import http.client
import json

import pytest
import websockets.exceptions

import harness
from harness import (ApiWs, Session, aapi_ok, api_call, api_err, api_ok, fake_client_id, http_request,
                     parse_metrics, read_http_response, ws_connect)

MAX_BODY = 4096


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "node": {"id": 3, "name": "itest-api"},
        "api": {"max_body": MAX_BODY},
        "limits": {"max_header_bytes": 2048, "max_headers": 16},
    })


@pytest.fixture(scope="module")
def token_node(module_nodes):
    return module_nodes.start({"node": {"id": 4}, "api": {"token": "s3cret-token-0123456789"}})


def assert_http_error(r, status, what):
    assert r is not None, f"{what}: connection closed without a response (expected {status})"
    assert r.status == status, f"{what}: expected HTTP {status}, got {r.status} {r.body[:300]!r}"
    body = r.json
    assert isinstance(body, dict) and isinstance(body.get("E"), dict), f"{what}: body {body!r}"
    assert body["E"].get("c") == 101, f"{what}: expected E.c=101, got {body!r}"
    assert isinstance(body["E"].get("m"), str) and body["E"]["m"], f"{what}: no message in {body!r}"


# ---- health, readiness, metrics, nodes ----

def test_healthz_and_readyz(node):
    assert http_request(node.api_port, "GET", "/healthz").status == 200
    assert http_request(node.api_port, "GET", "/readyz").status == 200


def test_metrics_prometheus_text(node):
    r = http_request(node.api_port, "GET", "/metrics")
    assert r.status == 200
    assert (r.header("Content-Type") or "").startswith("text/plain"), r.headers
    text = r.body.decode()
    samples = parse_metrics(text)
    assert samples, "no samples in /metrics"
    assert any(line.startswith("# TYPE ") for line in text.splitlines()), "no # TYPE lines"
    names = {n for n, _, _ in samples}
    # Our own families, and the process_* family every Prometheus client exports (issue 12).
    assert all(n.startswith(("meshgate_", "process_")) for n in names), sorted(names)
    assert {"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"} <= names


def test_nodes_lists_this_node(node):
    r = http_request(node.api_port, "GET", "/v1/nodes")
    assert r.status == 200, r
    body = r.json
    assert body.get("E") is None, body
    res = body["r"]
    nodes = res if isinstance(res, list) else res.get("nodes") if isinstance(res, dict) else None
    assert isinstance(nodes, list), f"no node list in {body!r}"
    me = [n for n in nodes if n.get("id") == 3]
    assert len(me) == 1, f"node 3 not listed exactly once: {nodes!r}"
    assert me[0].get("name") == "itest-api", me[0]


def test_json_content_type(node):
    r = http_request(node.api_port, "POST", "/v1/channel/count", body={"c": "room:x"})
    assert r.status == 200
    assert "application/json" in (r.header("Content-Type") or ""), r.headers
    assert r.json == {"E": None, "r": {"s": 0}}


# ---- HTTP-level errors ----

@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("POST", "/v1/mesh/nope"), ("POST", "/v1/nope/send"), ("GET", "/v1"),
    ("POST", "/v1/queue/pop"), ("POST", "/v1/queue/unpop"), ("POST", "/v1/queue/ack"),
])
def test_unknown_path_404(node, method, path):
    r = http_request(node.api_port, method, path, body={} if method == "POST" else None)
    assert_http_error(r, 404, f"{method} {path}")


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/v1/mesh/send", "POST"), ("GET", "/v1/mesh/publish", "POST"), ("PUT", "/v1/conn/call", "POST"),
    ("POST", "/healthz", "GET"), ("POST", "/readyz", "GET"), ("POST", "/metrics", "GET"),
    ("DELETE", "/v1/nodes", "GET"),
])
def test_wrong_method_405_with_allow(node, method, path, allowed):
    r = http_request(node.api_port, method, path, body={} if method in ("POST", "PUT") else None)
    assert_http_error(r, 405, f"{method} {path}")
    allow = r.header("Allow")
    assert allow and allowed in [a.strip() for a in allow.split(",")], f"{method} {path}: Allow={allow!r}"


def test_body_over_max_body_413(node):
    body = json.dumps({"d": "x" * (MAX_BODY + 100)})
    r = http_request(node.api_port, "POST", "/v1/mesh/broadcast", body=body,
                     headers={"Content-Type": "application/json"})
    assert_http_error(r, 413, "body over max_body")


def test_body_exactly_max_body_accepted(node):
    prefix, suffix = '{"c":"room:none","d":"', '"}'
    body = prefix + "y" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(body) == MAX_BODY
    r = http_request(node.api_port, "POST", "/v1/mesh/publish", body=body,
                     headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    assert r.json == {"E": None, "r": {"s": 0, "f": 0}}


def test_declared_content_length_over_max_body_413_without_body(node):
    # The head alone says the body is too large: answer without waiting for it.
    s = harness.connect_raw(node.api_port)
    try:
        s.sendall(b"POST /v1/mesh/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 10000000\r\n\r\n{\"d\":")
        r, _ = read_http_response(s, timeout=3)
    finally:
        s.close()
    assert_http_error(r, 413, "Content-Length 10000000")


def test_chunked_body_over_max_body_413(node):
    s = harness.connect_raw(node.api_port)
    chunk = b"z" * 1000
    try:
        s.sendall(b"POST /v1/mesh/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(8):
            if not harness.sendall_quiet(s, b"%x\r\n" % len(chunk) + chunk + b"\r\n"):
                break
        harness.sendall_quiet(s, b"0\r\n\r\n")
        r, _ = read_http_response(s, timeout=3)
    finally:
        s.close()
    assert_http_error(r, 413, "chunked body of 8000 bytes")


def test_chunked_body_accepted(node):
    body = json.dumps({"c": "room:none", "d": "hi"}).encode()
    s = harness.connect_raw(node.api_port)
    try:
        s.sendall(b"POST /v1/mesh/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 5 + body[:5] + b"\r\n"
                  + b"%x\r\n" % (len(body) - 5) + body[5:] + b"\r\n0\r\n\r\n")
        r, _ = read_http_response(s)
    finally:
        s.close()
    assert r is not None and r.status == 200, r
    assert r.json == {"E": None, "r": {"s": 0, "f": 0}}


def test_header_bytes_over_limit_431(node):
    r = http_request(node.api_port, "GET", "/healthz", headers={"X-Big": "a" * 3000})
    assert_http_error(r, 431, "3000-byte header")


def test_too_many_headers_431(node):
    r = http_request(node.api_port, "GET", "/healthz", headers={f"X-H{i}": "v" for i in range(20)})
    assert_http_error(r, 431, "20 headers")


def test_headers_under_limits_ok(node):
    r = http_request(node.api_port, "GET", "/healthz", headers={f"X-H{i}": "v" * 20 for i in range(8)})
    assert r.status == 200


@pytest.mark.parametrize("body,what", [
    (b"{", "truncated JSON"),
    (b"", "empty body"),
    (b"not json", "not JSON"),
    (b"[1,2]", "an array instead of an object"),
    (b"\"str\"", "a string instead of an object"),
    (b"{\"c\":\"room\",\"d\":\"x\"} trailing", "trailing garbage"),
])
def test_malformed_json_400(node, body, what):
    r = http_request(node.api_port, "POST", "/v1/mesh/publish", body=body,
                     headers={"Content-Type": "application/json"})
    assert_http_error(r, 400, what)


def test_malformed_http_400(node):
    r = harness.raw_http(node.api_port, b"HELLO THERE\r\n\r\n")
    assert_http_error(r, 400, "malformed request line")


def test_keepalive_several_requests_one_connection(node):
    conn = http.client.HTTPConnection("127.0.0.1", node.api_port, timeout=5)
    try:
        conn.connect()
        sock = conn.sock
        for i in range(5):
            r = http_request(node.api_port, "GET", "/healthz", conn=conn)
            assert r.status == 200
            r = http_request(node.api_port, "POST", "/v1/channel/count", body={"c": f"k{i}"}, conn=conn)
            assert r.status == 200 and r.json == {"E": None, "r": {"s": 0}}
            # An error answer keeps the connection too.
            r = http_request(node.api_port, "POST", "/v1/mesh/send", body={"c": "abc", "d": "x"}, conn=conn)
            assert r.status == 400
            assert conn.sock is sock, "the server closed the keep-alive connection"
    finally:
        conn.close()


# ---- answered calls: E codes and HTTP status ----

def test_send_to_unknown_client_401_http_200(node):
    e = api_err(node, "mesh.send", {"c": fake_client_id(3), "d": "x"}, 401)
    assert e["c"] == 401


def test_client_id_as_json_number_accepted(node):
    # A number that is a valid id is parsed (-> not connected: 401/301), not rejected as invalid (101).
    # Sequence 0 keeps the value exactly representable as a double (low 12 bits zero).
    cid = int(fake_client_id(3)) & ~0xFFF
    assert float(cid) == cid
    api_err(node, "mesh.send", {"c": cid, "d": "x"}, 401)
    api_err(node, "conn.info", {"c": cid}, 301)


@pytest.mark.parametrize("params,what", [
    ({"c": "abc", "d": "x"}, "non-numeric id"),
    ({"c": "", "d": "x"}, "empty id"),
    ({"c": "0", "d": "x"}, "zero id"),
    ({"c": " 12", "d": "x"}, "id with a space"),
    ({"c": "-5", "d": "x"}, "negative id"),
    ({"c": "18446744073709551616", "d": "x"}, "id over 64 bits"),
    ({"c": 1.5, "d": "x"}, "fractional id"),
    ({"c": True, "d": "x"}, "boolean id"),
    ({"d": "x"}, "missing c"),
    ({"c": "{cid}"}, "missing d"),
    ({"c": "{cid}", "d": "x", "t": "html"}, "unknown t"),
])
def test_send_invalid_params_101(node, params, what):
    params = {k: (fake_client_id(3) if v == "{cid}" else v) for k, v in params.items()}
    status, body = api_call(node, "mesh.send", params)
    assert status == 400 and body.get("E", {}).get("c") == 101, f"{what}: {status} {body!r}"


def test_conn_call_and_info_unknown_client_301(node):
    cid = fake_client_id(3)
    api_err(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["room:1"]}, 301)
    api_err(node, "conn.call", {"c": cid, "f": "set_context_value", "a": ["k", 1]}, 301)
    api_err(node, "conn.info", {"c": cid}, 301)


@pytest.mark.parametrize("method,params", [
    ("conn.call", {"c": "12345", "f": "close", "a": [1e300]}),
    ("conn.call", {"c": "12345", "f": "close", "a": [-1e300]}),
    ("conn.call", {"c": "12345", "f": "close", "a": [1000.5]}),
    ("conn.call", {"c": "12345", "f": "close", "a": [4294968296]}),
])
def test_numbers_out_of_range_are_101_and_the_node_carries_on(node, method, params):
    api_err(node, method, params, 101)
    assert http_request(node.api_port, "GET", "/healthz").status == 200


async def test_queue_ack_numbers_out_of_range_are_101(node):
    a = await ApiWs.open(node)
    try:
        for k in ([1e300], [-1], [1.5], [2 ** 53], ["1"]):
            r = await a.call("queue.ack", {"k": k})
            assert isinstance(r.get("E"), dict) and r["E"].get("c") == 101, f"queue.ack k={k}: {r!r}"
        r = await a.call("queue.ack", {"k": [2 ** 53 - 1, 0]})
        assert r.get("E") is None, f"queue.ack with valid sequence numbers: {r!r}"
    finally:
        await a.close()


@pytest.mark.parametrize("body", [
    b'{"c":"room:1","c":"room:2","d":"x"}',
    b'{"c":"room:1","d":"x","d":"y"}',
    b'{"c":"room:1","d":{"a":1,"a":2}}',
])
def test_duplicate_keys_are_101(node, body):
    r = http_request(node.api_port, "POST", "/v1/mesh/publish", body=body)
    assert_http_error(r, 400, f"body {body!r}")
    assert "twice" in r.json["E"]["m"], r.json


def test_conn_call_invalid_id_101(node):
    api_err(node, "conn.call", {"c": "abc", "f": "subscribe", "a": ["room:1"]}, 101)
    api_err(node, "conn.info", {"c": "abc"}, 101)


def test_publish_and_count_without_subscribers(node):
    assert api_ok(node, "mesh.publish", {"c": "room:empty", "d": "x"}) == {"s": 0, "f": 0}
    assert api_ok(node, "mesh.publish", {"c": "room:empty", "d": "aGk=", "t": "binary"}) == {"s": 0, "f": 0}
    assert api_ok(node, "channel.count", {"c": "room:empty"}) == {"s": 0}


@pytest.mark.parametrize("channel", ["", "a" * 129, "has space", "tab\t", "caf\u00e9", "nul\u0000", 5, None])
def test_invalid_channel_names_101(node, channel):
    api_err(node, "mesh.publish", {"c": channel, "d": "x"}, 101)
    api_err(node, "channel.count", {"c": channel}, 101)


def test_longest_channel_name_ok(node):
    name = "".join(chr(0x21 + i % 94) for i in range(128))
    assert api_ok(node, "mesh.publish", {"c": name, "d": "x"}) == {"s": 0, "f": 0}
    assert api_ok(node, "channel.count", {"c": name}) == {"s": 0}


def test_broadcast_result_shape(node):
    r = api_ok(node, "mesh.broadcast", {"d": "hello"})
    assert set(r) == {"s", "f"} and isinstance(r["s"], int) and isinstance(r["f"], int), r
    api_err(node, "mesh.broadcast", {"d": "!!!", "t": "binary"}, 101)
    api_err(node, "mesh.broadcast", {}, 101)


# ---- /ws/v1 envelope ----

async def test_ws_echoes_i_number_and_string(node):
    async with Session(node) as s:
        api = await s.api()
        for i in (7, "req-7", 12345678901234, "", 0):
            resp = await api.call("channel.count", {"c": "room:q"}, i=i)
            assert resp == {"E": None, "r": {"s": 0}, "i": i}


async def test_ws_accepts_id_instead_of_i(node):
    async with Session(node) as s:
        api = await s.api()
        resp = await api.request({"m": "channel.count", "p": {"c": "room:q"}, "id": 55}, 55)
        assert resp.get("i") == 55 and resp.get("E") is None and resp.get("r") == {"s": 0}, resp


async def test_ws_missing_i_answers_null(node):
    async with Session(node) as s:
        api = await s.api()
        await api.send_text(json.dumps({"m": "channel.count", "p": {"c": "room:q"}}))
        msg = await api.next_other()
        assert msg == {"E": None, "r": {"s": 0}, "i": None}


@pytest.mark.parametrize("text", ["{", "not json", "[1,2]", "42", "null", "\"str\""])
async def test_ws_malformed_or_non_object_101_and_stays_open(node, text):
    async with Session(node) as s:
        api = await s.api()
        await api.send_text(text)
        msg = await api.next_other()
        assert isinstance(msg, dict) and msg.get("i") is None and "i" in msg, msg
        assert isinstance(msg.get("E"), dict) and msg["E"].get("c") == 101 and msg["E"].get("m"), msg
        # Still open and working.
        assert await api.ok("channel.count", {"c": "room:q"}) == {"s": 0}


async def test_ws_unknown_method_101(node):
    async with Session(node) as s:
        api = await s.api()
        e = await api.err("mesh.nope", {}, 101)
        assert e["m"]
        resp = await api.call("x", {}, i="u1")
        assert resp["i"] == "u1" and resp["E"]["c"] == 101
        # m missing or not a string.
        resp = await api.request({"p": {}, "i": 9}, 9)
        assert resp["E"]["c"] == 101
        resp = await api.request({"m": 5, "p": {}, "i": 10}, 10)
        assert resp["E"]["c"] == 101


async def test_ws_params_not_object_101(node):
    async with Session(node) as s:
        api = await s.api()
        resp = await api.request({"m": "channel.count", "p": ["room:q"], "i": 11}, 11)
        assert resp["E"]["c"] == 101 and resp["i"] == 11


async def test_ws_text_ping_pong(node):
    async with Session(node) as s:
        api = await s.api()
        await api.send_text("ping")
        assert await api.next_other() == "pong"
        await api.send_text("ping")
        assert await api.next_other() == "pong"


async def test_ws_ping_frame_pong(node):
    async with Session(node) as s:
        api = await s.api()
        waiter = await api.ws.ping(b"hello")
        await asyncio.wait_for(waiter, 5)


async def test_ws_methods_same_as_http(node):
    async with Session(node) as s:
        api = await s.api()
        assert await api.ok("mesh.publish", {"c": "room:w", "d": "x"}) == {"s": 0, "f": 0}
        await api.err("mesh.send", {"c": fake_client_id(3), "d": "x"}, 401)
        await api.err("mesh.send", {"c": "abc", "d": "x"}, 101)
        await api.err("conn.info", {"c": fake_client_id(3)}, 301)
        await api.err("conn.call", {"c": fake_client_id(3), "f": "subscribe", "a": ["x"]}, 301)
        await api.err("mesh.publish", {"c": "bad channel", "d": "x"}, 101)


async def test_ws_wrong_path_404(node):
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
        await ws_connect(node.api_port, "/ws/v2")
    assert ei.value.status_code == 404


async def test_ws_many_requests_pipelined(node):
    async with Session(node) as s:
        api = await s.api()
        calls = [api.call("channel.count", {"c": f"room:{k}"}, i=f"p{k}") for k in range(50)]
        results = await asyncio.gather(*calls)
        for k, r in enumerate(results):
            assert r == {"E": None, "r": {"s": 0}, "i": f"p{k}"}


# ---- API token ----

def test_token_required_on_http(token_node):
    n = token_node
    r = http_request(n.api_port, "POST", "/v1/channel/count", body={"c": "a"})
    assert_http_error(r, 401, "no Authorization header")
    r = http_request(n.api_port, "POST", "/v1/channel/count", body={"c": "a"},
                     headers={"Authorization": "Bearer wrong"})
    assert_http_error(r, 401, "wrong token")
    r = http_request(n.api_port, "POST", "/v1/channel/count", body={"c": "a"},
                     headers={"Authorization": "s3cret-token-0123456789"})
    assert_http_error(r, 401, "token without the Bearer scheme")
    status, body = api_call(n, "channel.count", {"c": "a"}, token="s3cret-token-0123456789")
    assert status == 200 and body == {"E": None, "r": {"s": 0}}


def test_token_required_on_nodes(token_node):
    r = http_request(token_node.api_port, "GET", "/v1/nodes")
    assert_http_error(r, 401, "GET /v1/nodes without token")
    r = http_request(token_node.api_port, "GET", "/v1/nodes", headers={"Authorization": "Bearer s3cret-token-0123456789"})
    assert r.status == 200


async def test_token_required_on_ws(token_node):
    n = token_node
    for path, headers in (("/ws/v1", None), ("/ws/v1?token=wrong", None),
                          ("/ws/v1", {"Authorization": "Bearer wrong"})):
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            ws = await ws_connect(n.api_port, path, headers)
            await ws.close()
        assert ei.value.status_code == 401, f"{path} {headers}"
    for path, headers in (("/ws/v1", {"Authorization": "Bearer s3cret-token-0123456789"}), ("/ws/v1?token=s3cret-token-0123456789", None)):
        api = await ApiWs.open(n, path, headers)
        try:
            assert await api.ok("channel.count", {"c": "a"}) == {"s": 0}
        finally:
            await api.close()


# ---- draining ----

async def test_readyz_503_while_draining(nodes):
    n = nodes.start({"node": {"drain_timeout": 3}})
    assert http_request(n.api_port, "GET", "/readyz").status == 200
    # A client that never answers the close handshake keeps the node draining for up to drain_timeout.
    stuck = harness.connect_raw(n.port("ws"), rcvbuf=4096)
    ws = await ws_connect(n.port("ws"), "/")
    try:
        stuck.sendall(harness.ws_upgrade_request(n.port("ws")))
        resp, _ = read_http_response(stuck)
        assert resp.status == 101
        n.terminate()
        # The drain starts when the node's loop takes the signal: a request that raced it may still
        # be answered 200, so ask until it is 503 (within a second).
        for _ in range(20):
            r = await asyncio.to_thread(http_request, n.api_port, "GET", "/readyz")
            if r.status == 503:
                break
            await asyncio.sleep(0.05)
        assert r.status == 503, f"GET /readyz while draining -> {r.status}"
        code, _ = await harness.ws_drain_until_closed(ws, timeout=5)
        assert code == 1001, f"client closed with {code} at drain, expected 1001"
        r = await asyncio.to_thread(http_request, n.api_port, "GET", "/readyz")
        assert r.status == 503, f"GET /readyz while draining -> {r.status}"
    finally:
        stuck.close()
        await ws.close()
    msg = await asyncio.to_thread(n.wait_exit, 10)
    assert msg is None, msg


async def test_ws_api_call_after_http_errors(node):
    # The API keeps serving after a burst of bad requests.
    for _ in range(5):
        harness.raw_http(node.api_port, b"GARBAGE\r\n\r\n")
    async with Session(node) as s:
        api = await s.api()
        assert await api.ok("channel.count", {"c": "a"}) == {"s": 0}
    assert (await aapi_ok(node, "channel.count", {"c": "a"})) == {"s": 0}


# ---- /metrics stays valid and bounded whatever callers send (issue 11) ----

async def test_metrics_pass_promtool_after_hostile_names(node):
    import shutil
    import subprocess
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is not installed: scripts/install-deps.sh test"
    a = await ApiWs.open(node)
    try:
        before = http_request(node.api_port, "GET", "/metrics").body
        # 300 distinct unknown method names, some with control characters, quotes, backslashes.
        for i in range(300):
            r = await a.call(f"no.such\x01method\"\\\n{i}" + "x" * (i % 7) * 100, {})
            assert r["E"]["c"] == 101, r
        # Topic names are labels too: every character a topic may hold.
        r = await a.call("queue.pop", {"t": ['quote"topic', "back\\slash", "new\nline", "ctl\x01\x7f", "ünïcode"]})
        assert r.get("E") is None, r
    finally:
        await a.close()
    r = http_request(node.api_port, "GET", "/metrics")
    assert r.status == 200
    text = r.body
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    # promtool exits 1 for lint warnings (e.g. counter naming) and 3 for a page it cannot parse.
    assert b"error while linting" not in check.stderr and check.returncode in (0, 1), \
        f"promtool check metrics: rc {check.returncode}\n{check.stderr.decode(errors='replace')[:2000]}"
    unknown = [ln for ln in text.decode().splitlines() if ln.startswith("meshgate_api_calls_total") and "no.such" in ln]
    assert not unknown, f"unknown method names became series: {unknown[:3]}"
    assert b'meshgate_api_calls_total{method="unknown",code="101"}' in text
    assert len(text) < len(before) + 4096, f"/metrics grew from {len(before)} to {len(text)} bytes"


# ---- cross-site requests (issue 18): what a web page in the operator's browser can send ----

@pytest.fixture(scope="module")
def listed_node(module_nodes):
    return module_nodes.start({"node": {"id": 5},
                               "api": {"origins": "https://ops.example.test, http://127.0.0.1:1",
                                       "hosts": "gw1.example.test"}})


def refused(node, reason):
    return harness.metric_value(node, "meshgate_http_refused_total", listener="api", reason=reason) or 0


def raw_api(node, request):
    return harness.raw_http(node.api_port, request.replace(b"PORT", str(node.api_port).encode()))


BROADCAST = b'{"d":"from another site"}'


def post_raw(headers, body=BROADCAST):
    return (b"POST /v1/mesh/broadcast HTTP/1.1\r\n" + b"".join(h + b"\r\n" for h in headers)
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def test_foreign_origin_post_is_refused_and_reaches_nobody(node):
    """A page at another origin POSTs a broadcast (text/plain: no CORS preflight, or JSON): 403, and
    the client connected meanwhile receives nothing."""
    before = refused(node, "origin")
    async with Session(node) as s:
        c, _, _ = await s.ws_client(await s.consumer())
        for origin in [b"http://evil.example", b"http://127.0.0.1:8080", b"null", b"http://localhost:1"]:
            for ctype in [b"text/plain", b"application/json"]:
                r = raw_api(node, post_raw([b"Host: 127.0.0.1:PORT", b"Origin: " + origin, b"Content-Type: " + ctype]))
                assert_http_error(r, 403, f"POST from Origin {origin!r} as {ctype!r}")
                assert "Origin" in r.json["E"]["m"], r.json
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.recv(), 1)
    assert refused(node, "origin") >= before + 8


async def test_foreign_origin_ws_upgrade_is_refused(node):
    for origin in ["http://evil.example", "http://127.0.0.1:8080", "null"]:
        r = harness.raw_http(node.api_port, harness.ws_upgrade_request(node.api_port, "/ws/v1", [f"Origin: {origin}"]))
        assert_http_error(r, 403, f"/ws/v1 upgrade from Origin {origin}")
    # The same upgrade from the API's own origin, or with no Origin (a backend), works.
    for extra in ([f"Origin: http://127.0.0.1:{node.api_port}"], []):
        ws = await ws_connect(node.api_port, "/ws/v1", headers=dict(h.split(": ", 1) for h in extra))
        await ws.send(json.dumps({"m": "channel.count", "p": {"c": "x"}, "i": 1}))
        assert json.loads(await harness.ws_recv(ws)) == {"E": None, "r": {"s": 0}, "i": 1}
        await ws.close()


def test_post_needs_a_json_content_type(node):
    before = refused(node, "content_type")
    for ctype in [b"text/plain", b"text/plain; charset=utf-8", b"application/x-www-form-urlencoded",
                  b"multipart/form-data; boundary=x", b"application/jsonx", None]:
        headers = [b"Host: 127.0.0.1:PORT"] + ([b"Content-Type: " + ctype] if ctype is not None else [])
        r = raw_api(node, post_raw(headers))
        assert_http_error(r, 415, f"POST with Content-Type {ctype!r}")
        assert "application/json" in r.json["E"]["m"]
    r = raw_api(node, post_raw([b"Host: 127.0.0.1:PORT"], b""))  # no body: still needs it
    assert_http_error(r, 415, "POST without body nor Content-Type")
    assert refused(node, "content_type") >= before + 7
    for ctype in [b"application/json", b"application/json; charset=utf-8", b"Application/JSON;charset=UTF-8"]:
        r = raw_api(node, post_raw([b"Host: 127.0.0.1:PORT", b"Content-Type: " + ctype]))
        assert r.status == 200 and r.json["E"] is None, f"Content-Type {ctype!r}: {r!r}"


@pytest.mark.parametrize("host", [b"evil.example:PORT", b"evil.example", b"127.0.0.1.nip.io:PORT",
                                  b"localhost.evil.example:PORT", b"10.0.0.1:PORT"])
def test_rebinding_host_is_refused_on_every_path(node, host):
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 sends its own name as Host."""
    before = refused(node, "host")
    for req in [post_raw([b"Host: " + host, b"Content-Type: application/json"]),
                b"GET /metrics HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                b"GET /v1/nodes HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                b"GET /dashboard HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                harness.ws_upgrade_request(node.api_port, "/ws/v1").replace(
                    b"Host: 127.0.0.1:%d" % node.api_port, b"Host: " + host)]:
        r = raw_api(node, req)
        assert_http_error(r, 421, f"{req.split(b' HTTP')[0]!r} with Host {host!r}")
    assert refused(node, "host") >= before + 6


@pytest.mark.parametrize("host", [b"127.0.0.1:PORT", b"localhost:PORT", b"127.0.0.1", b"[::1]:PORT",
                                  b"127.0.0.1:16789"])  # through ssh -L 16789:127.0.0.1:6789
def test_own_hosts_and_same_origin_work(node, host):
    port = str(node.api_port).encode()
    origin = b"http://" + host.replace(b"PORT", port)
    for headers in ([b"Host: " + host], [b"Host: " + host, b"Origin: " + origin]):
        r = raw_api(node, post_raw(headers + [b"Content-Type: application/json"]))
        assert r.status == 200 and r.json["E"] is None, f"{headers!r}: {r!r}"
        r = raw_api(node, b"GET /metrics HTTP/1.1\r\n" + headers[0] + b"\r\n\r\n")
        assert r.status == 200, f"{headers!r}: {r!r}"
    r = raw_api(node, b"GET /healthz HTTP/1.0\r\n\r\n")  # HTTP/1.0 without Host: not a browser
    assert r.status == 200, r


def test_listed_origins_and_hosts(listed_node):
    n = listed_node
    for headers in ([b"Host: gw1.example.test:PORT"], [b"Host: gw1.example.test"],
                    [b"Host: 127.0.0.1:PORT", b"Origin: https://ops.example.test"],
                    [b"Host: 127.0.0.1:PORT", b"Origin: http://127.0.0.1:1"],
                    [b"Host: gw1.example.test:PORT", b"Origin: http://gw1.example.test:PORT"]):
        r = raw_api(n, post_raw(headers + [b"Content-Type: application/json"]).replace(b"PORT", str(n.api_port).encode()))
        assert r.status == 200 and r.json["E"] is None, f"{headers!r}: {r!r}"
    r = raw_api(n, post_raw([b"Host: gw2.example.test:PORT", b"Content-Type: application/json"]))
    assert_http_error(r, 421, "a name not in [api] hosts")
    r = raw_api(n, post_raw([b"Host: 127.0.0.1:PORT", b"Origin: https://ops.example.test.evil", b"Content-Type: application/json"]))
    assert_http_error(r, 403, "an origin not in [api] origins")
