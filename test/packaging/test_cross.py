"""The arm builds (issue 10): `make cross ARCH=arm64|armhf` (ARCH from $MESHGATE_CROSS_ARCH) gives one
static ELF for that architecture built with Debian's cross toolchain; its unit tests, cross-built with
it, pass under qemu-user; and the binary itself starts under qemu-user, answers /healthz and serves a
WebSocket client a broadcast."""

import asyncio
import json
import os
import shutil

import pytest

from pkgnode import REPO, harness, run

ARCH = os.environ.get("MESHGATE_CROSS_ARCH", "arm64")
QEMU = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}[ARCH]
FILE_SAYS = {"arm64": "ARM aarch64", "armhf": "ARM, EABI5"}[ARCH]
OUT = os.path.join(os.environ.get("MESHGATE_PKG_OUT", os.path.join(REPO, "build-pkg")), f"cross-test-{ARCH}")
BUILD = os.path.join(OUT, "static", f"build-{ARCH}")


@pytest.fixture(scope="module")
def binary():
    shutil.rmtree(OUT, ignore_errors=True)  # a build left half-done by an interrupted run is not reused
    env = dict(os.environ, TESTS="1")
    r = run(["make", "-C", REPO, "cross", f"ARCH={ARCH}", f"PKG_OUT={OUT}"], check=False, env=env)
    assert r.returncode == 0, f"make cross ARCH={ARCH} failed:\n{r.stdout[-8000:]}"
    path = os.path.join(OUT, "static", ARCH, "meshgate")
    assert os.path.isfile(path), r.stdout[-2000:]
    yield path
    shutil.rmtree(OUT, ignore_errors=True)


def test_static_elf_for_the_architecture(binary):
    desc = run(["file", "-b", binary]).stdout
    assert "statically linked" in desc and FILE_SAYS in desc, desc


def test_unit_tests_pass_under_qemu(binary):
    """`make cross` with TESTS=1 ran them; here their results are read back from meson's log."""
    results = [json.loads(line) for line in open(os.path.join(BUILD, "meson-logs", "testlog.json"))]
    unit = [r for r in results if r["name"].split(" / ")[0].split(":")[-1] == "unit"]
    assert len(unit) >= 15, f"only {len(unit)} unit tests ran"
    failed = [r["name"] for r in unit if r["result"] != "OK"]
    assert not failed, f"unit tests failed under {QEMU}: {failed}"
    assert all(QEMU in " ".join(r["command"]) for r in unit), "the unit tests did not run under qemu-user"


class QemuNode(harness.Node):
    def __init__(self, workdir, binary):
        super().__init__(workdir)
        self.binary = binary

    def command(self):
        return [QEMU, self.binary, "-c", self.conf_path]


def test_binary_starts_under_qemu_and_answers(binary, tmp_path):
    assert run([QEMU, binary, "--version"]).stdout.startswith("meshgate 0.1.0 (WebSocket codec: native)")
    node = QemuNode(str(tmp_path), binary)
    node.start()
    try:
        r = harness.http_request(node.api_port, "GET", "/healthz")
        assert r.status == 200, r
        asyncio.run(harness.assert_node_healthy(node))
    finally:
        err = node.stop()
    assert err is None, err
