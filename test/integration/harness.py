"""Shared code for meshgate's integration and hostile-input suites.

Runs the real binary ($MESHGATE_BIN) on loopback with a temporary configuration and talks to it with
real clients: http.client for the control and route APIs, Debian's python3-websockets (10.4, asyncio
client) for /ws/v1 and the client WebSocket listeners, and raw sockets for TCP clients and for
hand-crafted (possibly broken) HTTP and WebSocket traffic.

Every wait has a timeout and every loop a bound, so a broken server fails a test instead of hanging it.
"""

import asyncio
import base64
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time

import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

T = 5.0              # default timeout of one wait, seconds
START_TIMEOUT = 10.0  # node start: until GET /healthz answers 200
STOP_TIMEOUT = 10.0   # node stop: SIGTERM, then SIGKILL after this long
TWITTER_EPOCH_MS = 1288834974657


def meshgate_bin():
    path = os.environ.get("MESHGATE_BIN") or os.path.join(REPO, "build", "meshgate")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(f"meshgate binary not found or not executable: {path} (set MESHGATE_BIN)")
    return path


_ports_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close), and never
    handed out before by this process: the kernel may offer a port again as soon as it is closed, and
    two listeners of one node given the same port fail its start."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


# ---------------------------------------------------------------------------------------------------
# Configuration and the node process
# ---------------------------------------------------------------------------------------------------

def default_config():
    """Sections in file order. Listener ports are filled in with free ports at start."""
    return {
        "node": {"id": 1, "name": "itest-1", "workers": 2, "advertise": "127.0.0.1", "drain_timeout": 3},
        "log": {"level": "info"},
        "api": {"bind": "127.0.0.1", "port": None},
        "route": {"bind": "127.0.0.1", "port": None},
        "limits": {},
        "queue": {},
        "listener.ws": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client"},
        "listener.tcp": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "line", "topic": "client"},
        "listener.tcp32": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "len32",
                           "topic": "client"},
    }


def merge_config(base, overrides):
    """overrides: {section: {key: value}}; a section or key set to None is removed."""
    cfg = {s: dict(kv) for s, kv in base.items()}
    for section, kv in (overrides or {}).items():
        if kv is None:
            cfg.pop(section, None)
            continue
        dst = cfg.setdefault(section, {})
        for k, v in kv.items():
            if v is None and k != "port":
                dst.pop(k, None)
            else:
                dst[k] = v
    return cfg


def render_config(cfg):
    lines = ["; written by test/integration/harness.py"]
    for section, kv in cfg.items():
        lines.append(f"[{section}]")
        for k, v in kv.items():
            if isinstance(v, bool):
                v = "on" if v else "off"
            lines.append(f"{k} = {v}")
        lines.append("")
    return "\n".join(lines)


LIVE_NODES = []


