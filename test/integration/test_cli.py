"""The command line tools in the binary (issue 12): real invocations of $MESHGATE_BIN against a
running node, reading the node's own configuration file for the API address and token.
- `meshgate token` makes a connect token the node accepts (uid, context and channels applied), from a
  secret file or from a listener of the configuration; `meshgate check-token` accepts it, refuses a
  forged or expired one (exit 1) and names why;
- `meshgate call METHOD JSON` prints the result of any HTTP API method (node.stats, node.list,
  conn.info); an API error exits 1 with its code and message, a wrong token exits 1 (401), an
  unreachable node exits 3, a bad method exits 2;
- `meshgate publish CHANNEL DATA` reaches a subscribed client and prints {"s":1,"f":0};
- `meshgate queue inspect DIR` (issue 20) lists the topics of a disk queue a SIGKILLed node left (events,
  cursor, next seq, segments, bytes, status) as a table and as --json, prints a topic's records with
  --records, reports a torn tail with exit 1, runs next to a running node, and changes no byte.
"""
import asyncio
import json
import os
import subprocess
import time

import pytest

from harness import Session, fake_client_id, free_port, meshgate_bin, ws_connect, ws_recv
from test_mesh import sigkill
from test_queue import send_lines, state_dir
from test_security import jwt_raw

SECRET = "cli-test-secret-0123456789"
API_TOKEN = "cli-api-token-abc"


def run(*args, stdin=None, env=None):
    """Runs the binary; returns (exit code, stdout, stderr)."""
    p = subprocess.run([meshgate_bin(), *args], input=stdin, capture_output=True, text=True, timeout=20,
                       env={**os.environ, **(env or {})})
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def node(module_nodes):
    n = module_nodes.start({"api": {"token": API_TOKEN},
                            "listener.tok": {"type": "ws", "bind": "127.0.0.1", "port": None, "topic": "client",
                                             "token_secret": SECRET}})
    secret_file = os.path.join(n.dir, "secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")  # a trailing newline, as `echo secret > file` leaves it
    n.secret_file = secret_file
    return n


def make_token(node, *extra):
    rc, out, err = run("token", "--secret-file", node.secret_file, *extra)
    assert rc == 0, f"meshgate token -> {rc}: {err}"
    token = out.strip()
    assert token.count(".") == 2, f"not a JWT: {out!r}"
    return token


def call(node, method, params=None, env=None):
    args = ["call", "-c", node.conf_path, method] + ([json.dumps(params)] if params is not None else [])
    return run(*args, env=env)


async def test_token_is_accepted_by_the_node(node):
    token = make_token(node, "--uid", "alice", "--ch", "room:cli", "--ch", "room:two", "--ttl", "1h",
                       "--ctx", '{"plan":"pro"}')
    ws = await ws_connect(node.port("tok"), f"/?token={token}")
    try:
        # The token's channels are subscribed: a publish through the CLI reaches the client.
        for _ in range(20):
            rc, out, err = await asyncio.to_thread(run, "publish", "-c", node.conf_path, "room:cli", "hello cli")
            assert rc == 0, f"meshgate publish -> {rc}: {err}"
            if json.loads(out)["s"] == 1:
                break
            await asyncio.sleep(0.1)  # the connection registers its channels asynchronously
        assert json.loads(out) == {"s": 1, "f": 0}, out
        assert await ws_recv(ws) == "hello cli"
        rc, out, err = await asyncio.to_thread(call, node, "channel.count", {"c": "room:two"})
        assert rc == 0 and json.loads(out) == {"s": 1}, (rc, out, err)
    finally:
        await ws.close()


async def test_token_from_the_listener_secret(node):
    rc, out, err = run("token", "-c", node.conf_path, "--listener", "tok", "--uid", "bob", "--ttl", "5m")
    assert rc == 0, err
    ws = await ws_connect(node.port("tok"), f"/?token={out.strip()}")
    await ws.close()
    rc, out, err = run("token", "-c", node.conf_path, "--listener", "ws", "--uid", "bob")
    assert rc == 2 and "no token_secret" in err, (rc, err)


