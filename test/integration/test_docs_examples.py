"""docs/api.md's shell examples run as written (issue 11): every `curl` line of its sh blocks is run
against a real node laid out like the shipped configuration (tcp, ws and wss listeners; the ports
in the text are mapped to the test's), with $CID a real client's id, and its answer must be the JSON
on the `# ` line that follows it (a `# e.g. ...` line is an illustration, not checked)."""
import json
import os
import re
import shutil
import subprocess

import pytest

import harness
from harness import Session

DOC = os.path.join(harness.REPO, "docs", "api.md")


def examples():
    """(command, expected JSON) for every curl line followed by a `# {...}` or `# [...]` line."""
    text = open(DOC).read()
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("curl ") and i + 1 < len(lines) and re.match(r"# [\[{]", lines[i + 1]):
                out.append((line, lines[i + 1][2:]))
    return out


def test_the_doc_has_examples_with_answers():
    cmds = [c for c, _ in examples()]
    assert any("/v1/mesh/send" in c for c in cmds) and any("/route/batch" in c for c in cmds), cmds
    assert not any(re.search(r'"c":"\d{6,}"', c) for c in cmds), "made-up client ids in docs/api.md"


async def test_api_examples_run_as_written(nodes):
    assert shutil.which("curl"), "curl is needed (Debian package curl)"
    n = nodes.start({"listener.tcp32": None,
                     "listener.wss": {"type": "ws", "bind": "127.0.0.1", "port": None, "tls": "on"}})
    ports = {"6789": n.api_port, "5001": n.route_port, "5100": n.port("tcp"), "5200": n.port("ws"),
             "5300": n.port("wss")}

    def mapped(s):
        # In one pass, whole port numbers only: replacing one after the other once turned the tcp port
        # 52001, put in for :5100, into :469531 (its ":5200" then mapped to the ws port).
        return re.sub(r":(\d+)(?!\d)", lambda m: f":{ports.get(m.group(1), m.group(1))}", s)
    async with Session(n) as s:
        cons = await s.consumer()
        ws, cid, _ = await s.ws_client(cons)
        failures = []
        for cmd, expected in examples():
            r = subprocess.run(["bash", "-c", mapped(cmd)], capture_output=True, text=True, timeout=20,
                               env={**os.environ, "CID": cid})
            try:
                got = json.loads(r.stdout)
            except ValueError:
                failures.append(f"{cmd}\n  -> not JSON: {r.stdout!r} {r.stderr!r}")
                continue
            if got != json.loads(mapped(expected)):
                failures.append(f"{cmd}\n  -> {r.stdout.strip()}\n  documented: {expected}")
        assert not failures, "docs/api.md examples that do not run as written:\n" + "\n".join(failures)