class Node:
    """One running meshgate process."""

    # Class defaults, so subclasses with their own __init__ (test/packaging/pkgnode.py) have them too.
    failed_reported = False
    sanitizer_reported = False

    def __init__(self, workdir, overrides=None, name="node"):
        self.dir = workdir
        os.makedirs(self.dir, exist_ok=True)
        cfg = merge_config(default_config(), overrides)
        # Free loopback ports for every port left open (None); an explicit 0 stays 0.
        for section in ("api", "route"):
            if section in cfg and cfg[section].get("port") is None:
                cfg[section]["port"] = free_port()
        for section, kv in cfg.items():
            if section.startswith("listener.") and kv.get("port") is None:
                kv["port"] = free_port()
        self.cfg = cfg
        self.conf_path = os.path.join(self.dir, f"{name}.conf")
        with open(self.conf_path, "w") as f:
            f.write(render_config(cfg))
        self.stderr_path = os.path.join(self.dir, f"{name}.stderr.log")
        self.proc = None
        self.stopping = False
        self.failed_reported = False
        self.sanitizer_reported = False

    # -- ports and addresses --
    @property
    def api_port(self):
        return int(self.cfg["api"]["port"])

    @property
    def route_port(self):
        return int(self.cfg["route"]["port"])

    @property
    def node_id(self):
        return int(self.cfg["node"]["id"])

    def port(self, listener):
        return int(self.cfg[f"listener.{listener}"]["port"])

    def stderr(self, tail=200):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no stderr file)"
        return "".join(lines[-tail:])

    def describe(self):
        return (f"config {self.conf_path}:\n{render_config(self.cfg)}\n"
                f"--- meshgate stderr (last lines) ---\n{self.stderr()}")

    # -- lifecycle --
    def command(self):
        """The command line that runs this node (the packaging suites run an installed binary)."""
        return [meshgate_bin(), "-c", self.conf_path]

    def start(self, env=None):
        """env: extra environment variables for the process (e.g. NOTIFY_SOCKET)."""
        self.errf = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self.errf, stderr=self.errf, cwd=self.dir,
                                     env={**os.environ, **(env or {})})
        LIVE_NODES.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                LIVE_NODES.remove(self)
                self.stopping = True
                raise AssertionError(f"meshgate exited with {rc} during start-up\n{self.describe()}")
            try:
                r = http_request(self.api_port, "GET", "/healthz", timeout=1.0)
                if r.status == 200:
                    return self
                last = f"GET /healthz -> {r.status} {r.body[:200]!r}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"meshgate did not answer GET /healthz 200 within {START_TIMEOUT}s "
                             f"(last: {last})\n{self.describe()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def crash_message(self):
        """None while the process runs (or after a clean stop); otherwise what went wrong."""
        if self.proc is None or self.stopping:
            return None
        rc = self.proc.poll()
        if rc is None:
            return None
        return f"meshgate exited unexpectedly with {describe_rc(rc)}{self.take_sanitizer_report() or ''}\n{self.describe()}"

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self in LIVE_NODES:
            LIVE_NODES.remove(self)

    def terminate(self):
        """SIGTERM; returns immediately (for drain tests). Use wait_exit() afterwards."""
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for exit after terminate(); returns an error message or None when it exited cleanly."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"meshgate did not exit within {timeout}s of SIGTERM (killed)\n{self.describe()}"
        finally:
            if self in LIVE_NODES:
                LIVE_NODES.remove(self)
            try:
                self.errf.close()
            except Exception:
                pass
        report = self.take_sanitizer_report()
        if report:
            return f"meshgate exited with {describe_rc(rc)} after SIGTERM{report}"
        if rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            return None
        return f"meshgate exited with {describe_rc(rc)} after SIGTERM\n{self.describe()}"

    def take_sanitizer_report(self):
        """The first sanitizer report the process printed (as a message to fail with), once; None when
        there is none. A test whose node printed one fails even if everything it asserted held."""
        if self.sanitizer_reported:
            return None
        report = sanitizer_report(self.stderr_path)
        if report is None:
            return None
        self.sanitizer_reported = True
        return f" and printed a sanitizer report (config {self.conf_path}, stderr {self.stderr_path}):\n{report}"

    def stop(self):
        """SIGTERM, wait (kill after 10 s); returns an error message or None."""
        if self.proc is None:
            return None
        if not self.stopping and self.proc.poll() is not None:
            msg = self.crash_message()
            self.stopping = True
            if self in LIVE_NODES:
                LIVE_NODES.remove(self)
            return msg
        self.terminate()
        return self.wait_exit()


# What ASan, LeakSanitizer and UBSan print first in a report. UBSan's line starts with the source
# position ("src/x.cpp:12:5: runtime error: ..."), which a log line (time and level first) never does,
# so client bytes the server logs cannot pass for one.
SANITIZER_MARKERS = re.compile(r"^(?:==\d+==ERROR: (?:AddressSanitizer|LeakSanitizer)|\S+:\d+:\d+: runtime error: )",
                               re.MULTILINE)


