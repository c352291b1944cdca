"""The command line tools in the binary (issue 12): real invocations of $MESHGATE_BIN against a
running node, reading the node's own configuration file for the API address and token.
- `meshgate token` makes a connect token the node accepts (uid, context and channels applied), from a
  secret file or from a listener of the configuration; `meshgate check-token` accepts it, refuses a
  forged or expired one (exit 1) and names why;
- `meshgate call METHOD JSON` prints the result of any HTTP API method (node.stats, node.list,
  conn.info); an API error exits 1 with its code and message, a wrong token exits 1 (401), an
  unreachable node exits 3, a bad method exits 2;
- `meshgate publish CHANNEL DATA` reaches a subscribed client and prints {"s":1,"f":0}.
"""
import asyncio
import json
import os
import subprocess
import time

import pytest

from harness import Session, fake_client_id, free_port, meshgate_bin, ws_connect, ws_recv
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


def test_bash_completion(node):
    assert complete("") >= {"token", "check-token", "call", "publish"}
    assert complete("call", "node.") == {"node.list", "node.stats"}
    assert "--secret-file" in complete("token", "--")
    assert complete("token", "-c", node.conf_path, "--listener", "") == {"ws", "tcp", "tcp32", "tok"}
