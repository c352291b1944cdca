"""The disk queue (issue 20, docs/queue-log.md): [queue] store = disk keeps client events in a
segmented log in the state directory until a consumer has them, across SIGKILL, with a memory
window and the rest read back from disk in order."""

import asyncio
import os
import subprocess

import harness
from harness import Session, ev_frame_of
from test_mesh import restart
from test_queue import send_lines, state_dir


def disk_node(nodes, name, queue=None, node=None, listener=None):
    d = state_dir(nodes, name)
    cfg = {"node": {"drain_timeout": 1, "state_dir": d, **(node or {})},
           "queue": {"store": "disk", **(queue or {})},
           "listener.tcp": {"topic": "client", **(listener or {})}}
    return nodes.start(cfg), d


def frames_of(events, path_client=None):
    return [e["p"]["d"]["frame"]["data"] for e in events if "frame" in e["p"]["d"]]


async def collect_frames(cons, count, timeout=30, what="frames"):
    """Waits for `count` frame events; returns them in arrival order."""
    got = []
    for _ in range(count):
        ev = await cons.wait_event(lambda e: "frame" in e["p"]["d"], timeout=timeout,
                                   what=f"{what}: frame {len(got) + 1} of {count}")
        got.append(ev)
    return got


async def test_events_sent_before_a_sigkill_are_all_delivered_after_the_restart_in_order(nodes):
    n, d = disk_node(nodes, "disk-kill")
    lines = [f"event {i:04d}" for i in range(500)]
    await asyncio.to_thread(send_lines, n.port("tcp"), lines)
    await asyncio.sleep(0.3)  # well past fsync_interval (5 ms): every event is synced
    n.kill()
    assert os.listdir(os.path.join(d, "queue")), "no topic directory was written"
    restart(n)
    async with Session(n) as s:
        cons = await s.consumer()
        got = await collect_frames(cons, len(lines), what="events from before the SIGKILL")
        assert [e["p"]["d"]["frame"]["data"] for e in got] == lines
        assert all(e["p"].get("r") is True for e in got), "events kept over a restart are marked redelivered"


async def test_events_delivered_at_once_to_a_waiting_consumer_are_not_delivered_again_after_a_sigkill(nodes):
    # A consumer without acknowledgements, ready when the events come: each goes straight to it (the
    # hub's no-copy path), and its delivery consumes its record, so the log keeps nothing to replay.
    n, d = disk_node(nodes, "disk-direct")
    lines = [f"direct {i:04d}" for i in range(500)]
    async with Session(n) as s:
        cons = await s.consumer()
        await asyncio.to_thread(send_lines, n.port("tcp"), lines)
        got = await collect_frames(cons, len(lines), what="events to a waiting consumer")
        assert frames_of(got) == lines
        await asyncio.sleep(0.3)  # well past fsync_interval: the cursor is synced past them
        [t] = [t for t in harness.api_ok(n, "node.stats", {})["queue"] if t["topic"] == "client"]
        assert t["disk_events"] == 0, t
    n.kill()
    restart(n)
    async with Session(n) as s:
        cons = await s.consumer()
        await cons.no_event(lambda e: "frame" in e["p"]["d"], 1.0)


async def test_a_backlog_past_the_memory_window_is_read_back_from_disk_in_order(nodes):
    n, d = disk_node(nodes, "disk-window", queue={"max_events": 100})
    lines = [f"backlog {i:05d}" for i in range(3000)]
    await asyncio.to_thread(send_lines, n.port("tcp"), lines)
    await asyncio.sleep(0.3)
    # No consumer yet: the topic holds its window in memory and the rest on disk only.
    assert harness.metric_value(n, "meshgate_queue_depth", topic="client") >= len(lines)
    # node.stats (and the dashboard's "on disk" column) say what the log holds.
    [t] = [t for t in harness.api_ok(n, "node.stats", {})["queue"] if t["topic"] == "client"]
    assert t["disk_events"] >= len(lines) and t["disk_bytes"] > len(lines) * len("backlog 00000"), t
    assert t["disk_failed"] is False, t
    async with Session(n) as s:
        cons = await s.consumer()
        got = await collect_frames(cons, len(lines), what="the backlog")
        assert [e["p"]["d"]["frame"]["data"] for e in got] == lines
        assert not any(e["p"].get("r") for e in got), "nothing here was delivered before"


def record_offsets(path):
    """Where each record of a segment starts (docs/queue-log.md: a 16-byte header, then records of
    an 8-byte head, u32 body_len and u32 crc32c, and body_len bytes)."""
    import struct
    data = open(path, "rb").read()
    at, out = 16, []
    while at + 8 <= len(data):
        (body_len,) = struct.unpack_from("<I", data, at)
        out.append(at)
        at += 8 + body_len
    return out, len(data)


async def test_a_flipped_byte_and_a_torn_tail_lose_only_their_records_counted_and_logged(nodes):
    from test_queue import segments
    n, d = disk_node(nodes, "disk-damage")
    lines = [f"event {i:04d}" for i in range(200)]
    await asyncio.to_thread(send_lines, n.port("tcp"), lines)
    await asyncio.sleep(0.3)
    n.kill()
    segs = segments(d)
    assert len(segs) == 1, segs
    path = os.path.join(d, "queue", "client", segs[0])
    offsets, size = record_offsets(path)
    # The client's open event, its 200 frames, its close event.
    assert len(offsets) == len(lines) + 2, f"{len(offsets)} records in {path}"
    with open(path, "r+b") as f:
        f.seek(offsets[1 + 49] + 8 + 20 + 2)  # a byte of event 0049's data
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x20]))
        f.truncate(size - 5)  # the close event cut short, as a power cut leaves it
    restart(n)
    async with Session(n) as s:
        cons = await s.consumer()
        want = [line for i, line in enumerate(lines) if i != 49]
        got = await collect_frames(cons, len(want), what="the intact events")
        assert [e["p"]["d"]["frame"]["data"] for e in got] == want
        await cons.no_event(lambda e: "frame" in e["p"]["d"] or e["p"]["d"].get("event") == "close", 0.5)
    assert harness.metric_value(n, "meshgate_queue_recovery_corrupt_records_total") == 1
    assert harness.metric_value(n, "meshgate_queue_recovery_torn_bytes_total") > 0
    check = subprocess.run(["promtool", "check", "metrics"], input=harness.metrics(n).encode(), capture_output=True,
                           timeout=30)
    assert b"error while linting" not in check.stderr and check.returncode in (0, 1), check.stderr.decode()[:2000]
    log = n.stderr(tail=100000)
    assert "1 records failed their checksum" in log, log
    assert "torn tail" in log, log
