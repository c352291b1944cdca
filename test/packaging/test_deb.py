"""The Debian package (issue 10), as a user meets it: `make deb` builds it and lintian finds no error;
`apt-get install ./meshgate_*.deb` gives /usr/bin/meshgate, the conffile, the enabled systemd unit, the
meshgate system user and its directories, the man pages; the installed binary runs with the installed
configuration as that user and serves a WebSocket client a publish; an upgrade keeps an edited
conffile; purge removes the configuration, the directories, the user and the unit's enablement.

Runs as root on a machine where the package is not installed (CI); run.sh skips it otherwise. It leaves
the machine as it found it: the package is purged at the end whatever happened. The package is built
once per source tree and shared with the systemd suite (pkgnode.deb_package)."""

import glob
import grp
import os
import pwd
import re
import stat
import subprocess

import pytest

from pkgnode import REPO, InstalledNode, deb_package, harness, run

CONF = "/etc/meshgate/meshgate.conf"
PKG_OUT = os.environ.get("MESHGATE_PKG_OUT", os.path.join(REPO, "build-pkg"))
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def dpkg_status(pkg="meshgate"):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def apt(*args):
    # Other jobs on the machine may hold dpkg's lock for a while: wait for it instead of failing.
    return run(["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *args], env=APT_ENV)


@pytest.fixture(scope="module")
def deb_dir():
    """`make deb`'s output directory (the .deb, lintian.txt), shared with the systemd suite
    (pkgnode.deb_package: built once per source tree); purges the package at the end."""
    out, _ = deb_package(PKG_OUT)
    yield out
    if dpkg_status():
        subprocess.run(["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "purge", "meshgate"], env=APT_ENV,
                       stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def deb(deb_dir):
    return glob.glob(os.path.join(deb_dir, "meshgate_*.deb"))[0]


def test_lintian_warnings_are_documented(deb_dir):
    """lintian ran in `make deb` (which fails on an error); each warning it gave is explained in docs."""
    text = open(os.path.join(deb_dir, "lintian.txt")).read()
    assert not re.search(r"^E: ", text, re.M), text
    docs = open(os.path.join(REPO, "docs", "packaging.md")).read()
    for tag in re.findall(r"^W: meshgate[^:]*: (\S+)", text, re.M):
        assert f"`{tag}`" in docs, f"lintian warning {tag} is not listed with a reason in docs/packaging.md"


def test_depends_computed_from_shared_libraries(deb):
    depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    for lib in ("libuv1", "libssl3", "libcjson1", "libwslay1", "libinih1", "libnats3.4", "libc6"):
        assert re.search(rf"\b{lib} \(>= ", depends), f"{lib} missing from Depends: {depends}"


def test_install_run_upgrade_purge(deb, tmp_path_factory):
    assert not dpkg_status(), "meshgate is installed already"
    apt("install", deb)
    assert dpkg_status().startswith("install ok installed"), dpkg_status()

    # What the package put on the machine.
    assert os.access("/usr/bin/meshgate", os.X_OK)
    assert run(["/usr/bin/meshgate", "--version"]).stdout.startswith("meshgate 0.1.0")
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "meshgate"]).stdout
    assert CONF in conffiles, f"{CONF} is not a conffile: {conffiles!r}"
    user = pwd.getpwnam("meshgate")
    assert user.pw_uid < 1000 and user.pw_dir == "/var/lib/meshgate" and user.pw_shell.endswith("nologin")
    st = os.stat(CONF)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == user.pw_gid, \
        "the configuration may hold secrets: it must be root:meshgate 0640"
    for d in ("/var/lib/meshgate", "/var/log/meshgate"):
        st = os.stat(d)
        assert st.st_uid == user.pw_uid, f"{d} is not owned by meshgate"
    unit = open("/lib/systemd/system/meshgate.service").read()
    assert "ExecStart=/usr/bin/meshgate -c /etc/meshgate/meshgate.conf" in unit
    assert re.search(r"^User=meshgate$", unit, re.M)
    assert os.path.islink("/etc/systemd/system/multi-user.target.wants/meshgate.service"), \
        "the unit is not enabled"
    assert os.path.isfile("/usr/lib/sysusers.d/meshgate.conf")
    for page in ("/usr/share/man/man8/meshgate.8.gz", "/usr/share/man/man5/meshgate.conf.5.gz"):
        assert os.path.isfile(page), page
    # The shipped configuration keeps queue events on disk ([queue] store = disk): in the state directory
    # systemd's StateDirectory= names, which these runs without systemd name the same way.
    state = {"STATE_DIRECTORY": "/var/lib/meshgate"}
    assert run(["/usr/bin/meshgate", "--check-config", "-c", CONF], env={**os.environ, **state}).returncode == 0
    no_state = run(["/usr/bin/meshgate", "--check-config", "-c", CONF], check=False,
                   env={k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"})
    assert no_state.returncode != 0 and "needs a state directory" in no_state.stdout, no_state.stdout

    # The installed binary, with the installed configuration, as the package's user (no systemd).
    workdir = str(tmp_path_factory.mktemp("deb-node"))
    os.chmod(workdir, 0o755)
    node = InstalledNode(workdir, ["setpriv", "--reuid=meshgate", "--regid=meshgate", "--init-groups",
                                   "/usr/bin/meshgate", "-c", CONF], CONF)
    node.start(env=state)
    try:
        status = open(f"/proc/{node.proc.pid}/status").read()
        assert re.search(rf"^Uid:\s+{user.pw_uid}\s", status, re.M), "not running as meshgate"
        harness.asyncio.run(publish_to_a_client(node))
        topic_dir = "/var/lib/meshgate/queue/client"
        assert os.path.isdir(topic_dir), "the client topic's disk log is not in the package's state directory"
        assert os.stat(topic_dir).st_uid == user.pw_uid, f"{topic_dir} is not the package user's"
    finally:
        err = node.stop()
    assert err is None, err
    assert node.proc.returncode == 0, node.stderr()

    # An upgrade keeps an edited conffile (and the permissions on it).
    with open(CONF, "a") as f:
        f.write("\n; edited by the package test\n")
    edited = open(CONF).read()
    deb2 = rebuild_with_version(deb, "0.1.0-2", str(tmp_path_factory.mktemp("deb-upgrade")))
    apt("install", deb2)
    assert dpkg_status() == "install ok installed 0.1.0-2", dpkg_status()
    assert open(CONF).read() == edited, "the upgrade replaced the edited configuration"
    st = os.stat(CONF)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == pwd.getpwnam("meshgate").pw_gid

    # Purge removes the package's files, configuration, directories, user and enablement.
    apt("purge", "meshgate")
    assert not dpkg_status().startswith("install"), dpkg_status()
    for path in ("/usr/bin/meshgate", CONF, "/etc/meshgate", "/var/lib/meshgate", "/var/log/meshgate",
                 "/lib/systemd/system/meshgate.service", "/usr/lib/sysusers.d/meshgate.conf",
                 "/etc/systemd/system/multi-user.target.wants/meshgate.service"):
        assert not os.path.lexists(path), f"{path} is still there after purge"
    with pytest.raises(KeyError):
        pwd.getpwnam("meshgate")
    with pytest.raises(KeyError):
        grp.getgrnam("meshgate")
    assert CONF not in run(["dpkg-statoverride", "--list"]).stdout


async def publish_to_a_client(node):
    """A WebSocket client on the shipped ws listener gets subscribed by a consumer and receives a publish."""
    async with harness.Session(node) as s:
        cons = await s.consumer(["client"])
        ws, cid, _ = await s.ws_client(cons, "ws", "/")
        r = await cons.call("conn.call", {"c": cid, "f": "subscribe", "a": ["room:deb"]})
        assert r["E"] is None, r
        assert await harness.aapi_ok(node, "mesh.publish", {"c": "room:deb", "d": "from the package"}) == \
            {"s": 1, "f": 0}
        assert await harness.ws_recv(ws) == "from the package"


def rebuild_with_version(deb, version, workdir):
    """The same package under another version: what `apt-get install` of a newer build does to it."""
    tree = os.path.join(workdir, "tree")
    run(["dpkg-deb", "-R", deb, tree])
    control = os.path.join(tree, "DEBIAN", "control")
    text = re.sub(r"^Version: .*$", f"Version: {version}", open(control).read(), flags=re.M)
    open(control, "w").write(text)
    out = os.path.join(workdir, f"meshgate_{version}_{os.path.basename(deb).rsplit('_', 1)[1]}")
    run(["dpkg-deb", "--root-owner-group", "-b", tree, out])
    return out
