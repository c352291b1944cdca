#!/usr/bin/python3
"""meshgate benchmark driver (Python 3 standard library only).

For each run it writes a temporary configuration (127.0.0.1 only, free ports, [node] workers = 2,
a ws listener with idle_timeout = 0 and ping_interval = 0), starts meshgate, and measures with
bench/ws_bench (the C load generator, driven over its stdin/stdout control protocol):

  1. VmRSS of the server at rest, then after N WebSocket connections are open and idle
     → (after - before) / N bytes per idle connection.
  2. The channel path: the client ids come from the `open` queue events (queue.pop on topic
     "client" over /ws/v1); every id is subscribed to one channel with conn.call subscribe
     (pipelined over /ws/v1); VmRSS again (subscription cost).
  3. Fan-out: P publishes of a ~100-byte text message, pipelined over one /ws/v1 connection, to the
     channel (mesh.publish) and then to everyone (mesh.broadcast). ws_bench timestamps every
     message it receives (CLOCK_MONOTONIC, the clock of time.monotonic_ns()), so
     deliveries/s = N * P / (last message received - first publish written). The API-side rate is
     P / (last publish answer - first publish written).

Everything stays on 127.0.0.1, every wait is bounded, and meshgate is stopped at the end of each
run (SIGTERM, then SIGKILL after 15 s). Results: one JSON object per run in
bench/results/<stamp>/results.jsonl (bench/results is git-ignored), a summary on stdout.

Example (the figures in docs/benchmarks.md):
  make -C bench
  meson setup /tmp/mg-release --buildtype=release -Dtests=false && ninja -C /tmp/mg-release meshgate
  bench/run_bench.py --server /tmp/mg-release/meshgate --conns 10000 --publishes 200 --runs 3
"""

import argparse
import json
import os
import re
import resource
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import HERE, ROOT, WsBench, descendants, free_port, log, parse_frames, ws_connect, ws_frame


def proc_status(pid):
    """VmRSS, RssAnon, RssFile in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM", "Threads"):
                parts = v.split()
                out[k] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def sockstat_tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                m = re.search(r"\bmem (\d+)", line)
                return int(m.group(1)) if m else None
    return None


def server_pid(top):
    """The process that is meshgate: `top`, or (with a wrapper such as heaptrack) a descendant."""
    for p in [top] + descendants(top):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            if os.path.basename(argv0).startswith(b"meshgate") or b"valgrind" in argv0 or b"memcheck" in argv0:
                return p
        except OSError:
            pass
    return top


class WsApi:
    """A minimal /ws/v1 client: masked text frames out, a reader thread for responses and events."""

    def __init__(self, host, port, path="/ws/v1"):
        self.sock, rest = ws_connect(port, path, timeout=10)
        self.sock.settimeout(None)
        self.buf = bytearray(rest)
        self.send_lock = threading.Lock()
        self.cv = threading.Condition()
        self.responses = {}       # id -> (decoded object, monotonic ns)
        self.open_ids = []        # client ids from `open` events
        self.close_events = []
        self.other_events = 0
        self.closed = False
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    frame = staticmethod(ws_frame)

    def send_raw(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def request_bytes(self, method, params, ident):
        return self.frame(json.dumps({"m": method, "p": params, "i": ident}, separators=(",", ":")).encode())

    def call(self, method, params, ident, timeout=30):
        self.send_raw(self.request_bytes(method, params, ident))
        self.wait_responses([ident], timeout)
        return self.responses.pop(ident)[0]

    def wait_responses(self, ids, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not all(i in self.responses for i in ids):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    missing = sum(1 for i in ids if i not in self.responses)
                    raise TimeoutError(f"{missing} of {len(ids)} API answers missing")
                self.cv.wait(min(left, 0.5))

    def wait_open_events(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while len(self.open_ids) < n and time.monotonic() < deadline and not self.closed:
                self.cv.wait(0.2)
            return len(self.open_ids)

    def _dispatch(self, text, now):
        obj = json.loads(text)
        if obj.get("e") == "queue.pop":
            d = obj["p"].get("d", {})
            with self.cv:
                if d.get("event") == "open":
                    self.open_ids.append(obj["p"]["c"])
                elif d.get("event") == "close":
                    self.close_events.append((obj["p"]["c"], d.get("code"), d.get("reason")))
                else:
                    self.other_events += 1
                self.cv.notify_all()
        elif "i" in obj:
            with self.cv:
                self.responses[obj["i"]] = (obj, now)
                self.cv.notify_all()

    def _reader(self):
        buf = self.buf
        frag = None
        try:
            while True:
                end = 0
                for op, fin, a, b in parse_frames(buf):
                    payload = bytes(buf[a:b])
                    end = b
                    now = time.monotonic_ns()
                    if op in (1, 2):
                        if fin:
                            self._dispatch(payload, now)
                        else:
                            frag = payload
                    elif op == 0 and frag is not None:
                        frag += payload
                        if fin:
                            self._dispatch(frag, now)
                            frag = None
                    elif op == 9:
                        self.send_raw(self.frame(payload, 0xA))
                    elif op == 8:
                        raise EOFError
                del buf[:end]
                data = self.sock.recv(1 << 20)
                if not data:
                    raise EOFError
                buf += data
        except (EOFError, OSError):
            pass
        finally:
            with self.cv:
                self.closed = True
                self.cv.notify_all()

    def close(self):
        try:
            self.send_raw(self.frame(struct.pack("!H", 1000), 0x8))
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.t.join(5)
        self.sock.close()


def write_config(path, api_port, ws_port, conns, events):
    with open(path, "w") as f:
        f.write(f"""; written by bench/run_bench.py
