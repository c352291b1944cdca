"""Rotating certificates and secrets without dropping a connection (issue 25), with real handshakes.

- Certificates: wss clients connected under certificate A; the files are replaced with certificate B
  (as certbot does) and the node gets SIGHUP. No client is closed (each still sends and receives
  afterwards), new handshakes see B (its DER checked with Python's ssl), a ticket issued under A still
  resumes, the log names B with its expiry and the expiry metric is B's. A file that does not load
  (bad PEM, a key of another certificate, a missing file) keeps the running certificate and the rest
  of the running settings: logged, counted, and `--check-config` reports it.
- Connect tokens: a client admitted under the old secret stays connected when that secret is
  removed; tokens under both secrets are admitted while both are configured.
- API tokens: calls under two named tokens and the "default" one; one removed by SIGHUP is refused
  (401) from then on while a /ws/v1 connection it opened goes on; /metrics counts by name and no
  token value appears in the log or the metrics.
- Mesh secret: three nodes rolled from S1 to S2 one by one with SIGHUP (add the next secret, switch,
  remove the old): no node is ever declared dead, calls across nodes succeed after every step, and
  nodes that join mid-roll and after it link under the secrets of the moment; a node left on S1
  alone is refused.
Certificates are made with the `openssl` command line, tokens with hmac/hashlib."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import subprocess
import time

import pytest
import websockets

import harness
from harness import Session, aapi_ok, ev_frame_of, http_request, metric_value

# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}"
    return r.stdout.decode()


def make_cert(d, name, days):
    """{name}.pem and {name}.key: a self-signed EC certificate with CN=meshgate-rotation-{name}."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", str(days),
            "-subj", f"/CN=meshgate-rotation-{name}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)


def not_after(d, name):
    out = openssl("x509", "-in", f"{name}.pem", "-noout", "-enddate", cwd=d)  # notAfter=Mar  1 12:00:00 2027 GMT
    return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def der_of(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def install(d, name, live_cert, live_key):
    """Puts certificate `name` at the listener's paths the way certbot does: new files renamed over
    the old ones (the key first)."""
    for src, dst in ((f"{name}.key", live_key), (f"{name}.pem", live_cert)):
        with open(os.path.join(d, src), "rb") as f:
            data = f.read()
        with open(dst + ".new", "wb") as f:
            f.write(data)
        os.replace(dst + ".new", dst)


client_ctx = harness.tls13_client_ctx


handshake = harness.wss_handshake


def log_mark(node):
    return len(node.stderr(tail=10**7).splitlines())


def sighup(node, expect="SIGHUP: reloaded"):
    """Sends SIGHUP and waits for a log line (after this call) containing `expect`; returns the new lines."""
    mark = log_mark(node)
    node.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + harness.T
    while True:
        lines = node.stderr(tail=10**7).splitlines()[mark:]
        if any(expect in ln for ln in lines):
            return lines
        assert time.monotonic() < deadline, f"no {expect!r} after SIGHUP; log since: {lines}"
        time.sleep(0.05)


def rewrite(node, section, **kv):
    """Changes keys of a section of the node's file (None removes the key) and writes it out."""
    for k, v in kv.items():
        if v is None:
            node.cfg[section].pop(k, None)
        else:
            node.cfg[section][k] = v
    with open(node.conf_path, "w") as f:
        f.write(harness.render_config(node.cfg))


async def wss_connect(port):
    return await asyncio.wait_for(
        websockets.connect(f"wss://127.0.0.1:{port}/", ssl=client_ctx(), ping_interval=None, close_timeout=2,
                           max_size=None, open_timeout=harness.T), harness.T + 1)


# ---------------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------------

CLIENTS = 12


@pytest.fixture
def certs(tmp_path):
    d = str(tmp_path)
    make_cert(d, "A", 30)
    make_cert(d, "B", 90)
    live_cert, live_key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
    install(d, "A", live_cert, live_key)
    return d, live_cert, live_key


def wss_listener(cert, key):
    return {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client", "tls": True, "cert": cert, "key": key}


async def test_certificate_swapped_under_connected_clients(nodes, certs):
    d, live_cert, live_key = certs
    node = nodes.start({"listener.wss": wss_listener(live_cert, live_key)})
    port = node.port("wss")
    assert "[listener.wss] certificate CN=meshgate-rotation-A" in node.stderr(), "start-up names the certificate"
    assert metric_value(node, "meshgate_tls_cert_expiry_timestamp_seconds", listener="wss") == not_after(d, "A")
    ctx = client_ctx()
    der, session, _ = await asyncio.to_thread(handshake, port, ctx)
    assert der == der_of(os.path.join(d, "A.pem"))

    async with Session(node) as s:
        cons = await s.consumer()
        clients = []
        for _ in range(CLIENTS):
            ws = await wss_connect(port)
            s.closers.append(ws.close)
            ev = await cons.wait_event(harness.ev_open_from(ws.local_address[1], "wss", cons))
            clients.append((ws, ev["p"]["c"]))
        assert ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True) == der_of(
            os.path.join(d, "A.pem"))

        # Under load: the clients keep talking while the files change and the node reloads.
        async def chatter(ws, cid, stop):
            n = 0
            while not stop.is_set():
                await ws.send(f"{cid} during {n}")
                n += 1
                await asyncio.sleep(0.02)
            return n

        stop = asyncio.Event()
        talkers = [asyncio.ensure_future(chatter(ws, cid, stop)) for ws, cid in clients]
        await asyncio.sleep(0.2)
        install(d, "B", live_cert, live_key)
        lines = await asyncio.to_thread(sighup, node)
        await asyncio.sleep(0.2)
        stop.set()
        sent = await asyncio.gather(*talkers)
        assert all(n > 0 for n in sent)

        reload_line = [ln for ln in lines if "[listener.wss] certificate" in ln]
        assert reload_line and "CN=meshgate-rotation-B" in reload_line[0], lines
        expiry_day = time.strftime("%Y-%m-%d", time.gmtime(not_after(d, "B")))
        assert f"expires {expiry_day}" in reload_line[0], reload_line[0]

        # New handshakes get B; a ticket issued under A still resumes (the ticket keys stayed).
        der, _, _ = await asyncio.to_thread(handshake, port, client_ctx())
        assert der == der_of(os.path.join(d, "B.pem")), "a new handshake after SIGHUP still got certificate A"
        _, _, reused = await asyncio.to_thread(handshake, port, ctx, session)
        assert reused, "a ticket issued before the swap did not resume after it"
        assert metric_value(node, "meshgate_tls_cert_expiry_timestamp_seconds", listener="wss") == not_after(d, "B")

        # Every client opened under A is still there, both ways.
        for ws, cid in clients:
            await ws.send(f"{cid} after")
            await cons.wait_event(ev_frame_of(cid, f"{cid} after"))
            await aapi_ok(node, "mesh.send", {"c": cid, "d": f"to {cid}"})
            got = await asyncio.wait_for(ws.recv(), harness.T)
            while got != f"to {cid}":  # nothing else is sent to it
                got = await asyncio.wait_for(ws.recv(), harness.T)
            assert ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True) == der_of(
                os.path.join(d, "A.pem"))
        assert not [e for e in cons.events if e.get("p", {}).get("t") == "close"], "a client was closed"