def test_check_token(node, tmp_path):
    token = make_token(node, "--uid", "carol", "--ch", "a", "--ttl", "90s")
    rc, out, err = run("check-token", "--secret-file", node.secret_file, token)
    assert rc == 0, err
    claims = json.loads(out)
    assert claims["valid"] is True and claims["uid"] == "carol" and claims["ch"] == ["a"]
    assert 80 <= claims["expires_in"] <= 90 and abs(claims["exp"] - time.time() - 90) < 10
    # From standard input, as in `meshgate token ... | meshgate check-token ...`.
    rc, out, _ = run("check-token", "--secret-file", node.secret_file, stdin=token + "\n")
    assert rc == 0 and json.loads(out)["uid"] == "carol"
    other = tmp_path / "other"
    other.write_text("another-secret\n")
    rc, out, err = run("check-token", "--secret-file", str(other), token)
    assert rc == 1 and "bad signature" in err and out == "", (rc, out, err)
    rc, _, err = run("check-token", "--secret-file", node.secret_file, token[:-3] + "AAA")
    assert rc == 1 and "refused" in err
    short = make_token(node, "--ttl", "1s")
    time.sleep(2.1)
    rc, _, err = run("check-token", "--secret-file", node.secret_file, short)
    assert rc == 1 and "expired" in err, err


def test_check_token_refuses_dates_out_of_range(node):
    """Issue 18: exp 1e300 (or past int64, or negative) was cast to an integer (undefined behaviour)
    and printed as garbage; now it is refused with the claim named, and a fraction is rounded down."""
    for exp in ("1e300", "9223372036854775808", "-1", "253402300800"):
        token = jwt_raw('{"alg":"HS256","typ":"JWT"}', '{"exp":%s}' % exp, SECRET)
        rc, out, err = run("check-token", "--secret-file", node.secret_file, token)
        assert rc == 1 and out == "" and "bad exp claim" in err and "253402300799" in err, (exp, rc, out, err)
    token = jwt_raw('{"alg":"HS256","typ":"JWT"}', '{"exp":253402300798.5}', SECRET)
    rc, out, err = run("check-token", "--secret-file", node.secret_file, token)
    assert rc == 0 and json.loads(out)["exp"] == 253402300798, (rc, out, err)


def test_token_usage_errors(node):
    for args in (["--ttl", "1h"],                                    # no secret
                 ["--secret-file", node.secret_file, "--ttl", "soon"],
                 ["--secret-file", node.secret_file, "--ctx", "[1]"],
                 ["--secret-file", "/nonexistent/secret"]):
        rc, out, err = run("token", *args)
        assert rc == 2 and out == "" and err.startswith("meshgate: "), (args, rc, out, err)


def test_call_reads_address_and_token_from_the_config(node):
    rc, out, err = call(node, "node.stats", {})
    assert rc == 0, err
    stats = json.loads(out)
    assert stats["node"] == node.node_id and {l["name"] for l in stats["listeners"]} >= {"ws", "tok"}
    rc, out, err = call(node, "node.list")
    assert rc == 0 and json.loads(out)["nodes"][0]["id"] == node.node_id, (rc, out, err)


def test_call_errors(node):
    rc, out, err = call(node, "conn.info", {"c": fake_client_id(node.node_id)})
    assert rc == 1 and out == "" and "error 301" in err and "not connected" in err, (rc, out, err)
    rc, out, err = call(node, "mesh.publish", {"c": ""})
    assert rc == 1 and "error 101" in err, (rc, err)
    rc, out, err = call(node, "node.stats", {}, env={"MESHGATE_API_TOKEN": "wrong"})
    assert rc == 1 and "HTTP 401" in err, (rc, err)
    rc, out, err = run("call", "--api", f"127.0.0.1:{free_port()}", "node.stats")
    assert rc == 3 and "cannot connect" in err, (rc, err)
    rc, out, err = call(node, "queue.pop", {"t": ["client"]})
    assert rc == 2 and "/ws/v1" in err
    rc, out, err = run("call", "-c", node.conf_path, "nodot")
    assert rc == 2
    rc, out, err = run("call", "-c", "/nonexistent.conf", "node.stats")
    assert rc == 2 and "configuration error" in err


async def test_conn_info_and_close_through_call(node):
    token = make_token(node, "--uid", "dave")
    async with Session(node) as s:
        cons = await s.api(headers={"Authorization": f"Bearer {API_TOKEN}"})
        await cons.pop(("client",), None)
        ws, cid, _ = await s.ws_client(cons, listener="tok", path=f"/?token={token}")
        rc, out, err = await asyncio.to_thread(call, node, "conn.info", {"c": cid})
        assert rc == 0 and json.loads(out)["x"] == {"uid": "dave"}, (rc, out, err)
        rc, out, err = await asyncio.to_thread(call, node, "conn.call", {"c": cid, "f": "close", "a": [4001, "bye"]})
        assert rc == 0, err
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4001


