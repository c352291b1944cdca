"""Nodes for the packaging suites: the meshgate that a package installed, run with its installed
configuration, or a static binary run inside an empty root. Both reuse the integration harness
(test/integration/harness.py): its clients, its start-up wait on /healthz, its SIGTERM stop."""

import configparser
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test", "integration"))

import harness  # noqa: E402


def read_config(path):
    """The sections of an installed meshgate.conf, as the harness keeps them ({section: {key: value}})."""
    p = configparser.ConfigParser(comment_prefixes=(";", "#"), interpolation=None)
    with open(path) as f:
        p.read_file(f)
    return {s: dict(p.items(s)) for s in p.sections()}


class InstalledNode(harness.Node):
    """An installed binary with an installed configuration, started by `argv` (e.g. as another user)."""

    def __init__(self, workdir, argv, conf_path):
        self.dir = workdir
        os.makedirs(self.dir, exist_ok=True)
        self.argv = list(argv)
        self.conf_path = conf_path
        self.cfg = read_config(conf_path)
        self.stderr_path = os.path.join(self.dir, "installed.stderr.log")
        self.proc = None
        self.stopping = False
        self.failed_reported = False

    def command(self):
        return self.argv


class ChrootNode(harness.Node):
    """A node whose binary and configuration sit in an otherwise empty root directory, run with
    `unshare --mount --ipc --uts chroot ROOT /meshgate -c /NAME.conf`: its own mount, IPC and host-name
    namespaces, the host's network so the test reaches it on loopback. unshare and chroot exec, so
    the SIGTERM of a stop reaches meshgate itself and it drains."""

    def __init__(self, root, overrides=None, name="node"):
        super().__init__(root, overrides, name)
        self.root = root

    def command(self):
        return ["unshare", "--mount", "--ipc", "--uts", "chroot", self.root, "/meshgate",
                "-c", "/" + os.path.basename(self.conf_path)]


def run(cmd, check=True, **kw):
    """subprocess.run with output captured; on failure the assertion shows the command and its output."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)} -> exit {r.returncode}\n{r.stdout[-4000:]}"
    return r


def make_package(target, out, pattern):
    """Runs `make TARGET` with its output directory set to OUT; returns the one file matching PATTERN."""
    var = {"deb": "DEB_OUT", "rpm": "RPM_OUT"}[target]
    r = run(["make", "-C", REPO, target, f"{var}={out}"], check=False)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout[-6000:]}"
    found = glob.glob(os.path.join(out, pattern))
    assert len(found) == 1, f"expected one {pattern} in {out}, found {found}"
    return found[0]


def package_tree_files():
    """The files scripts/package-tree.sh copies into a package build: what git tracks plus new files it
    does not ignore (the whole tree less build directories, .git and node_modules outside git)."""
    r = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        names = [n for n in r.stdout.decode().split("\0") if n]
    else:
        names = []
        for top, dirs, files in os.walk(REPO):
            rel = os.path.relpath(top, REPO)
            dirs[:] = [d for d in dirs if not (rel == "." and (d.startswith("build") or d == ".git"))
                       and d != "node_modules"]
            names += [os.path.normpath(os.path.join(rel, f)) for f in files]
    return sorted(n for n in names if os.path.lexists(os.path.join(REPO, n)))


def deb_build_key():
    """What a `make deb` output depends on: every file of the package tree (name, executable bit,
    content) and the installed versions of the package's Build-Depends. Two builds with one key make
    the same package, so the suites that install it share one build (deb_package)."""
    h = hashlib.sha256()
    for name in package_tree_files():
        path = os.path.join(REPO, name)
        h.update(name.encode() + b"\0")
        if os.path.islink(path):
            h.update(b"link\0" + os.readlink(path).encode())
        else:
            h.update(b"x" if os.access(path, os.X_OK) else b"-")
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    control = open(os.path.join(REPO, "packaging", "debian", "control")).read()
    deps = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1)
    names = sorted({re.match(r"\s*([a-z0-9.+-]+)", d).group(1) for d in deps.split(",") if d.strip()})
    versions = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\n", *names],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    h.update(versions.encode())
    return h.hexdigest()[:20]


def deb_package(pkg_out):
    """The Debian package of this tree: (directory, .deb path). Built with `make deb` into
    PKG_OUT/deb-<key> the first time, reused by the next suite that asks while the tree and the
    build dependencies are the same (deb_build_key); a build for another key replaces it. The
    directory also holds lintian.txt and build.log. Suites must not change or remove it."""
    os.makedirs(pkg_out, exist_ok=True)
    with open(os.path.join(pkg_out, "deb.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # meson runs the packaging suites one at a time; by hand, maybe not
        key = deb_build_key()
        out = os.path.join(pkg_out, f"deb-{key}")
        done = os.path.join(out, "built")
        if not os.path.exists(done):
            for old in glob.glob(os.path.join(pkg_out, "deb-*")):
                shutil.rmtree(old, ignore_errors=True)
            make_package("deb", out, "meshgate_*.deb")
            open(done, "w").close()
        found = glob.glob(os.path.join(out, "meshgate_*.deb"))
        assert len(found) == 1, f"expected one meshgate_*.deb in {out}, found {found}"
        return out, found[0]