[node]
id = 1
name = bench
workers = 2
drain_timeout = 10
[log]
level = info
[api]
bind = 127.0.0.1
port = {api_port}
[route]
port = 0
[limits]
max_connections = {conns * 2 + 1000}
[queue]
max_events = {max(10000, conns * 2)}
max_bytes = {64 << 20}
[listener.ws]
type = ws
bind = 127.0.0.1
port = {ws_port}
topic = client
events = {"on" if events else "off"}
idle_timeout = 0
ping_interval = 0
""")


def http_get(port, path, timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode()


def payload(kind, rnd, seq, size):
    s = f"bench {kind} r{rnd} #{seq:06d} "
    return s + "x" * max(0, size - len(s))


def fanout_round(api, wsb, kind, rnd, n, p, size, channel, id_base, timeout):
    """P pipelined publishes (or broadcasts); returns the measured figures."""
    method = "mesh.publish" if kind == "publish" else "mesh.broadcast"
    reqs = []
    ids = []
    for k in range(p):
        params = {"d": payload(kind, rnd, k, size)}
        if kind == "publish":
            params["c"] = channel
        ident = id_base + k
        ids.append(ident)
        reqs.append(api.request_bytes(method, params, ident))
    blob = b"".join(reqs)
    wsb.cmd("reset")
    wsb.expect("OK reset", 10)
    t0 = time.monotonic_ns()
    api.send_raw(blob)
    t_sent = time.monotonic_ns()
    api.wait_responses(ids, timeout)
    answers = [api.responses.pop(i) for i in ids]
    t_api = max(t for _, t in answers)
    delivered = sum((o.get("r") or {}).get("s", 0) for o, _ in answers)
    failed = sum((o.get("r") or {}).get("f", 0) for o, _ in answers)
    errors = [o["E"] for o, _ in answers if o.get("E")]
    wsb.cmd(f"wait {n * p} {int(timeout * 1000)}")
    w = wsb.expect("WAIT", timeout + 10)
    elapsed = (w["last_ns"] - t0) / 1e9 if w["msgs"] else float("nan")
    return {
        "kind": kind, "round": rnd, "publishes": p, "payload_bytes": size,
        "api_answer_s": (t_api - t0) / 1e9, "api_publish_per_s": p / ((t_api - t0) / 1e9),
        "write_s": (t_sent - t0) / 1e9,
        "server_reported_delivered": delivered, "server_reported_failed": failed, "api_errors": errors[:3],
        "expected_msgs": n * p, "received_msgs": w["msgs"], "received_bytes": w["bytes"],
        "first_msg_after_s": (w["first_ns"] - t0) / 1e9 if w["msgs"] else None,
        "elapsed_s": elapsed, "deliveries_per_s": w["msgs"] / elapsed if w["msgs"] else 0,
        "timed_out": w["timed_out"], "clients_open": w["open"], "closed_by_server": w["closed_by_server"],
    }


def one_run(args, rnd, outdir):
    api_port, ws_port = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="mg-bench-")
    conf = os.path.join(tmp, "bench.conf")
    write_config(conf, api_port, ws_port, args.conns, events=not args.events_off)
    logf = open(os.path.join(outdir, f"meshgate-run{rnd}.log"), "w")
    cmd = shlex.split(args.prefix) + [args.server, "-c", conf]
    log(f"run {rnd}: {' '.join(cmd)}  (api {api_port}, ws {ws_port})")
    top = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    res = {"run": rnd, "conns": args.conns, "server": args.server, "prefix": args.prefix,
           "events": not args.events_off}
    api = wsb = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_get(api_port, "/healthz", 2)[0] == 200:
                    break
            except OSError:
                pass
            if top.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("meshgate did not come up (see its log)")
            time.sleep(0.1)
        pid = server_pid(top.pid)
        res["pid"] = pid
        if not args.events_off:
            api = WsApi("127.0.0.1", api_port)
            r = api.call("queue.pop", {"t": ["client"]}, "pop")
            if r.get("E"):
                raise RuntimeError(f"queue.pop: {r}")
        time.sleep(args.settle)
        st = proc_status(pid)
        res["rss_rest"] = st["VmRSS"]
        res["rss_anon_rest"] = st.get("RssAnon")
        res["threads"] = st.get("Threads")
        res["tcp_mem_pages_rest"] = sockstat_tcp_mem_pages()

        wsb = WsBench(args.ws_bench, ws_port, args.conns, args.concurrency)
        c = wsb.expect("CONNECT", args.timeout * 4)
        res["connect"] = c
        log(f"  connect: ok {c['ok']} failed {c['failed']} in {c['elapsed_ms']:.0f} ms")
        if api:
            got = api.wait_open_events(c["ok"], args.timeout)
            res["open_events"] = got
            if got < c["ok"]:
                log(f"  only {got} of {c['ok']} open events reached the consumer (see meshgate_queue_backlog_drops_total)")
        time.sleep(args.settle)
        st = proc_status(pid)
        res["rss_idle"] = st["VmRSS"]
        res["rss_anon_idle"] = st.get("RssAnon")
        res["tcp_mem_pages_idle"] = sockstat_tcp_mem_pages()
        res["bytes_per_conn"] = (res["rss_idle"] - res["rss_rest"]) / max(1, c["ok"])
        res["anon_bytes_per_conn"] = (res["rss_anon_idle"] - res["rss_anon_rest"]) / max(1, c["ok"])
        log(f"  VmRSS rest {res['rss_rest'] / 1048576:.1f} MiB, idle with {c['ok']} conns "
            f"{res['rss_idle'] / 1048576:.1f} MiB → {res['bytes_per_conn']:.0f} B/conn")

        rounds = []
        if api and not args.skip_fanout:
            ids = list(api.open_ids)
            t0 = time.monotonic()
            blob = b"".join(api.request_bytes("conn.call", {"c": cid, "f": "subscribe", "a": [args.channel]},
                                              f"s{k}") for k, cid in enumerate(ids))
            t1 = time.monotonic()
            api.send_raw(blob)
            api.wait_responses([f"s{k}" for k in range(len(ids))], args.timeout * 4)
            t2 = time.monotonic()
            sub = [api.responses.pop(f"s{k}")[0] for k in range(len(ids))]
            res["subscribe"] = {"calls": len(ids), "errors": sum(1 for o in sub if o.get("E")),
                                "seconds": t2 - t1, "calls_per_s": len(ids) / (t2 - t1),
                                "build_s": t1 - t0}
            cnt = api.call("channel.count", {"c": args.channel}, "count")
            res["channel_count"] = (cnt.get("r") or {}).get("s")
            time.sleep(args.settle)
            st = proc_status(pid)
            res["rss_subscribed"] = st["VmRSS"]
            res["sub_bytes_per_conn"] = (res["rss_subscribed"] - res["rss_idle"]) / max(1, len(ids))
            log(f"  subscribed {len(ids)} ids in {t2 - t1:.2f} s ({len(ids) / (t2 - t1):.0f} calls/s), "
                f"channel.count {res['channel_count']}, VmRSS {res['rss_subscribed'] / 1048576:.1f} MiB")
        if api and not args.skip_fanout:
            kinds = ["publish", "broadcast"]
            for k in range(args.rounds):
                for kind in kinds:
                    f = fanout_round(api, wsb, kind, k, c["ok"] if kind == "broadcast" else res["channel_count"], args.publishes, args.payload, args.channel,
                                     1000000 * (k + 1) + (0 if kind == "publish" else 500000), args.timeout)
                    rounds.append(f)
                    log(f"  {kind} round {k}: {f['received_msgs']}/{f['expected_msgs']} msgs in "
                        f"{f['elapsed_s']:.3f} s → {f['deliveries_per_s']:.0f} deliveries/s; API "
                        f"{f['api_publish_per_s']:.0f} publishes/s (answers after {f['api_answer_s']:.3f} s)")
                    time.sleep(0.5)
            if args.empty_publishes:
                # API overhead alone: publishes to a channel nobody is subscribed to.
                k = args.empty_publishes
                ids = [f"e{j}" for j in range(k)]
                blob = b"".join(api.request_bytes("mesh.publish", {"c": "nobody", "d": payload("empty", 0, j, args.payload)},
                                                  ids[j]) for j in range(k))
                t0 = time.monotonic_ns()
                api.send_raw(blob)
                api.wait_responses(ids, args.timeout)
                t1 = max(api.responses.pop(i)[1] for i in ids)
                res["empty_channel_publish_per_s"] = k / ((t1 - t0) / 1e9)
                log(f"  {k} publishes to an empty channel: {res['empty_channel_publish_per_s']:.0f}/s")
            st = proc_status(pid)
            res["rss_after_fanout"] = st["VmRSS"]
            res["vmhwm"] = st.get("VmHWM")
        res["fanout"] = rounds
        try:
            res["metrics"] = {k: v for k, v in (
                (ln.split(" ")[0], ln.split(" ")[-1]) for ln in http_get(api_port, "/metrics")[1].splitlines()
                if ln and not ln.startswith("#")) if any(s in k for s in (
                    "refused", "dropped", "backlog", "output", "closed", "protocol", "publish", "connections"))}
        except OSError as e:
            res["metrics_error"] = str(e)
    finally:
        if wsb:
            res["ws_bench_close"] = wsb.stop()
        if api:
            # close events travel worker → hub → consumer after the sockets are gone: allow them time
            want = (res.get("connect") or {}).get("ok", 0)
            deadline = time.monotonic() + 10
            with api.cv:
                while len(api.close_events) < want and time.monotonic() < deadline and not api.closed:
                    api.cv.wait(0.2)
            res["close_events"] = len(api.close_events)
            res["close_codes"] = sorted({str(c) for _, c, _ in api.close_events})
            try:  # the queue's own account of events it dropped (expected: 0)
                m = http_get(api_port, "/metrics")[1]
                res["after_close_metrics"] = {ln.split(" ")[0]: ln.split(" ")[-1] for ln in m.splitlines()
                                              if ln.startswith(("meshgate_queue_backlog_drops_total",
                                                                "meshgate_queue_dropped_total",
                                                                "meshgate_queue_delivered_total"))}
            except OSError as e:
                res["after_close_metrics"] = str(e)
            if res["close_events"] < want:
                log(f"  only {res['close_events']} of {want} close events reached the consumer: "
                    f"{res['after_close_metrics']}")
            api.close()
        target = server_pid(top.pid)
        try:
            os.kill(target, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            res["server_rc"] = top.wait(20)
        except subprocess.TimeoutExpired:
            top.kill()
            res["server_rc"] = "killed after 20 s"
        logf.close()
        with open(logf.name) as f:
            bad = [ln.strip() for ln in f if " error " in ln or " warn " in ln]
        res["log_warnings"] = bad[:20]
    return res


def summarize(results):
    def stat(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "n/a"
        return f"min {min(vals):,.0f}  median {statistics.median(vals):,.0f}  max {max(vals):,.0f}  (n={len(vals)})"

    print("\n== summary ==")
    print("bytes/conn (VmRSS):   ", stat([r.get("bytes_per_conn") for r in results]))
    print("bytes/conn (RssAnon): ", stat([r.get("anon_bytes_per_conn") for r in results]))
    print("VmRSS at rest (KiB):  ", stat([r.get("rss_rest", 0) / 1024 for r in results]))
    print("subscribe B/conn:     ", stat([r.get("sub_bytes_per_conn") for r in results]))
    print("subscribe calls/s:    ", stat([r.get("subscribe", {}).get("calls_per_s") for r in results]))
    print("empty-channel publish/s:", stat([r.get("empty_channel_publish_per_s") for r in results]))
    for kind in ("publish", "broadcast"):
        fs = [f for r in results for f in r.get("fanout", []) if f["kind"] == kind]
        if fs:
            print(f"{kind} deliveries/s:", stat([f["deliveries_per_s"] for f in fs]))
            print(f"{kind} API calls/s:  ", stat([f["api_publish_per_s"] for f in fs]))
            lost = sum(f["expected_msgs"] - f["received_msgs"] for f in fs)
            print(f"{kind} messages missing over all rounds: {lost}")
    short = [(r["run"], r.get("close_events"), (r.get("connect") or {}).get("ok")) for r in results
             if r.get("close_events") is not None and r.get("close_events") < (r.get("connect") or {}).get("ok", 0)]
    print("runs with close events missing (run, got, conns):", short or "none")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "meshgate"))
    ap.add_argument("--prefix", default="", help="wrapper command, e.g. 'heaptrack -o /tmp/x'")
    ap.add_argument("--ws-bench", default=os.path.join(HERE, "results", "bin", "ws_bench"))
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=500)
    ap.add_argument("--publishes", type=int, default=200)
    ap.add_argument("--payload", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="publish+broadcast rounds per run")
    ap.add_argument("--runs", type=int, default=3, help="fresh server per run")
    ap.add_argument("--channel", default="bench")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait before reading VmRSS")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--events-off", action="store_true",
                    help="listener events = off, no consumer: pure connection memory, no fan-out")
    ap.add_argument("--skip-fanout", action="store_true")
    ap.add_argument("--empty-publishes", type=int, default=5000,
                    help="also time this many pipelined publishes to a channel with no subscriber")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not os.path.exists(args.ws_bench):
        sys.exit(f"{args.ws_bench} missing: run `make -C bench` first")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.conns + 2048
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < want:
            log(f"warning: RLIMIT_NOFILE hard limit is {hard} (< {want}) and cannot be raised here")

    outdir = args.out or os.path.join(HERE, "results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    results = []
    with open(os.path.join(outdir, "results.jsonl"), "a") as out:
        for rnd in range(args.runs):
            try:
                r = one_run(args, rnd, outdir)
            except Exception as e:  # noqa: BLE001 - record the failure, keep going
                log(f"run {rnd} failed: {e!r}")
                r = {"run": rnd, "error": repr(e)}
            results.append(r)
            out.write(json.dumps(r) + "\n")
            out.flush()
            time.sleep(1)
    summarize(results)
    print(f"\nresults: {outdir}/results.jsonl")


if __name__ == "__main__":
    main()
