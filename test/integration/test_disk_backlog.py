"""A consumer absent for a long run (issue 20): 2,000,000 events (about 500 MB in the log) pile up in
a disk topic with nobody consuming, then a consumer comes and gets every one, each producer's in
order, while the server's memory does not grow with the backlog.

Not quick (about 7 s here, 600 MB written): meson runs it as its own entry, test_disk_backlog, in suite 'scale'.
"""

import os
import socket
import threading
import time

import harness
from test_disk_crash import metric, wait_for, wait_written, walk_frames, ws_frame, ws_upgrade
from test_disk_queue import disk_node

PRODUCERS = 4
EVENTS = 2_000_000
LINE = 220  # bytes a line: a record is 28 bytes + the JSON of "d" around it (~40) + the line: ~290 bytes


def rss_bytes(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/PID/status")


def lines_of(p, first, count):
    """Producer p's lines first..first+count-1: "p<p> <n:07d> " padded with x to LINE bytes."""
    pad = b"x" * (LINE - len(f"p{p} 0000000 "))
    return b"".join(b"p%d %07d %s\n" % (p, n, pad) for n in range(first, first + count))


def send(socks, first, per):
    """Each producer writes its lines first..first+per-1 in one sendall (threads: the server reads
    them in parallel)."""
    threads = [threading.Thread(target=s.sendall, args=(lines_of(p, first, per),), daemon=True)
               for p, s in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a producer could not write its lines within 120 s"


def consume(port, want, timeout):
    """A /ws/v1 consumer without acknowledgements on a raw socket: walks the frames, takes the
    producer and the number out of each event and checks that each producer's numbers come 0, 1, 2,
    ... Returns (events, seconds)."""
    sock, rest = ws_upgrade(port)
    sock.sendall(ws_frame(b'{"m":"queue.pop","p":{"t":["client"]},"i":1}'))
    buf = bytearray(rest)
    expected = [0] * PRODUCERS
    got = 0
    key = b'"data":"p'
    t0 = time.monotonic()
    deadline = t0 + timeout
    sock.settimeout(5)
    try:
        while got < want:
            assert time.monotonic() < deadline, f"{got} of {want} events within {timeout} s"
            chunk = sock.recv(4 << 20)
            assert chunk, f"the server closed the consumer's connection after {got} events"
            buf += chunk
            gen = walk_frames(buf)
            while True:
                try:
                    op, payload = next(gen)
                except StopIteration as e:
                    del buf[:e.value]
                    break
                i = payload.find(key)
                if i < 0:
                    assert b'"E":null' in payload or op != 0x1, f"an unexpected message: {payload[:200]!r}"
                    continue
                p = payload[i + 9] - 48
                n = int(payload[i + 11:i + 18])
                assert n == expected[p], f"producer {p}: event {n} where {expected[p]} was next (after {got} events)"
                expected[p] += 1
                got += 1
    finally:
        sock.close()
    return got, time.monotonic() - t0


def test_two_million_events_wait_on_disk_for_a_consumer_and_memory_stays_bounded(nodes):
    t_start = time.monotonic()
    n, d = disk_node(nodes, "backlog", listener={"events": "off"})
    rss = {"start": rss_bytes(n)}
    socks = [socket.create_connection(("127.0.0.1", n.port("tcp")), timeout=60) for _ in range(PRODUCERS)]
    per = EVENTS // PRODUCERS
    try:
        # Two halves, with the memory looked at after each: a backlog twice as long must not cost more.
        for half in (1, 2):
            send(socks, (half - 1) * per // 2, per // 2)
            want = half * EVENTS // 2
            wait_for(lambda: metric(n, "meshgate_queue_disk_events", topic="client") >= want, 60,
                     f"{want} events in the log", interval=0.5)
            rss[f"half {half}"] = rss_bytes(n)
        wait_written(n)
        t_in = time.monotonic()
        disk = metric(n, "meshgate_queue_disk_bytes", topic="client")
        on_disk = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(d, "queue"))
                      for f in fs)
        assert disk >= 500e6 and on_disk >= 500e6, f"the log holds {disk} bytes ({on_disk} on disk): not the backlog"
        assert metric(n, "meshgate_queue_depth", topic="client") == EVENTS
        assert metric(n, "meshgate_queue_dropped_total", topic="client") == 0
    finally:
        for s in socks:
            s.close()
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak[0] = max(peak[0], rss_bytes(n))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        got, secs = consume(n.api_port, EVENTS, 240)
    finally:
        stop.set()
        sampler.join(2)
    rss["consuming (peak)"] = peak[0]
    assert got == EVENTS
    wait_for(lambda: metric(n, "meshgate_queue_disk_events", topic="client") == 0, 10, "the log consumed")
    # Every segment goes once its events are consumed (the last with the store's next round).
    wait_for(lambda: not any(f.endswith(".seg") for f in os.listdir(os.path.join(d, "queue", "client"))), 10,
             "the consumed segments deleted")
    mb = {k: round(v / 1e6, 1) for k, v in rss.items()}
    print(f"\nbacklog of {EVENTS} events, {disk / 1e6:.0f} MB in the log: in {t_in - t_start:.1f} s, consumed in "
          f"{secs:.1f} s ({EVENTS / secs:,.0f} events/s); RSS MB {mb}; whole test {time.monotonic() - t_start:.1f} s")
    # The bound. What memory may hold does not depend on the backlog: the topic's window
    # ([queue] max_events 10,000 / max_bytes 16 MiB), what the workers may hold for the hub
    # (EventIntake::kBacklogHigh), the records not written yet (paused past max_bytes: clients here
    # write ~1.3 M events/s, faster than this disk takes them), the store's reads and the consumer's
    # output buffer; plus one byte an event in the log (TopicLog's done_, 2 MB here). Measured here:
    # start 7 MB, 35-54 MB after the first million, 38-58 MB after the second, 59-71 MB at most while the
    # consumer reads. Before the records not written were bounded it was 281 MB after the second
    # million (and grew with a longer burst); the backlog in memory would be ~700 MB.
    bound = 100e6
    for k, v in rss.items():
        assert v - rss["start"] < bound, f"RSS {k}: {v / 1e6:.0f} MB, start {rss['start'] / 1e6:.0f} MB: grew past " \
                                         f"{bound / 1e6:.0f} MB with the backlog ({mb})"
    assert rss["half 2"] - rss["half 1"] < 25e6, f"a backlog twice as long took {(rss['half 2'] - rss['half 1']) / 1e6:.0f}" \
                                                 f" MB more ({mb})"
    assert harness.metric_value(n, "meshgate_queue_dropped_total", topic="client") == 0
