"""Nodes for the packaging suites: the meshgate that a package installed, run with its installed
configuration, or a static binary run inside an empty root. Both reuse the integration harness
(test/integration/harness.py): its clients, its start-up wait on /healthz, its SIGTERM stop."""

import configparser
import glob
import os
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
