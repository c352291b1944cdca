"""systemd-native service (issue 12), observed as systemd would observe it:
- the notify protocol: READY=1 (with STATUS=) arrives on $NOTIFY_SOCKET only once the client
  listeners accept connections; STATUS= follows the connection count; WATCHDOG=1 arrives at half of
  $WATCHDOG_USEC; STOPPING=1 when SIGTERM starts the drain. Both a path and an abstract ('@') socket;
- journald: with $JOURNAL_STREAM naming the node's stderr, each line starts with its syslog priority
  (<3> for errors, <6> for info) and carries no timestamp; a $JOURNAL_STREAM that names another file
  changes nothing; [log] format = json writes one JSON object a line;
- /metrics: the process_* family (resident memory, fds that follow the connections, CPU, start time);
- the shipped unit: Type=notify, and `systemd-analyze security` rates it OK or better.
"""
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from harness import REPO, Node, http_request, meshgate_bin, metric_value, ws_connect

UNIT_TEMPLATE = os.path.join(REPO, "packaging", "systemd", "meshgate.service.in")


def unit_file(directory):
    """The unit as the packages install it (meson fills in the paths the same way)."""
    text = open(UNIT_TEMPLATE).read().replace("@bindir@", "/usr/bin").replace("@sysconfdir@", "/etc")
    path = os.path.join(directory, "meshgate.service")
    with open(path, "w") as f:
        f.write(text)
    return path


class NotifySocket:
    """A datagram socket playing systemd's part: collects every message meshgate sends."""

    def __init__(self, workdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"meshgate-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = os.path.join(workdir, "notify.sock")
            self.sock.bind(path)
            self.env_value = path
        self.messages = []

    def wait_for(self, pred, timeout=5.0, what="message"):
        """The first message (one datagram, as text) for which pred is true, received within timeout."""
        for m in self.messages:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536).decode()
            except socket.timeout:
                break
            self.messages.append(data)
            if pred(data):
                return data
        raise AssertionError(f"no {what} on NOTIFY_SOCKET within {timeout}s; got {self.messages!r}")

    def close(self):
        self.sock.close()


def lines(msg):
    return dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)


@pytest.mark.parametrize("abstract", [False, True])
async def test_notify_ready_status_stopping(nodes, tmp_path, abstract):
    ns = NotifySocket(str(tmp_path), abstract)
    try:
        node = Node(str(tmp_path / "n"))
        # Start without waiting for /healthz, so READY=1 is what tells us the node is up.
        node_start = asyncio.ensure_future(asyncio.to_thread(node.start, {"NOTIFY_SOCKET": ns.env_value}))
        ready = await asyncio.to_thread(ns.wait_for, lambda m: "READY=1" in m, 10.0, "READY=1")
        # Every listener accepts at the moment READY=1 is sent.
        for listener in ("ws", "tcp", "tcp32"):
            socket.create_connection(("127.0.0.1", node.port(listener)), timeout=2).close()
        assert http_request(node.api_port, "GET", "/healthz").status == 200
        await node_start
        nodes.nodes.append(node)
        fields = lines(ready)
        assert fields["STATUS"] == "0 connections, 0 consumers" and int(fields["MAINPID"]) == node.proc.pid, fields
        ws = await ws_connect(node.port("ws"))
        await asyncio.to_thread(ns.wait_for, lambda m: m == "STATUS=1 connections, 0 consumers", 5.0, "STATUS with 1 connection")
        await ws.close()
        await asyncio.to_thread(ns.wait_for, lambda m: m == "STATUS=0 connections, 0 consumers"
                                and ns.messages.index(m) > 1, 5.0, "STATUS back to 0")
        node.terminate()
        stopping = await asyncio.to_thread(ns.wait_for, lambda m: "STOPPING=1" in m, 5.0, "STOPPING=1")
        assert lines(stopping)["STATUS"].startswith("draining: ")
        assert node.wait_exit() is None
        assert sum("READY=1" in m for m in ns.messages) == 1, ns.messages
    finally:
        ns.close()


def count_pings(ns, seconds):
    """WATCHDOG=1 datagrams received during the next `seconds`."""
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ns.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            count += ns.sock.recv(65536) == b"WATCHDOG=1"
        except socket.timeout:
            break
    return count


