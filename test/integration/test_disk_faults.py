"""Disk faults under the disk queue (issue 20, docs/decisions.md "Store and forward"): a state
directory that fills up (a small tmpfs), one that is read-only from the start, and one that turns
read-only while the node runs (ext4 with errors=remount-ro on a loop device, given an error). What a
user sees: the node goes on, logs the topic and the error, keeps what it holds in memory (or counts
what it loses), says so on /readyz and /metrics, and logs to disk again once it can.

These tests mount file systems, so they need root (CAP_SYS_ADMIN); they skip otherwise."""

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

import harness
from harness import Session
from test_disk_queue import collect_frames, disk_node
from test_mesh import restart
from test_queue import segments, send_lines, state_dir

RETRY_S = 5  # queue_log.cpp kLogRetrySeconds: a failed log is tried again this often
NO_SPACE = "No space left on device"
READ_ONLY = "Read-only file system"


def _run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


class Mounts:
    """File systems mounted for one test; unmounted at its end, after its nodes stopped (a node
    holding files open would keep the mount busy)."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.points = []

    def _mount(self, *args):
        path = args[-1]
        r = _run("mount", *args)
        if r.returncode != 0:
            pytest.skip(f"cannot mount ({' '.join(args)}): {r.stderr.strip() or r.returncode}")
        self.points.append(path)

    def tmpfs(self, path, size="2m"):
        self._mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path)

    def read_only(self, path):
        r = _run("mount", "-o", "remount,ro", path)
        assert r.returncode == 0, f"remount,ro {path}: {r.stderr.strip()}"

    def ext4(self, path, image, size_mb=16):
        """An ext4 file system in `image` on a loop device at `path`, which turns read-only at its
        first error (errors=remount-ro), as a failing disk does."""
        if not shutil.which("mkfs.ext4"):
            pytest.skip("mkfs.ext4 is not installed")
        with open(image, "wb") as f:
            f.truncate(size_mb << 20)
        r = _run("mkfs.ext4", "-q", "-F", image)
        assert r.returncode == 0, f"mkfs.ext4: {r.stderr}"
        self._mount("-o", "loop,errors=remount-ro", image, path)

    def ext4_error(self, path):
        """Gives the ext4 file system at `path` an error: with errors=remount-ro the kernel turns it
        read-only at once, files open for writing included (a plain remount,ro refuses while a file
        is open for writing: EBUSY)."""
        dev = _run("findmnt", "-n", "-o", "SOURCE", path).stdout.strip()
        trigger = f"/sys/fs/ext4/{os.path.basename(dev)}/trigger_fs_error"
        if not os.path.exists(trigger):
            pytest.skip(f"this kernel has no {trigger}")
        with open(trigger, "w") as f:
            f.write("meshgate test: read-only from here on\n")

    def close(self):
        errors = self.nodes.stop_all() if self.points else []
        for p in reversed(self.points):
            if _run("umount", p).returncode != 0:
                _run("umount", "-l", p)  # detached now, freed when the last user goes
        self.points = []
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def mounts(nodes):
    m = Mounts(nodes)
    yield m
    m.close()


def fill(d, leave_kib, name="filler"):
    """Fills the file system of `d` with a file `d/<name>` until `leave_kib` KiB are left free."""
    st = os.statvfs(d)
    free = st.f_bavail * st.f_frsize
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        want = max(0, free - leave_kib * 1024)
        chunk = b"\0" * (64 << 10)
        try:
            while want > 0:
                want -= f.write(chunk[:min(len(chunk), want)])
                f.flush()
        except OSError:  # leave_kib = 0: written until full
            pass
    return path


def lines(tag, count, pad=1000):
    return [f"{tag}-{i:05d}-" + "x" * pad for i in range(count)]


def sender(port, payloads):
    """One client sending `payloads` in the background (a paused topic does not read it): the thread
    ends when the node closes the connection."""
    def run():
        try:
            send_lines(port, payloads)
        except OSError:
            pass  # the node stopped while the client waited
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def stderr_text(n):
    try:
        with open(n.stderr_path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_log(n, pattern, timeout=5.0, after=0):
    """Waits for a line of the node's stderr log (from character `after` on) matching `pattern`."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(stderr_text(n), after)
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s\n{n.describe()}")
        time.sleep(0.05)


