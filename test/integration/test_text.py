"""Text that leaves the gateway is valid, and payloads are sent as given (issue 18).

- A client whose upgrade path or query is not UTF-8 produces an `open` event a standard WebSocket
  consumer (python3-websockets, which closes with 1007 on an invalid text frame) receives, with the
  bad bytes percent-encoded; the events after it get through, with or without acknowledgements.
- An event whose delivery keeps failing (each consumer that gets it leaves without acknowledging)
  is dropped after `[queue] max_deliveries` failures, counted and logged; the client's later
  events then reach the next consumer.
- An EVENT frame from an authenticated node that cannot be read (its text is not UTF-8) is dropped,
  counted and reported consumed (DONE); the link stays up and the next EVENT is delivered.
- Peer text in the log is escaped: a stranger on the mesh port cannot forge log lines with a
  newline in its HELLO's cluster name or its REFUSE reason.
- A topic name with control bytes reaches /metrics escaped: no raw \\r, and promtool accepts it.
- A JSON `d` reaches the client byte for byte as the backend wrote it: big integers, 1E400, an
  object's spacing and key order (docs/decisions.md, "Payloads").
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from harness import (RawWs, Session, ev_frame_of, ev_open_from, frame_of, http_request, metric_value,
                     wait_metric, ws_connect, ws_recv)
from test_mesh import start_mesh_node
from test_mesh_security import CLUSTER, HELLO, REFUSE, SECRET, FrameReader, connect, frame, hello_of

AUTH, EVENT, DONE = 2, 10, 11


@pytest.fixture(scope="module")
def node(module_nodes):
    return module_nodes.start({"node": {"id": 5}})


def log_lines(node):
    return node.stderr(tail=100000).splitlines()


# ---- 1. client text in events ----

@pytest.mark.parametrize("ack", [False, True])
async def test_a_path_that_is_not_utf8_reaches_a_standard_consumer_percent_encoded(node, ack):
    async with Session(node) as s:
        cons = await s.consumer(ack=ack)
        raw = await RawWs.connect(node.port("ws"), b"/room\xff\xfe?name=\xe9t\xe9&ok=1")
        s.closers.append(raw.close)
        ev = await cons.wait_event(ev_open_from(raw.local_port, "ws", cons), what="open event of the bad path")
        d = ev["p"]["d"]
        assert (d["path"], d["query"]) == ("/room%FF%FE", "name=%E9t%E9&ok=1"), d
        if ack:
            await cons.ok("queue.ack", {"k": [ev["p"]["k"]]})
        # The consumer is still there, and the next client's events get through.
        ws, cid, opened = await s.ws_client(cons)
        if ack:
            await cons.ok("queue.ack", {"k": [opened["p"]["k"]]})
        for i in range(10):
            await ws.send(f"ordinary {i}")
        for i in range(10):
            got = await cons.wait_event(ev_frame_of(cid), what=f"ordinary event {i}")
            assert frame_of(got)["data"] == f"ordinary {i}"
            if ack:
                await cons.ok("queue.ack", {"k": [got["p"]["k"]]})
        assert cons.closed_exc is None, cons.closed_exc


# ---- 2. poison events: bounded deliveries, and the mesh ----

async def test_an_event_whose_delivery_keeps_failing_is_dropped_after_max_deliveries(nodes):
    n = nodes.start({"queue": {"max_deliveries": 3}})
    async with Session(n) as s:
        first = await s.consumer(ack=True)
        ws, cid, opened = await s.ws_client(first)
        await first.ok("queue.ack", {"k": [opened["p"]["k"]]})
        await ws.send("poison")
        await ws.send("after")
        cons = first
        for attempt in range(3):
            if cons is None:
                cons = await s.consumer(ack=True)
            await cons.wait_event(ev_frame_of(cid, "poison"), what=f"delivery {attempt + 1} of the poison event")
            await cons.close()  # a consumer that dies on it, without acknowledging
            cons = None
        last = await s.consumer(ack=True)
        after = await last.wait_event(ev_frame_of(cid, "after"), what="the client's next event")
        assert after["p"].get("r") is True, after
        await last.no_event(ev_frame_of(cid, "poison"), 1.0)
    wait_metric(n, "meshgate_queue_discarded_total", lambda v: v == 1, reason="max_deliveries")
    assert metric_value(n, "meshgate_queue_discarded_total", reason="invalid_text") == 0
    assert any("max_deliveries" in ln and "dropped 1 event" in ln for ln in log_lines(n)), n.stderr()