def complete(*words):
    """What the shipped bash completion offers for the command line `words` (the last one being typed)."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "packaging", "completion", "meshgate")
    words_sh = " ".join("'" + w.replace("'", "'\\''") + "'" for w in ("meshgate",) + words)
    p = subprocess.run(["bash", "-c", f"source '{script}'; COMP_WORDS=({words_sh}); COMP_CWORD={len(words)}; "
                        "_meshgate; printf '%s\\n' \"${COMPREPLY[@]}\""], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split())


def test_bash_completion(node, tmp_path):
    assert complete("") >= {"token", "check-token", "call", "publish", "queue"}
    assert complete("queue", "") == {"inspect", "--help"}
    assert complete("queue", "inspect", "--") >= {"--json", "--records", "--limit", "--config"}
    (tmp_path / "state").mkdir()
    (tmp_path / "file").write_text("")
    assert complete("queue", "inspect", f"{tmp_path}/") == {f"{tmp_path}/state"}
    assert complete("call", "node.") == {"node.list", "node.stats"}
    assert "--secret-file" in complete("token", "--")
    assert complete("token", "-c", node.conf_path, "--listener", "") == {"ws", "tcp", "tcp32", "tok"}



def snapshot(root):
    """Every file under `root`: its bytes and modification time."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = (f.read(), os.stat(path).st_mtime_ns)
    return files


def table(out):
    """The rows of `queue inspect`'s table: {first column: [the other columns]} (status last, whole)."""
    rows = {}
    for line in out.splitlines():
        if not line.strip():
            break
        cells = line.split(None, 6) if not line.startswith("total") else line.split(None, 4)
        rows[cells[0]] = cells[1:]
    return rows