def test_watchdog_pings(nodes, tmp_path):
    ns = NotifySocket(str(tmp_path))
    try:
        nodes.start(env={"NOTIFY_SOCKET": ns.env_value, "WATCHDOG_USEC": "1000000"})  # ping every 0.5 s
        ns.wait_for(lambda m: "READY=1" in m)
        count = count_pings(ns, 2.2)
        assert 3 <= count <= 6, f"{count} WATCHDOG=1 pings in 2.2 s, expected about 4 (every 0.5 s)"
    finally:
        ns.close()
    # A watchdog meant for another process (WATCHDOG_PID) is not ours to ping.
    os.makedirs(tmp_path / "other")
    ns = NotifySocket(str(tmp_path / "other"))
    try:
        nodes.start(env={"NOTIFY_SOCKET": ns.env_value, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        ns.wait_for(lambda m: "READY=1" in m)
        assert count_pings(ns, 1.0) == 0
    finally:
        ns.close()


def start_with_stderr_env(tmp_path, name, env_of_stat, overrides=None):
    """A node whose stderr file exists before it starts, so $JOURNAL_STREAM can name it."""
    node = Node(str(tmp_path / name), overrides)
    open(node.stderr_path, "wb").close()
    st = os.stat(node.stderr_path)
    node.start(env_of_stat(st))
    return node


def reload_with_broken_config(node):
    """SIGHUP with a configuration that does not parse: the node logs an error and keeps running."""
    with open(node.conf_path, "a") as f:
        f.write("\n[node]\nid = not-a-number\n")
    node.proc.send_signal(1)
    deadline = time.monotonic() + 5
    while "configuration not reloaded" not in node.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_journal_priorities(nodes, tmp_path):
    node = start_with_stderr_env(tmp_path, "j", lambda st: {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    nodes.nodes.append(node)
    reload_with_broken_config(node)
    out = node.stderr().splitlines()
    assert out and all(re.match(r"<[3467]>(error|warn |info |debug) ", l) for l in out), out
    assert any(l.startswith("<6>info  meshgate ") for l in out), out
    assert any(l.startswith("<3>error SIGHUP: configuration not reloaded") for l in out), out
    assert not any(re.search(r"\d{4}-\d\d-\d\dT", l) for l in out), "the journal adds its own timestamps"


def test_config_error_at_start_is_an_error_in_the_journal(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[node]\nid = 5000\n")
    err = tmp_path / "stderr"
    with open(err, "wb") as f:
        st = os.fstat(f.fileno())
        for args in (["-c", str(conf)], ["--check-config", "-c", str(conf)]):  # ExecStartPre and ExecStart
            rc = subprocess.run([meshgate_bin(), *args], stdout=f, stderr=f, timeout=10,
                                env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}).returncode
            assert rc == 1
    out = err.read_text().splitlines()
    assert len(out) == 2 and all(l.startswith("<3>meshgate: configuration error: ") for l in out), out


def test_journal_stream_of_another_file_changes_nothing(nodes, tmp_path):
    node = start_with_stderr_env(tmp_path, "nj", lambda st: {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    nodes.nodes.append(node)
    out = node.stderr().splitlines()
    assert out and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) ", l) for l in out), out


def test_json_log_format(nodes):
    node = nodes.start({"log": {"level": "info", "format": "json"}})
    reload_with_broken_config(node)
    records = [json.loads(l) for l in node.stderr().splitlines()]
    assert records and all(set(r) == {"ts", "level", "msg"} for r in records), records
    assert any(r["level"] == "info" and r["msg"].startswith("meshgate ") for r in records)
    assert any(r["level"] == "error" and "configuration not reloaded" in r["msg"] for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["ts"]) for r in records)


async def test_process_metrics(nodes):
    node = nodes.start()
    rss = metric_value(node, "process_resident_memory_bytes")
    assert rss is not None and 1 << 20 < rss < 1 << 32, rss
    assert abs(metric_value(node, "process_start_time_seconds") - time.time()) < 60
    assert metric_value(node, "process_cpu_seconds_total") >= 0 and metric_value(node, "process_max_fds") >= 1024
    fds_before = metric_value(node, "process_open_fds")
    assert fds_before >= 5  # listeners, loops, the log
    clients = [await ws_connect(node.port("ws")) for _ in range(20)]
    try:
        fds = await asyncio.to_thread(metric_value, node, "process_open_fds")
        assert fds >= fds_before + 20, (fds_before, fds)
    finally:
        for c in clients:
            await c.close()


def test_unit_is_notify_and_hardened(tmp_path):
    unit = unit_file(str(tmp_path))
    text = open(unit).read()
    assert re.search(r"^Type=notify$", text, re.M) and re.search(r"^NotifyAccess=main$", text, re.M)
    assert re.search(r"^StateDirectory=meshgate$", text, re.M) and re.search(r"^LogsDirectory=meshgate$", text, re.M)
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed (scripts/install-deps.sh test installs systemd)")
    p = subprocess.run([analyze, "security", "--offline=true", "--no-pager", unit], capture_output=True, text=True,
                       timeout=60)
    verdict = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", p.stdout)
    assert verdict, p.stdout[-2000:] + p.stderr
    assert verdict.group(2) in ("PERFECT", "SAFE", "OK") and float(verdict.group(1)) < 5.0, verdict.group(0)
