"""The Debian package's service under a real systemd (issue 24): systemd 252 booted as PID 1 in a
container, the package installed in it, the unit driven as an operator drives it.

The container leaves the host as it was. The host's root is bound without its submounts and
read-only (`mount --bind / LOW`, remounted ro), a writable overlay goes on it (upper and work
directories on a tmpfs, in /tmp/meshgate-systemd-test-*), and everything the test adds is written into the overlay only: the package
(`dpkg -i` inside the overlay: its files, the meshgate user, the unit's enablement), a drop-in
with a short `WatchdogSec=`, and a target that boots the base system and meshgate and nothing else
of what the host has enabled. `systemd-nspawn --register=no --keep-unit --private-network -D ROOT -b`
boots it (no machined, no D-Bus of the host, only a loopback network of its own). At the end the
container is powered off (killed if it does not go), the overlay and the bind are unmounted, and the
test checks the host has no meshgate package, user, configuration or unit. SIGTERM (meson's timeout)
gets the same clean-up; a run killed outright is swept by the next one (sweep_stale_runs).

The checks are driven from outside, with `nsenter --target <container's PID 1> --all` for
systemctl, journalctl and systemd-analyze inside, and clients (test/integration/harness.py: python3-
websockets, raw TCP) run by this process after it moved its own thread into the container's network
namespace (setns). Chosen over a oneshot unit inside that writes a report: each check is a pytest
assertion that shows what it saw, timings are taken next to the commands that cause them, and the
clients need nothing installed in the container.

What it checks, inside: readiness only after every listener is open (the journal names every
listener before systemd's "Started", and right after `systemctl start` returns every port accepts);
STATUS= (`StatusText`) at rest and with a client and a consumer; journald priorities (info lines at
6, a reload of a broken file at err); `systemctl reload` with a changed log level taking effect
(debug lines appear); a changed port on reload named as needing a restart; restart after SIGKILL;
the watchdog (main process stopped with SIGSTOP: killed and restarted within WatchdogSec, plus
RestartSec, plus a margin); `systemctl stop` with a consumer connected, events held unacknowledged
and events still queued, then start: every event after the acknowledged ones comes back, in order,
marked "r":true (the shipped [queue] store = disk, in StateDirectory=); `systemd-analyze security`
no worse than the figure docs/operations.md states. The timings it sees (start to READY, stop with
a drain) are printed and written to $MESHGATE_PKG_OUT/systemd-figures.txt.

Needs root, overlayfs, systemd-nspawn (package systemd-container) and a systemd on the host's root;
run.sh skips (77) without them, and this file skips the same way when the container cannot be made
or does not boot, with the reason."""

import asyncio
import contextlib
import ctypes
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import pytest

from pkgnode import REPO, deb_package, harness, read_config, run

PKG_OUT = os.environ.get("MESHGATE_PKG_OUT", os.path.join(REPO, "build-pkg"))
UNIT = "meshgate.service"
WATCHDOG_SEC = 3    # the drop-in's WatchdogSec= (the unit ships 30 s)
RESTART_SEC = 2     # the unit's RestartSec=
BOOT_TIMEOUT = 120  # container boot, until systemctl answers "running" or "degraded"
T = 20.0            # one wait inside the container
FIGURES = {}        # name -> text, printed and written at the end
LEVEL_WORD = re.compile(r"(error|warn|info|debug) +")
PRIORITY = {"error": "3", "warn": "4", "info": "6", "debug": "7"}

TEST_TARGET = """\
# Boots the base system and meshgate only (test/packaging/test_systemd.py): not the rest of what the
# host enabled in multi-user.target.
[Unit]
Description=meshgate package test
Requires=basic.target
Wants=meshgate.service
After=basic.target meshgate.service
AllowIsolate=yes
"""

DROP_IN = f"""\
# test/packaging/test_systemd.py: a watchdog short enough to test, and no limit on starts (the test
# starts the unit more often than the default 5 in 10 s).
[Unit]
StartLimitIntervalSec=0

[Service]
WatchdogSec={WATCHDOG_SEC}s
"""


def skip_suite(reason):
    """Ends the session with 77 (meson: SKIP), as run.sh does for a missing tool."""
    pytest.exit(f"SKIP packaging/systemd: {reason}", returncode=77)


# -- the container ----------------------------------------------------------------------------------

WORK_PREFIX = "/tmp/meshgate-systemd-test-"  # + a random part: one folder a run


