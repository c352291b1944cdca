#!/usr/bin/python3
"""Client -> consumer queue event rate: WebSocket clients send text messages, one /ws/v1 consumer
(queue.pop on topic `client`, no acks) receives them as queue events.

Per run: starts meshgate (--server; `[listener.ws]` with events on, `[queue] max_events` 50,000 with
the default overflow, pause: the topic stops its clients at 50,000 events and drops only at four times
that, which one 64 KiB read per client, about 900 events each, cannot reach with 100 clients),
connects the consumer and --clients WebSocket clients, waits for their `open`
events, then every client writes --messages masked text frames of --size bytes (built beforehand, one
sendall per client, clients one after the other from a thread) while the consumer counts the message
events it receives. Rate = events / (last event received - first byte sent), same monotonic clock.
Before it, --warmup bursts (default 1) go the same way unmeasured: a fresh process touches its
memory for the first time (page faults that a gateway running for days does not pay per event).
Server CPU per event = utime + stime of the meshgate process (/proc/PID/stat) over the same window /
events; for a disk topic the window goes on until the topic's log holds no segment (with fsync = off:
until its size stays put; `settle_ms` after the last event arrived; /metrics polled every 5 ms), so
that the store thread's writes, syncs and deletions of the load are counted too.

`--store memory,disk` runs the topic both ways side by side: every round runs each store once (the
order turned by one each round), each in a fresh node. A disk node gets `[node] state_dir` in a fresh
directory under --state-base (default /var/tmp: it must be a real disk, not tmpfs, or the syncs cost
nothing) and `[queue] store = disk`, `fsync` (each of --fsync, comma-separated: batch, always, off;
every mode is a rival of its own) and `fsync_interval` (--fsync-interval ms, default 5). Per run
also: the bytes the node wrote to storage (write_bytes of /proc/PID/io) and, with perf (root), the
fdatasync calls in the measured window (bench/benchlib.py SyncTrace: count, duration, interval
between syncs); --no-perf leaves perf out. Medians per rival at the end.

The consumer only walks frame headers and looks for `"frame"` in the payload (no JSON parsing).
`--consumer c` (the default) is bench/queue_consumer.c, which keeps up with the server; `--consumer
python` is a thread of this process, which reads about 400k events/s: slower than the server sends,
so the run measures a consumer that falls behind (events wait in the topic; before the consumer
window was cut to 256 KiB, the server's output to it grew to ~100 MB in a 200,000-event run).

    bench/queue_rate.py --server build-release/meshgate --clients 100 --messages 2000 --runs 5
    bench/queue_rate.py --server build-release/meshgate --messages 5000 --runs 5 --store memory,disk \
        --fsync batch,always,off
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (SyncTrace, config_head, cpu_times, edit_config, free_port, io_write_bytes, parse_frames,
                      start_node, stop_process, ws_connect, ws_frame)

CONSUMER_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bin", "queue_consumer")


class CConsumer:
    """bench/queue_consumer.c in its own process: the same counts, read from its stdout lines."""

    def __init__(self, api_port, opens, events, bursts):
        if not os.path.exists(CONSUMER_BIN):
            raise SystemExit(f"{CONSUMER_BIN} missing: run `make -C bench`")
        self.proc = subprocess.Popen([CONSUMER_BIN, str(api_port), str(opens), str(events), str(bursts)],
                                     stdout=subprocess.PIPE, text=True)
        self.last_ns = 0

    def wait_opens(self, timeout):
        return self._line("OPENS", timeout) is not None

    def wait_done(self, timeout):
        line = self._line("DONE", timeout)
        if line is None:
            return False
        self.last_ns = int(line.split("last_ns=")[1])
        return True

    def _line(self, word, timeout):
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                return None
            line = self.proc.stdout.readline()
            if not line:
                return None
            if line.startswith(word):
                return line
        return None

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Consumer(threading.Thread):
    def __init__(self, api_port):
        super().__init__(daemon=True)
        self.sock, self.rest = ws_connect(api_port, "/ws/v1")
        self.sock.sendall(ws_frame(json.dumps({"m": "queue.pop", "p": {"t": ["client"]}, "i": 1})))
        self.opens = self.messages = 0
        self.last_ns = 0
        self.want_opens = self.want_events = 0

    def wait_opens(self, timeout):
        return wait_for(lambda: self.opens >= self.want_opens, timeout)

    def wait_done(self, timeout):
        return wait_for(lambda: self.messages >= self.want_events, timeout)

    def close(self):
        self.sock.close()

    def run(self):
        buf = bytearray(self.rest)
        while True:
            end = 0
            for _op, _fin, a, b in parse_frames(buf):
                if buf.find(b'"frame"', a, b) >= 0:
                    self.messages += 1
                elif buf.find(b'"open"', a, b) >= 0:
                    self.opens += 1
                end = b
            self.last_ns = time.monotonic_ns()
            if end:
                del buf[:end]
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            buf += data


def config(api_port, ws_port, total, store=None):
    """The node's configuration; `store`: None or ("memory", None), or ("disk", fsync, interval ms,
    state_dir)."""
    text = config_head_queue(api_port, ws_port)
    if store and store[0] == "disk":
        text = edit_config(text, {"node": {"state_dir": store[3]},
                                  "queue": {"store": "disk", "fsync": store[1], "fsync_interval": store[2]}})
    return text


def config_head_queue(api_port, ws_port):
    return (config_head("queue_rate", api_port, f"max_output = {256 << 20}\n") + f"""[queue]
