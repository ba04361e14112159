"""`_backpressure`: ``max_queue`` and the three ``on_full`` policies, and submitters
blocked on a full queue when the pool shuts down."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from background_core import (
    Background,
    BackgroundError,
    PoolClosed,
    QueueFull,
)
from tests.helpers import (
    SECRET,
    WAIT,
    Gate,
    noop,
    start_thread,
    thread_name,
)

# -- backpressure -----------------------------------------------------------------------


def test_on_full_raise_raises_queue_full() -> None:
    with (
        Background(1, name="bounded", max_queue=2, on_full="raise", drain_timeout=10) as bg,
        Gate() as gate,
    ):
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = [bg.submit(noop), bg.submit(noop)]
        with pytest.raises(QueueFull) as info:
            bg.submit(noop)
        assert isinstance(info.value, BackgroundError)
        assert isinstance(info.value, RuntimeError)
        message = str(info.value)
        assert "'bounded'" in message
        assert "2" in message
        assert "max_queue" in message
        stats = bg.stats()
        assert (stats.rejected, stats.submitted, stats.queued) == (1, 3, 2)
        gate.open()
        assert all(f.result(timeout=WAIT) is None for f in queued)
        # Room again: submissions are accepted.
        assert bg.submit(lambda: 5).result(timeout=WAIT) == 5


def test_on_full_block_waits_until_a_worker_takes_a_task() -> None:
    with (
        Background(1, name="blocking", max_queue=1, on_full="block", drain_timeout=10) as bg,
        Gate() as gate,
    ):
        first = bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(noop)
        returned = threading.Event()
        box: list[Future[Any]] = []

        def submitter() -> None:
            box.append(bg.submit(lambda: "late"))
            returned.set()

        thread = start_thread(submitter, "test-blocked-submitter")
        assert not returned.wait(0.3)  # blocked: the queue is full
        assert bg.stats().queued == 1
        gate.open()  # the worker takes the queued task: room for one
        assert returned.wait(WAIT)
        thread.join(WAIT)
        assert not thread.is_alive()
        assert first.result(timeout=WAIT) is None
        assert queued.result(timeout=WAIT) is None
        assert box[0].result(timeout=WAIT) == "late"
        assert bg.stats().rejected == 0


def test_on_full_caller_runs_runs_the_task_in_the_submitting_thread() -> None:
    with (
        Background(1, name="callerruns", max_queue=1, on_full="caller_runs") as bg,
        Gate() as gate,
    ):
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(noop)
        here = threading.current_thread()
        future = bg.submit(threading.current_thread)
        assert isinstance(future, Future)
        assert future.done()
        assert future.result(timeout=0) is here

        def fail() -> None:
            raise ValueError("inline")

        failed = bg.submit(fail)
        assert failed.done()
        assert isinstance(failed.exception(timeout=0), ValueError)
        gate.open()
        assert queued.result(timeout=WAIT) is None
        assert bg.drain(timeout=WAIT).finished
        stats = bg.stats()
        assert (stats.submitted, stats.succeeded, stats.failed, stats.rejected) == (4, 3, 1, 0)


def _blocked_submitter(bg: Background) -> tuple[threading.Thread, threading.Event, list[Any]]:
    """Start a thread whose submission blocks on the full pool; it records what it got."""
    returned = threading.Event()
    outcome: list[Any] = []

    def submitter() -> None:
        try:
            outcome.append(bg.submit(noop))
        except PoolClosed as exc:
            outcome.append(exc)
        returned.set()

    thread = start_thread(submitter, "test-blocked-submitter")
    assert not returned.wait(0.3)
    return thread, returned, outcome


def test_blocked_submitter_gets_pool_closed_when_shutdown_cancels_pending() -> None:
    bg = Background(1, name="blkcancel", max_queue=1, on_full="block", drain_timeout=10)
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(noop)
        thread, returned, outcome = _blocked_submitter(bg)
        closer = start_thread(lambda: bg.shutdown(cancel_futures=True), "test-closer")
        assert returned.wait(WAIT)
        (got,) = outcome
        assert isinstance(got, PoolClosed)
        assert "'blkcancel'" in str(got)
        assert queued.cancelled()
        gate.open()
        closer.join(WAIT)
        thread.join(WAIT)
        assert not closer.is_alive()
    assert bg.stats().rejected == 1


def test_blocked_submitter_gets_pool_closed_once_shutdown_drains() -> None:
    bg = Background(1, name="blkdrain", max_queue=1, on_full="block", drain_timeout=10)
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(noop)
        thread, returned, outcome = _blocked_submitter(bg)
        closer = start_thread(bg.shutdown, "test-closer")
        gate.open()
        assert returned.wait(WAIT)
        assert isinstance(outcome[0], PoolClosed)
        assert queued.result(timeout=WAIT) is None
        closer.join(WAIT)
        thread.join(WAIT)
        assert not closer.is_alive()
    assert bg.stats().rejected == 1


def test_blocked_submitter_gets_pool_closed_as_soon_as_shutdown_begins() -> None:
    # Regression: wait_for_room() looped while the queue stayed full and never looked at
    # whether the pool had closed, so this submitter hung for good.
    bg = Background(1, name="blkhung", max_queue=1, on_full="block", drain_timeout=10)
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(noop)
        thread, returned, outcome = _blocked_submitter(bg)
        closer = start_thread(bg.shutdown, "test-closer")
        try:
            # The running task hangs, so room never comes: only the closing can wake it.
            assert returned.wait(3)
            assert isinstance(outcome[0], PoolClosed)
        finally:
            gate.open()
            closer.join(WAIT)
            thread.join(WAIT)


# -- never on an event loop; bounded blocking; the summary -----------------------------


@pytest.mark.parametrize("on_full", ["block", "caller_runs"])
def test_a_full_queue_refuses_a_submission_from_an_event_loop_at_once(on_full: str) -> None:
    ran_on: list[str] = []
    with Background(1, name="loop-full", max_queue=1, on_full=on_full) as bg, Gate() as gate:  # type: ignore[arg-type]
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(noop)  # the queue is full now

        async def handler() -> float:
            began = time.monotonic()
            with pytest.raises(QueueFull, match="event loop"):
                bg.submit(lambda: ran_on.append(thread_name()))
            return time.monotonic() - began

        took = asyncio.run(handler())
        gate.open()
    assert took < 0.1  # neither waited for room nor ran the task on the loop's thread
    assert ran_on == []


def test_block_waits_at_most_block_timeout_then_raises_queue_full() -> None:
    with (
        Background(1, name="bounded", max_queue=1, block_timeout=0.3) as bg,
        Gate() as gate,
    ):
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(noop)
        began = time.monotonic()
        with pytest.raises(QueueFull, match=r"waited 0.3 s for room \(block_timeout\)"):
            bg.submit(noop)
        assert 0.25 < time.monotonic() - began < 2
        gate.open()
    assert bg.stats().rejected == 1


def test_refusals_are_logged_as_a_summary_not_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="background")
    bg = Background(1, name="summary", max_queue=1, on_full="raise")
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(noop)
        for _ in range(100):
            with pytest.raises(QueueFull):
                bg.submit(noop, SECRET)
        during = [r.getMessage() for r in caplog.records]
        gate.open()
        bg.shutdown()
    after = [r.getMessage() for r in caplog.records]
    assert during == [
        "pool 'summary' refused 1 submission in the last 0.0 s: its queue was "
        "full (max_queue=1, on_full='raise')"
    ]  # the first at once
    assert len(after) == 2  # the other 99 in one line, at the latest at shutdown
    assert after[1].startswith("pool 'summary' refused 99 submissions in the last ")
    assert all(r.exc_info is None for r in caplog.records)  # no traceback each
    assert SECRET not in caplog.text
    assert bg.stats().rejected == 100


def test_an_adapter_chooses_the_error_a_refusal_raises() -> None:
    class Busy(QueueFull):
        def __init__(self, message: str, retry_after: int) -> None:
            super().__init__(message)
            self.retry_after = retry_after

    bg = Background(
        1, name="busy", max_queue=1, on_full="raise", queue_full_error=lambda m: Busy(m, 7)
    )
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(noop)
        with pytest.raises(Busy, match="pool 'busy' is full") as refused:
            bg.submit(noop)
        assert refused.value.retry_after == 7
        gate.open()
    bg.shutdown()
