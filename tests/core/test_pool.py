"""`Background`, the facade: submission, lifecycle, drain, shutdown, stats and
introspection, through the public API."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

import background_core
from background_core import (
    Background,
    BackgroundError,
    DrainReport,
    PoolClosed,
    QueueFull,
    Stats,
    TaskInfo,
)
from tests.helpers import (
    SECRET,
    WAIT,
    Gate,
    noop,
    pool_threads,
    start_thread,
    thread_name,
    wait_for_thread_count,
)

# -- submit ---------------------------------------------------------------------------


def test_submit_returns_a_real_future_at_once(pool: Background) -> None:
    with Gate() as gate:
        began = time.monotonic()
        future = pool.submit(gate, SECRET)
        assert time.monotonic() - began < 1.0
        assert isinstance(future, Future)
        assert gate.started.wait(WAIT)
        assert not future.done()
        gate.open()
        assert future.result(timeout=WAIT) == SECRET
        assert future.done()
        assert not future.cancelled()


def test_submit_passes_arguments_and_returns_results(pool: Background) -> None:
    def combine(a: int, b: int, *, scale: int = 1) -> int:
        return (a + b) * scale

    assert pool.submit(combine, 2, 3, scale=10).result(timeout=WAIT) == 50


def test_submit_carries_the_exception(pool: Background) -> None:
    def fail() -> None:
        raise ValueError("boom")

    future = pool.submit(fail)
    error = future.exception(timeout=WAIT)
    assert isinstance(error, ValueError)
    assert str(error) == "boom"
    with pytest.raises(ValueError, match="boom"):
        future.result(timeout=WAIT)


@pytest.mark.parametrize("fn", [None, 42, "noop"])
def test_submit_of_a_non_callable_raises_type_error(pool: Background, fn: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        pool.submit(fn)
    assert pool.stats().submitted == 0


def test_futures_work_with_concurrent_futures_helpers(pool: Background) -> None:
    futures = [pool.submit(lambda i=i: i * i) for i in range(20)]
    done, not_done = concurrent.futures.wait(futures, timeout=WAIT)
    assert not not_done
    assert sorted(f.result(timeout=0) for f in done) == [i * i for i in range(20)]
    assert sorted(
        f.result(timeout=0) for f in concurrent.futures.as_completed(futures, timeout=WAIT)
    ) == [i * i for i in range(20)]


# -- lifecycle ------------------------------------------------------------------------


def test_workers_start_lazily_on_first_submission() -> None:
    with Background(2, name="lazy") as bg:
        assert pool_threads("lazy") == []
        assert bg.submit(noop).result(timeout=WAIT) is None
        threads = pool_threads("lazy")
        assert sorted(t.name for t in threads) == ["background-lazy-1", "background-lazy-2"]
    assert wait_for_thread_count("lazy", 0) == []


def test_start_starts_the_workers_and_returns_the_pool() -> None:
    with Background(3, name="eager-start") as bg:
        assert pool_threads("eager-start") == []
        assert bg.start() is bg
        assert len(pool_threads("eager-start")) == 3
        assert bg.start() is bg  # a second start spawns nothing more
        assert len(pool_threads("eager-start")) == 3


def test_worker_threads_are_named_after_the_pool_and_daemon() -> None:
    with Background(2, name="named") as bg:
        bg.start()
        threads = pool_threads("named")
        assert sorted(t.name for t in threads) == ["background-named-1", "background-named-2"]
        assert all(t.daemon for t in threads)
        assert re.fullmatch(r"background-named-[12]", bg.submit(thread_name).result(WAIT))


def test_shutdown_is_idempotent_and_stops_the_workers() -> None:
    bg = Background(2, name="idem")
    assert bg.submit(noop).result(timeout=WAIT) is None
    first = bg.shutdown()
    assert isinstance(first, DrainReport)
    assert first.finished
    assert bg.closed
    second = bg.shutdown()
    assert second.finished
    assert second.pool == "idem"
    assert bg.closed
    assert wait_for_thread_count("idem", 0) == []


def test_shutdown_of_a_never_started_pool() -> None:
    bg = Background(2, name="never")
    report = bg.shutdown()
    assert report.finished
    assert report.completed == 0
    assert pool_threads("never") == []


def test_with_block_shuts_down_on_leaving() -> None:
    with Background(2, name="ctx") as bg:
        assert not bg.closed
        assert bg.submit(noop).result(timeout=WAIT) is None
    assert bg.closed
    assert wait_for_thread_count("ctx", 0) == []


def test_with_block_shuts_down_when_the_body_raises() -> None:
    bg = Background(1, name="ctx-raise")

    def body() -> None:
        with bg:
            bg.submit(noop).result(timeout=WAIT)
            raise KeyError("body")

    with pytest.raises(KeyError):
        body()
    assert bg.closed
    assert wait_for_thread_count("ctx-raise", 0) == []


def test_submission_after_shutdown_raises_pool_closed() -> None:
    bg = Background(1, name="mailer")
    bg.submit(noop).result(timeout=WAIT)
    bg.shutdown()
    with pytest.raises(PoolClosed, match="'mailer'") as info:
        bg.submit(noop)
    assert isinstance(info.value, BackgroundError)
    assert isinstance(info.value, RuntimeError)
    assert bg.stats().rejected == 1


def test_task_call_after_shutdown_raises_pool_closed() -> None:
    bg = Background(1, name="closed-task")

    @bg.task
    def work() -> None:
        return None

    bg.shutdown()
    with pytest.raises(PoolClosed, match="'closed-task'"):
        work()


def test_start_after_shutdown_raises_pool_closed() -> None:
    bg = Background(1, name="restart")
    bg.shutdown()
    with pytest.raises(PoolClosed, match="'restart'"):
        bg.start()
    assert pool_threads("restart") == []


def test_closed_property_and_open_pools() -> None:
    bg = Background(1, name="flag")
    assert bg.closed is False
    assert bg in background_core.open_pools()
    bg.shutdown()
    assert bg.closed is True
    assert bg not in background_core.open_pools()
    assert "closed" in repr(bg)


# -- drain ----------------------------------------------------------------------------


def test_drain_counts_what_finished_while_it_waited() -> None:
    def fail() -> None:
        raise ValueError("boom")

    # One worker, so nothing can finish before the gate opens; it opens once the drain
    # is under way (100 ms is ample for the next line to start it).
    pool = Background(1, name="test", drain_timeout=10, on_error=lambda e, t: None)
    with Gate() as gate:
        blocked = pool.submit(gate)
        assert gate.started.wait(WAIT)
        quick = [pool.submit(noop) for _ in range(3)]
        failing = pool.submit(fail)
        opener = threading.Timer(0.1, gate.open)
        opener.start()
        report = pool.drain(timeout=WAIT)
        opener.join()
    pool.shutdown()
    assert isinstance(report, DrainReport)
    assert report.pool == "test"
    assert report.completed == 4
    assert report.failed == 1
    assert report.cancelled == 0
    assert report.unfinished == ()
    assert report.finished
    assert 0 <= report.elapsed < WAIT
    assert blocked.done()
    assert all(f.done() for f in quick)
    assert failing.done()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.completed = 0  # type: ignore[misc]
    # Nothing finished during a second drain.
    again = pool.drain(timeout=WAIT)
    assert (again.completed, again.failed, again.cancelled) == (0, 0, 0)
    assert again.finished


def test_drain_reports_a_running_task_without_its_arguments(pool: Background) -> None:
    with Gate() as gate:

        @pool.task
        def hang(password: str) -> str:
            return gate(password)

        future = hang(SECRET)
        assert gate.started.wait(WAIT)
        report = pool.drain(timeout=0.2)
        assert not report.finished
        assert report.elapsed >= 0.15
        assert len(report.unfinished) == 1
        (task,) = report.unfinished
        assert isinstance(task, TaskInfo)
        assert task.name.endswith("hang")
        assert task.id == 1
        assert task.state == "running"
        assert task.age > 0
        assert task.started_at is not None
        assert SECRET not in repr(report)
        assert SECRET not in str(task)
        assert not future.done()


def test_drain_reports_a_queued_task() -> None:
    with Background(1, name="q", drain_timeout=10) as bg, Gate() as gate:
        running = bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(noop)
        report = bg.drain(timeout=0.1)
        assert [(t.id, t.state) for t in report.unfinished] == [(1, "running"), (2, "queued")]
        info = report.unfinished[1]
        assert info.name == "noop"
        assert info.started_at is None
        assert info.age > 0
        gate.open()
        assert running.result(timeout=WAIT) is None
        assert queued.result(timeout=WAIT) is None


@pytest.mark.parametrize("timeout", [-1, math.nan, "1"])
def test_drain_refuses_a_bad_timeout(pool: Background, timeout: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="timeout"):
        pool.drain(timeout)


# -- shutdown ---------------------------------------------------------------------------


def test_shutdown_cancel_pending_cancels_queued_tasks() -> None:
    bg = Background(1, name="cancel", drain_timeout=10)
    reports: list[DrainReport] = []
    with Gate() as gate:
        running = bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = [bg.submit(noop) for _ in range(3)]
        closer = start_thread(
            lambda: reports.append(bg.shutdown(cancel_futures=True)), "test-closer"
        )
        _, not_done = concurrent.futures.wait(queued, timeout=WAIT)
        assert not not_done
        assert all(f.cancelled() for f in queued)
        assert not running.done()
        gate.open()
        assert running.result(timeout=WAIT) is None
        closer.join(WAIT)
        assert not closer.is_alive()
    (report,) = reports
    assert report.finished
    assert report.completed == 1
    stats = bg.stats()
    assert stats.cancelled == 3
    assert stats.succeeded == 1
    assert stats.submitted == stats.succeeded + stats.failed + stats.cancelled
    assert wait_for_thread_count("cancel", 0) == []


def test_shutdown_warns_once_naming_the_unfinished_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="background")
    bg = Background(1, name="warn", drain_timeout=10)
    with Gate() as gate:

        @bg.task
        def hang(password: str) -> object:
            return gate(password)

        @bg.task(name="later")
        def later(password: str) -> None:
            return None

        hang(SECRET)
        assert gate.started.wait(WAIT)
        for _ in range(149):
            later(SECRET)
        report = bg.shutdown(timeout=0.2)
        assert [t.state for t in report.unfinished[:2]] == ["running", "queued"]
        assert len(report.unfinished) == 150  # the report has them all
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "background" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1  # one line, not 150
    (message,) = warnings
    assert message.startswith(
        "pool 'warn' shut down with 150 tasks unfinished (1 running, 149 not started): "
    )
    assert ".hang' (id 1, running" in message
    assert "'later' (id 2, queued" in message
    assert "'later' (id 5, queued" in message
    assert "(id 6," not in message
    assert "and 145 more" in message
    assert message.endswith("those not started were cancelled")
    assert SECRET not in caplog.text


def test_a_clean_shutdown_logs_nothing(pool: Background, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="background")
    for _ in range(5):
        pool.submit(noop)
    report = pool.shutdown()
    assert report.finished
    assert pool.stats().succeeded == 5
    assert [r for r in caplog.records if r.name == "background"] == []


def test_tasks_left_queued_by_a_timed_out_shutdown_are_cancelled() -> None:
    # Regression: they used to stay pending forever (never run, never cancelled), because
    # the worker retired as soon as its hung task ended.
    bg = Background(1, name="orphan", drain_timeout=10)
    with Gate() as gate:
        running = bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(noop)
        report = bg.shutdown(timeout=0.2)
        assert [t.state for t in report.unfinished] == ["running", "queued"]
        done, _ = concurrent.futures.wait([queued], timeout=WAIT)
        assert queued in done
        assert queued.cancelled()
        assert not running.done()
        gate.open()
        assert running.result(timeout=WAIT) is None
    stats = bg.stats()
    assert (stats.succeeded, stats.cancelled, stats.queued, stats.running) == (1, 1, 0, 0)
    assert wait_for_thread_count("orphan", 0) == []


# -- stats ------------------------------------------------------------------------------


def test_stats_is_a_frozen_snapshot_with_the_documented_fields(pool: Background) -> None:
    stats = pool.stats()
    assert isinstance(stats, Stats)
    fields = {f.name for f in dataclasses.fields(Stats)}
    assert {
        "workers",
        "queued",
        "running",
        "submitted",
        "succeeded",
        "failed",
        "cancelled",
        "rejected",
    } <= fields
    assert stats.workers == 2
    assert (stats.submitted, stats.queued, stats.running, stats.rejected) == (0, 0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.submitted = 5  # type: ignore[misc]


def test_stats_add_up_and_count_rejections() -> None:
    bg = Background(1, name="counts", max_queue=1, on_full="raise", drain_timeout=10)

    def fail() -> None:
        raise ValueError("boom")

    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        queued = bg.submit(fail)
        stats = bg.stats()
        assert (stats.running, stats.queued, stats.submitted) == (1, 1, 2)
        with pytest.raises(QueueFull):
            bg.submit(noop)
        assert bg.stats().rejected == 1
        assert bg.stats().submitted == 2
        gate.open()
        assert isinstance(queued.exception(timeout=WAIT), ValueError)
        assert bg.drain(timeout=WAIT).finished
    bg.submit(noop).result(timeout=WAIT)
    assert bg.drain(timeout=WAIT).finished
    bg.shutdown()
    with pytest.raises(PoolClosed):
        bg.submit(noop)
    stats = bg.stats()
    assert stats.rejected == 2
    assert stats.submitted == 3
    assert (stats.succeeded, stats.failed, stats.cancelled) == (2, 1, 0)
    assert stats.submitted == stats.succeeded + stats.failed + stats.cancelled
    assert (stats.queued, stats.running) == (0, 0)


# -- introspection ----------------------------------------------------------------------


def test_running_lists_running_tasks_with_wall_clock_start() -> None:
    with Background(1, name="intro", drain_timeout=10) as bg, Gate() as gate:

        @bg.task(name="long-job")
        def long_job(password: str) -> str:
            return gate(password)

        assert bg.running() == []
        before = time.time()
        future = long_job(SECRET)
        assert gate.started.wait(WAIT)
        bg.submit(noop)  # queued: not running
        after = time.time()
        running = bg.running()
        assert len(running) == 1
        (task,) = running
        assert task.name == "long-job"
        assert task.id == 1
        assert task.state == "running"
        assert task.started_at is not None
        assert before - 1 <= task.started_at <= after + 1
        assert abs(task.started_at - time.time()) < 5
        assert SECRET not in repr(running)
        gate.open()
        assert future.result(timeout=WAIT) == SECRET
        assert bg.drain(timeout=WAIT).finished
        assert bg.running() == []


def test_task_ids_follow_submission_order(pool: Background) -> None:
    with Gate() as gate:
        futures = [pool.submit(gate) for _ in range(2)]
        assert gate.started.wait(WAIT)
        report = pool.drain(timeout=0.05)
        assert [t.id for t in report.unfinished] == [1, 2]
        gate.open()
        assert all(f.result(timeout=WAIT) is None for f in futures)


def test_pool_reports_its_name_and_workers() -> None:
    with Background(3, name="shown") as bg:
        assert bg.name == "shown"
        assert bg.workers == 3
        assert "shown" in repr(bg)
        assert "open" in repr(bg)
        assert bg.stats().name == "shown"


def test_an_executor_pool_accepts_a_real_executor() -> None:
    with ThreadPoolExecutor(1) as executor, Background(1, name="exec", executor=executor) as bg:
        assert bg.submit(lambda: 11).result(timeout=WAIT) == 11
        assert bg.drain(timeout=WAIT).finished
        assert bg.stats().succeeded == 1
