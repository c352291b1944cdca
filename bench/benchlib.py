"""Helpers shared by bench/idle_mem.py and bench/queue_rate.py (standard library only)."""
import base64
import os
import socket
import time
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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


def wait_healthz(api_port, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=1).read()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def ws_upgrade(sock, port, path="/"):
    """Sends a WebSocket upgrade request on `sock` and reads the 101; returns the bytes after it."""
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
    return rest
