"""Queue events and consumers on /ws/v1 (PROTOCOL.md §4, §5.3): queue.pop / unpop / ack, topics,
competing consumers, buffering without consumers, drops, acknowledged mode, drain."""

import asyncio
import json
import time

import pytest

import harness
from harness import (Session, TcpClient, ev_close_of, ev_frame_of, ev_open_from, frame_of, wait_metric,
                     ws_connect, ws_drain_until_closed)


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({
        "node": {"id": 9},
        "listener.tcp": {"topic": "devices"},
        "listener.quiet": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "quiet", "events": False},
    })


def data_of(ev):
    d = ev["p"]["d"]
    return frame_of(ev)["data"] if "frame" in d else f"<{d['event']}>"


# ---- pop / unpop / ack requests ----

async def test_pop_twice_202_unpop_twice_203(node):
    async with Session(node) as s:
        api = await s.api()
        assert await api.ok("queue.pop", {"t": ["t-a"]}) == {"s": True}
        e = await api.err("queue.pop", {"t": ["t-b"]}, 202)
        assert e["m"]
        assert await api.ok("queue.unpop", {}) == {"s": True}
        await api.err("queue.unpop", {}, 203)
        assert await api.ok("queue.pop", {"t": ["t-a", "t-b"]}) == {"s": True}
        assert await api.ok("queue.unpop", {}) == {"s": True}


async def test_unpop_without_pop_203(node):
    async with Session(node) as s:
        api = await s.api()
        await api.err("queue.unpop", {}, 203)


@pytest.mark.parametrize("p", [
    {"t": "client"}, {"t": []}, {"t": [f"t{k}" for k in range(65)]}, {"t": [1]}, {"t": ["ok", None]},
    {}, {"t": None}, {"t": ["client"], "ack": "yes"},
])
async def test_pop_bad_topics_101(node, p):
    async with Session(node) as s:
        api = await s.api()
        await api.err("queue.pop", p, 101)
        # A failed pop leaves the connection not popping.
        await api.err("queue.unpop", {}, 203)


async def test_pop_64_topics_ok(node):
    async with Session(node) as s:
        api = await s.api()
        assert await api.ok("queue.pop", {"t": [f"t{k}" for k in range(64)]}) == {"s": True}
        assert await api.ok("queue.unpop", {}) == {"s": True}


async def test_queue_methods_are_per_connection(node):
    async with Session(node) as s:
        a = await s.api()
        b = await s.api()
        await a.pop(["client"])
        assert await b.ok("queue.pop", {"t": ["client"]}) == {"s": True}  # another connection: no 202
        await b.ok("queue.unpop", {})
        await a.err("queue.pop", {"t": ["x"]}, 202)


async def test_ack_bad_params_101(node):
    async with Session(node) as s:
        api = await s.consumer(["ack-bad"], ack=True)
        for p in ({"k": 5}, {}, {"k": ["a"]}, {"k": None}):
            await api.err("queue.ack", p, 101)
        assert await api.ok("queue.ack", {"k": []}) == {"s": True}


# ---- event shape and topics ----