def failed_line(topic, reason):
    return rf'error queue: topic "{topic}": its disk log failed: \S+: {reason}'


def metric(n, name, **labels):
    return harness.metric_value(n, name, **labels)


def readyz(n):
    r = harness.http_request(n.api_port, "GET", "/readyz")
    return r.status, r.body.decode("utf-8", "replace")


def assert_failed_state(n, topic="client", errors_before=0):
    """/readyz and /metrics while `topic`'s log is failed."""
    status, body = readyz(n)
    assert status == 503 and "queue log" in body and topic in body, \
        f"/readyz while the log of {topic!r} is failed: {status} {body!r}"
    assert metric(n, "meshgate_queue_disk_failed", topic=topic) == 1
    errors = metric(n, "meshgate_queue_disk_errors_total")
    assert errors is not None and errors >= errors_before + 1, f"meshgate_queue_disk_errors_total: {errors}"


def assert_working_state(n, topic="client"):
    status, body = readyz(n)
    assert status == 200, f"/readyz once the log of {topic!r} works: {status} {body!r}"
    assert metric(n, "meshgate_queue_disk_failed", topic=topic) == 0


def frame_data(events):
    return [e["p"]["d"]["frame"]["data"] for e in events]


async def drain(cons, n, count, what):
    """Collects `count` frames, then checks that nothing more waits on the node."""
    got = frame_data(await collect_frames(cons, count, timeout=15, what=what))
    await asyncio.sleep(0.2)
    assert not cons.events, f"{what}: more events than sent: {cons.events[:3]!r}"
    assert metric(n, "meshgate_queue_depth", topic="client") == 0
    return got


# ---- disk full (ENOSPC) ----

async def test_disk_full_keeps_events_in_memory_logs_it_and_logs_to_disk_again_once_space_is_freed(nodes, mounts):
    """overflow = drop: the node goes on in memory; no event is lost while its memory bound holds
    them; once space is freed the topic logs again within the retry interval, and what it logs then
    survives a SIGKILL."""
    d = state_dir(nodes, "full")
    mounts.tmpfs(d, "2m")
    filler = fill(d, leave_kib=256)
    n, _ = disk_node(nodes, "full", queue={"overflow": "drop"}, listener={"events": "off"})
    sent = lines("full", 1000)  # ~1 MB: four times what fits
    await asyncio.to_thread(send_lines, n.port("tcp"), sent)

    wait_log(n, failed_line("client", NO_SPACE))
    assert n.alive()
    assert_failed_state(n)
    harness.wait_metric(n, "meshgate_queue_depth", lambda v: v == len(sent), topic="client")
    assert metric(n, "meshgate_queue_dropped_total", topic="client") == 0

    async with Session(n) as s:
        cons = await s.consumer()
        assert await drain(cons, n, len(sent), "events sent while the disk filled up") == sent

    # Space again: within the retry interval the topic logs to disk again.
    mark = len(stderr_text(n))
    os.unlink(filler)
    await asyncio.to_thread(wait_log, n, r'info  queue: topic "client": its disk log is written again',
                            RETRY_S + 2, mark)
    assert_working_state(n)
    later = lines("later", 200, pad=100)
    await asyncio.to_thread(send_lines, n.port("tcp"), later)
    await asyncio.sleep(0.3)  # well past fsync_interval (5 ms)
    assert "failed" not in stderr_text(n)[mark:], "the log failed again with space free"
    n.kill()
    restart(n)
    async with Session(n) as s:
        cons = await s.consumer()
        got = await collect_frames(cons, len(later), what="events logged after the space was freed")
        assert frame_data(got) == later
        assert all(e["p"].get("r") is True for e in got)
        await cons.no_event(lambda e: True, 0.3)  # what was consumed before the SIGKILL stays consumed


