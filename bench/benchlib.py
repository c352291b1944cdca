"""Helpers shared by the scripts in bench/ (Python 3 standard library only): ports, configuration,
starting a node, reading a process's CPU and memory from /proc, a raw WebSocket client side
(upgrade, masked frames, a frame reader), plain HTTP/1.1 keep-alive requests, connect tokens, and
bench/ws_bench in --control mode."""
import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


_USED_PORTS = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out
    before (several nodes started at once must not get the same one)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _USED_PORTS:
            _USED_PORTS.add(port)
            return port
    raise SystemExit("no free port")


# ------------------------------------------------------------------------------------------ /proc

def cpu_times(pids):
    """(user, system) seconds of these processes (each with all its threads), from /proc/PID/stat;
    a process that is gone counts 0."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(*pids):
    """utime + stime of these processes, in seconds."""
    u, s = cpu_times(pids)
    return u + s


def proc_io(pid, key):
    """One field of /proc/PID/io (all the process's threads); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def io_write_bytes(pid):
    """write_bytes of /proc/PID/io: the bytes this process (all its threads) caused to be written to
    storage (counted when it dirties the page cache); 0 when unreadable."""
    return proc_io(pid, "write_bytes")


class SyncTrace:
    """The fdatasync calls of one process while it runs: `perf record` of the syscall tracepoints
    syscalls:sys_{enter,exit}_fdatasync (counted in the kernel; no ptrace stop, so the traced
    threads run as without it). stop() returns {syncs, sync_ms p50/p99/max (one call's duration),
    interval_ms p50/p99/max (from one call's start to the next's, per thread)}. Needs perf and root
    (or perf_event_paranoid <= -1); available() says whether perf is there."""

    @staticmethod
    def available():
        import shutil
        return shutil.which("perf") is not None

    def __init__(self, pid, path):
        self.path = path
        self.proc = subprocess.Popen(["perf", "record", "-q", "-o", path, "-p", str(pid), "-e",
                                      "syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached (perf says nothing when it is)

    def stop(self):
        import signal
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        out = subprocess.run(["perf", "script", "-i", self.path, "-F", "tid,time,event"],
                             capture_output=True, text=True).stdout
        enter, durations, intervals = {}, [], []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            tid, t = parts[0], float(parts[1].rstrip(":"))
            if "sys_enter_fdatasync" in line:
                if tid in enter:
                    intervals.append((t - enter[tid][0]) * 1e3)
                enter[tid] = (t, True)
            elif "sys_exit_fdatasync" in line and tid in enter and enter[tid][1]:
                durations.append((t - enter[tid][0]) * 1e3)
                enter[tid] = (enter[tid][0], False)

        def pct(v, p):
            v = sorted(v)
            return round(v[min(len(v) - 1, int(p * (len(v) - 1)))], 3) if v else None

        try:
            os.unlink(self.path)
        except OSError:
            pass
        return {"syncs": len(durations), "sync_ms_p50": pct(durations, 0.5), "sync_ms_p99": pct(durations, 0.99),
                "sync_ms_max": pct(durations, 1), "interval_ms_p50": pct(intervals, 0.5),
                "interval_ms_p99": pct(intervals, 0.99), "interval_ms_max": pct(intervals, 1)}


def proc_kb(pid, key):
    """A `kB` field of /proc/PID/status (VmRSS, RssAnon, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def per_conn_runs(runs, one_run, label):
    """Runs one_run() `runs` times, printing each result (a dict with bytes_per_conn_vmrss and
    bytes_per_conn_anon) as a JSON line, then one summary line: min/median/max of VmRSS per connection
    and the median of RssAnon. Returns the results."""
    results = []
    for _ in range(runs):
        r = one_run()
        print(json.dumps(r), flush=True)
        results.append(r)
    per = sorted(r["bytes_per_conn_vmrss"] for r in results)
    anon = sorted(r["bytes_per_conn_anon"] for r in results)
    print(f"{label}: bytes per idle connection, VmRSS min/median/max "
          f"{per[0]}/{statistics.median(per)}/{per[-1]}, RssAnon median {statistics.median(anon)}", flush=True)
    return results


def descendants(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(descendants(k))
    return out


def find_process(top, exe, timeout=10):
    """The process running `exe`: `top` itself, or (under a wrapper such as heaptrack) a descendant."""
    name = os.path.basename(exe)[:15]
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in [top] + descendants(top):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == name:
                        return pid
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} process not found under {top}")


# ------------------------------------------------------------------------------------------ nodes

def config_head(name, api_port, api_extra=""):
    """The [node], [log], [api] and [route] sections of a one-node benchmark configuration."""
    return f"""; written by bench/{name}.py
[node]
id = 1
name = {name}
workers = 2
drain_timeout = 5
[log]
level = warn
[api]
bind = 127.0.0.1
port = {api_port}
{api_extra}[route]
port = 0
"""


def edit_config(text, set_keys, drop_sections=()):
    """The INI text `text` with `set_keys` {section: {key: value}} applied (a key that is there gets
    the value, one that is not is added at the end of its section, a section that is not there is
    added at the end) and the sections in drop_sections left out. Comments are kept."""
    out, section, seen = [], None, {}

    def close_section():
        if section is not None and section not in drop_sections:
            for k, v in set_keys.get(section, {}).items():
                if k not in seen.get(section, set()):
                    out.append(f"{k} = {v}")

    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            close_section()
            section = s[1:-1].strip()
            seen.setdefault(section, set())
        if section in drop_sections:
            continue
        if section is not None and "=" in s and not s.startswith((";", "#")):
            key = s.split("=", 1)[0].strip()
            if key in set_keys.get(section, {}):
                seen[section].add(key)
                line = f"{key} = {set_keys[section][key]}"
        out.append(line)
    close_section()
    for sec, keys in set_keys.items():
        if sec not in seen and sec not in drop_sections:
            out.append(f"[{sec}]")
            out.extend(f"{k} = {v}" for k, v in keys.items())
    return "\n".join(out) + "\n"


def wait_healthz(api_port, timeout=10, proc=None):
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=1).read()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"meshgate exited with {proc.returncode} before /healthz answered")
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def start_node(server, conf_path, conf_text, api_port, log_path=None, timeout=10):
    """Writes conf_text to conf_path, starts `server -c conf_path` (stderr to log_path) and waits
    for /healthz; returns the Popen."""
    with open(conf_path, "w") as f:
        f.write(conf_text)
    err = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([server, "-c", conf_path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err)
    try:
        wait_healthz(api_port, timeout, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc


def start_nginx(prefix, conf_text, port, timeout=15):
    """Writes conf_text to PREFIX/nginx.conf and runs `nginx -p PREFIX -c ...` in the foreground
    (the text says `daemon off; master_process on;` and its pid file, error log and temp paths under
    PREFIX); returns the Popen once its workers are up and `port` accepts a TCP connection."""
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(prefix, "logs", "stderr.log"), "ab"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}: see {prefix}/logs")
        if len(descendants(proc.pid)) >= 1:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return proc
            except OSError:
                pass
        time.sleep(0.05)
    stop_nginx(proc)
    raise RuntimeError("nginx did not start")


def stop_nginx(proc):
    """Graceful (SIGQUIT: workers finish, then the master exits); SIGTERM, then kill, if it lingers."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            stop_process(proc)


def stop_server(proc, pid, timeout=30):
    """SIGTERM to the server `pid` (which may run under a wrapper `proc` started, e.g. --prefix),
    then waits for `proc`; killed when it does not end within `timeout` s."""
    os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def stop_process(proc, timeout=15):
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def connect_token(secret, exp_in=3600, **claims):
    """An HS256 JWT (docs/security.md, connect tokens) with exp = now + exp_in and these claims."""
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(dict(claims, exp=int(time.time()) + exp_in), separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


# ------------------------------------------------------------------------------------------ WebSocket

def ws_upgrade(sock, port, path="/"):
    """Sends a WebSocket upgrade request on `sock` and reads the 101 (checking the accept key);
    returns the bytes after it."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the upgrade")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    if base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()) not in head:
        raise ConnectionError("bad Sec-WebSocket-Accept")
    return rest


def ws_connect(port, path="/", timeout=30):
    """A connected, upgraded WebSocket client socket (TCP_NODELAY) and the bytes read after the 101."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, ws_upgrade(s, port, path)


def ws_frame(payload, opcode=1):
    """A masked client frame (payload: bytes or str)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    mask = os.urandom(4)
    reps = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(reps, "big")).to_bytes(n, "big") if n else b""
    return head + mask + body


def parse_frames(buf, pos=0):
    """Yields (opcode, fin, payload start, payload end) for each whole server frame in buf from pos;
    the caller drops what it has consumed (the end of the last frame yielded)."""
    while len(buf) - pos >= 2:
        n = buf[pos + 1] & 0x7F
        h = 2
        if n == 126:
            if len(buf) - pos < 4:
                return
            n = struct.unpack_from("!H", buf, pos + 2)[0]
            h = 4
        elif n == 127:
            if len(buf) - pos < 10:
                return
            n = struct.unpack_from("!Q", buf, pos + 2)[0]
            h = 10
        if len(buf) - pos < h + n:
            return
        yield buf[pos] & 0x0F, buf[pos] & 0x80, pos + h, pos + h + n
        pos += h + n


class FrameReader:
    """Reads a WebSocket client socket in a thread; on_frame(opcode, payload bytes) for every frame
    (no callback: frames are only counted). `count`, `closed` and wait(n, timeout) under `cond`."""

    def __init__(self, sock, rest=b"", on_frame=None):
        self.sock, self.buf, self.count, self.closed = sock, bytearray(rest), 0, False
        self.on_frame = on_frame
        self.cond = threading.Condition()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        try:
            while True:
                end = 0
                for op, _fin, a, b in parse_frames(self.buf):
                    if self.on_frame:
                        self.on_frame(op, bytes(self.buf[a:b]))
                    end = b
                    with self.cond:
                        self.count += 1
                        self.cond.notify_all()
                del self.buf[:end]
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                self.buf += chunk
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, n, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.count >= n, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------ HTTP/1.1

def http_request(method, path, body=b"", ctype="application/json", host="127.0.0.1"):
    """The bytes of one keep-alive HTTP/1.1 request."""
    if isinstance(body, str):
        body = body.encode()
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class HttpConn:
    """One keep-alive HTTP/1.1 connection: send request bytes (one or many pipelined), read answers
    (Content-Length or chunked bodies)."""

    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("HTTP connection closed")
        self.buf += chunk

    def _line(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._fill()

    def read_answer(self):
        """(status, body bytes) of the next answer."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        status = int(head[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                i = self._line(0)
                size = int(bytes(self.buf[:i]).split(b";")[0], 16)
                while len(self.buf) < i + 2 + size + 2:
                    self._fill()
                body += self.buf[i + 2:i + 2 + size]
                del self.buf[:i + 2 + size + 2]
                if size == 0:
                    return status, bytes(body)
        n = int(fields.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body = bytes(self.buf[:n])
        del self.buf[:n]
        return status, body

    def call(self, request_bytes):
        self.sock.sendall(request_bytes)
        return self.read_answer()

    def pipeline(self, requests):
        """Writes all the requests at once, then reads as many answers."""
        self.sock.sendall(b"".join(requests))
        return [self.read_answer() for _ in requests]

    def close(self):
        self.sock.close()


# ------------------------------------------------------------------------------------------ ws_bench

def parse_kv(line):
    out = {"tag": line.split()[0]}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


class WsBench:
    """bench/ws_bench in --control mode (see its header for the commands)."""

    def __init__(self, exe, port, n, conc, path="/", src_ips=1):
        self.p = subprocess.Popen([exe, "-p", str(port), "-n", str(n), "-c", str(conc), "-P", path,
                                   "-s", str(src_ips), "--control"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"ws_bench: no {prefix} line within {timeout} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"ws_bench exited (rc {self.p.wait()}) while waiting for {prefix}")
            if line.startswith(prefix):
                return parse_kv(line)
            log("ws_bench: " + line)

    def cmd(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def reset(self):
        self.cmd("reset")
        self.expect("OK reset", 10)

    def wait(self, count, timeout):
        self.cmd(f"wait {count} {int(timeout * 1000)}")
        return self.expect("WAIT", timeout + 10)

    def stop(self):
        try:
            self.cmd("close")
            r = self.expect("CLOSED", 15)
        except Exception as e:  # noqa: BLE001 - report and kill below
            log(f"ws_bench close failed: {e}")
            r = None
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return r