async def test_event_envelope_shape(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, ev = await s.ws_client(cons)
        assert set(ev) == {"e", "p", "id"} and ev["e"] == "queue.pop" and ev["id"] is None, ev
        assert set(ev["p"]) == {"n", "c", "t", "d"}, ev
        assert ev["p"]["n"] == 9 and ev["p"]["t"] == "client"
        await ws.send("x")
        ev = await cons.wait_event(ev_frame_of(cid))
        assert "k" not in ev["p"], "k only in ack mode"


async def test_events_go_to_the_listener_topic(node):
    async with Session(node) as s:
        devices = await s.consumer(["devices"])
        clients = await s.consumer(["client"])
        ws, wcid, _ = await s.ws_client(clients)
        tcp, tcid, tev = await s.tcp_client(devices)
        assert tev["p"]["t"] == "devices"
        await ws.send("from ws")
        await tcp.send("from tcp")
        assert (await clients.wait_event(ev_frame_of(wcid)))["p"]["t"] == "client"
        assert (await devices.wait_event(ev_frame_of(tcid)))["p"]["t"] == "devices"
        await devices.no_event(ev_frame_of(wcid), 0.3)
        await clients.no_event(lambda e: e["p"]["c"] == tcid, 0.1)


async def test_one_pop_several_topics(node):
    async with Session(node) as s:
        cons = await s.consumer(["client", "devices"])
        ws, wcid, _ = await s.ws_client(cons)
        tcp, tcid, _ = await s.tcp_client(cons)
        await ws.send("w")
        await tcp.send("t")
        assert (await cons.wait_event(ev_frame_of(wcid)))["p"]["t"] == "client"
        assert (await cons.wait_event(ev_frame_of(tcid)))["p"]["t"] == "devices"


async def test_events_off_listener(node):
    async with Session(node) as s:
        cons = await s.consumer(["quiet"])
        ws = await ws_connect(node.port("quiet"), "/q")
        try:
            await ws.send("quiet-token")
            ev = await cons.wait_event(lambda e: e["p"]["d"].get("frame", {}).get("data") == "quiet-token")
            cid = ev["p"]["c"]
            assert ev["p"]["t"] == "quiet"
        finally:
            await ws.close()
        await cons.no_event(lambda e: e["p"]["c"] == cid and "event" in e["p"]["d"], 0.5)
        await cons.no_event(lambda e: e["p"]["t"] == "quiet" and "event" in e["p"]["d"], 0)


# ---- delivery ----

async def wait_any(consumers, pred, timeout=5, what="event"):
    """(index of consumer, event) for the first consumer holding a matching event."""
    deadline = time.monotonic() + timeout
    for _ in range(10000):
        for idx, c in enumerate(consumers):
            got = c.take_events(pred)
            if got:
                for extra in got[1:]:
                    c.events.append(extra)
                return idx, got[0]
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not received by any consumer within {timeout}s")


async def test_competing_consumers(node):
    async with Session(node) as s:
        consumers = [await s.consumer(), await s.consumer()]
        clients = []
        for _ in range(16):
            ws = await ws_connect(node.port("ws"), "/compete")
            s.closers.append(ws.close)
            idx, ev = await wait_any(consumers, ev_open_from(ws.local_address[1]), what="open event")
            clients.append((ws, ev["p"]["c"], idx))
        for ws, cid, _ in clients:
            for k in range(3):
                await ws.send(f"{cid}:{k}")
        for ws, cid, owner in clients:
            for k in range(3):
                idx, ev = await wait_any(consumers, ev_frame_of(cid, f"{cid}:{k}"), what=f"message {k} of {cid}")
                assert idx == owner, f"events of client {cid} went to different consumers"
        await asyncio.sleep(0.3)
        for c in consumers:
            dup = [e for e in c.events if any(e["p"]["c"] == cid for _, cid, _ in clients)]
            assert not dup, f"duplicate or extra events: {dup[:3]!r}"
        owners = {owner for _, _, owner in clients}
        assert owners == {0, 1}, "16 clients all went to one of two consumers: events are not shared"
        # Messages keep their order per client even with two consumers.
        for ws, cid, owner in clients[:4]:
            await ws.close()
            idx, ev = await wait_any(consumers, ev_close_of(cid), what=f"close event of {cid}")
            assert idx == owner


async def test_consumer_leaves_others_take_over(node):
    async with Session(node) as s:
        a = await s.consumer()
        b = await s.consumer()
        ws = await ws_connect(node.port("ws"), "/takeover")
        s.closers.append(ws.close)
        idx, ev = await wait_any([a, b], ev_open_from(ws.local_address[1]))
        cid = ev["p"]["c"]
        owner, other = (a, b) if idx == 0 else (b, a)
        await owner.close()
        await asyncio.sleep(0.2)
        await ws.send("after the owner left")
        ev = await other.wait_event(ev_frame_of(cid, "after the owner left"))
        assert ev["p"]["c"] == cid


async def test_events_wait_until_a_consumer_pops(node):
    async with Session(node) as s:
        ws = await ws_connect(node.port("ws"), "/early")
        s.closers.append(ws.close)
        port = ws.local_address[1]
        for k in range(3):
            await ws.send(f"early{k}")
        await asyncio.sleep(0.3)
        cons = await s.consumer()
        ev = await cons.wait_event(ev_open_from(port, cons=cons), what="buffered open event")
        cid = ev["p"]["c"]
        got = [data_of(await cons.wait_event(ev_frame_of(cid))) for _ in range(3)]
        assert got == ["early0", "early1", "early2"]


async def test_unpop_stops_delivery_until_next_pop(node):
    async with Session(node) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        assert await cons.ok("queue.unpop", {}) == {"s": True}
        await asyncio.sleep(0.1)
        await ws.send("while away")
        await cons.no_event(ev_frame_of(cid), 0.5)
        await cons.pop()
        ev = await cons.wait_event(ev_frame_of(cid, "while away"))
        assert ev["p"]["c"] == cid


# ---- acknowledged mode ----

async def test_ack_mode_events_carry_k(node):
    async with Session(node) as s:
        cons = await s.consumer(ack=True)
        ws = await ws_connect(node.port("ws"), "/ack")
        s.closers.append(ws.close)
        ev = await cons.wait_event(ev_open_from(ws.local_address[1], cons=cons))
        cid = ev["p"]["c"]
        ks = [ev["p"]["k"]]
        for k in range(3):
            await ws.send(f"a{k}")
        for k in range(3):
            ev = await cons.wait_event(ev_frame_of(cid, f"a{k}"))
            ks.append(ev["p"]["k"])
        assert all(isinstance(k, int) for k in ks), ks
        assert len(set(ks)) == 4, f"sequence numbers not distinct: {ks}"
        assert await cons.ok("queue.ack", {"k": ks}) == {"s": True}


async def test_unacked_events_redelivered_after_disconnect(node):
    async with Session(node) as s:
        a = await s.consumer(ack=True)
        ws = await ws_connect(node.port("ws"), "/redeliver")
        s.closers.append(ws.close)
        ev = await a.wait_event(ev_open_from(ws.local_address[1], cons=a))
        cid = ev["p"]["c"]
        await a.ok("queue.ack", {"k": [ev["p"]["k"]]})
        await ws.send("r1")
        await ws.send("r2")
        for d in ("r1", "r2"):
            await a.wait_event(ev_frame_of(cid, d))
        await a.close()  # without acknowledging r1, r2
        b = await s.consumer(ack=True)
        got = []
        for _ in range(2):
            ev = await b.wait_event(ev_frame_of(cid))
            got.append(frame_of(ev)["data"])
            await b.ok("queue.ack", {"k": [ev["p"]["k"]]})
        assert sorted(got) == ["r1", "r2"]
        await b.close()
        c = await s.consumer(ack=True)
        await c.no_event(ev_frame_of(cid), 0.7)
        # The open event was acknowledged by a: not delivered again.
        await c.no_event(lambda e: e["p"]["c"] == cid and e["p"]["d"].get("event") == "open", 0)


async def test_ack_timeout_redelivers_to_another_consumer(nodes):
    n = nodes.start({"queue": {"ack_timeout": 1}})
    async with Session(n) as s:
        cons = [await s.consumer(ack=True), await s.consumer(ack=True)]
        ws = await ws_connect(n.port("ws"), "/slow")
        s.closers.append(ws.close)
        port = ws.local_address[1]
        # Acknowledge the open event wherever it lands.
        idx, ev = await wait_any(cons, ev_open_from(port))
        cid = ev["p"]["c"]
        await cons[idx].ok("queue.ack", {"k": [ev["p"]["k"]]})
        await ws.send("need-ack")
        first, ev1 = await wait_any(cons, ev_frame_of(cid, "need-ack"))
        # Not acknowledged: within a few seconds it reaches the other consumer.
        other = 1 - first
        ev2 = await cons[other].wait_event(ev_frame_of(cid, "need-ack"), timeout=5,
                                           what="redelivery after ack_timeout")
        assert frame_of(ev2) == frame_of(ev1)
        await cons[other].ok("queue.ack", {"k": [ev2["p"]["k"]]})
        await asyncio.sleep(2.5)
        again = cons[0].take_events(ev_frame_of(cid, "need-ack")) + cons[1].take_events(ev_frame_of(cid, "need-ack"))
        assert not again, f"delivered again after it was acknowledged: {again!r}"


async def test_max_unacked_holds_events_back(nodes):
    n = nodes.start({"queue": {"max_unacked": 3}})
    async with Session(n) as s:
        cons = await s.consumer(ack=True)
        tcp = await TcpClient.connect(n.port("tcp"))
        s.closers.append(tcp.close)
        await tcp.send_raw(b"".join(b"u%d\n" % k for k in range(5)))
        await asyncio.sleep(0.7)
        held = cons.take_events(lambda e: True)
        assert len(held) == 3, f"expected 3 unacked events (max_unacked), got {[data_of(e) for e in held]}"
        assert [data_of(e) for e in held] == ["<open>", "u0", "u1"]
        await cons.ok("queue.ack", {"k": [e["p"]["k"] for e in held]})
        rest = [await cons.wait_event(lambda e: True) for _ in range(3)]
        assert [data_of(e) for e in rest] == ["u2", "u3", "u4"]
        await cons.ok("queue.ack", {"k": [e["p"]["k"] for e in rest]})


# ---- bounded buffers ----

async def test_oldest_events_dropped_and_counted(nodes):
    n = nodes.start({
        "queue": {"max_events": 5, "max_bytes": 3000, "overflow": "drop"},
        "listener.tcpbig": {"type": "tcp", "bind": "127.0.0.1", "port": None, "framing": "line", "topic": "big"},
    })
    async with Session(n) as s:
        # By count: 1 open + 10 messages into a buffer of 5 events.
        tcp = await TcpClient.connect(n.port("tcp"))
        s.closers.append(tcp.close)
        await tcp.send_raw(b"".join(b"m%d\n" % k for k in range(1, 11)))
        await asyncio.to_thread(wait_metric, n, "meshgate_queue_dropped_total", lambda v: v >= 6, 5, topic="client")
        cons = await s.consumer(["client"])
        got = [data_of(await cons.wait_event(lambda e: True)) for _ in range(5)]
        assert got == ["m6", "m7", "m8", "m9", "m10"]
        await cons.no_event(lambda e: True, 0.3)
        assert harness.metric_value(n, "meshgate_queue_dropped_total", topic="client") == 6
        # Logged as well as counted: the first drop at once, the rest in a line a minute later.
        warned = [ln for ln in open(n.stderr_path).read().splitlines() if 'topic "client" dropped' in ln]
        assert warned and "warn" in warned[0] and "at its bound (max_events 5" in warned[0], warned

        # By bytes: 10 messages of 1000 bytes into 3000 bytes.
        big = await TcpClient.connect(n.port("tcpbig"))
        s.closers.append(big.close)
        sent = ["<open>"] + [chr(ord("a") + k) * 1000 for k in range(10)]
        await big.send_raw(b"".join(m.encode() + b"\n" for m in sent[1:]))
        await asyncio.to_thread(wait_metric, n, "meshgate_queue_dropped_total", lambda v: v >= 1, 5, topic="big")
        await asyncio.sleep(0.3)
        dropped = int(harness.metric_value(n, "meshgate_queue_dropped_total", topic="big"))
        cbig = await s.consumer(["big"])
        got = []
        for _ in range(11):
            try:
                got.append(data_of(await cbig.wait_event(lambda e: True, timeout=0.7)))
            except AssertionError:
                break
        assert 1 <= len(got) <= 3, f"{len(got)} events of 1000 bytes out of a 3000-byte buffer"
        assert got == sent[-len(got):], "the newest events must be kept, in order"
        assert len(got) + dropped == len(sent), f"delivered {len(got)} + dropped {dropped} != {len(sent)}"


# ---- drain ----

async def test_drain_closes_clients_1001_and_flushes_close_events(nodes):
    n = nodes.start({"node": {"drain_timeout": 5}})
    async with Session(n) as s:
        cons = await s.consumer()
        ws, wcid, _ = await s.ws_client(cons)
        tcp, tcid, _ = await s.tcp_client(cons)
        n.terminate()
        code, _ = await ws_drain_until_closed(ws, timeout=5)
        assert code == 1001, f"ws client closed with {code} at drain"
        assert await tcp.expect_eof(), "tcp client not closed at drain"
        for cid in (wcid, tcid):
            ev = await cons.wait_event(ev_close_of(cid), what=f"close event of {cid} at drain")
            assert ev["p"]["d"]["code"] == 1001
    msg = await asyncio.to_thread(n.wait_exit, 10)
    assert msg is None, msg


# ---- drain loses nothing: consumers elsewhere or later, else the topics' disk logs (issues 11, 20) ----

from test_mesh import restart  # noqa: E402  (starts a stopped node again, same config and ports)

def state_dir(nodes, name):
    import os
    d = os.path.join(str(nodes.basedir), name)
    os.makedirs(d, exist_ok=True)
    return d


def segments(d, topic="client"):
    """The log segments a state directory holds for `topic` (docs/queue-log.md)."""
    import os
    t = os.path.join(d, "queue", topic)
    return sorted(f for f in os.listdir(t) if f.endswith(".seg")) if os.path.isdir(t) else []


async def client_sends(node, texts, path="/spool"):
    ws = await ws_connect(node.port("ws"), path)
    for t in texts:
        await ws.send(t)
    await ws.close()


async def test_drain_keeps_what_no_consumer_took_in_the_log_and_the_next_start_delivers_it(nodes):
    """A memory topic's events still held at the end of the drain go to its disk log (issue 20: the
    log replaced the spool file), come back after the start marked redelivered, and the log's
    segments go once they are consumed, not before."""
    d = state_dir(nodes, "spool-state")
    n = nodes.start({"node": {"drain_timeout": 2, "state_dir": d}})
    texts = [f"kept {i}" for i in range(5)]
    await client_sends(n, texts)
    await asyncio.sleep(0.3)
    n.terminate()
    msg = await asyncio.to_thread(n.wait_exit, 15)
    assert msg is None, msg
    log = open(n.stderr_path).read()
    assert "7 events no consumer took kept in" in log, log[-2000:]
    assert segments(d)
    restart(n)
    assert "7 events recovered" in n.stderr(), n.stderr()
    assert segments(d), "the log was removed before its events were consumed"
    async with Session(n) as s:
        cons = await s.consumer()
        opens = await cons.wait_event(lambda e: e["p"]["d"].get("event") == "open" and e["p"]["d"]["path"] == "/spool")
        cid = opens["p"]["c"]
        assert opens["p"].get("r") is True, opens
        for t in texts:
            ev = await cons.wait_event(ev_frame_of(cid), what=f"spooled frame {t!r}")
            assert ev["p"]["d"]["frame"]["data"] == t, f"order: expected {t!r}, got {ev!r}"
            assert ev["p"].get("r") is True, ev
        close = await cons.wait_event(ev_close_of(cid))
        assert close["p"].get("r") is True
    assert harness.metric_value(n, "meshgate_queue_restored_total") == 7
    # Every restored event consumed: its segment goes (with the store's next round).
    for _ in range(30):
        if not segments(d):
            break
        await asyncio.sleep(0.1)
    assert not segments(d), "the log's segment was not removed once its events were consumed"


async def test_restored_events_survive_a_crash_before_a_consumer_takes_them(nodes):
    """Issue 18: the old spool (before issue 20) was deleted as soon as it was read, so a SIGKILL
    after the restart and before any consumer came lost its events. Now (the topic's log since
    issue 20) it is kept until they are consumed."""
    d = state_dir(nodes, "spool-crash-state")
    n = nodes.start({"node": {"drain_timeout": 1, "state_dir": d}})
    texts = [f"survives {i}" for i in range(3)]
    await client_sends(n, texts, "/crash")
    await asyncio.sleep(0.3)
    n.terminate()
    assert await asyncio.to_thread(n.wait_exit, 15) is None
    restart(n)
    assert "recovered" in n.stderr(), n.stderr()
    await asyncio.sleep(1.5)  # a few ticks with nobody consuming
    n.kill()  # SIGKILL: no drain, nothing written at shutdown
    restart(n)
    async with Session(n) as s:
        cons = await s.consumer()
        o = await cons.wait_event(lambda e: e["p"]["d"].get("event") == "open" and e["p"]["d"]["path"] == "/crash",
                                  what="the restored open event after the crash")
        for t in texts:
            ev = await cons.wait_event(ev_frame_of(o["p"]["c"]), what=f"restored frame {t!r} after the crash")
            assert ev["p"]["d"]["frame"]["data"] == t and ev["p"].get("r") is True, ev


async def test_the_log_is_never_written_through_a_planted_symlink(nodes, tmp_path):
    """Issue 18: the old spool's queue.spool.tmp (before issue 20) was opened with O_CREAT|O_TRUNC:
    a symlink planted there (by anyone who can write the state directory) made the node overwrite
    the file it points to. The same for the log's files (issue 20): its topic name file, cursor and
    first segment."""
    import os
    d = state_dir(nodes, "spool-symlink-state")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.makedirs(os.path.join(d, "queue", "client"))
    with open(os.path.join(d, "queue", "client", "topic"), "w") as f:
        f.write("client")
    for name in ("topic.tmp", "cursor", "00000000000000000001.seg"):
        os.symlink(str(victim), os.path.join(d, "queue", "client", name))
    n = nodes.start({"node": {"drain_timeout": 1, "state_dir": d}})
    await client_sends(n, ["not through the link"], "/symlink")
    await asyncio.sleep(0.3)
    n.terminate()
    assert await asyncio.to_thread(n.wait_exit, 15) is None
    assert victim.read_text() == "precious\n", "the log was written through a symlink"
    log = open(n.stderr_path).read()
    assert any("cursor" in ln and "error" in ln for ln in log.splitlines()), log[-2000:]


async def test_a_consumer_that_arrives_during_the_drain_gets_the_events(nodes):
    import os
    d = state_dir(nodes, "late-consumer-state")
    n = nodes.start({"node": {"drain_timeout": 8, "state_dir": d}})
    await client_sends(n, ["late 1", "late 2"], "/late")
    await asyncio.sleep(0.3)
    n.terminate()
    await asyncio.sleep(0.5)
    async with Session(n) as s:
        cons = await s.consumer()
        o = await cons.wait_event(lambda e: e["p"]["d"].get("event") == "open" and e["p"]["d"]["path"] == "/late")
        for t in ("late 1", "late 2"):
            ev = await cons.wait_event(ev_frame_of(o["p"]["c"]), what=f"frame {t!r} during the drain")
            assert ev["p"]["d"]["frame"]["data"] == t
        await cons.wait_event(ev_close_of(o["p"]["c"]))
        msg = await asyncio.to_thread(n.wait_exit, 15)
    assert msg is None, msg
    assert not segments(d), "events a consumer took were kept in the log too"


async def test_unacknowledged_events_are_kept_too(nodes):
    d = state_dir(nodes, "unacked-state")
    n = nodes.start({"node": {"drain_timeout": 2, "state_dir": d}, "queue": {"ack_timeout": 60}})
    async with Session(n) as s:
        cons = await s.consumer(ack=True)
        ws, cid, _ = await s.ws_client(cons, path="/unacked")
        await ws.send("never acknowledged")
        ev = await cons.wait_event(ev_frame_of(cid, "never acknowledged"))
        assert "k" in ev["p"]
        n.terminate()  # the consumer stays connected and never acks
        msg = await asyncio.to_thread(n.wait_exit, 15)
    assert msg is None, msg
    restart(n)
    async with Session(n) as s:
        cons = await s.consumer()
        ev = await cons.wait_event(ev_frame_of(cid, "never acknowledged"), what="the unacknowledged event after restart")
        assert ev["p"].get("r") is True


async def test_without_a_state_dir_the_loss_is_logged_with_its_count(nodes):
    n = nodes.start({"node": {"drain_timeout": 1}})
    await client_sends(n, ["a", "b", "c"], "/lost")
    await asyncio.sleep(0.3)
    n.terminate()
    msg = await asyncio.to_thread(n.wait_exit, 15)
    assert msg is None, msg
    log = open(n.stderr_path).read()
    lines = [ln for ln in log.splitlines() if "lost at shutdown" in ln]
    assert lines and "5 events" in lines[0], log[-2000:]


# ---- topics are bounded and idle ones forgotten (issue 18) ----

async def test_topics_are_bounded_and_idle_ones_forgotten(nodes):
    """10,000 junk topics used to stay until restart (every new topic 201, /metrics 13.9 MB). Now:
    past [queue] max_topics queue.pop answers 201 naming the bound; a topic nobody pops and no
    listener produces into is forgotten after topic_idle_timeout, with its /metrics series, and a
    new one can be made; the listener's topic stays."""
    n = nodes.start({"queue": {"max_topics": 20, "topic_idle_timeout": 1}})
    assert harness.metric_value(n, "meshgate_queue_topics") == 1  # the listeners' topic "client"
    async with Session(n) as s:
        junk = await s.api()
        await junk.pop([f"junk{i}" for i in range(19)])
        late = await s.api()
        e = await late.err("queue.pop", {"t": ["one-more"]}, 201)
        assert "max_topics 20" in e["m"], e
        assert harness.metric_value(n, "meshgate_queue_topics_refused_total") == 1
        assert harness.metric_value(n, "meshgate_queue_depth", topic="junk3") == 0
        await junk.ok("queue.unpop", {})
        wait_metric(n, "meshgate_queue_topics_forgotten_total", lambda v: v == 19, timeout=6)
        page = harness.metrics(n)
        assert 'topic="junk' not in page, "a forgotten topic's series stayed on /metrics"
        assert 'meshgate_queue_depth{topic="client"} 0' in page, "the listener's topic was forgotten"
        assert harness.metric_value(n, "meshgate_queue_topics") == 1
        await late.pop(["one-more"])
        # Popped, it is not idle: still there well after the idle time.
        await asyncio.sleep(2.5)
        assert harness.metric_value(n, "meshgate_queue_consumers", topic="one-more") == 1


# ---- overflow: pause the producers (default) or drop, counted (issue 11) ----

class StalledConsumer:
    """A /ws/v1 consumer on a raw socket that pops, then reads nothing until told to: the server's
    output to it fills, the topic fills behind it."""

    def __init__(self, node, topic):
        import base64
        import os
        import socket
        import struct
        self.struct = struct
        self.sock = socket.create_connection(("127.0.0.1", node.api_port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(4096)
        self.buf = bytearray(buf.split(b"\r\n\r\n", 1)[1])
        body = json.dumps({"m": "queue.pop", "p": {"t": [topic]}, "i": 1}).encode()
        mask = os.urandom(4)
        self.sock.sendall(bytes([0x81, 0x80 | len(body)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))

    def read_events(self, want, timeout, quiet=None):
        """Reads until `want` queue events arrived, or `timeout`, or (with `quiet`) nothing came for
        that many seconds; returns their frame data, in order."""
        got = []
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        self.sock.settimeout(1)
        buf = self.buf
        while len(got) < want and time.monotonic() < deadline:
            pos = 0
            while len(buf) - pos >= 2:
                n, off = buf[pos + 1] & 0x7f, 2
                if n == 126:
                    if len(buf) - pos < 4:
                        break
                    n, off = self.struct.unpack_from(">H", buf, pos + 2)[0], 4
                elif n == 127:
                    if len(buf) - pos < 10:
                        break
                    n, off = self.struct.unpack_from(">Q", buf, pos + 2)[0], 10
                if len(buf) - pos < off + n:
                    break
                msg = json.loads(bytes(buf[pos + off:pos + off + n]))
                pos += off + n
                if msg.get("e") == "queue.pop" and "frame" in msg["p"]["d"]:
                    got.append(msg["p"]["d"]["frame"]["data"])
            del buf[:pos]
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                if quiet and time.monotonic() - last > quiet:
                    break
                continue
            if not chunk:
                break
            last = time.monotonic()
            buf += chunk
        return got


def send_lines(port, lines):
    send_burst(port, "tcp", lines)


def send_burst(port, kind, payloads, start=None):
    """One client: sends every payload in ONE write (line frames, or masked WebSocket text frames and
    a close after the upgrade), after `start` (a barrier) when given, and reads until the server
    closes."""
    import base64
    import os
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        if kind == "ws":
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            mask = b"\x01\x02\x03\x04"
            wire = b"".join(bytes([0x81, 0x80 | len(p)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(p))
                            for p in (x.encode() for x in payloads))
            wire += bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"\x03\xe8"))
        else:
            wire = "".join(p + "\n" for p in payloads).encode()
        if start:
            start.wait()
        s.sendall(wire)
        if kind != "ws":
            s.shutdown(socket.SHUT_WR)
        s.settimeout(60)
        while s.recv(4096):
            pass


def assert_each_client_in_order(got, sent):
    """`got`: event data "c<client>-..." as delivered; `sent`: each client's, in order."""
    by_client = {}
    for g in got:
        by_client.setdefault(g.split("-")[0], []).append(g)
    for c in sent:
        assert by_client.get(f"c{c}") == sent[c], f"client {c}: events out of order or missing"


@pytest.mark.parametrize("overflow", ["pause", "drop"])
async def test_a_stuck_consumer_slows_the_clients_instead_of_losing_events(nodes, overflow):
    import threading
    n = nodes.start({"queue": {"max_events": 5000, "overflow": overflow}, "api": {"max_output": 1048576},
                     "listener.tcp": {"topic": "flow", "events": "off"}})
    cons = await asyncio.to_thread(StalledConsumer, n, "flow")
    clients, per_client = 4, 20000  # ~15 MB of events: more than the kernel's socket buffers hold
    sent = {c: [f"c{c}-{i:05d}-" + "x" * 100 for i in range(per_client)] for c in range(clients)}
    threads = [threading.Thread(target=send_lines, args=(n.port("tcp"), sent[c]), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    await asyncio.sleep(3)  # the consumer reads nothing meanwhile
    paused = harness.metric_value(n, "meshgate_queue_paused", topic="flow")
    if overflow == "drop":  # the clients are never slowed: they finish while the consumer is stuck
        for t in threads:
            await asyncio.to_thread(t.join, 30)
    got = await asyncio.to_thread(cons.read_events, clients * per_client, 40, 3 if overflow == "drop" else None)
    for t in threads:
        await asyncio.to_thread(t.join, 30)
    dropped = harness.metric_value(n, "meshgate_queue_dropped_total", topic="flow") or 0
    if overflow == "pause":
        assert paused == 1, f"the topic did not pause its producers while full (meshgate_queue_paused {paused})"
        assert dropped == 0, f"{dropped} events dropped with overflow = pause"
        assert len(got) == clients * per_client, f"delivered {len(got)} of {clients * per_client}"
        for c in range(clients):  # each client's events in order
            mine = [g for g in got if g.startswith(f"c{c}-")]
            assert mine == sent[c], f"client {c}: events out of order or missing"
        assert harness.metric_value(n, "meshgate_queue_paused", topic="flow") == 0
    else:
        assert dropped > 0, "nothing dropped with overflow = drop and a stuck consumer"
        assert len(got) + dropped == clients * per_client, f"delivered {len(got)} + dropped {dropped}"


async def test_a_burst_faster_than_the_hub_is_held_back_in_the_sockets_not_dropped(nodes):
    """Many clients each write thousands of events at once: the workers decode them faster than the
    one hub thread queues and delivers them. Past a backlog the workers stop reading those clients
    until the hub catches up; nothing is dropped (the topic's own bound is out of reach here)."""
    import threading
    n = nodes.start({"queue": {"max_events": 2000000, "max_bytes": 1 << 30},
                     "listener.tcp": {"topic": "burst", "events": "off"}})
    cons = await asyncio.to_thread(StalledConsumer, n, "burst")
    clients, per_client = 100, 3000  # 300,000 events: more than the 200,000 the workers may hold for the hub
    sent = {c: [f"c{c}-{i:04d}" for i in range(per_client)] for c in range(clients)}
    threads = [threading.Thread(target=send_lines, args=(n.port("tcp"), sent[c]), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    got = await asyncio.to_thread(cons.read_events, clients * per_client, 120)
    for t in threads:
        await asyncio.to_thread(t.join, 30)
    assert harness.metric_value(n, "meshgate_queue_backlog_drops_total") == 0
    assert harness.metric_value(n, "meshgate_queue_dropped_total", topic="burst") == 0
    assert len(got) == clients * per_client, f"delivered {len(got)} of {clients * per_client}"
    assert_each_client_in_order(got, sent)


@pytest.mark.parametrize("kind", ["tcp", "ws"])
async def test_a_burst_of_small_messages_pauses_right_after_the_bound_not_a_read_later(nodes, kind):
    """Many clients each write a read's worth of small messages (one 64 KiB read holds thousands) at
    the same moment, into a topic that pauses its producers at a small bound. The pause takes effect
    right after the message that closed the gate: the rest of each read waits with its connection, so
    the topic never overshoots to four times its bound, where it drops (docs/decisions.md)."""
    import threading
    n = nodes.start({"queue": {"max_events": 1000, "overflow": "pause"},
                     f"listener.{kind}": {"topic": "bursty", "events": "off"}})
    cons = await asyncio.to_thread(StalledConsumer, n, "bursty")
    clients, per_client = 50, 2000  # ~20 kB each: one read per client
    sent = {c: [f"c{c}-{i:04d}" for i in range(per_client)] for c in range(clients)}
    start = threading.Barrier(clients)
    threads = [threading.Thread(target=send_burst, args=(n.port(kind), kind, sent[c], start), daemon=True)
               for c in range(clients)]
    for t in threads:
        t.start()
    got = await asyncio.to_thread(cons.read_events, clients * per_client, 90, 10)
    for t in threads:
        await asyncio.to_thread(t.join, 30)
    dropped = harness.metric_value(n, "meshgate_queue_dropped_total", topic="bursty") or 0
    assert dropped == 0, f"{dropped} events dropped with overflow = pause"
    assert harness.metric_value(n, "meshgate_queue_backlog_drops_total") == 0
    assert len(got) == clients * per_client, f"delivered {len(got)} of {clients * per_client}"
    assert_each_client_in_order(got, sent)


async def test_a_reload_that_lowers_max_events_moves_the_pause_of_the_topic_gate(nodes):
    """SIGHUP lowers [queue] max_events: the topic's gate pauses the producers at the new bound for
    the events in flight too (issue 19: the gate kept the bound it had at start, so a burst faster
    than the hub overshot the new bound four times over and the topic dropped). The burst of the test
    above, after the reload."""
    import signal
    import threading
    n = nodes.start({"queue": {"max_events": 2000000, "overflow": "pause"},
                     "listener.tcp": {"topic": "lowered", "events": "off"}})
    with open(n.conf_path) as f:
        base = f.read()
    assert "max_events = 2000000" in base
    mark = len(n.stderr(tail=100000).splitlines())
    with open(n.conf_path, "w") as f:
        f.write(base.replace("max_events = 2000000", "max_events = 1000"))
    n.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any("SIGHUP: reloaded" in ln for ln in n.stderr(tail=100000).splitlines()[mark:]):
        assert time.monotonic() < deadline, "no reload line after SIGHUP"
        await asyncio.sleep(0.1)
    cons = await asyncio.to_thread(StalledConsumer, n, "lowered")
    clients, per_client = 50, 2000
    sent = {c: [f"c{c}-{i:04d}" for i in range(per_client)] for c in range(clients)}
    start = threading.Barrier(clients)
    threads = [threading.Thread(target=send_burst, args=(n.port("tcp"), "tcp", sent[c], start), daemon=True)
               for c in range(clients)]
    for t in threads:
        t.start()
    # The consumer reads nothing until the topic paused its producers at the new bound (reading at
    # once, it kept up with a slow sanitizer build's hub and the topic stayed under 1,000: CI
    # 2026-12-06), or for 20 s.
    paused_by = time.monotonic() + 20
    while not harness.metric_value(n, "meshgate_queue_pauses_total", topic="lowered") and time.monotonic() < paused_by:
        await asyncio.sleep(0.05)
    got = await asyncio.to_thread(cons.read_events, clients * per_client, 90, 10)
    for t in threads:
        await asyncio.to_thread(t.join, 30)
    dropped = harness.metric_value(n, "meshgate_queue_dropped_total", topic="lowered") or 0
    assert dropped == 0, f"{dropped} events dropped with overflow = pause after max_events was lowered"
    assert harness.metric_value(n, "meshgate_queue_pauses_total", topic="lowered") > 0, "never paused at the new bound"
    assert len(got) == clients * per_client, f"delivered {len(got)} of {clients * per_client}"
    assert_each_client_in_order(got, sent)
