"""The static x86_64 binary (issue 10): `make static` gives one ELF that `file` calls statically linked,
with no dynamic section; run in an empty root (a directory holding only the binary, its configuration
and a minimal /etc/hosts, entered with unshare + chroot) it serves a WebSocket client a publish,
answers the route API, and two such nodes form a mesh whose seeds are host names that only their
root's /etc/hosts knows (so they were resolved without glibc's NSS modules and without the host's
files)."""

import asyncio
import os
import shutil
import time

import pytest

from pkgnode import REPO, ChrootNode, harness, run

OUT = os.path.join(os.environ.get("MESHGATE_PKG_OUT", os.path.join(REPO, "build-pkg")), "static-test")
NAMES = {1: "mg-static-a.test", 2: "mg-static-b.test"}  # in no real /etc/hosts or DNS


@pytest.fixture(scope="module")
def binary():
    shutil.rmtree(OUT, ignore_errors=True)  # a build left half-done by an interrupted run is not reused
    r = run(["make", "-C", REPO, "static", f"PKG_OUT={OUT}"], check=False)
    assert r.returncode == 0, f"make static failed:\n{r.stdout[-6000:]}"
    path = os.path.join(OUT, "static", "x86_64", "meshgate")
    assert os.path.isfile(path), r.stdout[-2000:]
    yield path
    shutil.rmtree(OUT, ignore_errors=True)


def empty_root(base, binary, name):
    """A directory with only /meshgate and /etc/hosts (the node writes its configuration next to them)."""
    root = os.path.join(base, name)
    os.makedirs(os.path.join(root, "etc"))
    shutil.copy2(binary, os.path.join(root, "meshgate"))
    with open(os.path.join(root, "etc", "hosts"), "w") as f:
        f.write("127.0.0.1 localhost " + " ".join(NAMES.values()) + "\n")
    return root


def test_statically_linked(binary):
    desc = run(["file", "-b", binary]).stdout
    assert "statically linked" in desc and "x86-64" in desc, desc
    dyn = run(["readelf", "-d", binary]).stdout
    assert "There is no dynamic section" in dyn, dyn
    assert run([binary, "--version"]).stdout.startswith("meshgate 0.1.0 (WebSocket codec: native)")


def test_empty_root_client_publish_and_route(binary, tmp_path):
    root = empty_root(str(tmp_path), binary, "root")
    node = ChrootNode(root, {"node": {"advertise": NAMES[1]}})
    assert sorted(os.listdir(root)) == ["etc", "meshgate", "node.conf"]
    node.start()
    try:
        asyncio.run(harness.assert_node_healthy(node))
        r = harness.http_request(node.route_port, "GET", "/route?uid=alice&intranet=0")
        assert r.status == 200 and r.json["ws_addr"] == f"ws://{NAMES[1]}:{node.port('ws')}", r
    finally:
        err = node.stop()
    assert err is None, err
    assert node.proc.returncode == 0, f"no clean drain on SIGTERM\n{node.describe()}"


def test_two_node_mesh_with_host_name_seeds(binary, tmp_path):
    roots = {nid: empty_root(str(tmp_path), binary, f"root{nid}") for nid in (1, 2)}
    mesh_ports = {nid: harness.free_port() for nid in (1, 2)}
    nodes = []
    try:
        for nid, other in ((1, 2), (2, 1)):
            n = ChrootNode(roots[nid], {
                "node": {"id": nid, "name": f"static-{nid}"},
                "mesh": {"bind": "127.0.0.1", "port": mesh_ports[nid], "cluster": "static", "secret": "static-mesh-secret-0123456789",
                         "advertise": f"{NAMES[nid]}:{mesh_ports[nid]}",
                         "seeds": f"{NAMES[other]}:{mesh_ports[other]}", "dead_after": 3}})
            n.start()
            nodes.append(n)
        deadline = time.monotonic() + 15
        views = None
        while time.monotonic() < deadline:
            views = [{e["id"]: e["state"] for e in harness.http_request(n.api_port, "GET", "/v1/nodes").json["r"]["nodes"]}
                     for n in nodes]
            if all(v == {1: "alive", 2: "alive"} for v in views):
                break
            time.sleep(0.2)
        assert all(v == {1: "alive", 2: "alive"} for v in views), \
            f"no two-node mesh from host-name seeds: {views}\n{nodes[0].describe()}\n{nodes[1].describe()}"
        asyncio.run(publish_across(nodes[0], nodes[1]))
    finally:
        errors = [e for e in (n.stop() for n in nodes) if e]
    assert not errors, errors


async def publish_across(a, b):
    """A client on node b, subscribed by a consumer on b, receives a publish made on node a."""
    async with harness.Session(b) as s:
        cons = await s.consumer(["client"])
        ws, cid, _ = await s.ws_client(cons)
        r = await cons.call("conn.call", {"c": cid, "f": "subscribe", "a": ["room:static"]})
        assert r["E"] is None, r
        assert await harness.aapi_ok(a, "mesh.publish", {"c": "room:static", "d": "across"}) == {"s": 1, "f": 0}
        assert await harness.ws_recv(ws) == "across"
