"""The secure edge (issue 4): connect tokens (PROTOCOL.md §3.3), the API token (§5.1), Origin allowlists,
per-IP and accept-rate limits, and TLS on client listeners (§1: wss:// and TLS on tcp listeners).

Every refusal is checked for its documented answer on the wire (HTTP 401/403 with a short reason,
an "error: ..." line on TCP, a close at accept) and its metric, and the node must keep serving others.
Certificates are made here with the `openssl` command line; tokens with hmac/hashlib (never with
meshgate's code)."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

import pytest
import websockets
import websockets.exceptions

import harness
from harness import (Session, aapi_ok, ev_frame_of, http_request, metric_value, raw_http, wait_closed_by_peer,
                     wait_metric, ws_connect, ws_recv, ws_upgrade_request)

SECRET = "current-secret-0123456789"
PREVIOUS = "previous-secret-9876543210"
API_TOKEN = "api-token-Zx81-0123456789"
GOOD_ORIGINS = ["https://good.example", "http://localhost:8080"]
PER_IP = 2
RATE = 5
REFUSED = "meshgate_connections_refused_total"


# ---------------------------------------------------------------------------------------------------
# Tokens and certificates
# ---------------------------------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, header=None, digest=hashlib.sha256):
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{h}.{c}".encode(), digest).digest()
    return f"{h}.{c}.{b64url(sig)}"


def jwt_raw(header_text, claims_text, secret=SECRET):
    """A token from header and claims text as given (e.g. with a key twice, which dicts cannot hold)."""
    h = b64url(header_text.encode())
    c = b64url(claims_text.encode())
    sig = hmac.new(secret.encode(), f"{h}.{c}".encode(), hashlib.sha256).digest()
    return f"{h}.{c}.{b64url(sig)}"


def claims(**kw):
    c = {"exp": int(time.time()) + 300}
    c.update(kw)
    return c


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}"


def make_certs(d):
    """cert.pem/key.pem: a self-signed leaf; chain.pem: leaf signed by ca.pem, then the CA, then the key."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    openssl("req", "-x509", *ec, "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
            "-subj", "/CN=meshgate-itest-self", "-addext", san, cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=meshgate-itest-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    openssl("req", "-new", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=meshgate-itest-leaf",
            cwd=d)
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write(san + "\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext", cwd=d)
    with open(os.path.join(d, "chain.pem"), "w") as out:
        for name in ("leaf.pem", "ca.pem", "leaf.key"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def client_ctx(verify=False, cafile=None, cadata=None, maximum=None, minimum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=cafile, cadata=cadata)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    if minimum is not None:
        ctx.minimum_version = minimum
    return ctx


def tls_connect(port, ctx, session=None, timeout=harness.T, source=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=source)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1" if ctx.check_hostname else None, session=session)
    except BaseException:
        raw.close()
        raise


def refused_count(node, reason):
    return metric_value(node, REFUSED, reason=reason) or 0


# ---------------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certdir():
    d = tempfile.mkdtemp(prefix="meshgate-certs-")
    make_certs(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def node(module_nodes, certdir):
    tls_common = {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client", "tls": True}
    return module_nodes.start({
        "node": {"workers": 4},
        "listener.tws": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                         "token_secret": SECRET, "token_secret_previous": PREVIOUS},
        "listener.ttcp": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "line", "topic": "client",
                          "token_secret": SECRET},
        "listener.ttcp32": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "len32",
                            "topic": "client", "token_secret": SECRET},
        "listener.orig": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                          "origins": ", ".join(GOOD_ORIGINS)},
        "listener.perip": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                           "max_conns_per_ip": PER_IP},
        "listener.rate": {"type": "tcp", "bind": "127.0.0.1", "port": None, "topic": "rate", "events": False,
                          "accept_rate": RATE},
        "listener.wss": dict(tls_common),
        "listener.plainws": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client"},
        "listener.tlstcp": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "line", "topic": "client",
                            "tls": True},
        "listener.real": dict(tls_common, cert=os.path.join(certdir, "cert.pem"),
                              key=os.path.join(certdir, "key.pem")),
        "listener.chain": dict(tls_common, cert=os.path.join(certdir, "chain.pem")),
    })


@pytest.fixture(scope="module")
def api_node(module_nodes):
    return module_nodes.start({"api": {"token": API_TOKEN}})


