"""pytest glue for the integration suites: async tests, node fixtures, crash detection."""

import asyncio
import inspect
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

TEST_TIMEOUT = 60.0  # one async test, in seconds: a hung server fails the test instead of the run


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Runs `async def` tests in a fresh event loop, bounded by TEST_TIMEOUT."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def bounded():
        try:
            await asyncio.wait_for(pyfuncitem.obj(**args), TEST_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"test did not finish within {TEST_TIMEOUT}s")

    asyncio.run(bounded())
    return True


def _fail_on_errors(errors):
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


def _workdir():
    # Our own directory, not pytest's tmp_path: several pytest runs at once (meson, a developer) prune
    # each other's numbered pytest-of-<user> directories while nodes still read their files.
    return tempfile.mkdtemp(prefix="meshgate-it-")


def _finish(mgr, workdir):
    errors = mgr.stop_all()
    if not errors:
        shutil.rmtree(workdir, ignore_errors=True)
    _fail_on_errors(errors)


@pytest.fixture(scope="module")
def module_nodes():
    """Starts nodes shared by a module: mgr.start(overrides) -> harness.Node."""
    workdir = _workdir()
    mgr = harness.NodeManager(workdir)
    yield mgr
    _finish(mgr, workdir)


@pytest.fixture
def nodes():
    """Starts nodes for one test (special limits): nodes.start(overrides) -> harness.Node."""
    workdir = _workdir()
    mgr = harness.NodeManager(workdir)
    yield mgr
    _finish(mgr, workdir)


@pytest.fixture(autouse=True)
def _no_crash():
    """After every test: fail it when a node it could have used died (stderr printed)."""
    yield
    errors = []
    for n in list(harness.LIVE_NODES):
        msg = n.crash_message()
        if msg and not n.failed_reported:
            n.failed_reported = True
            errors.append(msg)
    _fail_on_errors(errors)
