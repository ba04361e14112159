"""Shared fixtures: fresh pools that are always shut down, and a check that no worker
thread outlives its test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from background_core import Background

# The process-wide pool behind `import background` lives until exit, by design.
_LONG_LIVED = ("background-default-",)


def _pool_threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith("background-") and not t.name.startswith(_LONG_LIVED)
    }


@pytest.fixture(autouse=True)
def no_leaked_workers() -> Iterator[None]:
    """Fail a test that leaves a pool's worker threads running."""
    before = _pool_threads()
    yield
    deadline = time.monotonic() + 5
    leaked = _pool_threads() - before
    while leaked and time.monotonic() < deadline:
        for thread in leaked:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        leaked = {t for t in leaked if t.is_alive()}
    assert not leaked, f"worker threads outlived the test: {sorted(t.name for t in leaked)}"


@pytest.fixture
def pool() -> Iterator[Background]:
    """A fresh two-worker pool, shut down after the test."""
    bg = Background(2, name="test", drain_timeout=10)
    yield bg
    bg.shutdown()