def sanitizer_report(path, max_lines=60):
    """The first sanitizer report in the file at `path` (its first `max_lines` lines), or None."""
    try:
        with open(path, "r", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    m = SANITIZER_MARKERS.search(text)
    if m is None:
        return None
    return "\n".join(text[m.start():].splitlines()[:max_lines])


def describe_rc(rc):
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


class NodeManager:
    def __init__(self, basedir):
        self.basedir = basedir
        self.nodes = []

    def start(self, overrides=None, env=None):
        """Starts a node; retries with other ports when one was taken between probing and binding."""
        for attempt in range(3):
            n = Node(os.path.join(str(self.basedir), f"node{len(self.nodes)}"), overrides)
            self.nodes.append(n)
            try:
                n.start(env)
                return n
            except AssertionError as e:
                if attempt == 2 or "in use" not in str(e).lower():
                    raise
                n.stop()
                self.nodes.remove(n)  # a failed attempt is not a node to check at teardown
        raise AssertionError("unreachable")

    def stop_all(self):
        errors = []
        for n in self.nodes:
            msg = n.stop()
            if msg and not n.failed_reported:
                errors.append(msg)
        self.nodes = []
        return errors


# ---------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------

class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers            # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError(f"HTTP {self.status}: body is not JSON ({e}): {self.body[:300]!r}")

    def __repr__(self):
        return f"HttpResult({self.status}, {self.body[:300]!r})"


def http_request(port, method, path, body=None, headers=None, timeout=T, conn=None):
    """One request with http.client; `body` may be bytes, str or a JSON-able object (a POST is sent
    as application/json unless `headers` name a Content-Type)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    # The control API takes POST bodies as application/json only (issue 18); a test that sends
    # another type says so in `headers`.
    if method == "POST" and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResult(resp.status, resp.getheaders(), data)
    finally:
        if own:
            conn.close()


def method_path(method):
    group, name = method.split(".", 1)
    return f"/v1/{group}/{name}"


def api_call(node, method, params, token=None, timeout=T):
    """POST /v1/<group>/<name> with params as the JSON body; returns (status, parsed JSON)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    r = http_request(node.api_port, "POST", method_path(method), body=params, headers=headers, timeout=timeout)
    return r.status, r.json


def api_ok(node, method, params):
    """An answered call that must succeed: returns r."""
    status, body = api_call(node, method, params)
    assert status == 200 and isinstance(body, dict) and body.get("E") is None, \
        f"{method} {params!r}: expected HTTP 200 with E null, got {status} {body!r}"
    return body["r"]


def api_err(node, method, params, code):
    """An answered call that must fail with E.c == code (HTTP 400 for 101, 200 otherwise)."""
    status, body = api_call(node, method, params)
    want_status = 400 if code == 101 else 200
    assert isinstance(body, dict) and isinstance(body.get("E"), dict), \
        f"{method} {params!r}: expected an error object E, got {status} {body!r}"
    assert body["E"].get("c") == code, f"{method} {params!r}: expected E.c={code}, got {status} {body!r}"
    assert isinstance(body["E"].get("m"), str) and body["E"]["m"], \
        f"{method} {params!r}: error without a message: {body!r}"
    assert status == want_status, f"{method} {params!r}: expected HTTP {want_status}, got {status} {body!r}"
    return body["E"]


async def aapi_call(node, method, params, token=None):
    return await asyncio.to_thread(api_call, node, method, params, token)


async def aapi_ok(node, method, params):
    return await asyncio.to_thread(api_ok, node, method, params)


async def aapi_err(node, method, params, code):
    return await asyncio.to_thread(api_err, node, method, params, code)


def metrics(node):
    r = http_request(node.api_port, "GET", "/metrics")
    assert r.status == 200, f"GET /metrics -> {r.status} {r.body[:200]!r}"
    return r.body.decode("utf-8", "replace")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> list of (name, {labels}, float). Raises on a malformed sample line."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if not m:
            raise AssertionError(f"malformed Prometheus sample line: {line!r}")
        labels = dict(_LABEL.findall(m.group(3) or ""))
        v = m.group(4)
        value = float("inf") if v == "+Inf" else float("-inf") if v == "-Inf" else float(v)
        out.append((m.group(1), labels, value))
    return out


def metric_value(node, name, **labels):
    """Sum of the samples named `name` whose labels include `labels`; None when there is none."""
    total = None
    for n, lab, v in parse_metrics(metrics(node)):
        if n == name and all(lab.get(k) == str(val) for k, val in labels.items()):
            total = (total or 0) + v
    return total


def wait_metric(node, name, pred, timeout=T, **labels):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = metric_value(node, name, **labels)
        if v is not None and pred(v):
            return v
        time.sleep(0.1)
    raise AssertionError(f"metric {name}{labels} did not reach the expected value within {timeout}s "
                         f"(last: {v})")


# ---------------------------------------------------------------------------------------------------
# Raw sockets: HTTP requests crafted by hand
# ---------------------------------------------------------------------------------------------------

def connect_raw(port, timeout=T, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def rst_close(sock):
    """Close with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def sendall_quiet(sock, data):
    """sendall that tolerates the server closing first (it may answer and close before reading all)."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        return False


class RawHttpResponse(HttpResult):
    pass


def read_http_response(sock, timeout=T, buf=b""):
    """Reads one HTTP/1.x response from `sock`. Returns (RawHttpResponse or None if the connection closed
    before a complete head, leftover bytes)."""
    deadline = time.monotonic() + timeout
    data = buf
    while b"\r\n\r\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no complete HTTP response head within {timeout}s (got {data[:300]!r})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no complete HTTP response head within {timeout}s (got {data[:300]!r})")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return None, data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert m, f"bad status line {lines[0]!r}"
    status = int(m.group(1))
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.append((k.strip(), v.strip()))
    resp = RawHttpResponse(status, headers, b"")

    def need(n):
        nonlocal rest
        while len(rest) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("HTTP response body incomplete within timeout")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"connection closed inside the response body (have {rest[:200]!r})")
            rest += chunk

    te = (resp.header("Transfer-Encoding") or "").lower()
    cl = resp.header("Content-Length")
    if "chunked" in te:
        body = b""
        for _ in range(100000):
            while b"\r\n" not in rest:
                need(len(rest) + 1)
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            need(size + 2)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                break
        resp.body = body
    elif cl is not None:
        n = int(cl)
        need(n)
        resp.body, rest = rest[:n], rest[n:]
    else:
        # Body until close.
        for _ in range(100000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            rest += chunk
        resp.body, rest = rest, b""
    return resp, rest


def raw_http(port, data, timeout=T):
    """Sends `data` on a fresh connection and reads one response (None when closed without one)."""
    s = connect_raw(port, timeout)
    try:
        sendall_quiet(s, data)
        resp, _ = read_http_response(s, timeout)
        return resp
    finally:
        s.close()


def wait_closed_by_peer(sock, timeout=T):
    """True when the peer closes (EOF or RST) within timeout, discarding whatever it sends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True
    return False


# ---------------------------------------------------------------------------------------------------
# WebSocket frames crafted by hand
# ---------------------------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, key=None, length=None):
    """A WebSocket frame; `length` overrides the encoded payload length (for lying headers)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = key if key is not None else os.urandom(4)
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return hdr + key + masked
    return hdr + payload


def close_payload(code=None, reason=""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def ws_upgrade_request(port, path="/", extra=None, key=None):
    """`path` is text, or bytes sent as they are (a target that is not UTF-8)."""
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += list(extra or [])
    target = path if isinstance(path, bytes) else path.encode()
    return b"GET " + target + b" HTTP/1.1\r\n" + ("\r\n".join(lines) + "\r\n\r\n").encode()


def tls13_client_ctx():
    """A TLS 1.3 client context that takes any server certificate (tests compare it themselves)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def wss_handshake(port, ctx, session=None):
    """A wss connection (client context `ctx`, an ssl.SSLContext) up to its 101, then closed (TLS 1.3
    tickets arrive after the handshake, with the first records the server sends). Returns (the server
    certificate's DER, the session for a next connection, whether this one resumed)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=T)
    s = ctx.wrap_socket(raw, session=session)
    try:
        s.sendall(ws_upgrade_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, "closed before the 101"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head[:100]
        return s.getpeercert(binary_form=True), s.session, s.session_reused
    finally:
        s.close()


class RawWs:
    """A WebSocket client over asyncio streams that sends whatever bytes it is told to."""

    def __init__(self, reader, writer, response, leftover):
        self.reader = reader
        self.writer = writer
        self.response = response
        self.buf = leftover

    @classmethod
    async def connect(cls, port, path="/", extra=None, timeout=T):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(ws_upgrade_request(port, path, extra))
        await writer.drain()
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no upgrade response within {timeout}s: {data[:300]!r}")
            chunk = await asyncio.wait_for(reader.read(65536), remaining)
            if not chunk:
                raise AssertionError(f"connection closed during the upgrade: {data[:300]!r}")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        assert status_line.startswith("HTTP/1.1 101"), f"upgrade refused: {head[:500]!r}"
        return cls(reader, writer, head.decode("latin-1"), rest)

    @property
    def local_port(self):
        return self.writer.get_extra_info("sockname")[1]

    async def send_raw(self, data):
        self.writer.write(data)
        try:
            await asyncio.wait_for(self.writer.drain(), T)
        except (ConnectionResetError, BrokenPipeError):
            pass

    async def send(self, opcode, payload=b"", **kw):
        await self.send_raw(ws_frame(opcode, payload, **kw))

    async def _need(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError()
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                raise EOFError()
            self.buf += chunk

    async def recv_frame(self, timeout=T):
        """(fin, opcode, payload); raises EOFError on close without a frame, asyncio.TimeoutError."""
        deadline = time.monotonic() + timeout
        await self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            await self._need(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            await self._need(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        assert not (b1 & 0x80), "server frames must not be masked"
        await self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def recv_until(self, opcodes, timeout=T, limit=10000):
        """Next frame with an opcode in `opcodes`, skipping others."""
        deadline = time.monotonic() + timeout
        for _ in range(limit):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            fin, op, payload = await self.recv_frame(remaining)
            if op in opcodes:
                return fin, op, payload
        raise asyncio.TimeoutError()

    async def expect_close(self, timeout=T):
        """Reads until the server's close frame. Returns (code, reason); code None for an empty close
        payload. Raises AssertionError when the connection ends without a close frame or in time."""
        try:
            _, _, payload = await self.recv_until({OP_CLOSE}, timeout)
        except EOFError:
            raise AssertionError("connection closed without a WebSocket close frame")
        except asyncio.TimeoutError:
            raise AssertionError(f"no close frame within {timeout}s")
        if len(payload) < 2:
            return None, ""
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")

    async def expect_eof(self, timeout=T):
        """True when the server closes the TCP connection within timeout (frames are discarded)."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            except asyncio.TimeoutError:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False

    def abort(self):
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.writer.close()

    async def close(self):
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------
# WebSocket clients (python3-websockets)
# ---------------------------------------------------------------------------------------------------

async def ws_connect(port, path="/", headers=None, timeout=T, **kw):
    """A websockets client; no keepalive pings of its own, no size limit."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("close_timeout", 2)
    return await asyncio.wait_for(
        websockets.connect(f"ws://127.0.0.1:{port}{path}", extra_headers=headers, open_timeout=timeout, **kw),
        timeout + 1)


async def ws_recv(ws, timeout=T):
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"websocket client: nothing received within {timeout}s")


async def ws_wait_closed(ws, timeout=T):
    """Waits for the server to close; returns (code, reason) as seen by the client."""
    try:
        await asyncio.wait_for(ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"websocket client: connection not closed by the server within {timeout}s")
    return ws.close_code, ws.close_reason


async def ws_drain_until_closed(ws, timeout=T, limit=100000):
    """Reads (and discards) messages until the connection closes; returns (code, reason)."""
    deadline = time.monotonic() + timeout
    for _ in range(limit):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            await asyncio.wait_for(ws.recv(), remaining)
        except websockets.exceptions.ConnectionClosed:
            return ws.close_code, ws.close_reason
        except asyncio.TimeoutError:
            break
    raise AssertionError(f"websocket client: connection not closed by the server within {timeout}s")


class ApiWs:
    """A /ws/v1 client: requests {"m","p","i"} matched to responses by "i"; queue events collected apart."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = {}
        self.events = []
        self.other = asyncio.Queue()
        self.closed_exc = None
        self._new_event = asyncio.Event()
        self._next_i = 1000
        self._task = asyncio.ensure_future(self._reader())

    @classmethod
    async def open(cls, node, path="/ws/v1", headers=None):
        ws = await ws_connect(node.api_port, path, headers)
        return cls(ws)

    async def _reader(self):
        try:
            async for msg in self.ws:
                obj = msg
                if isinstance(msg, str):
                    try:
                        obj = json.loads(msg)
                    except ValueError:
                        obj = msg
                if isinstance(obj, dict) and obj.get("e") == "queue.pop":
                    self.events.append(obj)
                    self._new_event.set()
                    continue
                if isinstance(obj, dict) and "i" in obj and obj["i"] is not None:
                    key = json.dumps(obj["i"], sort_keys=True)
                    fut = self.pending.pop(key, None)
                    if fut is not None and not fut.done():
                        fut.set_result(obj)
                        continue
                self.other.put_nowait(obj)
        except websockets.exceptions.ConnectionClosed as e:
            self.closed_exc = e
        except Exception as e:  # noqa: BLE001 - surfaced through the pending futures
            self.closed_exc = e
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"/ws/v1 closed before the response: {self.closed_exc!r}"))
            self.pending.clear()
            self._new_event.set()

    def next_id(self):
        self._next_i += 1
        return self._next_i

    async def call(self, m, p=None, i=None, timeout=T):
        """Sends {"m","p","i"} and returns the whole response object with the same "i"."""
        if i is None:
            i = self.next_id()
        env = {"m": m, "p": {} if p is None else p, "i": i}
        return await self.request(env, i, timeout)

    async def request(self, envelope, i, timeout=T):
        return await self.request_text(json.dumps(envelope), i, timeout)

    async def request_text(self, text, i, timeout=T):
        """Sends `text` (str, or bytes sent as a text frame as they are) and returns the response with
        this "i"; for requests whose exact JSON text matters (number literals, spacing)."""
        envelope = text
        key = json.dumps(i, sort_keys=True)
        fut = asyncio.get_running_loop().create_future()
        self.pending[key] = fut
        await self.ws.send(text.decode() if isinstance(text, bytes) else text)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.pending.pop(key, None)
            unmatched = []
            while not self.other.empty():
                unmatched.append(self.other.get_nowait())
            for u in unmatched:
                self.other.put_nowait(u)
            raise AssertionError(f"/ws/v1: no response with i={i!r} to {envelope!r} within {timeout}s; "
                                 f"unmatched messages: {unmatched[:5]!r}")

    async def ok(self, m, p=None):
        resp = await self.call(m, p)
        assert resp.get("E") is None, f"{m} {p!r}: expected success, got {resp!r}"
        return resp.get("r")

    async def err(self, m, p, code):
        resp = await self.call(m, p)
        assert isinstance(resp.get("E"), dict) and resp["E"].get("c") == code, \
            f"{m} {p!r}: expected E.c={code}, got {resp!r}"
        assert isinstance(resp["E"].get("m"), str) and resp["E"]["m"], f"error without a message: {resp!r}"
        return resp["E"]

    async def pop(self, topics=("client",), ack=None):
        p = {"t": list(topics)}
        if ack is not None:
            p["ack"] = ack
        r = await self.ok("queue.pop", p)
        assert r == {"s": True}, f"queue.pop: unexpected result {r!r}"
        return r

    async def send_text(self, text):
        await self.ws.send(text)

    async def next_other(self, timeout=T):
        try:
            return await asyncio.wait_for(self.other.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"/ws/v1: no unsolicited message within {timeout}s")

    async def wait_event(self, pred, timeout=T, what="a matching queue event"):
        """Removes and returns the first collected event for which pred(event) is true."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            for idx, ev in enumerate(self.events):
                try:
                    hit = pred(ev)
                except (KeyError, TypeError, AttributeError):
                    hit = False
                if hit:
                    del self.events[idx]
                    return ev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._new_event.clear()
            if self.closed_exc is not None:
                break
            try:
                await asyncio.wait_for(self._new_event.wait(), remaining)
            except asyncio.TimeoutError:
                break
        raise AssertionError(f"/ws/v1: {what} did not arrive within {timeout}s"
                             f"{' (connection closed: %r)' % (self.closed_exc,) if self.closed_exc else ''}; "
                             f"events held: {self.events[-10:]!r}")

    async def no_event(self, pred, duration):
        """Asserts that no event with pred(event) arrives (or is held) during `duration` seconds."""
        await asyncio.sleep(duration)
        hits = []
        for ev in self.events:
            try:
                if pred(ev):
                    hits.append(ev)
            except (KeyError, TypeError, AttributeError):
                pass
        assert not hits, f"unexpected queue events: {hits!r}"

    def take_events(self, pred):
        out = []
        keep = []
        for ev in self.events:
            try:
                hit = pred(ev)
            except (KeyError, TypeError, AttributeError):
                hit = False
            (out if hit else keep).append(ev)
        self.events[:] = keep
        return out

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass
        self._task.cancel()
        try:
            await asyncio.wait_for(self._task, 1)
        except BaseException:  # noqa: BLE001
            pass


# -- event predicates --

def ev_client(cid):
    return lambda e: e["p"]["c"] == cid


def ev_open_from(local_port, listener=None, cons=None):
    """The open event of the connection from 127.0.0.1:local_port. Ports are reused, and a consumer
    also receives events buffered before it popped: with `listener` the event must come from that
    listener, and with `cons` an open event whose connection already closed (its close event is
    held by `cons`) is someone else's, from earlier."""
    addr = f"127.0.0.1:{local_port}"

    def pred(e):
        d = e["p"]["d"]
        if d.get("event") != "open" or d.get("remote_addr") != addr:
            return False
        if listener is not None and d.get("listener") != listener:
            return False
        if cons is not None and any(o["p"]["c"] == e["p"]["c"] and o["p"]["d"].get("event") == "close"
                                    for o in cons.events):
            return False
        return True
    return pred


def ev_close_of(cid):
    return lambda e: e["p"]["c"] == cid and e["p"]["d"].get("event") == "close"


def ev_frame_of(cid, data=None):
    def pred(e):
        if e["p"]["c"] != cid or "frame" not in e["p"]["d"]:
            return False
        return data is None or e["p"]["d"]["frame"].get("data") == data
    return pred


def frame_of(event):
    return event["p"]["d"]["frame"]


def b64(data):
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------------------------------
# TCP clients (line and len32 framing)
# ---------------------------------------------------------------------------------------------------

class TcpClient:
    def __init__(self, reader, writer, framing):
        self.reader = reader
        self.writer = writer
        self.framing = framing

    @classmethod
    async def connect(cls, port, framing="line", timeout=T):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        return cls(reader, writer, framing)

    @property
    def local_port(self):
        return self.writer.get_extra_info("sockname")[1]

    async def send_raw(self, data):
        self.writer.write(data)
        try:
            await asyncio.wait_for(self.writer.drain(), T)
        except (ConnectionResetError, BrokenPipeError):
            pass

    async def send(self, msg):
        if isinstance(msg, str):
            msg = msg.encode("utf-8")
        if self.framing == "line":
            await self.send_raw(msg + b"\n")
        else:
            await self.send_raw(struct.pack("!I", len(msg)) + msg)

    async def recv(self, timeout=T):
        """One framed message from the server (bytes, without the framing)."""
        try:
            if self.framing == "line":
                line = await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout)
                return line[:-1]
            hdr = await asyncio.wait_for(self.reader.readexactly(4), timeout)
            n = struct.unpack("!I", hdr)[0]
            return await asyncio.wait_for(self.reader.readexactly(n), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"tcp client: no message within {timeout}s")
        except asyncio.IncompleteReadError as e:
            raise AssertionError(f"tcp client: connection closed (partial {e.partial[:100]!r})")

    async def expect_eof(self, timeout=T):
        """True when the server closes the connection within timeout (data before the close is dropped)."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            except asyncio.TimeoutError:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False

    async def close(self):
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------
# A test session: consumers and clients that are closed at the end
# ---------------------------------------------------------------------------------------------------

class Session:
    """async with Session(node) as s: consumers and clients opened through s are closed at exit."""

    def __init__(self, node):
        self.node = node
        self.closers = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        for c in reversed(self.closers):
            try:
                await asyncio.wait_for(c(), 3)
            except BaseException:  # noqa: BLE001
                pass
        self.closers = []

    async def api(self, headers=None, path="/ws/v1"):
        a = await ApiWs.open(self.node, path, headers)
        self.closers.append(a.close)
        return a

    async def consumer(self, topics=("client",), ack=None):
        a = await self.api()
        await a.pop(topics, ack)
        return a

    async def ws_client(self, cons, listener="ws", path="/", headers=None, **kw):
        """A websockets client on a client listener; returns (ws, client id, open event)."""
        ws = await ws_connect(self.node.port(listener), path, headers, **kw)

        async def _close():
            await ws.close()
        self.closers.append(_close)
        port = ws.local_address[1]
        ev = await cons.wait_event(ev_open_from(port, listener, cons), what=f"open event of ws client :{port}")
        return ws, ev["p"]["c"], ev

    async def raw_ws(self, cons=None, listener="ws", path="/", extra=None):
        """A RawWs client; with `cons`, also waits for its open event and returns (raw, cid, event)."""
        raw = await RawWs.connect(self.node.port(listener), path, extra)
        self.closers.append(raw.close)
        if cons is None:
            return raw, None, None
        ev = await cons.wait_event(ev_open_from(raw.local_port, listener, cons),
                                   what=f"open event of raw ws :{raw.local_port}")
        return raw, ev["p"]["c"], ev

    async def tcp_client(self, cons=None, listener="tcp"):
        framing = self.node.cfg[f"listener.{listener}"].get("framing", "line")
        c = await TcpClient.connect(self.node.port(listener), framing)
        self.closers.append(c.close)
        if cons is None:
            return c, None, None
        ev = await cons.wait_event(ev_open_from(c.local_port, listener, cons),
                                   what=f"open event of tcp client :{c.local_port}")
        return c, ev["p"]["c"], ev


async def assert_node_healthy(node):
    """/healthz answers 200, and a fresh WebSocket client still receives a broadcast."""
    r = await asyncio.to_thread(http_request, node.api_port, "GET", "/healthz")
    assert r.status == 200, f"GET /healthz -> {r.status}"
    ws = await ws_connect(node.port("ws"), "/health")
    try:
        prefix = f"health-{os.urandom(4).hex()}-"
        # The new connection is registered asynchronously: broadcast until it arrives (bounded).
        got = None
        for attempt in range(10):
            await aapi_ok(node, "mesh.broadcast", {"d": f"{prefix}{attempt}"})
            try:
                got = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            break
        assert isinstance(got, str) and got.startswith(prefix), \
            f"a new ws client did not receive a broadcast (got {got!r})"
    finally:
        await ws.close()


def fake_client_id(node_id=1):
    """A syntactically valid client id of `node_id` that no connection has (sequence 4095, now)."""
    ms = int(time.time() * 1000) - TWITTER_EPOCH_MS
    return str((ms << 22) | (node_id << 12) | 4095)


def split_client_id(cid):
    """(unix ms, node id, sequence) of a client id string."""
    v = int(cid)
    return (v >> 22) + TWITTER_EPOCH_MS, (v >> 12) & 0x3FF, v & 0xFFF