async def test_disk_full_pauses_the_producers_until_space_is_freed_and_loses_nothing(nodes, mounts):
    """overflow = pause (the default): the failed log pauses the topic's producers until it can be
    written again; a retry while the disk is still full does not count as working again."""
    d = state_dir(nodes, "full-pause")
    mounts.tmpfs(d, "2m")
    filler = fill(d, leave_kib=256)
    n, _ = disk_node(nodes, "full-pause", listener={"events": "off"})
    sent = lines("pause", 1000)
    t = sender(n.port("tcp"), sent)

    m = wait_log(n, failed_line("client", NO_SPACE))
    wait_log(n, r'queue: topic "client": its disk log failed; its producing clients are paused')
    harness.wait_metric(n, "meshgate_queue_paused", lambda v: v == 1, topic="client")
    pauses = metric(n, "meshgate_queue_pauses_total", topic="client")

    # Past a retry with the disk full to the last byte: still failed, still paused, and not said
    # otherwise (the retry makes its new segment first, and cannot).
    rest = fill(d, leave_kib=0, name="rest")
    await asyncio.sleep(RETRY_S + 1.5)
    assert n.alive()
    log = stderr_text(n)[m.end():]
    assert "its disk log is written again" not in log, f"a retry on a full disk was logged as working:\n{log}"
    assert metric(n, "meshgate_queue_paused", topic="client") == 1
    assert metric(n, "meshgate_queue_pauses_total", topic="client") == pauses, "the producers were let go"
    assert_failed_state(n)

    mark = len(stderr_text(n))
    os.unlink(filler)
    os.unlink(rest)
    await asyncio.to_thread(wait_log, n, r'queue: topic "client": its disk log is written again', RETRY_S + 2, mark)
    assert_working_state(n)
    async with Session(n) as s:
        cons = await s.consumer()
        assert await drain(cons, n, len(sent), "events of a paused producer") == sent
    assert metric(n, "meshgate_queue_dropped_total", topic="client") == 0
    await asyncio.to_thread(t.join, 10)
    assert not t.is_alive(), "the producer was not read to its end"


async def test_disk_full_with_a_backlog_on_disk_only_counts_the_events_it_loses(nodes, mounts):
    """A memory window of 100: what passes it goes to the log only. Those the full disk did not
    take are lost, and each is counted (meshgate_queue_dropped_total) and logged; every other event
    reaches the consumer, in order."""
    d = state_dir(nodes, "full-window")
    mounts.tmpfs(d, "2m")
    fill(d, leave_kib=256)
    n, _ = disk_node(nodes, "full-window", queue={"overflow": "drop", "max_events": 100},
                     listener={"events": "off"})
    sent = lines("win", 1000)
    await asyncio.to_thread(send_lines, n.port("tcp"), sent)

    wait_log(n, failed_line("client", NO_SPACE))
    m = wait_log(n, r'error queue: topic "client": (\d+) events lost: its disk log failed before they were written')
    assert int(m.group(1)) > 0
    async with Session(n) as s:
        cons = await s.consumer()
        await asyncio.to_thread(harness.wait_metric, n, "meshgate_queue_depth", lambda v: v == 0, 10, topic="client")
        delivered = metric(n, "meshgate_queue_delivered_total", topic="client")
        got = frame_data(await collect_frames(cons, int(delivered), what="events that were not lost"))
    dropped = metric(n, "meshgate_queue_dropped_total", topic="client")
    assert dropped >= int(m.group(1))
    assert len(got) + dropped == len(sent), f"{len(got)} delivered + {dropped} dropped != {len(sent)} sent"
    assert got == sorted(got), "events out of order"
    assert set(got) <= set(sent)


