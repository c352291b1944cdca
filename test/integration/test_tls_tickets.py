"""TLS 1.3 stateless session tickets and the handshake budget (issue 21, reconnect storms).

A real client resumes: Python's ssl module (OpenSSL's client) offers the session of an earlier
connection (`session=`) and `session_reused` says whether the server took it. Resumption is checked
after a full handshake, with the renewed ticket, across a live key rotation (ticket_rotate = 60: the
test takes a minute), across a restart that keeps its ticket_key_file, across a rotation at start
(the key file aged by one period while the node was down: its key comes back as the previous key)
and not across two (a full handshake). The key file is created 0600 and refused,
by --check-config and at start, when others may read it. Last, a burst of TLS clients at once all get
in through the handshake budget while an established client keeps receiving."""

import os
import socket
import stat
import subprocess
import threading
import time

import pytest

import harness
from harness import http_request, ws_upgrade_request

ROTATE = 3600


client_ctx = harness.tls13_client_ctx


def upgrade(port, ctx, session=None):
    """A wss connection up to its 101. Returns (session for the next connection, whether this one resumed)."""
    _, session, reused = harness.wss_handshake(port, ctx, session)
    return session, reused


def wss(extra=None):
    return {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client", "tls": True,
            "ticket_rotate": ROTATE, **(extra or {})}


def start_again(node):
    node.stopping = False  # a crash of the new process is reported like any other
    node.start()


def restart(node):
    assert node.stop() in (None, ""), "the node did not stop cleanly"
    start_again(node)


def age_key_file(path, seconds):
    """Moves every key of the file `seconds` into the past, as if the node had been down that long."""
    with open(path) as f:
        lines = f.read().splitlines()
    out = [lines[0]] + [f"{int(l.split()[0]) - seconds} {l.split()[1]}" for l in lines[1:] if l.strip()]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def test_resumes_with_a_fresh_ticket_each_time(module_nodes):
    node = module_nodes.start({"listener.wss": wss()})
    ctx = client_ctx()
    session, reused = upgrade(node.port("wss"), ctx)
    assert not reused
    for i in range(4):  # each resumption hands out a fresh ticket, which resumes the next time
        session, reused = upgrade(node.port("wss"), ctx, session)
        assert reused, f"resumption {i + 1} did a full handshake"


def test_key_file_keeps_resuming_across_restarts_and_a_rotation(module_nodes, tmp_path):
    keyfile = str(tmp_path / "tickets.keys")
    node = module_nodes.start({"listener.wss": wss({"ticket_key_file": keyfile})})
    port = node.port("wss")
    ctx = client_ctx()
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    first, reused = upgrade(port, ctx)
    assert not reused

    restart(node)  # same keys from the file
    after_restart, reused = upgrade(port, ctx, first)
    assert reused, "a restart with ticket_key_file did not resume"

    assert node.stop() in (None, "")
    age_key_file(keyfile, ROTATE + 5)  # down for more than a period: at start the key rotates once
    start_again(node)
    with open(keyfile) as f:
        assert len(f.read().splitlines()) == 3, "the rotated file holds current and previous"
    _, reused = upgrade(port, ctx, after_restart)
    assert reused, "a ticket under the previous key did not resume"

    assert node.stop() in (None, "")
    age_key_file(keyfile, 2 * ROTATE + 5)  # two more periods: both keys are gone
    start_again(node)
    _, reused = upgrade(port, ctx, after_restart)
    assert not reused, "a ticket under a key older than previous resumed"