def mounts_below(path):
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    points = []
    for line in open("/proc/self/mountinfo"):
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == path or point.startswith(path + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def sweep_stale_runs():
    """What a run killed before its clean-up left (its container, its mounts, its folder), when the
    process that made it is gone. The folder's `owner` holds that process's pid and the container's
    PID 1 as the host sees it."""
    for work in glob.glob(WORK_PREFIX + "*"):
        try:
            pids = [int(x) for x in open(os.path.join(work, "owner")).read().split()]
        except (OSError, ValueError):
            pids = []
        if pids and os.path.exists(f"/proc/{pids[0]}"):
            continue  # a run that is still going
        if len(pids) > 1 and os.path.exists(f"/proc/{pids[1]}"):
            with contextlib.suppress(OSError):
                if open(f"/proc/{pids[1]}/comm").read().strip() == "systemd" and \
                        os.readlink(f"/proc/{pids[1]}/ns/pid") != os.readlink("/proc/self/ns/pid"):
                    os.kill(pids[1], signal.SIGKILL)
                    time.sleep(1)
        for point in mounts_below(work):
            run(["umount", "--lazy", point], check=False)
        if not mounts_below(work):
            shutil.rmtree(work, ignore_errors=True)
        if pids:
            for suffix in ("", "-install"):
                Container.remove_propagate_dir(f"meshgate-test-{pids[0]}{suffix}")
    remove_nspawn_run_dirs()


def remove_nspawn_run_dirs():
    """nspawn makes /run/systemd/nspawn/{propagate,locks}; on a host that does not boot with systemd
    /run is not a tmpfs and they would stay. Removed when empty (nspawn makes them again)."""
    for d in ("/run/systemd/nspawn/propagate", "/run/systemd/nspawn/locks", "/run/systemd/nspawn"):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def processes():
    """(pid, parent pid, [pid in each PID namespace, outermost first]) of every process, as the host
    sees them."""
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            text = open(status).read()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", text, re.M)
        nspid = re.search(r"^NSpid:\s+(.*)$", text, re.M)
        if ppid and nspid:
            yield int(status.split("/")[2]), int(ppid.group(1)), [int(x) for x in nspid.group(1).split()]


class Container:
    """The overlay on the host's root and systemd booted in it; every method that runs something
    inside goes through nsenter into all of the container's namespaces."""

    # No machined or D-Bus of the host, nspawn stays in this process's cgroup, a network namespace
    # with loopback only, and the container's journal kept to itself (it has the host's machine id).
    NSPAWN = ["--register=no", "--keep-unit", "--private-network", "--link-journal=no"]
    ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}

    def __init__(self, tmp):
        self.tmp = tmp
        self.low = os.path.join(tmp, "low")
        self.rw = os.path.join(tmp, "rw")
        self.root = os.path.join(tmp, "root")
        self.name = f"meshgate-test-{os.getpid()}"
        self.mounted = []
        self.nspawn = None
        self.pid1 = None
        self.log_path = os.path.join(tmp, "nspawn.log")

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    # -- set-up --
    def mount(self):
        """LOW = the host's root without submounts; ROOT = a writable overlay on it. Returns an error
        text when this machine cannot (no overlayfs, no permission), else None."""
        for d in (self.low, self.rw, self.root):
            os.makedirs(d)
        # LOW is read-only: whatever walks into it (a clean-up of a folder whose unmount failed, a
        # careless rm -r of /tmp) cannot touch the host's files.
        steps = [(["mount", "--bind", "/", self.low], self.low),
                 (["mount", "-o", "remount,bind,ro", self.low], None),
                 (["mount", "--make-private", self.low], None),
                 (["mount", "-t", "tmpfs", "-o", "mode=0755,size=2g", "meshgate-test", self.rw], self.rw)]
        for cmd, point in steps:
            r = run(cmd, check=False)
            if r.returncode != 0:
                return f"{' '.join(cmd)}: {r.stdout.strip()}"
            if point:
                self.mounted.append(point)
        upper, work = os.path.join(self.rw, "upper"), os.path.join(self.rw, "work")
        os.makedirs(upper)
        os.makedirs(work)
        r = run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={self.low},upperdir={upper},workdir={work}",
                 self.root], check=False)
        if r.returncode != 0:
            return f"no writable overlay on the host's root (mount -t overlay: {r.stdout.strip()})"
        self.mounted.append(self.root)
        return None

    def install(self, deb):
        """dpkg -i in the overlay, in a non-booted nspawn (its own /dev, /proc and /run: no systemd
        running there, so the postinst enables the unit and starts nothing)."""
        # man-db's trigger rebuilds its whole index when this file exists: seconds for nothing here.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path("/var/lib/man-db/auto-update"))
        # Not in /tmp: nspawn mounts a tmpfs there.
        shutil.copy(deb, self.path("/var/tmp/meshgate.deb"))
        r = run(["systemd-nspawn", "--quiet", *self.NSPAWN, f"--machine={self.name}-install", "-D", self.root,
                 "--setenv=DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", "/var/tmp/meshgate.deb"], check=False)
        os.unlink(self.path("/var/tmp/meshgate.deb"))
        self.remove_propagate_dir(f"{self.name}-install")
        return r

    def configure(self):
        os.makedirs(self.path("/etc/systemd/system/meshgate.service.d"), exist_ok=True)
        with open(self.path("/etc/systemd/system/meshgate.service.d/test-watchdog.conf"), "w") as f:
            f.write(DROP_IN)
        with open(self.path("/etc/systemd/system/meshgate-test.target"), "w") as f:
            f.write(TEST_TARGET)

    def boot(self):
        """Starts systemd-nspawn -b in the background and waits until the container's systemd answers.
        Returns an error text when it cannot boot, else None."""
        log = open(self.log_path, "w")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", *self.NSPAWN, f"--machine={self.name}", "-D", self.root, "-b", "--",
             "systemd.unit=meshgate-test.target"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        with open(os.path.join(self.tmp, "owner"), "w") as f:
            f.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.pid1 is None and time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                return f"systemd-nspawn exited with {self.nspawn.returncode}: {self.log_tail()}"
            self.pid1 = self.find_pid1()
            time.sleep(0.05)
        if self.pid1 is None:
            return f"no PID 1 in the container after {BOOT_TIMEOUT}s: {self.log_tail()}"
        with open(os.path.join(self.tmp, "owner"), "a") as f:
            f.write(f"{self.pid1}\n")
        state = ""
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                return f"the container stopped while booting ({self.nspawn.returncode}): {self.log_tail()}"
            r = self.sh("systemctl", "is-system-running", "--wait", check=False,
                        timeout=max(1, deadline - time.monotonic()))
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return None
            time.sleep(0.2)
        return f"the container's systemd did not finish booting in {BOOT_TIMEOUT}s ({state}): {self.log_tail()}"

    def find_pid1(self):
        """The container's PID 1 as the host sees it: the child of systemd-nspawn that is PID 1 in
        its own PID namespace."""
        for pid, ppid, nspid in processes():
            if ppid == self.nspawn.pid and len(nspid) > 1 and nspid[-1] == 1:
                return pid
        return None

    def log_tail(self, n=15):
        try:
            return "\n".join(open(self.log_path, errors="replace").read().splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- tear-down --
    def poweroff(self):
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            if self.pid1:
                self.sh("systemctl", "poweroff", check=False, timeout=10)
            self.nspawn.wait(30)
            return
        # Killing the container's PID 1 ends every process of its PID namespace, and nspawn with them.
        for pid in (self.pid1, self.nspawn.pid):
            with contextlib.suppress(OSError, TypeError):
                os.kill(pid, signal.SIGKILL)
        self.nspawn.wait(10)

    def unmount(self):
        """Unmounts what mount() mounted, the last first; lazily when something still holds it."""
        problems = []
        for point in reversed(self.mounted):
            r = run(["umount", point], check=False)
            if r.returncode != 0:
                r = run(["umount", "--lazy", point], check=False)
                problems.append(f"{point} was busy (unmounted lazily)")
                if r.returncode != 0:
                    problems.append(f"umount {point}: {r.stdout.strip()}")
        self.mounted = []
        if not mounts_below(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.remove_propagate_dir(self.name)
        remove_nspawn_run_dirs()
        return problems

    @staticmethod
    def remove_propagate_dir(name):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join("/run/systemd/nspawn/propagate", name))

    # -- inside --
    def sh(self, *cmd, check=True, timeout=60):
        return run(["nsenter", f"--target={self.pid1}", "--all", *cmd], check=check, timeout=timeout,
                   env=self.ENV)

    def systemctl(self, *args, check=True, timeout=60):
        return self.sh("systemctl", "--no-pager", *args, check=check, timeout=timeout)

    def show(self, *props):
        out = self.systemctl("show", UNIT, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def cursor(self):
        """The position of meshgate.service's last journal entry: journal(after=...) returns only what
        comes later. (journalctl 252 returned nothing after a cursor whose own entry did not match the
        filter, seen with -u and -p err: so cursors are taken with the same -u, and journal() filters
        priorities itself.)"""
        out = self.sh("journalctl", "-u", UNIT, "-n", "1", "-o", "json", "--no-pager").stdout.strip()
        return json.loads(out.splitlines()[-1])["__CURSOR"] if out else None

    def journal(self, after=None, priority=None):
        """meshgate.service's journal entries (its own lines and systemd's about it), oldest first;
        with `priority` (a number) only those at it or more urgent."""
        cmd = ["journalctl", "-u", UNIT, "-o", "json", "--no-pager"]
        if after:
            cmd.append(f"--after-cursor={after}")
        out = self.sh(*cmd).stdout
        entries = []
        for line in out.splitlines():
            e = json.loads(line)
            if isinstance(e.get("MESSAGE"), list):
                e["MESSAGE"] = bytes(e["MESSAGE"]).decode(errors="replace")
            # meshgate's text lines start with their level word (the priority is journald's field).
            m = LEVEL_WORD.match(e.get("MESSAGE", ""))
            e["LEVEL"], e["TEXT"] = (m.group(1), e["MESSAGE"][m.end():]) if m else (None, e.get("MESSAGE", ""))
            if priority is None or int(e.get("PRIORITY", 6)) <= priority:
                entries.append(e)
        return entries

    def wait_journal(self, pred, after, what, timeout=T, priority=None):
        deadline = time.monotonic() + timeout
        while True:
            entries = self.journal(after, priority)
            hits = [e for e in entries if pred(e)]
            if hits:
                return hits[0], entries
            if time.monotonic() > deadline:
                text = "\n".join(f"<{e.get('PRIORITY')}> {e.get('MESSAGE')}" for e in entries[-30:])
                raise AssertionError(f"journal: {what} not within {timeout}s; meshgate.service since:\n{text}")
            time.sleep(0.2)

    def wait_unit(self, pred, what, timeout=T, props=("ActiveState", "SubState", "MainPID", "NRestarts", "Result")):
        deadline = time.monotonic() + timeout
        while True:
            p = self.show(*props)
            if pred(p):
                return p
            if time.monotonic() > deadline:
                raise AssertionError(f"{UNIT}: {what} not within {timeout}s; last {p}")
            time.sleep(0.1)

    def ensure_active(self):
        p = self.show("ActiveState")
        if p["ActiveState"] != "active":
            self.systemctl("start", UNIT)
        return self.wait_unit(lambda p: p["ActiveState"] == "active" and p["SubState"] == "running",
                              "active (running)")


# -- clients in the container's network namespace --------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(pid):
    """Moves this thread into the network namespace of `pid` (threads it starts follow), and back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the container's network namespace")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back into the host's network namespace")
    finally:
        os.close(own)
        os.close(target)


class ContainerNode:
    """What harness.Session and the API helpers need of a node: its configuration and ports."""

    def __init__(self, container):
        self.conf_path = container.path("/etc/meshgate/meshgate.conf")
        self.cfg = read_config(self.conf_path)

    @property
    def api_port(self):
        return int(self.cfg["api"]["port"])

    def port(self, listener):
        return int(self.cfg[f"listener.{listener}"]["port"])

    def listeners(self):
        return [s.split(".", 1)[1] for s in self.cfg if s.startswith("listener.")]


def run_clients(container, fn, *args):
    """Runs fn(*args) (an async scenario, or a plain function) with its sockets in the container's
    network namespace."""
    with in_netns(container.pid1):
        if asyncio.iscoroutinefunction(fn):
            return asyncio.run(fn(*args))
        return fn(*args)


@contextlib.contextmanager
def conf_changed(container, changes):
    """Edits the installed meshgate.conf in place ({(section, key): value}; owner and mode stay) and
    puts the original text back at the end (the caller reloads)."""
    path = container.path("/etc/meshgate/meshgate.conf")
    original = open(path).read()
    text = original
    for (section, key), value in changes.items():
        m = re.search(rf"^\[{re.escape(section)}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
        assert m, f"no [{section}] in {path}"
        body, n = re.subn(rf"^{re.escape(key)} *=.*$", f"{key} = {value}", m.group(1), count=1, flags=re.M)
        assert n == 1, f"no {key} in [{section}] of {path}"
        text = text[:m.start(1)] + body + text[m.end(1):]
    with open(path, "r+") as f:
        f.write(text)
        f.truncate()
    try:
        yield
    finally:
        with open(path, "r+") as f:
            f.write(original)
            f.truncate()


def reload_and_wait(container, what="SIGHUP: reloaded"):
    """systemctl reload, then the journal line that says the node read the file (or refused it)."""
    cur = container.cursor()
    container.systemctl("reload", UNIT)
    return container.wait_journal(lambda e: what in e["MESSAGE"], cur, f'"{what}" after systemctl reload')


def msg_index(entries, pred):
    return next((i for i, e in enumerate(entries) if pred(e)), None)


def usec_between(props, start, end):
    return (int(props[end]) - int(props[start])) / 1e6


async def consume_everything(node, quiet=0.5):
    """Pops the client topic in acknowledged mode and acknowledges every event until none comes for
    `quiet` seconds."""
    api = await harness.ApiWs.open(node)
    try:
        await api.pop(["client"], ack=True)
        while True:
            await asyncio.sleep(quiet)
            evs = api.take_events(lambda e: True)
            if not evs:
                return
            await api.ok("queue.ack", {"k": [e["p"]["k"] for e in evs]})
    finally:
        await api.close()


def connect_all(ports):
    """Connects once to each port with no retry: each must accept at once. Returns the ones that did not."""
    refused = []
    for port in ports:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as e:
            refused.append(f"{port}: {e}")
    return refused


# -- the fixture ------------------------------------------------------------------------------------

def host_meshgate_traces():
    """What the package would leave on a machine it was installed on."""
    found = []
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "meshgate"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    if r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout:
        found.append(f"package meshgate: {r.stdout}")
    with contextlib.suppress(KeyError):
        found.append(f"user meshgate: {pwd.getpwnam('meshgate')}")
    for p in ("/usr/bin/meshgate", "/etc/meshgate", "/lib/systemd/system/meshgate.service",
              "/etc/systemd/system/multi-user.target.wants/meshgate.service", "/var/lib/meshgate",
              "/etc/systemd/system/meshgate.service.d", "/etc/systemd/system/meshgate-test.target"):
        if os.path.lexists(p):
            found.append(p)
    return found


@pytest.fixture(scope="module")
def container():
    before = host_meshgate_traces()
    if before:
        skip_suite(f"this machine has meshgate on it already ({before}); the test will not touch it")
    _, deb = deb_package(PKG_OUT)
    sweep_stale_runs()
    c = Container(tempfile.mkdtemp(prefix=os.path.basename(WORK_PREFIX), dir=os.path.dirname(WORK_PREFIX)))
    # meson's timeout sends SIGTERM: clean up as after a failure instead of leaving the container.
    previous_term = signal.signal(signal.SIGTERM, interrupted)
    skip = None
    try:
        skip = c.mount()
        if skip is None:
            r = c.install(deb)
            assert r.returncode == 0, f"dpkg -i in the overlay failed:\n{r.stdout[-4000:]}"
            c.configure()
            skip = c.boot()
    except BaseException:
        c.poweroff()
        c.unmount()
        raise
    if skip:
        c.poweroff()
        c.unmount()
        skip_suite(skip)
    try:
        yield c
    finally:
        c.poweroff()
        problems = c.unmount()
        write_figures()
        signal.signal(signal.SIGTERM, previous_term)
    assert not problems, problems
    after = host_meshgate_traces()
    assert not after, f"the test left meshgate on the host: {after}"


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def write_figures():
    if not FIGURES:
        return
    text = "".join(f"{k}: {v}\n" for k, v in FIGURES.items())
    os.makedirs(PKG_OUT, exist_ok=True)
    with open(os.path.join(PKG_OUT, "systemd-figures.txt"), "w") as f:
        f.write(text)
    print("\nmeshgate under systemd (test/packaging/test_systemd.py):\n" + text)


# -- the checks -------------------------------------------------------------------------------------

def expected_start_lines(node):
    """The line meshgate logs for each thing it listens on, as (what, predicate on MESSAGE)."""
    api = node.cfg["api"]
    out = [("control API", lambda m: f"control API on {api['bind']}:{api['port']}" in m)]
    if int(node.cfg["route"]["port"]) != 0:
        route = f":{node.cfg['route']['port']}"
        out.append(("route API", lambda m: m.startswith("route API on ") and m.endswith(route)))
    for name in node.listeners():
        port = node.port(name)
        out.append((f"listener {name}",
                    lambda m, name=name, port=port: m.startswith(f"listener {name}: ") and f":{port}," in m))
    return out


def assert_listed_before_started(entries, node, main_pid):
    """Every listening line of the process main_pid comes before systemd's "Started" of that start."""
    started = msg_index(entries, lambda e: e.get("_PID") == "1" and e["MESSAGE"].startswith("Started "))
    assert started is not None, "no \"Started\" from systemd:\n" + "\n".join(e["MESSAGE"] for e in entries)
    for what, pred in expected_start_lines(node):
        i = msg_index(entries, lambda e: e.get("_PID") == str(main_pid) and pred(e["TEXT"]))
        assert i is not None, f"no line for the {what}:\n" + "\n".join(e["MESSAGE"] for e in entries)
        assert i < started, f"the {what} was logged after systemd's Started:\n" + \
            "\n".join(e["MESSAGE"] for e in entries)


def test_boot_ready_after_every_listener(container):
    """At boot: active (running) as the package's user, and the journal names every listener before
    systemd's Started, which it writes when READY=1 arrives."""
    p = container.ensure_active()
    node = ContainerNode(container)
    props = container.show("User", "Type", "WatchdogUSec", "NotifyAccess", "StatusErrno")
    assert props["User"] == "meshgate" and props["Type"] == "notify", props
    assert props["WatchdogUSec"] == f"{WATCHDOG_SEC}s", props
    status = open(f"/proc/{host_pid_of(container, p['MainPID'])}/status").read()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
    assert uid == container.sh("id", "-u", "meshgate").stdout.strip(), "not running as the meshgate user"
    assert_listed_before_started(container.journal(), node, p["MainPID"])


def host_pid_of(container, pid):
    """The host's pid of the container's process `pid` (the last NSpid entry)."""
    ns = os.readlink(f"/proc/{container.pid1}/ns/pid")
    for host_pid, _, nspid in processes():
        if len(nspid) > 1 and nspid[-1] == int(pid):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{host_pid}/ns/pid") == ns:
                    return host_pid
    raise AssertionError(f"no process {pid} in the container")


def test_start_is_ready_with_every_port_open(container):
    """`systemctl start` returns at READY=1: every port accepts at once, with no retry. Also measures
    start to READY (three stop/start rounds)."""
    container.ensure_active()
    node = ContainerNode(container)
    ports = [node.api_port, int(node.cfg["route"]["port"])] + [node.port(n) for n in node.listeners()]
    ports = [p for p in ports if p]
    walls, to_ready, exec_to_ready, stops = [], [], [], []
    for _ in range(3):
        t0 = time.monotonic()
        container.systemctl("stop", UNIT)
        stops.append(time.monotonic() - t0)
        cur = container.cursor()
        t0 = time.monotonic()
        container.systemctl("start", UNIT)
        walls.append(time.monotonic() - t0)
        refused = run_clients(container, connect_all, ports)
        assert not refused, f"systemctl start returned but these ports refused: {refused}"
        # The probes' open and close events: consumed, so that the next stop finds the node idle (a
        # node holding events with no consumer waits for one until drain_timeout).
        run_clients(container, consume_everything, node)
        p = container.show("MainPID", "InactiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic",
                           "ActiveEnterTimestampMonotonic")
        to_ready.append(usec_between(p, "InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic"))
        exec_to_ready.append(usec_between(p, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic"))
        container.wait_journal(lambda e: e.get("_PID") == "1" and e["MESSAGE"].startswith("Started "), cur,
                               "systemd's Started")
        assert_listed_before_started(container.journal(cur), node, p["MainPID"])
    FIGURES["start to READY (systemctl start, wall)"] = ms_list(walls)
    FIGURES["start to READY (InactiveExit -> ActiveEnter: ExecStartPre check-config + start)"] = ms_list(to_ready)
    FIGURES["start to READY (ExecMainStart -> ActiveEnter: the main process)"] = ms_list(exec_to_ready)
    FIGURES["stop, idle node (systemctl stop, wall)"] = ms_list(stops)


def ms_list(seconds):
    return ", ".join(f"{s * 1000:.0f} ms" for s in seconds) + f" (median {statistics.median(seconds) * 1000:.0f} ms)"


def test_status_text(container):
    """STATUS= lines become StatusText: "0 connections, 0 consumers" at rest, then counts that follow
    a client and a consumer (sent once a second)."""
    container.ensure_active()
    node = ContainerNode(container)
    container.wait_unit(lambda p: p["StatusText"] == "0 connections, 0 consumers", "StatusText at rest",
                        props=("StatusText",))

    async def with_client_and_consumer():
        async with harness.Session(node) as s:
            await s.consumer(["status-test"])
            ws = await harness.ws_connect(node.port("ws"))
            try:
                await asyncio.to_thread(container.wait_unit,
                                        lambda p: p["StatusText"] == "1 connections, 1 consumers",
                                        "StatusText with one client and one consumer", 5, ("StatusText",))
            finally:
                await ws.close()

    run_clients(container, with_client_and_consumer)
    container.wait_unit(lambda p: p["StatusText"] == "0 connections, 0 consumers",
                        "StatusText after the client and the consumer left", props=("StatusText",))


def test_journal_priorities_and_broken_reload(container):
    """meshgate's lines carry their syslog priority: info at 6; a reload of a broken file logs an error
    at 3 (journalctl -p err shows it) and the node keeps running with its settings."""
    p = container.ensure_active()
    entries = container.journal()
    info = [e for e in entries if e.get("_PID") == p["MainPID"] and e["TEXT"].startswith("listener ")]
    assert info and all(e["PRIORITY"] == "6" for e in info), [(e["PRIORITY"], e["MESSAGE"]) for e in info]
    wrong = [(e["PRIORITY"], e["MESSAGE"]) for e in entries if e["LEVEL"] and e["PRIORITY"] != PRIORITY[e["LEVEL"]]]
    assert not wrong, f"lines whose priority is not their level's: {wrong[:10]}"
    with conf_changed(container, {("limits", "max_connections"): "banana"}):
        cur = container.cursor()
        container.systemctl("reload", UNIT)
        hit, _ = container.wait_journal(lambda e: "configuration not reloaded" in e["MESSAGE"], cur,
                                        "the broken reload's error", priority=3)
    assert hit["PRIORITY"] == "3" and "max_connections" in hit["MESSAGE"], hit
    errs = container.sh("journalctl", "-u", UNIT, "-p", "err", "-o", "cat", "--no-pager").stdout
    assert "configuration not reloaded" in errs, errs
    assert container.show("ActiveState", "MainPID") == {"ActiveState": "active", "MainPID": p["MainPID"]}
    reload_and_wait(container)


def test_reload_log_level(container):
    """`systemctl reload` with [log] level = debug: debug lines (a failed TLS handshake on wss) appear
    at priority 7; before it the same handshake logged nothing."""
    container.ensure_active()
    node = ContainerNode(container)
    if "wss" not in node.listeners() or node.cfg["listener.wss"].get("tls") != "on":
        pytest.fail("the shipped configuration has no [listener.wss] with tls = on to provoke a debug line")

    def bad_tls():
        with socket.create_connection(("127.0.0.1", node.port("wss")), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with contextlib.suppress(OSError):
                s.recv(100)

    cur = container.cursor()
    run_clients(container, bad_tls)
    reload_and_wait(container)  # a line after the handshake's, so its debug line would be there by now
    assert not [e for e in container.journal(cur) if "TLS from" in e["MESSAGE"]], "a debug line at level info"
    try:
        with conf_changed(container, {("log", "level"): "debug"}):
            reload_and_wait(container)
            cur = container.cursor()
            run_clients(container, bad_tls)
            hit, _ = container.wait_journal(lambda e: e["TEXT"].startswith("TLS from 127.0.0.1:"), cur,
                                            "the debug line of a failed TLS handshake")
            assert hit["PRIORITY"] == "7", hit
    finally:
        reload_and_wait(container)


def test_reload_with_a_changed_port_names_the_restart(container):
    """A port changed on reload is not applied: the journal names it as waiting for a restart (a
    warning, 4) and the old port still serves."""
    container.ensure_active()
    node = ContainerNode(container)
    old = node.port("tcp")
    try:
        with conf_changed(container, {("listener.tcp", "port"): str(old + 1)}):
            cur = container.cursor()
            container.systemctl("reload", UNIT)
            hit, _ = container.wait_journal(lambda e: "until a restart" in e["MESSAGE"], cur,
                                            "the line naming what needs a restart")
            assert "[listener.tcp]" in hit["MESSAGE"] and "port" in hit["MESSAGE"], hit["MESSAGE"]
            assert hit["PRIORITY"] == "4", hit
            assert run_clients(container, connect_all, [old]) == []
            assert run_clients(container, connect_all, [old + 1]) != []
    finally:
        reload_and_wait(container)


def test_restart_after_sigkill(container):
    p = container.ensure_active()
    cur = container.cursor()
    container.systemctl("kill", "--kill-whom=main", "--signal=SIGKILL", UNIT)
    q = container.wait_unit(lambda q: int(q["NRestarts"]) == int(p["NRestarts"]) + 1 and q["ActiveState"] == "active"
                            and q["SubState"] == "running" and q["MainPID"] not in ("0", p["MainPID"]),
                            "restarted after SIGKILL", timeout=RESTART_SEC + 15)
    container.wait_journal(lambda e: "status=9/KILL" in e["MESSAGE"], cur, "systemd's note of the SIGKILL")
    assert q["MainPID"] != p["MainPID"]


def test_watchdog_restarts_a_stopped_process(container):
    """The main process stopped with SIGSTOP pings no more: systemd kills it at WatchdogSec and starts
    it again after RestartSec."""
    p = container.ensure_active()
    time.sleep(1.5)  # a ping or two from this process first
    cur = container.cursor()
    t0 = time.monotonic()
    container.systemctl("kill", "--kill-whom=main", "--signal=SIGSTOP", UNIT)
    bound = WATCHDOG_SEC + RESTART_SEC + 8
    q = container.wait_unit(lambda q: q["ActiveState"] == "active" and q["SubState"] == "running"
                            and q["MainPID"] not in ("0", p["MainPID"]), "restarted by the watchdog", timeout=bound)
    elapsed = time.monotonic() - t0
    container.wait_journal(lambda e: "Watchdog timeout" in e["MESSAGE"], cur, "systemd's watchdog timeout")
    container.wait_journal(lambda e: "Failed with result 'watchdog'" in e["MESSAGE"], cur, "the watchdog's result")
    assert int(q["NRestarts"]) == int(p["NRestarts"]) + 1, (p, q)
    assert elapsed >= WATCHDOG_SEC - 1.5, f"restarted after {elapsed:.1f}s, before the watchdog could fire"
    FIGURES["watchdog: SIGSTOP to active again"] = \
        f"{elapsed:.1f} s (WatchdogSec={WATCHDOG_SEC}s, RestartSec={RESTART_SEC}s)"


class Numbered:
    """Numbered messages from one TCP client ("<run id> <n>"), queued with no consumer popping, then a
    consumer in acknowledged mode that takes what it may hold (`[queue] max_unacked`), acknowledges
    the first `acked` of them (and any other test's events: consumed) and holds the rest
    unacknowledged while the others wait in the topic."""

    def __init__(self, node, total, acked):
        self.node, self.total, self.acked = node, total, acked
        self.run_id = f"stop-test-{os.getpid()}-{time.monotonic_ns()}"
        self.client = self.api = None
        self.held = []  # (number, k) in the order they came

    def number(self, e):
        """This run's message number of a queue event, None for any other event."""
        d = e["p"]["d"]
        data = d["frame"].get("data", "") if "frame" in d else ""
        return int(data.rsplit(" ", 1)[1]) if data.startswith(self.run_id + " ") else None

    async def queue_and_hold(self):
        node = self.node
        base = harness.metric_value(node, "meshgate_messages_in_total", listener="tcp") or 0
        self.client = await harness.TcpClient.connect(node.port("tcp"))
        for i in range(1, self.total + 1):
            await self.client.send(f"{self.run_id} {i}")
        await asyncio.to_thread(harness.wait_metric, node, "meshgate_messages_in_total",
                                lambda v: v >= base + self.total, 10, listener="tcp")
        self.api = await harness.ApiWs.open(node)
        await self.api.pop(["client"], ack=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until nothing more comes
            await asyncio.sleep(0.5)
            evs = self.api.take_events(lambda e: True)
            ack = [e["p"]["k"] for e in evs if (self.number(e) or 0) <= self.acked]
            self.held += [(self.number(e), e["p"]["k"]) for e in evs if (self.number(e) or 0) > self.acked]
            if ack:
                await self.api.ok("queue.ack", {"k": ack})
            if not evs and self.held:
                break
        numbers = [n for n, _ in self.held]
        assert numbers == list(range(self.acked + 1, self.acked + 1 + len(numbers))), f"held: {numbers[:20]}..."
        assert len(numbers) < self.total - self.acked, "every event was handed out: none left queued"

    async def close(self):
        await self.client.close()
        await self.api.close()


async def consume_after_start(node, numbered, quiet=None):
    """A new consumer (acknowledging everything): this run's events, as (number, "r"), until the last
    number arrives, or for `quiet` seconds when none should."""
    api = await harness.ApiWs.open(node)
    await api.pop(["client"], ack=True)
    got = []
    deadline = time.monotonic() + (quiet or 30)
    while time.monotonic() < deadline and (quiet or not got or got[-1][0] != numbered.total):
        await asyncio.sleep(0.2)
        evs = api.take_events(lambda e: True)
        got += [(numbered.number(e), e["p"].get("r", False)) for e in evs if numbered.number(e) is not None]
        if evs:
            await api.ok("queue.ack", {"k": [e["p"]["k"] for e in evs]})
    await api.close()
    return got


def stop_props(container):
    return container.show("Result", "ExecMainStatus", "ActiveExitTimestampMonotonic",
                          "InactiveEnterTimestampMonotonic")


async def stop_holding_then_start(container, node, numbered, out):
    """The consumer acknowledges nothing more: systemctl stop, start, and what a new consumer gets."""
    await numbered.queue_and_hold()
    t0 = time.monotonic()
    await asyncio.to_thread(container.systemctl, "stop", UNIT)
    out["stop"] = time.monotonic() - t0
    await numbered.close()
    out["props"] = await asyncio.to_thread(stop_props, container)
    await asyncio.to_thread(container.systemctl, "start", UNIT)
    return await consume_after_start(node, numbered)


async def stop_while_acknowledging(container, node, numbered, out):
    """The consumer acknowledges what it holds once the stop began, and what the drain hands it after:
    returns the numbers it got, and what a new consumer gets after start (nothing is expected)."""
    await numbered.queue_and_hold()
    got = [n for n, _ in numbered.held]
    t0 = time.monotonic()
    stop = asyncio.ensure_future(asyncio.to_thread(container.systemctl, "stop", UNIT))
    await asyncio.to_thread(container.wait_unit, lambda p: p["ActiveState"] == "deactivating", "deactivating", 5,
                            ("ActiveState",))
    api = numbered.api
    await api.ok("queue.ack", {"k": [k for _, k in numbered.held]})
    while not stop.done():
        await asyncio.sleep(0.05)
        evs = api.take_events(lambda e: True)
        got += [numbered.number(e) for e in evs if numbered.number(e) is not None]
        if evs and api.closed_exc is None:
            with contextlib.suppress(AssertionError, ConnectionError):
                await api.call("queue.ack", {"k": [e["p"]["k"] for e in evs]}, timeout=2)
    await stop
    out["stop"] = time.monotonic() - t0
    await numbered.close()
    out["props"] = await asyncio.to_thread(stop_props, container)
    await asyncio.to_thread(container.systemctl, "start", UNIT)
    return got, await consume_after_start(node, numbered, quiet=2)


def numbered_setup(container):
    container.ensure_active()
    node = ContainerNode(container)
    assert node.cfg["queue"]["store"] == "disk", "the shipped configuration keeps the queue on disk"
    max_unacked = int(node.cfg["queue"].get("max_unacked", 1000))
    return node, Numbered(node, total=max_unacked + 300, acked=100)


def test_stop_with_events_held_then_start_loses_nothing(container):
    """systemctl stop with a consumer connected, holding events unacknowledged, and events still queued:
    the drain waits for them until [node] drain_timeout, the stop ends with success, and after
    systemctl start every event after the acknowledged ones comes back from the disk queue in
    StateDirectory=, in order, each marked "r":true."""
    node, numbered = numbered_setup(container)
    out = {}
    got = run_clients(container, stop_holding_then_start, container, node, numbered, out)
    props = out["props"]
    assert props["Result"] == "success" and props["ExecMainStatus"] == "0", props
    numbers = [n for n, _ in got]
    assert numbers == list(range(numbered.acked + 1, numbered.total + 1)), \
        f"after the restart: {len(numbers)} events, first {numbers[:5]}, last {numbers[-5:]}; " \
        f"want {numbered.acked + 1}..{numbered.total}"
    not_marked = [n for n, r in got if r is not True]
    assert not not_marked, f"events delivered again without \"r\":true: {not_marked[:20]}"
    assert container.sh("ls", "/var/lib/meshgate/queue").stdout.split(), "no topic logs in the state directory"
    held = len(numbered.held)
    FIGURES[f"stop, a consumer holding {held} events unacknowledged and {numbered.total - numbered.acked - held} "
            "queued (systemctl stop, wall; ActiveExit -> InactiveEnter)"] = \
        f"{out['stop'] * 1000:.0f} ms; " \
        f"{usec_between(props, 'ActiveExitTimestampMonotonic', 'InactiveEnterTimestampMonotonic') * 1000:.0f} ms"


def test_stop_hands_queued_events_to_a_consumer(container):
    """systemctl stop with a consumer connected that acknowledges once the stop began: the drain hands
    it every event still queued, in order, and ends as soon as all are acknowledged (well before
    drain_timeout); after start nothing of them comes again."""
    node, numbered = numbered_setup(container)
    out = {}
    got, again = run_clients(container, stop_while_acknowledging, container, node, numbered, out)
    props = out["props"]
    assert props["Result"] == "success" and props["ExecMainStatus"] == "0", props
    assert got == list(range(numbered.acked + 1, numbered.total + 1)), \
        f"during the drain: {len(got)} events, first {got[:5]}, last {got[-5:]}"
    assert again == [], f"acknowledged events came again after the restart: {again[:10]}"
    drain_timeout = int(node.cfg["node"].get("drain_timeout", 10))
    assert out["stop"] < drain_timeout - 2, f"the drain took {out['stop']:.1f}s: it waited for drain_timeout"
    FIGURES[f"stop, a consumer acknowledging {len(numbered.held)} held events and taking "
            f"{numbered.total - numbered.acked - len(numbered.held)} queued ones during the drain "
            "(systemctl stop, wall; ActiveExit -> InactiveEnter)"] = \
        f"{out['stop'] * 1000:.0f} ms; " \
        f"{usec_between(props, 'ActiveExitTimestampMonotonic', 'InactiveEnterTimestampMonotonic') * 1000:.0f} ms"


def test_hardening_does_not_regress(container):
    docs = open(os.path.join(REPO, "docs", "operations.md")).read()
    m = re.search(r"`systemd-analyze security meshgate` rates it \*\*(\d+\.\d) (\w+)\*\*", docs)
    assert m, "docs/operations.md no longer states the exposure figure"
    out = container.sh("systemd-analyze", "security", "--no-pager", UNIT).stdout
    seen = re.search(r"Overall exposure level for meshgate\.service: (\d+\.\d) (\w+)", out)
    assert seen, out[-2000:]
    assert float(seen.group(1)) <= float(m.group(1)), \
        f"exposure {seen.group(1)} {seen.group(2)}, docs/operations.md says {m.group(1)} {m.group(2)}"
    FIGURES["systemd-analyze security meshgate"] = f"{seen.group(1)} {seen.group(2)}"