async def test_a_stop_while_the_disk_is_full_counts_the_events_it_cannot_keep(nodes, mounts):
    """A graceful stop keeps what no consumer took in the log; with the log failed it cannot: every
    event is either delivered after the next start or counted as lost in the stopping node's log."""
    d = state_dir(nodes, "full-stop")
    mounts.tmpfs(d, "2m")
    filler = fill(d, leave_kib=256)
    n, _ = disk_node(nodes, "full-stop", queue={"overflow": "drop"}, listener={"events": "off"})
    sent = lines("stop", 1000)
    await asyncio.to_thread(send_lines, n.port("tcp"), sent[:900])
    wait_log(n, failed_line("client", NO_SPACE))
    await asyncio.to_thread(send_lines, n.port("tcp"), sent[900:])  # taken in memory while failed
    harness.wait_metric(n, "meshgate_queue_depth", lambda v: v == len(sent), topic="client")
    n.terminate()
    assert await asyncio.to_thread(n.wait_exit) is None
    log = stderr_text(n)
    assert "delivered after the next start" not in log, f"events claimed kept in a failed log:\n{log}"
    m = re.search(r"error queue: (\d+) events lost at shutdown", log)
    assert m, f"no count of the events lost at the stop:\n{log}"
    lost = int(m.group(1))

    os.unlink(filler)
    restart(n)
    kept = int(metric(n, "meshgate_queue_depth", topic="client"))
    assert kept + lost == len(sent), f"{kept} kept + {lost} counted lost != {len(sent)} sent"
    async with Session(n) as s:
        cons = await s.consumer()
        assert await drain(cons, n, kept, "events kept over the stop") == sent[:kept]


# ---- read-only state directory ----

async def test_a_read_only_state_directory_is_refused_at_start_with_a_clear_error(nodes, mounts):
    d = state_dir(nodes, "ro-start")
    mounts.tmpfs(d, "1m")
    mounts.read_only(d)
    with pytest.raises(AssertionError, match="exited with"):
        disk_node(nodes, "ro-start")
    n = nodes.nodes.pop()  # it never ran: nothing to stop at the end
    rc = n.proc.returncode
    assert rc is not None and rc > 0, f"exit status {rc}: expected an error exit, not a signal"
    assert f"[node] state_dir = {d}: not a writable directory: {READ_ONLY}" in stderr_text(n)


async def test_a_state_directory_turning_read_only_while_running(nodes, mounts):
    """The file system under the log turns read-only with the segment open (ext4 errors=remount-ro):
    the node logs the topic and the error, goes on in memory, delivers every event, and is not
    ready while its log cannot be written."""
    d = state_dir(nodes, "ro-run")
    mounts.ext4(d, os.path.join(str(nodes.basedir), "ro-run.img"))
    n, _ = disk_node(nodes, "ro-run", queue={"overflow": "drop"}, listener={"events": "off"})
    first = lines("first", 100, pad=100)
    await asyncio.to_thread(send_lines, n.port("tcp"), first)
    await asyncio.sleep(0.3)
    assert segments(d), "the first events were not logged"
    assert_working_state(n)
    errors = metric(n, "meshgate_queue_disk_errors_total")

    mounts.ext4_error(d)
    second = lines("second", 100, pad=100)
    await asyncio.to_thread(send_lines, n.port("tcp"), second)
    wait_log(n, failed_line("client", READ_ONLY))
    assert n.alive()
    assert_failed_state(n, errors_before=errors)

    async with Session(n) as s:
        cons = await s.consumer()
        assert await drain(cons, n, len(first) + len(second), "events from memory") == first + second
    assert metric(n, "meshgate_queue_dropped_total", topic="client") == 0
    await asyncio.sleep(RETRY_S + 1)  # a retry on a read-only disk: still failed
    assert_failed_state(n, errors_before=errors)