def test_resumes_across_a_live_rotation(module_nodes, tmp_path):
    # ticket_rotate = 60 (the least): the key made at start rotates 60 s later while the node runs.
    # A ticket issued 30 s after start is 32 s old at 62 s (under its 60 s lifetime) and sealed
    # under what is the previous key by then.
    keyfile = str(tmp_path / "live.keys")
    started = time.monotonic()
    node = module_nodes.start({"listener.wss": wss({"ticket_rotate": 60, "ticket_key_file": keyfile})})
    port = node.port("wss")
    ctx = client_ctx()
    time.sleep(max(0.0, 30 - (time.monotonic() - started)))
    session, reused = upgrade(port, ctx)
    assert not reused
    with open(keyfile) as f:
        assert len(f.read().splitlines()) == 2, "one key before the rotation"
    time.sleep(max(0.0, 62 - (time.monotonic() - started)))
    _, reused = upgrade(port, ctx, session)
    assert reused, "a ticket sealed before the rotation did not resume after it"
    with open(keyfile) as f:
        assert len(f.read().splitlines()) == 3, "the rotation rewrote the key file with current and previous"


def test_without_key_file_a_restart_means_full_handshakes(module_nodes):
    node = module_nodes.start({"listener.wss": wss()})
    ctx = client_ctx()
    session, _ = upgrade(node.port("wss"), ctx)
    restart(node)
    _, reused = upgrade(node.port("wss"), ctx, session)
    assert not reused


def test_key_file_readable_by_others_is_refused(tmp_path):
    keyfile = tmp_path / "tickets.keys"
    keyfile.write_text("meshgate-ticket-keys 1\n")
    os.chmod(keyfile, 0o644)
    node = harness.Node(str(tmp_path / "n"), {"listener.wss": wss({"ticket_key_file": str(keyfile)})})
    r = subprocess.run([harness.meshgate_bin(), "--check-config", "-c", node.conf_path], capture_output=True,
                       text=True, timeout=harness.T)
    assert r.returncode == 1, r
    assert "ticket_key_file" in r.stderr and "chmod 600" in r.stderr, r.stderr
    p = subprocess.run([harness.meshgate_bin(), "-c", node.conf_path], capture_output=True, text=True,
                       timeout=harness.T)
    assert p.returncode != 0 and "chmod 600" in p.stdout + p.stderr, p


@pytest.mark.parametrize("value", ["59", "604801", "soon"])
def test_ticket_rotate_out_of_range_is_refused(tmp_path, value):
    node = harness.Node(str(tmp_path / "n"), {"listener.wss": wss({"ticket_rotate": value})})
    r = subprocess.run([harness.meshgate_bin(), "--check-config", "-c", node.conf_path], capture_output=True,
                       text=True, timeout=harness.T)
    assert r.returncode == 1 and "ticket_rotate" in r.stderr, r


def test_a_burst_of_handshakes_all_get_in_and_the_established_keep_receiving(module_nodes):
    # One worker, a small budget: most of the burst waits for its turn.
    node = module_nodes.start({"node": {"workers": 1}, "limits": {"handshake_budget": 2, "accept_budget": 4},
                               "listener.wss": wss()})
    port = node.port("wss")
    ctx = client_ctx()
    # An established client: it must keep getting what is sent to it while the burst goes on.
    raw = socket.create_connection(("127.0.0.1", port), timeout=harness.T)
    est = ctx.wrap_socket(raw)
    est.sendall(ws_upgrade_request(port))
    head = b""
    while b"\r\n\r\n" not in head:
        head += est.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    n = 300
    ok, errors = [], []

    def client():
        try:
            upgrade(port, ctx)
            ok.append(1)
        except Exception as e:  # noqa: BLE001 - counted and shown
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    # Meanwhile the established connection answers pings (the server reads and writes it every turn).
    pongs = 0
    while any(t.is_alive() for t in threads):
        est.sendall(harness.ws_frame(0x9, b"p"))
        data = est.recv(64)
        assert data[:1] == b"\x8a", data
        pongs += 1
        time.sleep(0.01)
    for t in threads:
        t.join()
    est.close()
    assert not errors, errors[:5]
    assert len(ok) == n
    assert pongs > 0
    r = http_request(node.api_port, "GET", "/metrics")
    assert r.status == 200
