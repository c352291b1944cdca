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
events.

The consumer only walks frame headers and looks for `"frame"` in the payload (no JSON parsing).
`--consumer c` (the default) is bench/queue_consumer.c, which keeps up with the server; `--consumer
python` is a thread of this process, which reads about 400k events/s: slower than the server sends,
so the run measures a consumer that falls behind (events wait in the topic; before the consumer
window was cut to 256 KiB, the server's output to it grew to ~100 MB in a 200,000-event run).

    bench/queue_rate.py --server build-release/meshgate --clients 100 --messages 2000 --runs 5
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

from benchlib import config_head, cpu_times, free_port, parse_frames, start_node, stop_process, ws_connect, ws_frame

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


def config(api_port, ws_port, total):
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


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def one_run(args, hook=None):
    """One server, one load; hook(pid, "start"|"stop") is called around the measured window."""
    with tempfile.TemporaryDirectory(prefix="queue-rate-") as tmp:
        api_port, ws_port = free_port(), free_port()
        total = args.clients * args.messages
        proc = start_node(args.server, os.path.join(tmp, "meshgate.conf"), config(api_port, ws_port, total), api_port)
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
            c0 = cpu_times([proc.pid])
            t0 = time.monotonic_ns()
            for s, b in zip(clients, batches):
                s.sendall(b)
            done = consumer.wait_done(args.timeout)
            c1 = cpu_times([proc.pid])
            if hook:
                hook(proc.pid, "stop")
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
                    "server_sys_s": round(system, 3), "server_cpu_us_per_event": round((user + system) * 1e6 / total, 3)}
        finally:
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
    args = ap.parse_args()
    rates, cpus = [], []
    for _ in range(args.runs):
        r = one_run(args)
        print(json.dumps(r), flush=True)
        rates.append(r["events_per_s"])
        cpus.append(r["server_cpu_us_per_event"])
    rates.sort()
    print(f"queue events/s min/median/max: {rates[0]}/{statistics.median(rates)}/{rates[-1]}")
    print(f"server CPU per event, median: {statistics.median(cpus):.3f} us")


if __name__ == "__main__":
    sys.exit(main())
