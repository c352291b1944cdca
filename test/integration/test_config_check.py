"""The configuration checker and reloads (issue 11).

`meshgate --check-config` must refuse what start-up would fail on or what would run unsafely, and
start-up must refuse the same files with the same message: a certificate file that is not there, a
log file that cannot be written, a key given twice, a secret too short to protect anything, a node
with no listener. A file that passes starts. SIGHUP names every changed key it could not apply and
says a restart is needed, instead of logging "reloaded" over a changed port.
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import harness
from harness import default_config, free_port, merge_config, render_config


def write_conf(tmp_path, overrides, extra_text=""):
    cfg = merge_config(default_config(), overrides)
    for section, kv in cfg.items():
        if "port" in kv and kv["port"] is None:
            kv["port"] = free_port()
    path = tmp_path / "m.conf"
    path.write_text(render_config(cfg) + extra_text)
    return str(path)


def check(path):
    return subprocess.run([harness.meshgate_bin(), "--check-config", "-c", path], capture_output=True, text=True,
                          timeout=30)


def start(path, seconds=5):
    """Starts meshgate on `path`; returns (exit code or None if it kept running, stderr)."""
    p = subprocess.Popen([harness.meshgate_bin(), "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        rc = p.wait(seconds)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.wait(15)
        rc = None
    return rc, p.stdout.read()


def no_listeners():
    return {f"listener.{n}": None for n in ("ws", "tcp", "tcp32")}


CASES = {
    "missing certificate": ({"listener.wss": {"type": "ws", "bind": "127.0.0.1", "port": None, "tls": "on",
                                              "cert": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"}},
                            r"\[listener\.wss\] cert/key: .*nonexistent"),
    "unwritable log file": ({"log": {"file": "/nonexistent-dir/meshgate.log"}},
                            r"\[log\] file = /nonexistent-dir/meshgate.log: cannot write"),
    "short mesh secret": ({"mesh": {"port": None, "bind": "127.0.0.1", "secret": "12345"}},
                          r"\[mesh\] secret: too short: 5 bytes, at least 16"),
    "short token secret": ({"listener.ws": {"token_secret": "k"}},
                           r"\[listener\.ws\] token_secret: too short: 1 bytes"),
    "short API token": ({"api": {"token": "abc"}}, r"\[api\] token: too short: 3 bytes"),
    "no listener": (no_listeners(), r"no \[listener\.NAME\] section"),
    # The NATS backbone (issue 23): what it needs, what goes together, what cannot run beside it.
    "nats without servers": ({"cluster": {"backbone": "nats"}}, r"\[cluster\] backbone = nats (needs \[nats\] servers|"
                             r": this build has no NATS support)"),
    "nats user without password": ({"cluster": {"backbone": "nats"},
                                    "nats": {"servers": "nats://127.0.0.1:4222", "user": "u"}},
                                   r"\[nats\] user and password go together|this build has no NATS support"),
    "nats beside the mesh": ({"cluster": {"backbone": "nats"}, "nats": {"servers": "nats://127.0.0.1:4222"},
                              "mesh": {"port": None, "bind": "127.0.0.1", "secret": "0123456789abcdef0123"}},
                             r"\[mesh\] port: the mesh does not run with \[cluster\] backbone = nats|"
                             r"this build has no NATS support"),
    "nats creds file missing": ({"cluster": {"backbone": "nats"},
                                 "nats": {"servers": "nats://127.0.0.1:4222", "creds": "/nonexistent/m.creds"}},
                                r"\[nats\] creds = /nonexistent/m.creds: cannot read|this build has no NATS support"),
    "nats server not a URL": ({"cluster": {"backbone": "nats"}, "nats": {"servers": "127.0.0.1:4222"}},
                              r"expected nats://host:port or tls://host:port"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_config_and_start_up_refuse_alike(tmp_path, case):
    overrides, pattern = CASES[case]
    path = write_conf(tmp_path, overrides)
    r = check(path)
    assert r.returncode == 1, f"{case}: --check-config exited {r.returncode}: {r.stdout} {r.stderr}"
    assert re.search(pattern, r.stderr), f"{case}: --check-config said {r.stderr!r}"
    rc, out = start(path)
    assert rc == 1, f"{case}: start-up did not refuse (exit {rc}):\n{out[-2000:]}"
    assert re.search(pattern, out), f"{case}: start-up said {out!r}"


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = write_conf(tmp_path, {}, "[node]\nid = 7\n")
    r = check(path)
    assert r.returncode == 1 and re.search(r"\[node\] id = 7: given twice \(first at line \d+\)", r.stderr), r.stderr


def test_a_file_that_passes_starts(tmp_path):
    path = write_conf(tmp_path, {"log": {"file": str(tmp_path / "meshgate.log")}})
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(tmp_path / "meshgate.log"), "--check-config created the log file"
    rc, out = start(path, seconds=2)
    assert rc is None, f"start-up failed (exit {rc}):\n{out[-2000:]}"


def test_sighup_names_what_needs_a_restart(nodes):
    n = nodes.start({"node": {"drain_timeout": 3}})
    text = open(n.conf_path).read()
    new_port = free_port()
    old_port = n.port("ws")
    changed = text.replace(f"port = {old_port}\n", f"port = {new_port}\n", 1)
    changed = changed.replace("drain_timeout = 3", "drain_timeout = 4")
    assert changed != text
    with open(n.conf_path, "w") as f:
        f.write(changed)
    mark = len(n.stderr(tail=100000).splitlines())
    n.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    lines = []
    while time.monotonic() < deadline:
        lines = [ln for ln in n.stderr(tail=100000).splitlines()[mark:] if "SIGHUP" in ln]
        if any("restart" in ln for ln in lines):
            break
        time.sleep(0.05)
    warn = [ln for ln in lines if "restart" in ln]
    assert warn, f"no restart warning after SIGHUP: {lines}"
    assert "[listener.ws] port" in warn[0] and "[node] drain_timeout" in warn[0], warn[0]
    # The running listener is the old one: the new port was not applied.
    with socket.create_connection(("127.0.0.1", old_port), timeout=2):
        pass


# Start-up that fails half way (a port taken by another process) exits 1 with the reason and closes
# everything it opened first: under the sanitizer build (suite 'sanitize'), a listening socket, a
# handle or the loop left behind is a leak report at exit.
PORT_SECTIONS = {
    "listener": ("listener.tcp32", {}),  # the last listener: the sockets of the others are open by then
    "api": ("api", {}),
    "route": ("route", {}),
    "mesh": ("mesh", {"mesh": {"port": None, "bind": "127.0.0.1", "secret": "a-mesh-secret-of-24-bytes"}}),
}


@pytest.mark.parametrize("section", sorted(PORT_SECTIONS))
def test_a_port_in_use_fails_start_up_cleanly(tmp_path, section):
    name, overrides = PORT_SECTIONS[section]
    path = write_conf(tmp_path, overrides)
    text = open(path).read()
    port = int(re.search(r"^\[" + re.escape(name) + r"\][^\[]*?^port = (\d+)$", text, re.M | re.S).group(1))
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", port))
    taken.listen()
    try:
        rc, out = start(path)
    finally:
        taken.close()
    assert rc == 1, f"start-up with [{name}]'s port {port} taken did not fail (exit {rc}):\n{out[-2000:]}"
    assert str(port) in out and "in use" in out, out[-2000:]
    assert harness.SANITIZER_MARKERS.search(out) is None, f"start-up failure left something behind:\n{out[-4000:]}"