def check_config(path):
    return subprocess.run([harness.meshgate_bin(), "--check-config", "-c", path], capture_output=True, text=True,
                          timeout=30)


def metric_with_token(node, bearer, name, **labels):
    r = http_request(node.api_port, "GET", "/metrics", headers={"Authorization": f"Bearer {bearer}"})
    assert r.status == 200, f"GET /metrics -> {r.status}"
    text = r.body.decode()
    found = [v for n, lab, v in harness.parse_metrics(text)
             if n == name and all(lab.get(k) == str(val) for k, val in labels.items())]
    return sum(found) if found else None, text


def test_a_certificate_that_does_not_load_keeps_the_running_one(nodes, certs):
    d, live_cert, live_key = certs
    old_token, new_token = "old-token-0123456789", "new-token-0123456789"
    node = nodes.start({"listener.wss": wss_listener(live_cert, live_key), "api": {"token": old_token}})
    port = node.port("wss")
    a = der_of(os.path.join(d, "A.pem"))
    rewrite(node, "api", token=new_token)  # the rest of the file is not applied either

    def api_status(token):
        return http_request(node.api_port, "GET", "/metrics", headers={"Authorization": f"Bearer {token}"}).status

    def bad_pem():
        with open(live_cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")

    def key_of_another_certificate():
        install(d, "B", live_cert, live_key)
        with open(os.path.join(d, "A.key"), "rb") as src, open(live_key, "wb") as dst:
            dst.write(src.read())

    def unreadable():
        os.remove(live_cert)

    for i, damage in enumerate((bad_pem, key_of_another_certificate, unreadable), 1):
        case = damage.__name__
        install(d, "A", live_cert, live_key)
        damage()
        lines = sighup(node, expect="SIGHUP: configuration not reloaded")
        assert any("[listener.wss] cert/key" in ln for ln in lines), f"{case}: {lines}"
        der, _, _ = handshake(port, client_ctx())
        assert der == a, f"{case}: the running certificate was replaced"
        assert api_status(old_token) == 200, f"{case}: the rest of the file was applied"
        count, _ = metric_with_token(node, old_token, "meshgate_tls_cert_reload_failures_total", listener="wss")
        assert count == i, f"{case}: failure not counted ({count})"
        r = check_config(node.conf_path)
        assert r.returncode == 1 and "[listener.wss] cert/key" in r.stderr, f"{case}: --check-config said {r.stderr!r}"

    install(d, "B", live_cert, live_key)  # fixed: the next reload takes it all
    sighup(node)
    assert handshake(port, client_ctx())[0] == der_of(os.path.join(d, "B.pem"))
    assert api_status(new_token) == 200 and api_status(old_token) == 401
    assert check_config(node.conf_path).returncode == 0


# ---------------------------------------------------------------------------------------------------
# Connect tokens
# ---------------------------------------------------------------------------------------------------

SECRET_A = "connect-secret-A-0123456789"
SECRET_B = "connect-secret-B-0123456789"


def connect_token(secret, uid):
    def b64url(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    signing_input = (b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." +
                     b64url(json.dumps({"exp": int(time.time()) + 600, "uid": uid}).encode()))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


async def test_connect_tokens_under_two_secrets(nodes):
    node = nodes.start({"listener.tws": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                                         "token_secret": SECRET_A}})
    port = node.port("tws")

    async def admitted(secret, uid):
        try:
            ws = await harness.ws_connect(port, f"/?token={connect_token(secret, uid)}")
        except websockets.exceptions.InvalidStatusCode as e:
            assert e.status_code == 401
            return None
        return ws

    async with Session(node) as s:
        under_a = await admitted(SECRET_A, "a-before")
        assert under_a is not None and await admitted(SECRET_B, "b-before") is None
        s.closers.append(under_a.close)
        rewrite(node, "listener.tws", token_secret=SECRET_B, token_secret_previous=SECRET_A)
        await asyncio.to_thread(sighup, node)
        for secret, uid in ((SECRET_A, "a-both"), (SECRET_B, "b-both")):
            ws = await admitted(secret, uid)
            assert ws is not None, f"{uid}: refused while both secrets are configured"
            await ws.close()
        rewrite(node, "listener.tws", token_secret_previous=None)
        await asyncio.to_thread(sighup, node)
        assert await admitted(SECRET_A, "a-after") is None
        ws = await admitted(SECRET_B, "b-after")
        assert ws is not None
        await ws.close()
        # The client admitted under A at the start is never checked again: it still receives.
        await aapi_ok(node, "mesh.broadcast", {"d": "still here"})
        assert await asyncio.wait_for(under_a.recv(), harness.T) == "still here"


# ---------------------------------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------------------------------

DEFAULT_TOKEN = "default-token-0123456789"
ALPHA_TOKEN = "alpha-token-0123456789ab"
BETA_TOKEN = "beta-token-0123456789abc"


def api_as(node, token, method="node.stats", params=None):
    return http_request(node.api_port, "POST", harness.method_path(method), json.dumps(params or {}).encode(),
                        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


async def test_named_api_tokens_reload_one_by_one(nodes):
    node = nodes.start({"api": {"token": DEFAULT_TOKEN, "tokens": f"alpha:{ALPHA_TOKEN}, beta:{BETA_TOKEN}"}})
    for token in (DEFAULT_TOKEN, ALPHA_TOKEN, BETA_TOKEN):
        assert api_as(node, token).status == 200
    assert api_as(node, "not-a-token-0123456789").status == 401

    async with Session(node) as s:
        beta_ws = await s.api(headers={"Authorization": f"Bearer {BETA_TOKEN}"})
        assert (await beta_ws.call("node.stats")).get("E") is None

        rewrite(node, "api", tokens=f"alpha:{ALPHA_TOKEN}")  # beta's backend has moved on
        await asyncio.to_thread(sighup, node)
        assert api_as(node, BETA_TOKEN).status == 401, "a removed token is still accepted"
        assert (await asyncio.to_thread(api_as, node, ALPHA_TOKEN)).status == 200
        assert (await asyncio.to_thread(api_as, node, DEFAULT_TOKEN)).status == 200
        # A /ws/v1 connection opened under beta is not cut by the reload (as connect tokens).
        assert (await beta_ws.call("node.stats")).get("E") is None

    count, text = metric_with_token(node, ALPHA_TOKEN, "meshgate_api_token_requests_total", token="alpha")
    assert count >= 2
    assert metric_with_token(node, ALPHA_TOKEN, "meshgate_api_token_requests_total", token="beta")[0] >= 3
    assert metric_with_token(node, ALPHA_TOKEN, "meshgate_api_token_requests_total", token="default")[0] >= 2
    log = node.stderr(tail=10**7)
    for secret in (DEFAULT_TOKEN, ALPHA_TOKEN, BETA_TOKEN):
        assert secret not in text, "a token value in /metrics"
        assert secret not in log, "a token value in the log"


# ---------------------------------------------------------------------------------------------------
# Mesh secret
# ---------------------------------------------------------------------------------------------------

S1 = "mesh-secret-S1-0123456789"
S2 = "mesh-secret-S2-0123456789"
JOIN_TIMEOUT = 10.0


def start_mesh_node(mgr, node_id, seeds, secret, accepted=None):
    port = harness.free_port()
    mesh = {"bind": "127.0.0.1", "port": port, "cluster": "itest-rotation", "secret": secret,
            "seeds": ",".join(f"127.0.0.1:{n.mesh_port}" for n in seeds), "dead_after": 3, "call_timeout": 2}
    if accepted:
        mesh["secret_accepted"] = accepted
    n = mgr.start({"node": {"id": node_id, "name": f"roll-{node_id}", "advertise": "127.0.0.1"}, "mesh": mesh})
    n.mesh_port = port
    return n


def alive_ids(node):
    r = http_request(node.api_port, "GET", "/v1/nodes", timeout=2.0)
    assert r.status == 200, f"GET /v1/nodes -> {r.status}"
    return {int(e["id"]) for e in r.json["r"]["nodes"] if e.get("state") == "alive"}


def wait_all_alive(nodes, timeout=JOIN_TIMEOUT):
    want = {n.node_id for n in nodes}
    deadline = time.monotonic() + timeout
    while True:
        views = {n.node_id: alive_ids(n) for n in nodes}
        if all(v == want for v in views.values()):
            return
        assert time.monotonic() < deadline, f"not every node lists {sorted(want)} alive: {views}"
        time.sleep(0.1)


async def test_mesh_secret_rolled_node_by_node(nodes):
    cluster = [start_mesh_node(nodes, 1, [], S1)]
    cluster += [start_mesh_node(nodes, i, cluster[:1], S1) for i in (2, 3)]
    await asyncio.to_thread(wait_all_alive, cluster)

    async with Session(cluster[0]) as s:
        clients = []  # (node, websocket, client id): one client on each of the first three nodes
        for n in cluster:
            async with Session(n) as local:
                cons = await local.consumer()
                ws = await harness.ws_connect(n.port("ws"), "/")
                s.closers.append(ws.close)
                ev = await cons.wait_event(harness.ev_open_from(ws.local_address[1], "ws", cons))
                clients.append((n, ws, ev["p"]["c"]))
        step = 0

        async def calls_cross(members):
            """From every node, a mesh.send to the client of every other node arrives; all alive everywhere."""
            nonlocal step
            step += 1
            await asyncio.to_thread(wait_all_alive, members)
            for caller in members:
                for owner, ws, cid in clients:
                    if owner is caller:
                        continue
                    data = f"step {step} from {caller.node_id}"
                    await aapi_ok(caller, "mesh.send", {"c": cid, "d": data})
                    assert await asyncio.wait_for(ws.recv(), harness.T) == data

        async def reload(n, **mesh):
            rewrite(n, "mesh", **mesh)
            await asyncio.to_thread(sighup, n)
            await calls_cross(members)

        members = list(cluster)
        await calls_cross(members)
        for n in cluster:  # 1. the next secret, accepted everywhere
            await reload(n, secret_accepted=S2)
        for n in cluster:  # 2. node by node, prove with S2 and still accept S1
            await reload(n, secret=S2, secret_accepted=S1)
            if n is cluster[0]:
                # Mid-roll, a new node configured for the new secret links with nodes on both (it
                # seeds from node 2, still on S1; nodes 2 and 3 dial it or are dialled).
                members.append(start_mesh_node(nodes, 4, [cluster[1]], S2, S1))
                await calls_cross(members)
        for n in cluster + members[3:]:  # 3. the old secret removed
            await reload(n, secret_accepted=None)
        members.append(start_mesh_node(nodes, 5, [cluster[2]], S2))  # after the roll: S2 alone
        await calls_cross(members)
        stale = start_mesh_node(nodes, 6, [cluster[0]], S1)  # a node left on S1 is refused
        await asyncio.sleep(1.5)
        assert alive_ids(stale) == {6} and all(6 not in alive_ids(n) for n in members)
        assert "wrong secret" in cluster[0].stderr(tail=10**7)

    for n in members:
        log = n.stderr(tail=10**7)
        assert "is dead" not in log, f"node {n.node_id} declared a member dead during the roll:\n{log}"