def read_head(sock, timeout=harness.T):
    """An HTTP response head; for a 101 the body is the WebSocket stream, so only the head is read.
    Other answers are read whole (harness.read_http_response). None when closed without an answer."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no HTTP response head within {timeout}s (got {data[:300]!r})"
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no HTTP response head within {timeout}s (got {data[:300]!r})")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if not data:
                return None
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 101"):
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        return harness.HttpResult(101, [tuple(x.strip() for x in ln.split(":", 1)) for ln in head[1:]], b"")
    resp, _ = harness.read_http_response(sock, max(0.1, deadline - time.monotonic()), data)
    return resp


def upgrade(node, listener, path="/", extra=None):
    port = node.port(listener)
    s = harness.connect_raw(port)
    try:
        harness.sendall_quiet(s, ws_upgrade_request(port, path, extra))
        return read_head(s)
    finally:
        s.close()


async def quick_healthy(node):
    """The plain ws listener and the token listener both still take new clients."""
    await harness.assert_node_healthy(node)
    ws = await ws_connect(node.port("tws"), f"/?token={jwt(claims())}")
    await ws.close()


# ---------------------------------------------------------------------------------------------------
# Connect tokens on WebSocket listeners
# ---------------------------------------------------------------------------------------------------

async def test_ws_token_refusals_are_401_before_the_upgrade(node):
    now = int(time.time())
    cases = [
        ("/", "missing token"),
        ("/?token=", "missing token"),
        ("/?other=1", "missing token"),
        (f"/?token={jwt({'exp': now - 5})}", "token expired"),
        (f"/?token={jwt({'exp': now + 300}, secret='not-the-secret')}", "bad signature"),
        (f"/?token={jwt({'exp': now + 300}, secret=SECRET + 'x')}", "bad signature"),
        ("/?token=abc.def", "malformed token"),
        ("/?token=not-a-jwt-at-all", "malformed token"),
        (f"/?token={jwt(claims())}.x", "malformed token"),
        (f"/?token={jwt({'uid': 'a'})}", "exp claim missing"),
        (f"/?token={jwt({'exp': now + 300, 'nbf': now + 120})}", "token not valid yet"),
        (f"/?token={jwt(claims(), header={'alg': 'HS512', 'typ': 'JWT'}, digest=hashlib.sha512)}",
         "unsupported algorithm"),
        (f"/?token={jwt(claims(), header={'alg': 'none'})}", "unsupported algorithm"),
        (f"/?token={jwt(claims(ctx=[1]))}", "ctx claim must be an object"),
        (f"/?token={jwt(claims(ch='news'))}", "ch claim must be an array"),
        # A key twice means one thing to one parser and another to the next: refused (issue 7).
        ("/?token=" + jwt_raw('{"alg":"HS256","alg":"none"}', json.dumps(claims())), "malformed token"),
        ("/?token=" + jwt_raw('{"alg":"HS256"}', '{"exp":%d,"exp":1}' % (now + 300)), "malformed claims"),
    ]
    before = await asyncio.to_thread(refused_count, node, "token")
    for path, reason in cases:
        r = await asyncio.to_thread(upgrade, node, "tws", path)
        assert r is not None, f"{path}: connection closed without an answer"
        assert r.status == 401, f"{path}: expected 401, got {r!r}"
        body = r.body.decode()
        assert body.startswith("connect token refused: ") and reason in body, f"{path}: body {body!r}"
        assert len(body) < 200 and body.endswith("\n"), f"{path}: body {body!r}"
        assert (r.header("Connection") or "").lower() == "close", f"{path}: {r.headers!r}"
        assert r.header("Upgrade") is None and r.header("Sec-WebSocket-Accept") is None
    await asyncio.to_thread(wait_metric, node, REFUSED, lambda v: v >= before + len(cases), reason="token")
    # A refused upgrade is closed by the server (no second request on the same connection).
    s = await asyncio.to_thread(harness.connect_raw, node.port("tws"))
    try:
        s.sendall(ws_upgrade_request(node.port("tws"), "/?token=bad"))
        resp, _ = await asyncio.to_thread(harness.read_http_response, s)
        assert resp.status == 401
        assert await asyncio.to_thread(wait_closed_by_peer, s, 3), "connection not closed after the 401"
    finally:
        s.close()
    await quick_healthy(node)


async def test_ws_token_refused_by_the_websockets_client(node):
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        await ws_connect(node.port("tws"), f"/?token={jwt(claims(), secret='forged')}")
    assert e.value.status_code == 401


async def test_ws_valid_token_sets_context_and_channels(node):
    tok = jwt(claims(uid="user-7", ctx={"role": "admin", "n": 3}, ch=["sec-news", "sec-room:1", "sec-news"]))
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, ev = await s.ws_client(cons, listener="tws", path=f"/chat?token={tok}")
        assert ev["p"]["x"] == {"role": "admin", "n": 3, "uid": "user-7"}, ev
        assert ev["p"]["d"]["path"] == "/chat"
        # Subscribed at connect: the first publish reaches it, no retry.
        r = await aapi_ok(node, "mesh.publish", {"c": "sec-news", "d": "first"})
        assert r["s"] == 1, r
        assert await ws_recv(ws, 3) == "first"
        r = await aapi_ok(node, "mesh.publish", {"c": "sec-room:1", "d": "second"})
        assert r["s"] == 1, r
        assert await ws_recv(ws, 3) == "second"
        info = await aapi_ok(node, "conn.info", {"c": cid})
        assert info["x"] == {"role": "admin", "n": 3, "uid": "user-7"}, info
        assert sorted(info["ch"]) == ["sec-news", "sec-room:1"], info
        # Its messages carry the context.
        await ws.send("hello")
        e = await cons.wait_event(ev_frame_of(cid, "hello"))
        assert e["p"]["x"]["uid"] == "user-7"
        # A context with its own uid keeps it.
        ws2, cid2, ev2 = await s.ws_client(cons, listener="tws",
                                           path=f"/?token={jwt(claims(uid='u2', ctx={'uid': 10000}))}")
        assert ev2["p"]["x"] == {"uid": 10000}, ev2
        # A token without uid/ctx: an empty context ("x" left out).
        ws3, cid3, ev3 = await s.ws_client(cons, listener="tws", path=f"/?token={jwt(claims())}")
        assert "x" not in ev3["p"] or ev3["p"]["x"] in (None, {}), ev3


async def test_ws_token_signed_with_the_previous_secret_is_accepted(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, ev = await s.ws_client(cons, listener="tws",
                                        path=f"/?token={jwt(claims(uid='old-key'), secret=PREVIOUS)}")
        assert ev["p"]["x"] == {"uid": "old-key"}
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "rotated"})
        assert await ws_recv(ws, 3) == "rotated"


# ---------------------------------------------------------------------------------------------------
# Connect tokens on TCP listeners
# ---------------------------------------------------------------------------------------------------

async def tcp_open_with_token(s, cons, listener, first):
    c, _, _ = await s.tcp_client(None, listener=listener)
    await c.send(first)
    ev = await cons.wait_event(harness.ev_open_from(c.local_port, listener, cons),
                               what=f"open event of token tcp client :{c.local_port}")
    return c, ev["p"]["c"], ev


@pytest.mark.parametrize("listener", ["ttcp", "ttcp32"])
async def test_tcp_token_accepted(node, listener):
    async with Session(node) as s:
        cons = await s.consumer()
        c, cid, ev = await tcp_open_with_token(s, cons, listener,
                                               "token=" + jwt(claims(uid="dev-1", ctx={"fw": "1.2"}, ch=["sec-tcp"])))
        assert ev["p"]["x"] == {"fw": "1.2", "uid": "dev-1"}, ev
        r = await aapi_ok(node, "mesh.publish", {"c": "sec-tcp", "d": "pushed"})
        assert r["s"] == 1, r
        assert await c.recv(3) == b"pushed"
        # The token line is not a message; the next one is.
        await c.send("reading=42")
        e = await cons.wait_event(ev_frame_of(cid, "reading=42"))
        assert e["p"]["x"]["uid"] == "dev-1"
        assert not cons.take_events(lambda e: e["p"]["c"] == cid and "frame" in e["p"]["d"]
                                    and "token" in e["p"]["d"]["frame"]["data"])
        # The bare JWT, signed with... the current secret, works as well.
        c2, cid2, ev2 = await tcp_open_with_token(s, cons, listener, jwt(claims(uid="dev-2")))
        assert ev2["p"]["x"] == {"uid": "dev-2"}
        await aapi_ok(node, "mesh.send", {"c": cid2, "d": "to-dev-2"})
        assert await c2.recv(3) == b"to-dev-2"


async def test_tcp_token_and_first_message_in_one_packet(node):
    async with Session(node) as s:
        cons = await s.consumer()
        c, _, _ = await s.tcp_client(None, listener="ttcp")
        await c.send_raw(f"token={jwt(claims(uid='fast'))}\nright-behind\n".encode())
        ev = await cons.wait_event(harness.ev_open_from(c.local_port, "ttcp", cons))
        await cons.wait_event(ev_frame_of(ev["p"]["c"], "right-behind"))


@pytest.mark.parametrize("listener", ["ttcp", "ttcp32"])
async def test_tcp_bad_token_gets_error_line_and_close(node, listener):
    now = int(time.time())
    cases = [
        ("token=" + jwt({"exp": now - 1}), "token expired"),
        ("token=" + jwt(claims(), secret="forged"), "bad signature"),
        (jwt(claims(), secret="forged"), "bad signature"),
        ("token=", "missing token"),
        ("hello there", "malformed token"),
        ("token=a.b", "malformed token"),
    ]
    before = await asyncio.to_thread(refused_count, node, "token")
    async with Session(node) as s:
        cons = await s.consumer()
        for first, reason in cases:
            c, _, _ = await s.tcp_client(None, listener=listener)
            await c.send(first)
            line = (await c.recv(3)).decode()
            assert line.startswith("error:") and reason in line, f"{first!r}: got {line!r}"
            assert await c.expect_eof(3), f"{first!r}: connection not closed after {line!r}"
            await cons.no_event(harness.ev_open_from(c.local_port, listener), 0)
    await asyncio.to_thread(wait_metric, node, REFUSED, lambda v: v >= before + len(cases), reason="token")
    await quick_healthy(node)


# ---------------------------------------------------------------------------------------------------
# The API token
# ---------------------------------------------------------------------------------------------------

def test_api_token_on_http(api_node):
    port = api_node.api_port
    body = {"d": "x"}
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {API_TOKEN}x"},
                    {"Authorization": API_TOKEN}, {"Authorization": f"Basic {API_TOKEN}"}):
        r = http_request(port, "POST", "/v1/mesh/broadcast", body=body, headers=headers)
        assert r.status == 401, f"{headers}: {r!r}"
        assert r.json["E"]["c"] == 101 and "token" in r.json["E"]["m"], r
        r = http_request(port, "GET", "/metrics", headers=headers)
        assert r.status == 401, f"/metrics {headers}: {r!r}"
        r = http_request(port, "GET", "/v1/nodes", headers=headers)
        assert r.status == 401, f"/v1/nodes {headers}: {r!r}"
    good = {"Authorization": f"Bearer {API_TOKEN}"}
    r = http_request(port, "POST", "/v1/mesh/broadcast", body=body, headers=good)
    assert r.status == 200 and r.json["E"] is None, r
    r = http_request(port, "GET", "/metrics", headers=good)
    assert r.status == 200 and b"meshgate_connections_refused_total" in r.body
    r = http_request(port, "GET", "/v1/nodes", headers=good)
    assert r.status == 200, r
    # Health checks stay open.
    assert http_request(port, "GET", "/healthz").status == 200
    assert http_request(port, "GET", "/readyz").status == 200
    assert "(no API token)" not in api_node.stderr()


def test_api_token_scheme_is_case_insensitive(api_node):
    # RFC 7235 §2.1 / RFC 6750: the auth-scheme is a case-insensitive token ("bearer" = "Bearer").
    for scheme in ("bearer", "BEARER"):
        r = http_request(api_node.api_port, "POST", "/v1/mesh/broadcast", body={"d": "x"},
                         headers={"Authorization": f"{scheme} {API_TOKEN}"})
        assert r.status == 200, f"Authorization: {scheme} <right token>: {r!r}"


async def test_api_token_on_ws_upgrade(api_node):
    port = api_node.api_port
    for path, extra in (("/ws/v1", None), ("/ws/v1", ["Authorization: Bearer nope"]),
                        ("/ws/v1?token=nope", None), (f"/ws/v1?token={API_TOKEN}extra", None)):
        r = await asyncio.to_thread(raw_http, port, ws_upgrade_request(port, path, extra))
        assert r is not None and r.status == 401, f"{path} {extra}: {r!r}"
        assert r.json["E"]["c"] == 101
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        await ws_connect(port, "/ws/v1", {"Authorization": "Bearer nope"})
    assert e.value.status_code == 401
    for path, headers in (("/ws/v1", {"Authorization": f"Bearer {API_TOKEN}"}), (f"/ws/v1?token={API_TOKEN}", None)):
        api = await harness.ApiWs.open(api_node, path, headers)
        try:
            r = await api.call("channel.count", {"c": "sec-nobody"})
            assert r.get("E") is None and r["r"] == {"s": 0}, r
        finally:
            await api.close()


def run_meshgate_until(workdir, overrides, needle, timeout=5.0):
    """Starts meshgate with `overrides`, waits for `needle` in its log (or start-up), stops it; returns the log."""
    n = harness.Node(workdir, overrides, name="warn")
    errf = open(n.stderr_path, "wb")
    proc = subprocess.Popen([harness.meshgate_bin(), "-c", n.conf_path], stdin=subprocess.DEVNULL, stdout=errf,
                            stderr=errf, cwd=workdir)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            log = n.stderr()
            if needle in log or "listener ws:" in log:
                time.sleep(0.2)
                break
            time.sleep(0.05)
        return n.stderr()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        errf.close()


def free_port_on(addr):
    """A port free on `addr` a moment ago: harness.free_port() checks 127.0.0.1 only, and a port free
    there may be taken on 127.0.0.2 (other tests' sockets on the machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def test_api_bound_elsewhere_without_token_warns():
    d = tempfile.mkdtemp(prefix="meshgate-it-")
    try:
        needle = "without [api] token"
        log = run_meshgate_until(d, {"api": {"bind": "127.0.0.2", "port": free_port_on("127.0.0.2")}}, needle)
        assert "warn" in log and f"the control API listens on 127.0.0.2 {needle}" in log, log
        log = run_meshgate_until(d, {"api": {"bind": "127.0.0.2", "port": free_port_on("127.0.0.2"),
                                             "token": API_TOKEN}}, needle)
        assert needle not in log and "meshgate" in log, log
        log = run_meshgate_until(d, {}, needle)  # 127.0.0.1: no warning, "(no API token)" in the start line
        assert needle not in log and "(no API token)" in log, log
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Origin
# ---------------------------------------------------------------------------------------------------

async def test_origin_allowlist(node):
    before = await asyncio.to_thread(refused_count, node, "origin")
    for origin in GOOD_ORIGINS:
        r = await asyncio.to_thread(upgrade, node, "orig", "/", [f"Origin: {origin}"])
        assert r is not None and r.status == 101, f"{origin}: {r!r}"
    bad = [["Origin: https://evil.example"], ["Origin: https://good.example.evil"], ["Origin: null"],
           ["Origin: https://good.example/"], None]
    for extra in bad:
        r = await asyncio.to_thread(upgrade, node, "orig", "/", extra)
        assert r is not None and r.status == 403, f"{extra}: {r!r}"
        assert b"origin not allowed" in r.body, r
    await asyncio.to_thread(wait_metric, node, REFUSED, lambda v: v >= before + len(bad), reason="origin")
    # The websockets client with an allowed origin works both ways.
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons, listener="orig", origin="https://good.example")
        await ws.send("from-origin")
        await cons.wait_event(ev_frame_of(cid, "from-origin"))
        await aapi_ok(node, "mesh.send", {"c": cid, "d": "back"})
        assert await ws_recv(ws, 3) == "back"
    # Listeners without `origins` take any.
    r = await asyncio.to_thread(upgrade, node, "ws", "/", ["Origin: https://evil.example"])
    assert r.status == 101


