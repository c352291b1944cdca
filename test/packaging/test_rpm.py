"""The RPM (issue 10): `make rpm` builds it from packaging/rpm/meshgate.spec and rpmlint finds no error;
its file list, file attributes, scriptlets and requirements are what the spec intends; the binary
inside it runs (extracted with rpm2cpio, since a Debian machine does not install RPMs) with the
packaged configuration, and serves a WebSocket client a publish."""

import os
import re
import shutil
import subprocess

import pytest

from pkgnode import REPO, harness, make_package, run

OUT = os.path.join(os.environ.get("MESHGATE_PKG_OUT", os.path.join(REPO, "build-pkg")), "rpm-test")


@pytest.fixture(scope="module")
def rpm():
    yield make_package("rpm", OUT, "meshgate-*.rpm")
    shutil.rmtree(OUT, ignore_errors=True)


def q(rpm, *args):
    return run(["rpm", "-qp", *args, rpm]).stdout


def test_rpmlint_has_no_error_and_warnings_are_documented(rpm):
    text = open(os.path.join(OUT, "rpmlint.txt")).read()
    assert re.search(r"\b0 errors\b", text), text
    docs = open(os.path.join(REPO, "docs", "packaging.md")).read()
    for tag in re.findall(r"^meshgate\S*: W: (\S+)", text, re.M):
        assert f"`{tag}`" in docs, f"rpmlint warning {tag} is not listed with a reason in docs/packaging.md"


def test_file_list_and_attributes(rpm):
    files = {}
    for line in q(rpm, "--qf", "[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\t"
                              "%{FILEFLAGS:fflags}\n]").splitlines():
        path, perms, user, group, flags = line.split("\t")
        files[path] = (perms, user, group, flags)
    ours = {p for p in files if not p.startswith(("/usr/lib/.build-id", "/usr/share/doc/", "/usr/share/licenses/"))}
    assert ours == {
        "/usr/bin/meshgate", "/etc/meshgate", "/etc/meshgate/meshgate.conf",
        "/usr/lib/systemd/system/meshgate.service", "/usr/lib/sysusers.d/meshgate.conf",
        "/usr/share/man/man5/meshgate.conf.5.gz", "/usr/share/man/man8/meshgate.8.gz",
        "/var/lib/meshgate", "/var/log/meshgate", "/usr/share/bash-completion/completions/meshgate",
    }, sorted(ours)
    assert "/usr/share/licenses/meshgate-0.1.0/LICENSE" in files
    # %config(noreplace), root:meshgate 0640: an upgrade keeps the user's file, and its secrets stay private.
    perms, user, group, flags = files["/etc/meshgate/meshgate.conf"]
    assert "c" in flags and "n" in flags, f"not %config(noreplace): flags {flags!r}"
    assert (perms, user, group) == ("-rw-r-----", "root", "meshgate")
    for d in ("/var/lib/meshgate", "/var/log/meshgate"):
        assert files[d] == ("drwxr-x---", "meshgate", "meshgate", ""), (d, files[d])
    assert files["/usr/bin/meshgate"][:3] == ("-rwxr-xr-x", "root", "root")
    assert q(rpm, "--configfiles").split() == ["/etc/meshgate/meshgate.conf"]


def test_scriptlets(rpm):
    scripts = q(rpm, "--scripts")
    parts = dict(re.findall(r"^(\w+) scriptlet \(using /bin/sh\):\n(.*?)(?=^\w+ scriptlet|\Z)", scripts, re.M | re.S))
    assert set(parts) == {"preinstall", "postinstall", "preuninstall", "postuninstall"}, scripts
    # The sysusers.d user is made before the files that it owns are laid down.
    assert re.search(r"useradd -r -g meshgate -d '/var/lib/meshgate' -s /sbin/nologin .* meshgate", parts["preinstall"])
    assert "groupadd -r meshgate" in parts["preinstall"]
    # systemd: enabled per preset on first install, stopped and disabled on erase, restarted on upgrade.
    assert re.search(r"\$1 -eq 1 \].*?preset meshgate\.service", parts["postinstall"], re.S)
    assert re.search(r"\$1 -eq 0 \].*?disable --now meshgate\.service", parts["preuninstall"], re.S)
    assert re.search(r"\$1 -ge 1 \].*?try-restart meshgate\.service", parts["postuninstall"], re.S)
    for name, body in parts.items():
        r = subprocess.run(["sh", "-n"], input=body, text=True, capture_output=True)
        assert r.returncode == 0, f"{name} scriptlet is not valid sh: {r.stderr}"


def test_requirements_from_shared_libraries(rpm):
    requires = set(q(rpm, "--requires").split("\n"))
    for lib in ("libuv.so.1()(64bit)", "libssl.so.3(OPENSSL_3.0.0)(64bit)", "libcrypto.so.3()(64bit)",
                "libcjson.so.1()(64bit)", "libwslay.so.1()(64bit)", "libinih.so.1()(64bit)", "libnats.so.3.4()(64bit)",
                "libc.so.6()(64bit)", "shadow-utils"):
        assert lib in requires, f"{lib} not required: {sorted(requires)}"
    assert "/usr/lib/systemd/system/meshgate.service" in q(rpm, "--list")


def test_packaged_binary_runs(rpm, tmp_path):
    root = str(tmp_path / "root")
    os.makedirs(root)
    run(["sh", "-c", f"rpm2cpio '{rpm}' | cpio -idm --quiet"], cwd=root)
    binary = os.path.join(root, "usr", "bin", "meshgate")
    conf = os.path.join(root, "etc", "meshgate", "meshgate.conf")
    assert run([binary, "--version"]).stdout.startswith("meshgate 0.1.0")
    # The shipped store = disk needs a state directory (systemd's StateDirectory= gives the service one).
    assert "is valid" in run([binary, "--check-config", "-c", conf],
                             env={**os.environ, "STATE_DIRECTORY": str(tmp_path)}).stdout
    unit = open(os.path.join(root, "usr", "lib", "systemd", "system", "meshgate.service")).read()
    assert "ExecStart=/usr/bin/meshgate -c /etc/meshgate/meshgate.conf" in unit
    os.environ["MESHGATE_BIN"] = binary
    mgr = harness.NodeManager(str(tmp_path / "nodes"))
    try:
        node = mgr.start()
        harness.asyncio.run(harness.assert_node_healthy(node))
    finally:
        errors = mgr.stop_all()
    assert not errors, errors
