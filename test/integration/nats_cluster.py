"""A real three-server NATS cluster on loopback, for the tests of `[cluster] backbone = nats` (issue 23).

Runs Debian's `nats-server` (2.9, package nats-server): each server gets a free client port, a free
cluster (route) port and a free monitoring port, explicit routes to every other server (a full mesh),
JetStream with its own store directory, a distinct server_name and the same cluster name (JetStream
clustering needs both). Each server has a small configuration file, kept with its log in its own
directory for failure reports (describe()). A server is ready when its monitoring port answers
(/varz), /routez shows a route to every other live server and /jsz names a live JetStream meta leader.

    c = NatsCluster(workdir)      # skips the test when nats-server is not installed
    c.start_all()                 # until every server is ready (see wait_ready)
    c.urls()                      # ["nats://127.0.0.1:P1", ...]
    c.kill(1); c.start(1)         # SIGKILL one, start it again with the same ports and store
    c.start(0, 1, 2)              # several at once (after all were killed: a lone server has no quorum)
    c.stop_all()

Every wait is bounded, as in harness.py.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from harness import free_port

# A server answers on its monitoring port, all routes are up, a JetStream meta leader is elected
# (after all three were killed and started again, the election took about 8 s here).
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
CANDIDATES = ("/usr/sbin/nats-server", "/usr/bin/nats-server")


def nats_server_bin():
    """The path of nats-server, or None when it is not installed."""
    for p in CANDIDATES:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which("nats-server")


def require_nats_server():
    """The path of nats-server; skips the calling test (or module) when it is not installed."""
    path = nats_server_bin()
    if path is None:
        pytest.skip("nats-server is not installed (Debian package nats-server; scripts/install-deps.sh test)",
                    allow_module_level=True)
    return path


class NatsServer:
    """One nats-server process of a NatsCluster; its ports stay the same across restarts."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = f"{cluster.name}-s{index}"
        self.dir = os.path.join(cluster.basedir, f"nats-{index}")
        self.store_dir = os.path.join(self.dir, "jetstream")
        os.makedirs(self.store_dir, exist_ok=True)
        self.conf_path = os.path.join(self.dir, "nats-server.conf")
        self.log_path = os.path.join(self.dir, "nats-server.log")
        self.port = free_port()
        self.cluster_port = free_port()
        self.http_port = free_port()
        self.proc = None
        self.logf = None
        self.starts = 0

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self):
        routes = ", ".join(f"nats-route://127.0.0.1:{o.cluster_port}" for o in self.cluster.servers if o is not self)
        auth = ""
        if self.cluster.user is not None:
            auth = (f"authorization {{\n  user: {json.dumps(self.cluster.user)}\n"
                    f"  password: {json.dumps(self.cluster.password)}\n}}\n")
        elif self.cluster.token is not None:
            auth = f"authorization {{\n  token: {json.dumps(self.cluster.token)}\n}}\n"
        return (f"# written by test/integration/nats_cluster.py\n"
                f"server_name: {json.dumps(self.name)}\n"
                f"listen: 127.0.0.1:{self.port}\n"
                f"http: 127.0.0.1:{self.http_port}\n"
                f"{auth}"
                f"jetstream {{\n"
                f"  store_dir: {json.dumps(self.store_dir)}\n"
                f"  max_memory_store: 256MB\n"
                f"  max_file_store: 1GB\n"
                f"}}\n"
                f"cluster {{\n"
                f"  name: {json.dumps(self.cluster.name)}\n"
                f"  listen: 127.0.0.1:{self.cluster_port}\n"
                f"  routes: [{routes}]\n"
                f"}}\n")

    def spawn(self):
        """Starts the process (returns at once; NatsCluster waits for readiness)."""
        assert not self.alive(), f"{self.name} is running already"
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        self.logf = open(self.log_path, "ab")
        self.starts += 1
        self.logf.write(f"=== start {self.starts} of {self.name} (test/integration/nats_cluster.py) ===\n".encode())
        self.logf.flush()
        self.proc = subprocess.Popen([self.cluster.binary, "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, cwd=self.dir)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, and wait for the process to be gone."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def stop(self):
        """SIGTERM (SIGKILL after STOP_TIMEOUT); returns an error message or None."""
        if self.proc is None:
            return None
        msg = None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                msg = f"{self.name} did not exit within {STOP_TIMEOUT}s of SIGTERM (killed)"
        self._close_log()
        return msg

    def _close_log(self):
        if self.logf is not None:
            try:
                self.logf.close()
            except OSError:
                pass
            self.logf = None

    def monitor(self, endpoint, timeout=1.0):
        """GET http://127.0.0.1:<monitoring port>/<endpoint> -> (status, parsed JSON or None)."""
        url = f"http://127.0.0.1:{self.http_port}/{endpoint}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            body = e.read()
            status = e.code
        try:
            return status, json.loads(body.decode("utf-8"))
        except ValueError:
            return status, None

    def log(self, tail=60):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no log file)"
        return "".join(lines[-tail:])


class NatsCluster:
    """Three (or `size`) nats-server processes routed to each other on loopback, JetStream on."""

    def __init__(self, basedir, size=3, name="meshgate-itest", user=None, password=None, token=None):
        self.binary = require_nats_server()
        self.basedir = str(basedir)
        os.makedirs(self.basedir, exist_ok=True)
        self.name = name
        self.user, self.password, self.token = user, password, token
        self.servers = []
        for i in range(size):
            self.servers.append(NatsServer(self, i))

    def urls(self):
        return [s.url for s in self.servers]

    def servers_value(self):
        """The value of `[nats] servers` naming every server of the cluster."""
        return ",".join(self.urls())

    # -- lifecycle --
    def start_all(self, timeout=START_TIMEOUT):
        self.start(*range(len(self.servers)), timeout=timeout)
        return self

    def start(self, *indexes, timeout=START_TIMEOUT):
        """Starts the servers `indexes` (again: same ports, same store) together, and waits until every
        live server is ready (one server of three alone has no JetStream quorum: start them at once)."""
        for i in indexes:
            self.servers[i].spawn()
        self.wait_ready(timeout)

    def kill(self, i):
        self.servers[i].kill()

    def stop_all(self):
        """Stops every server; returns a list of error messages (empty when all went well)."""
        errors = []
        for s in self.servers:
            msg = s.stop()
            if msg:
                errors.append(msg + "\n" + self.describe())
        return errors

    def alive_servers(self):
        return [s for s in self.servers if s.alive()]

    # -- readiness --
    def _not_ready(self, s, live_names):
        """None when server `s` is ready; otherwise what it still lacks."""
        want_routes = len(live_names) - 1
        rc = s.proc.poll()
        if rc is not None:
            raise AssertionError(f"nats-server {s.name} exited with {rc} during start-up\n{self.describe()}")
        try:
            # Not /healthz: on a server started again it says 503 until every replicated stream and
            # consumer it holds has caught up (more than 20 s here, with nats-server 2.9.10), while it
            # already serves clients and routes.
            st, body = s.monitor("varz")
            if st != 200 or (body or {}).get("server_name") != s.name:
                return f"{s.name}: /varz {st}"
            st, routez = s.monitor("routez")
            routed = {r.get("remote_id") for r in (routez or {}).get("routes", [])}
            if st != 200 or routez.get("num_routes") != want_routes or len(routed) != want_routes:
                return f"{s.name}: /routez num_routes {(routez or {}).get('num_routes')}, want {want_routes}"
            st, jsz = s.monitor("jsz")
            meta = (jsz or {}).get("meta_cluster") or {}
            if st != 200 or meta.get("leader") not in live_names:
                return f"{s.name}: /jsz no live JetStream meta leader yet ({meta!r})"
            if meta.get("leader") == s.name:
                # Only the leader's view of the meta group is whole (after all servers restarted, the
                # others say cluster_size 2). It lists its peers; a killed one may still show as
                # current for a while.
                if meta.get("cluster_size") != len(self.servers):
                    return f"{s.name}: /jsz meta cluster_size {meta.get('cluster_size')}, want {len(self.servers)}"
                current = [r for r in meta.get("replicas") or [] if r.get("current") and not r.get("offline")]
                if len(current) < want_routes:
                    return f"{s.name}: meta leader with {len(current)} current peers, want {want_routes}"
        except OSError as e:
            return f"{s.name}: monitoring port: {e!r}"
        return None

    def wait_ready(self, timeout=START_TIMEOUT):
        """Every live server answers on its monitoring port, has a route to every other live server,
        and knows a live JetStream meta leader (which sees every live server as a current peer)."""
        live = self.alive_servers()
        deadline = time.monotonic() + timeout
        last = None
        while True:
            names = {s.name for s in live}
            lacking = [m for m in (self._not_ready(s, names) for s in live) if m]
            if not lacking:
                return
            last = lacking
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise AssertionError(f"NATS cluster not ready within {timeout}s: {last}\n{self.describe()}")

    # -- reports --
    def describe(self):
        parts = []
        for s in self.servers:
            state = "running" if s.alive() else f"exited {s.proc.poll()}" if s.proc else "never started"
            parts.append(f"--- nats-server {s.name} ({state}; client {s.url}, routes :{s.cluster_port}, "
                         f"monitoring :{s.http_port}; config {s.conf_path}; log {s.log_path}) ---\n{s.log()}")
        return "\n".join(parts)

    def client_counts(self):
        """{server index: number of client connections} from each live server's /connz."""
        out = {}
        for s in self.alive_servers():
            try:
                st, body = s.monitor("connz")
            except OSError:
                continue
            if st == 200 and body is not None:
                out[s.index] = body.get("num_connections", 0)
        return out