max_events = 50000
max_bytes = {1 << 30}
[listener.ws]
type = ws
bind = 127.0.0.1
port = {ws_port}
topic = client
idle_timeout = 0
ping_interval = 0
""")


def wait_log_settled(api_port, fsync, timeout=10):
    """Waits until the store's thread has done its part of the load, and returns how long that took
    after the last event arrived, in ms (None: not within timeout): until the disk topic `client`
    holds no segment (every event consumed, the cursor synced, the segments deleted), or with fsync =
    off, which keeps the active segment until the node stops (it has never been synced), until its
    bytes on disk stay the same for 50 ms. /metrics is polled every 5 ms."""
    import urllib.request
    t0 = time.monotonic()
    last, since = None, t0
    while time.monotonic() - t0 < timeout:
        text = urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith('meshgate_queue_disk_bytes{topic="client"}'):
                n = float(line.split()[-1])
                now = time.monotonic()
                if n == 0 or (fsync == "off" and n == last and now - since >= 0.05):
                    return round(((since if n else now) - t0) * 1e3, 1)
                if n != last:
                    last, since = n, now
        time.sleep(0.005)
    return None


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def rivals(args):
    """(label, store tuple for config()) for each rival of --store and --fsync."""
    out = []
    for store in getattr(args, "store", "memory").split(","):
        if store == "memory":
            out.append(("memory", ("memory", None)))
        elif store == "disk":
            for mode in args.fsync.split(","):
                out.append((f"disk/{mode}", ("disk", mode, args.fsync_interval)))
        else:
            raise SystemExit(f"--store: memory or disk, not {store!r}")
    return out


def add_store_args(ap, default_store):
    """--store, --fsync, --fsync-interval, --state-base and --no-perf (for rivals() and run_rivals())."""
    ap.add_argument("--store", default=default_store, help="comma-separated rivals: memory, disk")
    ap.add_argument("--fsync", default="batch", help="disk rivals, comma-separated: batch, always, off")
    ap.add_argument("--fsync-interval", type=int, default=5, help="ms ([queue] fsync_interval)")
    ap.add_argument("--state-base", default="/var/tmp", help="where disk nodes' state directories are made")
    ap.add_argument("--no-perf", dest="perf", action="store_false",
                    help="no perf trace of fdatasync (it needs perf and root)")


def run_rivals(args, rounds, run):
    """run(store) for every rival of rivals(args) each round, the order turned by one each round;
    each result (a dict) is printed as a JSON line. Returns {label: [results]}."""
    todo = rivals(args)
    results = {label: [] for label, _ in todo}
    for i in range(rounds):
        for label, store in todo[i % len(todo):] + todo[:i % len(todo)]:
            r = run(store)
            r["store"] = label
            print(json.dumps(r), flush=True)
            results[label].append(r)
    return results


def one_run(args, hook=None, store=None):
    """One server, one load; hook(pid, "start"|"stop") is called around the measured window.
    store: as config() takes it, without the state directory (made here)."""
    state_base = getattr(args, "state_base", None)
    with tempfile.TemporaryDirectory(prefix="queue-rate-") as tmp, \
            tempfile.TemporaryDirectory(prefix="queue-rate-state-", dir=state_base) as state:
        api_port, ws_port = free_port(), free_port()
        total = args.clients * args.messages
        if store and store[0] == "disk":
            store = store[:3] + (state,)
        proc = start_node(args.server, os.path.join(tmp, "meshgate.conf"), config(api_port, ws_port, total, store),
                          api_port)
        trace = None
        try:
            warmup = getattr(args, "warmup", 1)
            if getattr(args, "consumer", "c") == "c":
                consumer = CConsumer(api_port, args.clients, total, warmup + 1)
            else:
                consumer = Consumer(api_port)
                consumer.want_opens, consumer.want_events = args.clients, total
                consumer.start()
            clients = [ws_connect(ws_port, "/")[0] for _ in range(args.clients)]
            if not consumer.wait_opens(30):
                raise RuntimeError("the consumer did not see every open event")
            payload = (b'{"seq":0,"pad":"' + b"x" * args.size)[:args.size - 2] + b'"}'
            batches = [b"".join(ws_frame(payload) for _ in range(args.messages)) for _ in clients]
            for _ in range(warmup):  # the same burst, not measured: the server's memory is touched once
                for s, b in zip(clients, batches):
                    s.sendall(b)
                if not consumer.wait_done(args.timeout):
                    raise RuntimeError("the warm-up burst did not arrive")
                if isinstance(consumer, Consumer):
                    consumer.want_events += total
            if hook:
                hook(proc.pid, "start")
            if getattr(args, "perf", False):
                trace = SyncTrace(proc.pid, os.path.join(tmp, "syncs.data"))
            w0 = io_write_bytes(proc.pid)
            c0 = cpu_times([proc.pid])
            t0 = time.monotonic_ns()
            for s, b in zip(clients, batches):
                s.sendall(b)
            done = consumer.wait_done(args.timeout)
            settle_ms = wait_log_settled(api_port, store[1]) if store and store[0] == "disk" and done else None
            c1 = cpu_times([proc.pid])
            w1 = io_write_bytes(proc.pid)
            if hook:
                hook(proc.pid, "stop")
            syncs = trace.stop() if trace else {}
            trace = None
            if not done:
                raise RuntimeError(f"not all {total} message events arrived")
            secs = (consumer.last_ns - t0) / 1e9
            for s in clients:
                s.close()
            consumer.close()
            user, system = c1[0] - c0[0], c1[1] - c0[1]
            return {"server": args.server, "clients": args.clients, "messages": total, "size": args.size,
                    "seconds": round(secs, 3), "events_per_s": round(total / secs),
                    "server_cpu_s": round(user + system, 3), "server_user_s": round(user, 3),
                    "server_sys_s": round(system, 3), "server_cpu_us_per_event": round((user + system) * 1e6 / total, 3),
                    "disk_bytes_per_event": round((w1 - w0) / total, 1), "settle_ms": settle_ms, **syncs}
        finally:
            if trace:
                trace.stop()
            stop_process(proc, 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--messages", type=int, default=2000, help="per client")
    ap.add_argument("--size", type=int, default=64, help="bytes per message (at least 20)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1,
                    help="bursts sent and waited for before the measured one (the same burst)")
    ap.add_argument("--consumer", choices=["c", "python"], default="c",
                    help="c: bench/queue_consumer (keeps up); python: a thread here (falls behind)")
    ap.add_argument("--timeout", type=float, default=120)
    add_store_args(ap, "memory")
    args = ap.parse_args()
    args.perf = args.perf and SyncTrace.available() and os.geteuid() == 0
    results = run_rivals(args, args.runs, lambda store: one_run(args, store=store))
    for label, runs in results.items():
        med = lambda key: statistics.median(r[key] for r in runs) if runs and runs[0].get(key) is not None else None
        rates = sorted(r["events_per_s"] for r in runs)
        line = (f"{label}: events/s min/median/max {rates[0]}/{statistics.median(rates):.0f}/{rates[-1]}; "
                f"server CPU per event, median {med('server_cpu_us_per_event'):.3f} us; "
                f"disk bytes per event, median {med('disk_bytes_per_event')}")
        if args.perf:
            line += (f"; fdatasyncs, median {med('syncs')}, each p50/p99 {med('sync_ms_p50')}/{med('sync_ms_p99')} ms"
                     f", interval p50/p99/max {med('interval_ms_p50')}/{med('interval_ms_p99')}/"
                     f"{med('interval_ms_max')} ms (medians of the runs)")
        print(line)


if __name__ == "__main__":
    sys.exit(main())
