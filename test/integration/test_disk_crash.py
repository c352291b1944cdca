"""The disk queue under crashes (issue 20, docs/queue-log.md): SIGKILL while 100 clients send, with an
acknowledging consumer running or none; a SIGKILL after the producers stopped; the mesh, where a
forwarded event stays in the producer's log until the consuming node reports it consumed, and either
node may die.

What a user observes is checked per client: every client i sends "c{i} {n:06d}" for n = 0, 1, ...
and what the consumers received of it, before the kill and after the restart together, must be
0..k with no gap, each part in order; an event received twice is one delivered again after the
restart, marked "r":true.

The consumers and the producers here are raw sockets driven by threads (not asyncio): 100 clients
and a consumer that keeps up with them, with the count of what each client's kernel took.
"""

import base64
import json
import os
import socket
import struct
import threading
import time

import pytest

import harness
from test_disk_queue import disk_node
from test_mesh import JOIN_TIMEOUT, mesh_addr, restart, sigkill, start_mesh_node, wait_all_alive
from test_queue import state_dir

FSYNC_INTERVAL_MS = 5  # the default; the tests that wait for the sync wait 40 times as long


def wait_for(fn, timeout, what, interval=0.05):
    """Calls fn() until it returns something truthy (returned); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(interval)


def metric(node, name, **labels):
    return harness.metric_value(node, name, **labels) or 0


def ws_frame(payload, opcode=0x1):
    """One masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_upgrade(port, path="/ws/v1"):
    """A connected socket past the 101; returns (socket, bytes read after the headers)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"/ws/v1 upgrade: connection closed ({buf!r})")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), f"/ws/v1 upgrade refused: {head!r}"
    return s, rest


def walk_frames(buf):
    """Yields (opcode, payload) of each whole server frame in `buf` (unmasked); returns via
    StopIteration the count of bytes used. Use: `pos = yield from walk_frames(buf)`."""
    pos = 0
    end = len(buf)
    while end - pos >= 2:
        b1 = buf[pos + 1] & 0x7f
        off = 2
        if b1 == 126:
            if end - pos < 4:
                break
            b1 = struct.unpack_from(">H", buf, pos + 2)[0]
            off = 4
        elif b1 == 127:
            if end - pos < 10:
                break
            b1 = struct.unpack_from(">Q", buf, pos + 2)[0]
            off = 10
        if end - pos < off + b1:
            break
        yield buf[pos] & 0x0f, bytes(buf[pos + off:pos + off + b1])
        pos += off + b1
    return pos


class Consumer:
    """A /ws/v1 consumer of topic `client` in a thread of its own. Records each frame event as
    (client tag, n, redelivered, producing node) in arrival order. With `ack`, it acknowledges what
    it received after each read while `acking` is set; the ks it did not acknowledge are kept in
    `held` (k -> (tag, n), or None for an open or close event)."""

    def __init__(self, port, ack=False, acking=None):
        self.sock, rest = ws_upgrade(port)
        self.buf = bytearray(rest)
        self.ack = ack
        self.acking = ack if acking is None else acking
        self.lock = threading.Lock()
        self.frames = []
        self.others = 0          # open and close events
        self.held = {}           # k -> (tag, n) | None: received, not acknowledged
        self.acked = {}          # k -> (tag, n) | None: acknowledged
        self.errors = []         # responses with an error
        self.popped = threading.Event()
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._i = 1
        self._send({"m": "queue.pop", "p": {"t": ["client"], "ack": ack}, "i": 1})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.popped.wait(10):
            raise AssertionError(f"queue.pop: no answer within 10 s (errors {self.errors!r})")

    def _send(self, obj):
        self.sock.sendall(ws_frame(json.dumps(obj).encode()))

    def _on_message(self, payload):
        msg = json.loads(payload)
        if msg.get("e") == "queue.pop":
            p = msg["p"]
            k = p.get("k")
            d = p["d"]
            if "frame" in d:
                tag, n = d["frame"]["data"].split(" ")
                entry = (tag, int(n), p.get("r") is True, p["n"])
                self.frames.append(entry)
                held = (tag, int(n))
            else:
                self.others += 1
                held = None
            if self.ack:
                assert isinstance(k, int), f"acknowledged mode: event without k: {msg!r}"
                self.held[k] = held
            return
        if msg.get("E") is not None:
            self.errors.append(msg)
        if msg.get("i") == 1:
            self.popped.set()

    def ack_held(self):
        """Acknowledges every event held (under the lock)."""
        if not self.held:
            return
        ks = list(self.held)
        self._i += 1
        self._send({"m": "queue.ack", "p": {"k": ks}, "i": self._i})
        self.acked.update(self.held)
        self.held.clear()

    def _run(self):
        self.sock.settimeout(0.1)
        try:
            while not self._stop.is_set():
                with self.lock:
                    gen = walk_frames(self.buf)
                    while True:
                        try:
                            op, payload = next(gen)
                        except StopIteration as e:
                            del self.buf[:e.value]
                            break
                        if op == 0x1:
                            self._on_message(payload)
                        elif op == 0x9:
                            self.sock.sendall(ws_frame(payload, 0xA))
                        elif op == 0x8:
                            return
                    if self.acking:
                        self.ack_held()
                try:
                    chunk = self.sock.recv(1 << 20)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                self.buf += chunk
        except OSError:
            return
        finally:
            self.closed.set()

    def set_acking(self, on):
        with self.lock:
            self.acking = on
            if on:
                self.ack_held()

    def snapshot(self):
        with self.lock:
            return list(self.frames)

    def count(self):
        with self.lock:
            return len(self.frames)

    def close(self):
        self._stop.set()
        self.thread.join(5)
        try:
            self.sock.close()
        except OSError:
            pass


class Producers:
    """`count` TCP line clients served by one thread: client i writes "c{i} {n:06d}" for n = 0, 1, ...,
    `per_round` lines per client a round, a round every `pause` s, up to `limit` lines each (None: until
    stopped). written() counts, per client, the lines its kernel took whole: what the client wrote."""

    def __init__(self, port, count=100, per_round=3, pause=0.01, limit=None, first=0):
        self.first = first
        self.socks = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            self.socks.append(s)
        self.line_len = [len(f"{self.tag(i)} 000000\n") for i in range(count)]
        self.sent = [0] * count
        self.next = [0] * count
        self.out = [b""] * count
        self.dead = [False] * count
        self.per_round, self.pause = per_round, pause
        self.limit = limit if isinstance(limit, list) or limit is None else [limit] * count
        self._stop = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def tag(self, i):
        return f"c{self.first + i}"

    def _run(self):
        try:
            while not self._stop.is_set():
                busy = False
                for i, s in enumerate(self.socks):
                    if self.dead[i]:
                        continue
                    if not self.out[i]:
                        hi = self.next[i] + self.per_round
                        if self.limit is not None:
                            hi = min(hi, self.limit[i])
                        if hi > self.next[i]:
                            self.out[i] = "".join(f"{self.tag(i)} {n:06d}\n"
                                                  for n in range(self.next[i], hi)).encode()
                            self.next[i] = hi
                    if not self.out[i]:
                        continue
                    busy = True
                    try:
                        k = s.send(self.out[i])
                    except BlockingIOError:
                        continue
                    except OSError:
                        self.dead[i] = True
                        continue
                    self.sent[i] += k
                    self.out[i] = self.out[i][k:]
                if not busy:
                    return
                time.sleep(self.pause)
        finally:
            self.done.set()

    def written(self):
        """{tag: lines written}."""
        return {self.tag(i): self.sent[i] // self.line_len[i] for i in range(len(self.socks))}

    def stop(self):
        self._stop.set()
        self.thread.join(5)

    def close(self):
        self.stop()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def by_client(frames):
    out = {}
    for tag, n, r, _node in frames:
        out.setdefault(tag, []).append((n, r))
    return out


def check_prefixes(before, after, written, at_least=None, exact=False):
    """Per client: what `before` holds is 0..a in order; what `after` (received after the restart, all
    of it delivered again from the log) holds is s..b in order, with s <= a + 1 and every event
    marked "r"; together 0..max(a, b) with no gap, and nothing the client did not write. With
    `at_least` ({tag: lines}), at least that many of each client arrived; with `exact`, every
    line the client wrote did."""
    b_of, a_of = by_client(before), by_client(after)
    assert set(b_of) | set(a_of) <= set(written), f"events of unknown clients: {set(b_of) | set(a_of) - set(written)}"
    totals = {}
    for tag in written:
        b = [n for n, _ in b_of.get(tag, [])]
        assert b == list(range(len(b))), f"{tag}, before the kill: not 0..{len(b) - 1} in order: {summary(b)}"
        a = a_of.get(tag, [])
        ns = [n for n, _ in a]
        if ns:
            s = ns[0]
            assert s <= len(b), (f"{tag}: a gap across the restart: received 0..{len(b) - 1} before the kill, "
                                 f"then from {s} on")
            assert ns == list(range(s, s + len(ns))), f"{tag}, after the restart: not in order or a gap: {summary(ns)}"
            not_r = [n for n, r in a if not r]
            assert not not_r, f"{tag}: events kept over the restart not marked \"r\": {summary(not_r)}"
            total = max(len(b), s + len(ns))
        else:
            total = len(b)
        assert total <= written[tag], f"{tag}: received up to {total - 1}, but the client wrote {written[tag]} lines"
        if at_least is not None:
            assert total >= at_least[tag], (f"{tag}: lost what the client wrote well before the kill: received "
                                            f"0..{total - 1}, the client had written {at_least[tag]} lines a "
                                            f"second before")
        if exact:
            assert total == written[tag], (f"{tag}: received 0..{total - 1} of the {written[tag]} lines the "
                                           f"client wrote and the server read before the kill")
        totals[tag] = total
    return totals


def summary(ns):
    """A short description of a list of numbers: its runs."""
    runs = []
    for n in ns:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:12])
    return text + (f", ... ({len(runs)} runs)" if len(runs) > 12 else "")


def drain_after_restart(node, timeout=30):
    """A new acknowledging consumer takes everything the restarted node holds: until the topic's log
    holds no unconsumed event. Returns its frames."""
    cons = Consumer(node.api_port, ack=True)
    try:
        wait_for(lambda: metric(node, "meshgate_queue_disk_events", topic="client") == 0 and
                 metric(node, "meshgate_queue_depth", topic="client") == 0, timeout,
                 "the restarted node's log consumed")
        assert not cons.errors, cons.errors
        return cons.snapshot()
    finally:
        cons.close()


# ---------------------------------------------------------------------------------------------------
# One node: SIGKILL while 100 clients send
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("consumer", [True, False], ids=["acking-consumer", "no-consumer"])
def test_sigkill_while_100_clients_send_leaves_each_client_a_prefix_without_gaps(nodes, consumer):
    n, d = disk_node(nodes, "kill-mid", queue={"fsync": "batch", "fsync_interval": FSYNC_INTERVAL_MS})
    cons = Consumer(n.api_port, ack=True) if consumer else None
    prod = Producers(n.port("tcp"), 100)
    try:
        time.sleep(1.0)
        early = prod.written()  # the server has a second to read and log these
        time.sleep(1.0)
        # On a loaded machine the clients' own thread writes slowly: give it up to 10 s more to have
        # written enough to test anything (the assertion below), rather than failing on the load.
        deadline = time.monotonic() + 10
        while sum(prod.written().values()) <= 10000 and time.monotonic() < deadline:
            time.sleep(0.1)
        if cons:
            assert cons.count() > 0, "the consumer received nothing while the clients sent"
        sigkill(n)
        prod.stop()
        written = prod.written()
    finally:
        prod.close()
    before = []
    if cons:
        cons.closed.wait(5)
        cons.close()
        assert not cons.errors, cons.errors
        before = cons.snapshot()
    assert sum(written.values()) > 10000, f"the clients wrote too little to test anything: {sum(written.values())}"
    restart(n)
    after = drain_after_restart(n)
    if cons and "recovered" not in n.stderr():
        # The acknowledging consumer had kept up with the clients: every event the node had logged
        # was consumed and acknowledged before the kill, so there is nothing to deliver again (seen on
        # a quiet machine). What the clients wrote must then be in `before`, as a prefix each.
        assert not after, f"{len(after)} events delivered again without a recovery line: {n.stderr()}"
    else:
        assert "recovered" in n.stderr(), n.stderr()
        assert after, "nothing was delivered again after the restart"
    check_prefixes(before, after, written, at_least=early)


@pytest.mark.parametrize("consumer", [True, False], ids=["acking-consumer", "no-consumer"])
def test_sigkill_after_the_clients_stopped_longer_than_fsync_interval_loses_nothing(nodes, consumer):
    """Each client writes its own count of lines and stops; once the server has read them all (its
    messages_in counter), 40 fsync intervals later, SIGKILL. The consumer (when there is one) stops
    acknowledging half-way: what it holds unacknowledged at the kill comes again."""
    n, d = disk_node(nodes, "kill-stopped", queue={"fsync": "batch", "fsync_interval": FSYNC_INTERVAL_MS})
    cons = Consumer(n.api_port, ack=True) if consumer else None
    limits = [200 + 7 * i for i in range(100)]
    prod = Producers(n.port("tcp"), 100, per_round=5, limit=limits)
    try:
        if cons:
            wait_for(lambda: cons.count() >= sum(limits) // 3, 30, "a third of the events at the consumer")
            cons.set_acking(False)
        assert prod.done.wait(30), "the clients did not finish writing"
        written = prod.written()
        assert written == {prod.tag(i): limits[i] for i in range(100)}, "the clients could not write everything"
        total = sum(limits)
        wait_for(lambda: metric(n, "meshgate_messages_in_total", listener="tcp") >= total, 20,
                 f"the server read all {total} lines")
        time.sleep(FSYNC_INTERVAL_MS * 40 / 1000)
        sigkill(n)
    finally:
        prod.close()
    before, held = [], []
    if cons:
        cons.closed.wait(5)
        cons.close()
        assert not cons.errors, cons.errors
        before = cons.snapshot()
        held = [v for v in cons.held.values() if v is not None]
        assert held, "the consumer held no unacknowledged event at the kill"
    restart(n)
    after = drain_after_restart(n)
    check_prefixes(before, after, written, exact=True)
    again = {(tag, k) for tag, k, _r, _n in after}
    missing = [h for h in held if h not in again]
    assert not missing, f"{len(missing)} events received and not acknowledged before the kill were not delivered " \
                        f"again: {missing[:10]}"


# ---------------------------------------------------------------------------------------------------
# Two nodes: the producer's log holds a forwarded event until the consuming node reports it consumed
# ---------------------------------------------------------------------------------------------------

def disk_pair(nodes, tag):
    """Node 1 (store = disk; the producers' node) and node 2 (the consumers' node), linked."""
    d = state_dir(nodes, tag)
    a = start_mesh_node(nodes, 1, extra={"node": {"state_dir": d, "drain_timeout": 1},
                                         "queue": {"store": "disk"}})
    b = start_mesh_node(nodes, 2, (mesh_addr(a),))
    wait_all_alive([a, b], JOIN_TIMEOUT)
    return a, b


def send_all(port, count, lines, first=0):
    """`count` clients on `port` write `lines` lines each and stay connected; returns the Producers."""
    prod = Producers(port, count, per_round=lines, limit=lines, first=first)
    assert prod.done.wait(10), "the clients did not finish writing"
    return prod


def wait_written(node, timeout=10):
    """Until the node's log of topic `client` stops growing (its store thread wrote what it numbered),
    then 40 fsync intervals more: what the log holds is synced. The first write of a topic makes its
    directory, with several fsyncs; on this machine's disk one fdatasync takes 4 ms at the median and
    up to 60 ms, so the log lags the deliveries by a good part of a second at first."""
    last = [-1]

    def settled():
        v = metric(node, "meshgate_queue_disk_bytes", topic="client")
        done = v > 0 and v == last[0]
        last[0] = v
        return done
    wait_for(settled, timeout, "the log written", interval=0.2)
    time.sleep(FSYNC_INTERVAL_MS * 40 / 1000)


def frames_from(frames, node_id):
    assert all(f[3] == node_id for f in frames), f"events of another node: {[f for f in frames if f[3] != node_id][:5]}"
    return frames


def test_a_producer_killed_while_a_remote_consumer_holds_its_events_delivers_them_again_from_its_log(nodes):
    a, b = disk_pair(nodes, "mesh-producer")
    cons = Consumer(b.api_port, ack=True, acking=False)
    # The consumer holds both deliveries unacknowledged: 2 x 310 stays under [queue] max_unacked (1000).
    prod = send_all(a.port("tcp"), 10, 30)
    written = prod.written()
    try:
        wait_for(lambda: cons.count() >= 300, 15, "the 300 events at the consumer on node 2")
        first = frames_from(cons.snapshot(), 1)
        check_prefixes(first, [], written, exact=True)
        # Not acknowledged: node 1's log holds every one of them (and the clients' open events).
        assert metric(a, "meshgate_queue_disk_events", topic="client") == 310
        wait_written(a)
        sigkill(a)
        prod.close()
        restart(a)
        wait_all_alive([a, b], JOIN_TIMEOUT)
        wait_for(lambda: cons.count() >= 600, 15, "the 300 events delivered again from node 1's log")
        again = frames_from(cons.snapshot()[300:], 1)
        check_prefixes(first, again, written, exact=True)
        assert len(again) == 300, f"delivered again more than once: {len(again)}"
        # Acknowledged now (the deliveries of both lives): node 1's log is consumed, and only then.
        assert metric(a, "meshgate_queue_disk_events", topic="client") == 310
        cons.set_acking(True)
        wait_for(lambda: metric(a, "meshgate_queue_disk_events", topic="client") == 0, 10,
                 "node 1's log consumed after the acknowledgements")
        assert not cons.errors, cons.errors
    finally:
        cons.close()
        prod.close()


def test_acknowledgements_of_deliveries_before_the_producer_restarted_consume_none_of_its_later_events(nodes):
    """A consumer on node 2 acknowledges late: events it received before node 1 was killed and came
    back, after node 1's new clients sent more. Those late acknowledgements are of the first life's
    events (delivered again since, and acknowledged in their new delivery too); they must not count
    for any event of node 1's new life, which stays in node 1's log until it is acknowledged itself."""
    a, b = disk_pair(nodes, "mesh-late-acks")
    cons = Consumer(b.api_port, ack=True)
    prod = send_all(a.port("tcp"), 10, 30)
    try:
        wait_for(lambda: cons.count() >= 300, 15, "the first 300 events at the consumer")
        wait_for(lambda: metric(a, "meshgate_queue_disk_events", topic="client") == 0, 10,
                 "the first 300 events consumed")
        cons.set_acking(False)
        prod.close()
        prod = Producers(a.port("tcp"), 10, per_round=30, limit=30, first=100)  # c100..c109
        assert prod.done.wait(10)
        wait_for(lambda: cons.count() >= 600, 15, "the next 300 events at the consumer")
        with cons.lock:
            late = dict(cons.held)  # the first life's deliveries, acknowledged later
            cons.held.clear()
        wait_written(a)
        sigkill(a)
        prod.close()
        restart(a)
        wait_all_alive([a, b], JOIN_TIMEOUT)
        wait_for(lambda: cons.count() >= 900, 15, "node 1's unconsumed events delivered again")
        again = frames_from(cons.snapshot()[600:], 1)
        assert sorted((t, k) for t, k, _r, _n in again) == sorted(v for v in late.values() if v), \
            "delivered again: not what was held unacknowledged"
        cons.set_acking(True)  # acknowledges the new deliveries
        wait_for(lambda: metric(a, "meshgate_queue_disk_events", topic="client") == 0, 10,
                 "the events delivered again consumed")
        cons.set_acking(False)
        # Node 1's new life: new clients, their events held unacknowledged by the consumer.
        prod = Producers(a.port("tcp"), 10, per_round=40, limit=40, first=200)  # c200..c209
        assert prod.done.wait(10)
        wait_for(lambda: cons.count() >= 1300, 15, "the new life's 400 events at the consumer")
        assert metric(a, "meshgate_queue_disk_events", topic="client") == 410
        # The late acknowledgements of the first life's deliveries.
        with cons.lock:
            cons._i += 1
            cons._send({"m": "queue.ack", "p": {"k": list(late)}, "i": cons._i})
        time.sleep(0.5)
        assert metric(a, "meshgate_queue_disk_events", topic="client") == 410, \
            "acknowledgements of the first life's deliveries consumed events of node 1's new life"
        # What a user sees: the consumer leaves without acknowledging; a new one gets all 400.
        cons.close()
        cons2 = Consumer(b.api_port, ack=True)
        try:
            wait_for(lambda: cons2.count() >= 400, 15, "the new life's 400 events at a new consumer")
            time.sleep(0.3)
            got = frames_from(cons2.snapshot(), 1)
            check_prefixes([], got, {f"c{200 + i}": 40 for i in range(10)}, exact=True)
        finally:
            cons2.close()
    finally:
        cons.close()
        prod.close()


@pytest.mark.parametrize("where", ["node1", "restarted-node2"])
def test_the_consumers_node_killed_with_unacknowledged_forwarded_events_loses_none(nodes, where):
    a, b = disk_pair(nodes, "mesh-consumer")
    cons = Consumer(b.api_port, ack=True, acking=False)
    prod = send_all(a.port("tcp"), 10, 50)
    written = prod.written()
    try:
        wait_for(lambda: cons.count() >= 500, 15, "the 500 events at the consumer on node 2")
        check_prefixes(frames_from(cons.snapshot(), 1), [], written, exact=True)
        assert metric(a, "meshgate_queue_disk_events", topic="client") == 510
        sigkill(b)
        cons.close()
        if where == "node1":
            other = Consumer(a.api_port, ack=True)
        else:
            restart(b)
            wait_all_alive([a, b], JOIN_TIMEOUT)
            other = Consumer(b.api_port, ack=True)
        try:
            wait_for(lambda: metric(a, "meshgate_queue_disk_events", topic="client") == 0, 15,
                     "node 1's log consumed by the other consumer")
            got = frames_from(other.snapshot(), 1)
            check_prefixes([], got, written, exact=True)
            assert len(got) == 500, f"delivered more than once: {len(got)}"
            assert not other.errors, other.errors
        finally:
            other.close()
    finally:
        cons.close()
        prod.close()


# ---------------------------------------------------------------------------------------------------
# A SIGKILL during a topic's very first write
# ---------------------------------------------------------------------------------------------------

def test_a_topic_directory_whose_making_a_sigkill_cut_short_is_made_again_not_refused(nodes):
    """The first batch of a topic makes its directory: mkdir, then its `topic` file written as
    topic.tmp, synced and renamed. A SIGKILL in between leaves a directory with no `topic` file and no
    segment (seen here with a kill a few hundred ms after the first events: those fsyncs are slow on
    this disk). The next start must make it again: refused, the topic would stay in memory at every
    later start, and a crash lose everything it held."""
    d = state_dir(nodes, "cut-short")
    os.makedirs(os.path.join(d, "queue", "client"))
    with open(os.path.join(d, "queue", "client", "topic.tmp"), "w") as f:
        f.write("cli")
    n, _ = disk_node(nodes, "cut-short")
    first_life = n.stderr()
    prod = send_all(n.port("tcp"), 10, 30)
    written = prod.written()
    prod.close()
    wait_for(lambda: metric(n, "meshgate_messages_in_total", listener="tcp") >= 300, 10, "the 300 lines read")
    wait_written(n)
    sigkill(n)
    restart(n)
    # 10 open events, 300 lines, 10 close events.
    assert "320 events recovered" in n.stderr(), f"{first_life}\n--- after the restart ---\n{n.stderr()}"
    check_prefixes([], drain_after_restart(n), written, exact=True)
    assert "cannot be used" not in first_life, first_life