# ---------------------------------------------------------------------------------------------------
# Per-IP and accept-rate limits
# ---------------------------------------------------------------------------------------------------

def ws_upgrade_from(port, source_ip, timeout=3.0):
    """A raw upgrade from `source_ip`; returns (socket, response or None when closed without one)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    harness.sendall_quiet(s, ws_upgrade_request(port))
    return s, read_head(s, timeout)


def test_max_conns_per_ip(node):
    port = node.port("perip")
    try:
        probe = socket.socket()
        probe.bind(("127.0.0.2", 0))
        probe.close()
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.2 for a second source address: {e}")
    before = refused_count(node, "per_ip")
    held = []
    try:
        for _ in range(PER_IP):
            s, r = ws_upgrade_from(port, "127.0.0.1")
            held.append(s)
            assert r is not None and r.status == 101, r
        s, r = ws_upgrade_from(port, "127.0.0.1")
        held.append(s)
        assert r is None, f"connection over max_conns_per_ip answered: {r!r}"
        wait_metric(node, REFUSED, lambda v: v >= before + 1, reason="per_ip")
        # Another IP still gets in, up to its own limit.
        for _ in range(PER_IP):
            s, r = ws_upgrade_from(port, "127.0.0.2")
            held.append(s)
            assert r is not None and r.status == 101, f"from 127.0.0.2: {r!r}"
        s, r = ws_upgrade_from(port, "127.0.0.2")
        held.append(s)
        assert r is None, f"127.0.0.2 over its limit answered: {r!r}"
        # Other listeners are not limited.
        s, r = ws_upgrade_from(node.port("ws"), "127.0.0.1")
        held.append(s)
        assert r.status == 101
        # A closed connection frees its slot.
        held[0].close()
        deadline = time.monotonic() + 5
        ok = False
        while time.monotonic() < deadline and not ok:
            s, r = ws_upgrade_from(port, "127.0.0.1")
            held.append(s)
            ok = r is not None and r.status == 101
            if not ok:
                time.sleep(0.1)
        assert ok, "a slot was not freed when a connection from that IP closed"
        assert refused_count(node, "per_ip") >= before + 2
    finally:
        for s in held:
            s.close()


def _count_closed(socks, settle=0.4):
    """How many of `socks` the server closed (EOF or RST) within `settle` seconds."""
    time.sleep(settle)
    closed = 0
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if r:
            try:
                data = s.recv(16)
            except (ConnectionResetError, OSError):
                data = b""
            if not data:
                closed += 1
    return closed


def test_accept_rate(node):
    port = node.port("rate")
    time.sleep(1.1)  # a full bucket
    before = refused_count(node, "accept_rate")
    socks = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(3 * RATE)]
    try:
        closed = _count_closed(socks)
        accepted = len(socks) - closed
        # A burst of RATE is allowed; the bucket refills at RATE/s while the burst runs (well under 1 s).
        assert RATE <= accepted <= RATE + 1, f"{accepted} of {len(socks)} accepted with accept_rate = {RATE}"
        wait_metric(node, REFUSED, lambda v: v >= before + closed, reason="accept_rate")
    finally:
        for s in socks:
            s.close()
    time.sleep(1.1)
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        assert _count_closed([s], 0.3) == 0, "a connection after a quiet second was refused"
    finally:
        s.close()


def test_accept_rate_holds_across_workers(node):
    """Concurrent connects for a few seconds, spread over the node's 4 workers: the listener-wide bucket
    admits RATE at once plus RATE per second, whichever worker accepts. (Each connection is closed by
    the client right after connecting; the server still accepts it, so admitted = connects - refused.)"""
    port = node.port("rate")
    time.sleep(1.1)
    before = refused_count(node, "accept_rate")
    connects = [0]
    lock = threading.Lock()
    duration = 2.5
    t0 = time.monotonic()
    deadline = t0 + duration

    def run():
        n = 0
        while time.monotonic() < deadline and n < 400:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=3).close()
                n += 1
            except OSError:
                pass
            time.sleep(0.005)
        with lock:
            connects[0] += n

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    elapsed = time.monotonic() - t0
    # Every connection has been accepted (admitted or refused) once the refused count stops moving.
    last, stable_since = None, time.monotonic()
    settle_deadline = time.monotonic() + 5
    while time.monotonic() < settle_deadline:
        v = refused_count(node, "accept_rate")
        if v != last:
            last, stable_since = v, time.monotonic()
        elif time.monotonic() - stable_since > 0.5:
            break
        time.sleep(0.1)
    admitted = connects[0] - (last - before)
    allowed = RATE + RATE * elapsed + 1
    assert connects[0] > 10 * allowed, f"test bug: only {connects[0]} connects"
    assert admitted <= allowed, (f"accept_rate = {RATE}: {admitted} of {connects[0]} connections admitted in "
                                 f"{elapsed:.2f}s over 4 workers (at most {allowed:.0f} expected)")
    assert admitted >= RATE * elapsed * 0.5, f"only {admitted} admitted in {elapsed:.2f}s"


# ---------------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------------

def test_dev_certificate_is_served_and_logged(node):
    s = tls_connect(node.port("wss"), client_ctx())
    try:
        der = s.getpeercert(binary_form=True)
        assert s.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        s.close()
    fp = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    log = node.stderr(tail=100000)
    assert "[listener.wss]: no certificate configured: using a self-signed development certificate for localhost" \
           in log, log
    assert fp in log, f"fingerprint {fp} of the served certificate not in the log"
    # It verifies for 127.0.0.1 when trusted (SAN IP:127.0.0.1).
    pem = ssl.DER_cert_to_PEM_cert(der)
    s = tls_connect(node.port("wss"), client_ctx(verify=True, cadata=pem))
    s.close()
    # The configured certificates are not announced as development ones.
    assert "[listener.real]: no certificate" not in log and "[listener.chain]: no certificate" not in log


def test_configured_certificate_is_served(node, certdir):
    s = tls_connect(node.port("real"), client_ctx(verify=True, cafile=os.path.join(certdir, "cert.pem")))
    try:
        assert s.getpeercert(binary_form=True) == der_of(os.path.join(certdir, "cert.pem"))
    finally:
        s.close()
    # Not trusted by a client that trusts only something else.
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(node.port("real"), client_ctx(verify=True, cafile=os.path.join(certdir, "ca.pem"))).close()


def test_certificate_chain_and_key_in_one_file(node, certdir):
    # The client trusts only the CA: the leaf verifies, and is the one from chain.pem.
    s = tls_connect(node.port("chain"), client_ctx(verify=True, cafile=os.path.join(certdir, "ca.pem")))
    try:
        assert s.getpeercert(binary_form=True) == der_of(os.path.join(certdir, "leaf.pem"))
    finally:
        s.close()


def test_bad_certificate_path_fails_start():
    d = tempfile.mkdtemp(prefix="meshgate-it-")
    try:
        n = harness.Node(d, {"listener.ws": {"tls": True, "cert": os.path.join(d, "missing.pem")}}, name="badcert")
        r = subprocess.run([harness.meshgate_bin(), "-c", n.conf_path], capture_output=True, timeout=15)
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode != 0, out
        assert "[listener.ws]" in out and "missing.pem" in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_plain_text_to_tls_listener_is_closed(node):
    before = await asyncio.to_thread(refused_count, node, "tls_handshake")
    for listener in ("wss", "tlstcp"):
        s = await asyncio.to_thread(harness.connect_raw, node.port(listener))
        try:
            data = ws_upgrade_request(node.port(listener)) if listener == "wss" else b"hello\n"
            harness.sendall_quiet(s, data)
            assert await asyncio.to_thread(wait_closed_by_peer, s, 5), f"{listener}: plain text not closed"
        finally:
            s.close()
    await asyncio.to_thread(wait_metric, node, REFUSED, lambda v: v >= before + 2, reason="tls_handshake")
    await wss_roundtrip(node)


def client_hello():
    """The bytes of a real ClientHello, captured with memory BIOs."""
    ctx = client_ctx()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert len(hello) > 100 and hello[0] == 0x16, hello[:10]
    return hello


async def test_truncated_handshake_is_closed_and_others_served(node):
    hello = client_hello()
    t0 = time.monotonic()
    s = await asyncio.to_thread(harness.connect_raw, node.port("wss"))
    s.sendall(hello[: len(hello) // 2])
    try:
        # Meanwhile other clients, TLS and not, are served.
        await wss_roundtrip(node)
        await quick_healthy(node)
        closed = await asyncio.to_thread(wait_closed_by_peer, s, max(0.1, 12.5 - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
        assert closed, f"half a ClientHello: connection still open after {elapsed:.1f}s (handshake timeout 10 s)"
    finally:
        s.close()
    await wss_roundtrip(node)


async def test_old_tls_versions_refused(node):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
        ctx = client_ctx(maximum=ssl.TLSVersion.TLSv1_1, minimum=ssl.TLSVersion.TLSv1)
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError as e:
        pytest.skip(f"this OpenSSL cannot configure a TLS 1.1 client: {e}")
    before = await asyncio.to_thread(refused_count, node, "tls_handshake")
    try:
        s = await asyncio.to_thread(tls_connect, node.port("wss"), ctx)
    except ssl.SSLError as e:
        text = str(e).lower()
        if "no protocols available" in text or "no_protocols_available" in text or "no ciphers" in text:
            pytest.skip(f"this Python/OpenSSL will not speak TLS 1.1 at all: {e}")
        await asyncio.to_thread(wait_metric, node, REFUSED, lambda v: v >= before + 1, reason="tls_handshake")
    except (ConnectionResetError, BrokenPipeError):
        await asyncio.to_thread(wait_metric, node, REFUSED, lambda v: v >= before + 1, reason="tls_handshake")
    else:
        version = s.version()
        s.close()
        pytest.fail(f"a client limited to TLS 1.1 completed a handshake ({version})")
    # TLS 1.2 (the minimum) and 1.3 both work.
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        s = await asyncio.to_thread(tls_connect, node.port("wss"), client_ctx(maximum=v, minimum=v))
        assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[v]
        if v == ssl.TLSVersion.TLSv1_2:
            assert "GCM" in s.cipher()[0] or "CHACHA20" in s.cipher()[0], s.cipher()
            assert s.cipher()[0].startswith("ECDHE"), s.cipher()
        s.close()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_session_resumption(node, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = client_ctx(maximum=v, minimum=v)
    port = node.port("wss")
    s = tls_connect(port, ctx)
    try:
        # A request and its answer: TLS 1.3 session tickets arrive after the handshake.
        s.sendall(ws_upgrade_request(port))
        assert read_head(s).status == 101
        session = s.session
        assert not s.session_reused
    finally:
        s.close()
    assert session is not None
    for _ in range(3):  # any worker can resume it
        s2 = tls_connect(port, ctx, session=session)
        try:
            s2.sendall(ws_upgrade_request(port))
            assert read_head(s2).status == 101
            assert s2.session_reused, f"{version}: session not resumed"
        finally:
            s2.close()


async def wss_roundtrip(node, listener="wss", ctx=None):
    async with Session(node) as s:
        cons = await s.consumer()
        ws = await asyncio.wait_for(
            websockets.connect(f"wss://127.0.0.1:{node.port(listener)}/secure?x=1", ssl=ctx or client_ctx(),
                               ping_interval=None, close_timeout=2, open_timeout=harness.T), harness.T + 1)
        try:
            port = ws.local_address[1]
            ev = await cons.wait_event(harness.ev_open_from(port, listener, cons))
            assert ev["p"]["d"]["path"] == "/secure" and ev["p"]["d"]["query"] == "x=1"
            cid = ev["p"]["c"]
            await ws.send("up over tls")
            await cons.wait_event(ev_frame_of(cid, "up over tls"))
            await ws.send(b"\x00\x01binary")
            e = await cons.wait_event(ev_frame_of(cid, harness.b64(b"\x00\x01binary")))
            assert harness.frame_of(e)["type"] == "binary"
            big = "B" * 60000
            await aapi_ok(node, "mesh.send", {"c": cid, "d": big})
            assert await ws_recv(ws, 3) == big
            await aapi_ok(node, "mesh.send", {"c": cid, "d": "down over tls"})
            assert await ws_recv(ws, 3) == "down over tls"
        finally:
            await ws.close()


async def test_wss_with_websockets_both_ways(node, certdir):
    # Trusting the development certificate itself, with hostname checks on.
    der = await asyncio.to_thread(lambda: _peer_der(node.port("wss")))
    await wss_roundtrip(node, "wss", client_ctx(verify=True, cadata=ssl.DER_cert_to_PEM_cert(der)))
    # Verification off.
    await wss_roundtrip(node, "wss")
    # The configured certificate, verified.
    await wss_roundtrip(node, "real", client_ctx(verify=True, cafile=os.path.join(certdir, "cert.pem")))


def _peer_der(port):
    s = tls_connect(port, client_ctx())
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


async def test_tls_on_tcp_listener_line_framing(node):
    async with Session(node) as s:
        cons = await s.consumer()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", node.port("tlstcp"), ssl=client_ctx()), harness.T)
        try:
            port = writer.get_extra_info("sockname")[1]
            assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
            ev = await cons.wait_event(harness.ev_open_from(port, "tlstcp", cons))
            cid = ev["p"]["c"]
            writer.write(b"line one\r\nline two\n")
            await writer.drain()
            await cons.wait_event(ev_frame_of(cid, "line one"))
            await cons.wait_event(ev_frame_of(cid, "line two"))
            await aapi_ok(node, "mesh.send", {"c": cid, "d": "pushed over tls"})
            line = await asyncio.wait_for(reader.readuntil(b"\n"), 3)
            assert line == b"pushed over tls\n"
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2)
            except Exception:  # noqa: BLE001
                pass
        await cons.wait_event(harness.ev_close_of(cid))


def test_token_secrets_rotate_on_sighup(module_nodes):
    """Key rotation without a restart: a new secret is added with SIGHUP (both work), then the old one
    is removed with SIGHUP (only the new one works)."""
    n = module_nodes.start({"listener.rot": {"type": "ws", "bind": "127.0.0.1", "port": harness.free_port(),
                                              "token_secret": "secret-A-0123456789abcdef"}})
    old = jwt(claims(), secret="secret-A-0123456789abcdef")
    new = jwt(claims(), secret="secret-B-0123456789abcdef")

    def status(token):
        r = upgrade(n, "rot", f"/?token={token}")
        return r.status if r else None

    def reload(cfg_text):
        with open(n.conf_path, "w") as f:
            f.write(cfg_text)
        n.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    assert status(old) == 101 and status(new) == 401
    base = open(n.conf_path).read()
    reload(base.replace("token_secret = secret-A-0123456789abcdef", "token_secret = secret-B-0123456789abcdef\ntoken_secret_previous = secret-A-0123456789abcdef"))
    assert status(old) == 101 and status(new) == 101
    reload(base.replace("token_secret = secret-A-0123456789abcdef", "token_secret = secret-B-0123456789abcdef"))
    assert status(old) == 401 and status(new) == 101


# ---------------------------------------------------------------------------------------------------
# Every way a TLS connection ends (issue 18): a bad record after the upgrade
# ---------------------------------------------------------------------------------------------------

BOGUS_RECORD = bytes.fromhex("1703030020") + b"\xa5" * 32  # application data that no key decrypts


class MemoryTls:
    """A TLS client over a raw socket through memory BIOs, so that the test can write bytes the TLS
    layer would never write (a bogus record) on the same connection."""

    def __init__(self, port, timeout=harness.T):
        self.sock = harness.connect_raw(port, timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_ctx().wrap_bio(self.inc, self.out, server_hostname="localhost")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump(deadline)
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _pump(self, deadline):
        self._flush()
        self.sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = self.sock.recv(65536)
        assert chunk, "server closed the TLS connection"
        self.inc.write(chunk)

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def recv_head(self, timeout=harness.T):
        deadline = time.monotonic() + timeout
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                data += self.obj.read(65536)
            except ssl.SSLWantReadError:
                self._pump(deadline)
        return data

    def local_port(self):
        return self.sock.getsockname()[1]


def open_over_memory_tls(node, listener="wss"):
    """A wss client through its upgrade; returns the MemoryTls."""
    c = MemoryTls(node.port(listener))
    c.send(ws_upgrade_request(node.port(listener)))
    head = c.recv_head()
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return c


def node_connections(node):
    return harness.api_ok(node, "node.stats", {})["connections"]


async def test_bad_tls_record_after_upgrade_ends_the_connection_once(nodes):
    """A wss client that writes one bogus TLS record after its upgrade is closed, and everything that
    knew it forgets it: its close event is emitted once (1006), it leaves its channels, the node's
    connection count and its slot under max_connections. Before the fix the connection was freed but
    stayed in the worker's tables: counted forever, its slot leaked, and the next broadcast or publish
    used freed memory."""
    cap = 4
    node = nodes.start({"node": {"workers": 2}, "limits": {"max_connections": cap},
                        "listener.wss": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                                         "tls": True}})
    errors_before = await asyncio.to_thread(metric_value, node, "meshgate_protocol_errors_total") or 0
    async with Session(node) as s:
        cons = await s.consumer()
        for round_ in range(2):  # twice the cap in all: every slot given back is used again
            clients = []
            for _ in range(cap):
                c = await asyncio.to_thread(open_over_memory_tls, node)
                ev = await cons.wait_event(harness.ev_open_from(c.local_port(), "wss", cons))
                cid = ev["p"]["c"]
                await aapi_ok(node, "conn.call", {"c": cid, "f": "subscribe", "a": ["room:bad"]})
                clients.append((c, cid))
            assert (await aapi_ok(node, "channel.count", {"c": "room:bad"}))["s"] == cap
            for c, cid in clients:
                await asyncio.to_thread(c.sock.sendall, BOGUS_RECORD)
                assert await asyncio.to_thread(wait_closed_by_peer, c.sock), f"round {round_}: still open"
                c.sock.close()
                ev = await cons.wait_event(harness.ev_close_of(cid))
                assert ev["p"]["d"]["code"] == 1006, ev
            # Every table forgot them: count, channel, id.
            deadline = time.monotonic() + harness.T
            while (n := await asyncio.to_thread(node_connections, node)) != 0:
                assert time.monotonic() < deadline, f"round {round_}: node.stats counts {n} connections, not 0"
                await asyncio.sleep(0.05)
            assert (await aapi_ok(node, "channel.count", {"c": "room:bad"}))["s"] == 0
            for _, cid in clients:
                await harness.aapi_err(node, "conn.info", {"c": cid}, 301)
            assert await aapi_ok(node, "mesh.publish", {"c": "room:bad", "d": "x"}) == {"s": 0, "f": 0}
            assert await aapi_ok(node, "mesh.broadcast", {"d": "x"}) == {"s": 0, "f": 0}
            assert not cons.take_events(lambda e: any(e["p"]["c"] == cid and e["p"]["d"].get("event") == "close"
                                                      for _, cid in clients)), "a close event came twice"
    # Counted as protocol errors (the clients were in), not as refused handshakes.
    assert (await asyncio.to_thread(metric_value, node, "meshgate_protocol_errors_total") or 0) == errors_before + 2 * cap
    assert not await asyncio.to_thread(refused_count, node, "tls_handshake")


# ---------------------------------------------------------------------------------------------------
# Idle connections hold no buffers (issue 21), and traffic after idling works
# ---------------------------------------------------------------------------------------------------

def send_ciphertext_cut(c, plain, step, pause=0.005):
    """Encrypts `plain` on a MemoryTls client and writes the records `step` bytes at a time, pausing
    between writes, so the server reads each TLS record (and the frame inside it) in pieces."""
    c.obj.write(plain)
    data = c.out.read()
    for i in range(0, len(data), step):
        c.sock.sendall(data[i:i + step])
        time.sleep(pause)


def memory_tls_recv_until(c, needle, timeout=harness.T):
    deadline = time.monotonic() + timeout
    data = b""
    while needle not in data:
        try:
            data += c.obj.read(65536)
        except ssl.SSLWantReadError:
            c._pump(deadline)
    return data


async def test_idle_connections_release_their_buffers_then_carry_traffic(node):
    """An idle wss connection holds no memory BIO and an idle ws or wss connection no frame decoder
    (the thread's BIOs are lent per read and write; the decoder is made when bytes come and dropped at
    rest): many connections on the same workers, idle, then all talking at once, must each still get
    their own bytes both ways. Then the states that must survive a release: a TLS record and a frame
    cut across reads, and a fragmented message whose first fragment is empty (no buffer, but a
    message is open) with the connection quiet between its fragments."""
    async with Session(node) as s:
        cons = await s.consumer()
        for listener, scheme, ctx in (("wss", "wss", client_ctx()), ("plainws", "ws", None)):
            clients = []
            for i in range(8):  # over the node's 4 workers: several share one thread's BIOs
                ws = await asyncio.wait_for(
                    websockets.connect(f"{scheme}://127.0.0.1:{node.port(listener)}/idle", ssl=ctx,
                                       ping_interval=None, close_timeout=2, open_timeout=harness.T), harness.T + 1)
                ev = await cons.wait_event(harness.ev_open_from(ws.local_address[1], listener, cons))
                clients.append((ws, ev["p"]["c"]))
            try:
                for round_ in range(2):
                    await asyncio.sleep(0.3)  # idle: nothing read or written, nothing held
                    for i, (ws, _) in enumerate(clients):
                        await ws.send(f"{listener} up {round_} {i}")
                    big = "D" * 40000  # several TLS records
                    for i, (_, cid) in enumerate(clients):
                        await aapi_ok(node, "mesh.send", {"c": cid, "d": f"{big}{i}"})
                    for i, (ws, cid) in enumerate(clients):
                        await cons.wait_event(ev_frame_of(cid, f"{listener} up {round_} {i}"))
                        assert await ws_recv(ws, 3) == f"{big}{i}"
            finally:
                for ws, _ in clients:
                    await ws.close()

        # wss through memory BIOs: a record cut into 7-byte writes, then a message in two fragments,
        # the first one empty, with the connection idle between them.
        c = await asyncio.to_thread(open_over_memory_tls, node)
        try:
            cid = (await cons.wait_event(harness.ev_open_from(c.local_port(), "wss", cons)))["p"]["c"]
            await asyncio.to_thread(send_ciphertext_cut, c, harness.ws_frame(0x1, b"cut record " * 20), 7)
            await cons.wait_event(ev_frame_of(cid, "cut record " * 20))
            await asyncio.to_thread(c.send, harness.ws_frame(0x1, b"", fin=False))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(send_ciphertext_cut, c, harness.ws_frame(0x0, b"after idle", fin=True), 3)
            await cons.wait_event(ev_frame_of(cid, "after idle"))
            await aapi_ok(node, "mesh.send", {"c": cid, "d": "still here"})
            assert b"still here" in await asyncio.to_thread(memory_tls_recv_until, c, b"still here")
        finally:
            c.sock.close()

        # Plain ws: the same fragmented message, a frame header cut across reads too.
        raw = await harness.RawWs.connect(node.port("plainws"))
        try:
            cid = (await cons.wait_event(harness.ev_open_from(raw.local_port, "plainws", cons)))["p"]["c"]
            await raw.send_raw(harness.ws_frame(0x1, b"", fin=False))
            await asyncio.sleep(0.3)
            frame = harness.ws_frame(0x0, b"frag after idle", fin=True)
            await raw.send_raw(frame[:1])
            await asyncio.sleep(0.05)
            await raw.send_raw(frame[1:])
            await cons.wait_event(ev_frame_of(cid, "frag after idle"))
            await raw.send(0x1, b"then another")
            await cons.wait_event(ev_frame_of(cid, "then another"))
        finally:
            await raw.close()