async def test_queue_inspect(nodes):
    d = state_dir(nodes, "inspect")
    n = nodes.start({"node": {"state_dir": d}, "queue": {"store": "disk"}})
    # A first client's events are consumed (the cursor moves past them), a second one's wait.
    await asyncio.to_thread(send_lines, n.port("tcp"), ["consumed 1", "consumed 2"])
    async with Session(n) as s:
        cons = await s.consumer()
        await cons.wait_event(lambda e: e["p"]["d"].get("event") == "close", what="the first client's close")
    lines = [f"stuck {i:03d}" for i in range(40)] + ["tab\there \x1b[31m"]
    await asyncio.to_thread(send_lines, n.port("tcp"), lines)
    await asyncio.sleep(0.3)  # well past fsync_interval (5 ms): every event is on disk
    cursor = 5  # the first client's open, two frames and close were consumed
    events = len(lines) + 2  # the second client's open and close events too
    # Next to the running node: it only reads.
    rc, out, err = await asyncio.to_thread(run, "queue", "inspect", d)
    assert rc == 0 and table(out)["client"][:3] == [str(events), str(cursor), str(cursor + events)], (rc, out, err)
    sigkill(n)

    topic_dir = os.path.join(d, "queue", "client")
    segs = sorted(f for f in os.listdir(topic_dir) if f.endswith(".seg"))
    assert segs == ["00000000000000000001.seg"], segs
    seg = os.path.join(topic_dir, segs[0])
    size = os.path.getsize(seg)
    before = snapshot(d)
    rc, out, err = run("queue", "inspect", d)
    assert rc == 0 and err == "", (rc, out, err)
    assert out.splitlines()[0].split() == ["TOPIC", "EVENTS", "CURSOR", "NEXT", "SEQ", "SEGMENTS", "BYTES", "STATUS"]
    rows = table(out)
    assert rows["client"] == [str(events), str(cursor), str(cursor + events), "1", str(size), "ok"], out
    assert rows["total"] == [str(events), "1", str(size), "1 topic"], out
    # The queue directory, the topic's directory and the configuration's state_dir name the same.
    for args in ([os.path.join(d, "queue")], [topic_dir], ["-c", n.conf_path]):
        assert run("queue", "inspect", *args) == (0, out, ""), args

    rc, out, err = run("queue", "inspect", "--json", d)
    assert rc == 0, err
    assert json.loads(out) == [{"topic": "client", "dir": topic_dir, "ok": True, "status": "ok", "events": events,
                                "cursor": cursor, "next_seq": cursor + events, "segments": 1, "bytes": size, "torn_bytes": 0,
                                "corrupt_records": 0, "corrupt_bytes": 0, "consumed_segments": 0}]

    rc, out, err = run("queue", "inspect", d, "--records", "client", "--limit", "3")
    assert rc == 0, err
    records = out.split("\n\n", 1)[1].splitlines()
    assert records[0] == f"records of client after its cursor ({cursor}):" and records[1].split() == \
        ["SEQ", "CLIENT", "DATA", "CONTEXT"], out
    assert [r.split(None, 2)[0] for r in records[2:]] == [str(cursor + i) for i in range(3)], out
    assert '"event":"open"' in records[2] and '"data":"stuck 001"' in records[4], out
    rc, out, err = run("queue", "inspect", d, "--records", "client", "--json")
    assert rc == 0, err
    recs = json.loads(out)[0]["records"]
    client = recs[0]["client"]
    assert [r["seq"] for r in recs] == list(range(cursor, cursor + events))
    assert recs[0]["data"]["event"] == "open" and recs[-1]["data"]["event"] == "close" and client.isdigit()
    assert [r["data"]["frame"]["data"] for r in recs[1:-1]] == lines
    assert all(r["client"] == client and r["context"] is None for r in recs)
    # The text form: one line a record, the last frame's tab and escape as the JSON text has them.
    rc, out, err = run("queue", "inspect", d, "--records", "client")
    assert rc == 0 and len(out.split("\n\n", 1)[1].splitlines()) == 2 + events
    assert "\x1b" not in out and "\t" not in out and r'"data":"tab\there \u001b[31m"' in out, out

    # A torn tail: a write cut short leaves bytes that are no whole record after the last one.
    with open(seg, "ab") as f:
        f.write(b"\x30\x00\x00\x00garbage")
    rc, out, err = run("queue", "inspect", d)
    rows = table(out)
    assert rc == 1 and rows["client"] == [str(events), str(cursor), str(cursor + events), "1", str(size + 11),
                                          "torn tail 11 bytes (cut at next start)"], (rc, out, err)
    assert rows["total"][-1] == "1 topic, 1 damaged", out
    # A corrupt record: a flipped byte in the data of the second record after the cursor; the walk
    # goes on after it.
    with open(seg, "r+b") as f:
        buf = f.read()
        at = 16
        for _ in range(cursor):  # past the consumed records and the first one after them
            at += 8 + int.from_bytes(buf[at:at + 4], "little")
        second_len = int.from_bytes(buf[at:at + 4], "little")
        f.seek(at + 8 + 20 + 3)
        f.write(bytes([buf[at + 8 + 20 + 3] ^ 0x20]))
    rc, out, err = run("queue", "inspect", "--json", d, "--records", "client")
    got = json.loads(out)[0]
    assert rc == 1 and not got["ok"] and got["events"] == events - 1, (rc, out, err)
    assert (got["torn_bytes"], got["corrupt_records"], got["corrupt_bytes"]) == (11, 1, 8 + second_len), got
    assert got["status"] == f"torn tail 11 bytes (cut at next start); 1 corrupt record ({8 + second_len} bytes skipped)"
    assert [r["seq"] for r in got["records"]] == [cursor] + list(range(cursor + 2, cursor + events))
    # Not one byte (nor a modification time) changed by any of it.
    after = snapshot(d)
    del after[os.path.relpath(seg, d)], before[os.path.relpath(seg, d)]
    assert after == before
    seg_before = snapshot(topic_dir)
    run("queue", "inspect", d, "--records", "client")
    assert snapshot(topic_dir) == seg_before


def test_queue_inspect_usage(tmp_path):
    rc, out, err = run("queue", "inspect", "--help")
    assert rc == 0 and "never changes" in out and "--records TOPIC" in out, out
    for args in ([], ["list"], ["inspect", str(tmp_path / "missing")], ["inspect", str(tmp_path), "--limit", "3"],
                 ["inspect", str(tmp_path), "--records", "client"], ["inspect", "--bogus"],
                 ["inspect", "-c", "/nonexistent.conf"]):
        rc, out, err = run("queue", *args)
        assert rc == 2 and out == "" and err.startswith("meshgate: "), (args, rc, out, err)
    # An empty state directory: no topics, nothing wrong.
    rc, out, err = run("queue", "inspect", str(tmp_path))
    assert rc == 0 and table(out)["total"] == ["0", "0", "0", "0 topics"], out
    rc, out, err = run("queue", "inspect", "--json", str(tmp_path))
    assert rc == 0 and json.loads(out) == []
