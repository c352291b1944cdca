"""pytest glue for the integration suites: async tests, node fixtures, crash detection."""

import asyncio
import inspect
import os
import sys

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


@pytest.fixture(scope="module")
def module_nodes(tmp_path_factory):
    """Starts nodes shared by a module: mgr.start(overrides) -> harness.Node."""
    mgr = harness.NodeManager(tmp_path_factory.mktemp("meshgate"))
    yield mgr
    _fail_on_errors(mgr.stop_all())


@pytest.fixture
def nodes(tmp_path):
    """Starts nodes for one test (special limits): nodes.start(overrides) -> harness.Node."""
    mgr = harness.NodeManager(tmp_path)
    yield mgr
    _fail_on_errors(mgr.stop_all())


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
