"""`Background`: construction, submission, lifecycle, drain, failures, stats, load, resize,
backpressure and introspection, through the public API."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
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
    check_option,
)

SECRET = "hunter2-secret-argument"
WAIT = 10.0  # seconds any single wait in these tests may take before it counts as a failure


class Gate:
    """A task body that signals it started, then blocks until released.

    Use as a context manager so the gate opens on the way out of the test whatever happens,
    before the pool that runs it is shut down.
    """

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.started.set()
        if not self.release.wait(30):
            raise TimeoutError("gate never released")
        return "opened"

    def __enter__(self) -> Gate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()


def noop() -> None:
    return None


def thread_name() -> str:
    return threading.current_thread().name


def pool_threads(name: str) -> list[threading.Thread]:
    prefix = f"background-{name}-"
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def wait_for_thread_count(name: str, count: int, timeout: float = WAIT) -> list[threading.Thread]:
    """Join the pool's threads in short slices until only `count` remain alive (bounded)."""
    deadline = time.monotonic() + timeout
    alive = pool_threads(name)
    while len(alive) > count and time.monotonic() < deadline:
        for thread in alive:
            thread.join(timeout=0.05)
        alive = pool_threads(name)
    return alive


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "background" and r.levelno == logging.ERROR]


# -- constructor validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "error", "message"),
    [
        (0, ValueError, r"workers must be at least 1"),
        (-1, ValueError, r"workers must be at least 1"),
        (2.5, TypeError, r"workers must be a positive int"),
        ("8", TypeError, r"workers must be a positive int"),
        (True, TypeError, r"workers must be a positive int"),
    ],
)
def test_bad_workers_are_refused(workers: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Background(workers)


def test_workers_none_means_usable_cpus() -> None:
    with Background(None, name="cpus") as bg:
        assert bg.workers == background_core.usable_cpus() >= 1
        assert bg.stats().workers == bg.workers
    with Background(name="cpus-default") as bg:
        assert bg.workers == background_core.usable_cpus()


@pytest.mark.parametrize("name", ["", None, 5, b"pool"])
def test_bad_name_is_refused(name: Any) -> None:
    with pytest.raises(TypeError, match=r"name must be a non-empty str"):
        Background(1, name=name)


@pytest.mark.parametrize(
    ("max_queue", "error", "message"),
    [
        (0, ValueError, r"max_queue must be at least 1"),
        (-1, ValueError, r"max_queue must be at least 1"),
        (2.5, TypeError, r"max_queue must be a positive int"),
        ("8", TypeError, r"max_queue must be a positive int"),
        (True, TypeError, r"max_queue must be a positive int"),
    ],
)
def test_bad_max_queue_is_refused(max_queue: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Background(1, max_queue=max_queue)


@pytest.mark.parametrize("on_full", ["drop", "", None, "RAISE", 1])
def test_bad_on_full_names_the_choices(on_full: Any) -> None:
    with pytest.raises(ValueError, match=r"on_full must be one of") as info:
        Background(1, on_full=on_full)
    for choice in ("'block'", "'raise'", "'caller_runs'"):
        assert choice in str(info.value)


@pytest.mark.parametrize(
    ("drain_timeout", "error"),
    [(-1, ValueError), (-0.5, ValueError), (math.nan, ValueError), ("10", TypeError)],
)
def test_bad_drain_timeout_is_refused(drain_timeout: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"drain_timeout must be .*seconds.*math\.inf") as info:
        Background(1, drain_timeout=drain_timeout)
    assert ">= 0" in str(info.value) or "number" in str(info.value)


@pytest.mark.parametrize("drain_timeout", [0, 0.5, 30, math.inf])
def test_good_drain_timeouts_are_kept(drain_timeout: float) -> None:
    with Background(1, name="dt", drain_timeout=drain_timeout) as bg:
        assert bg.drain_timeout == drain_timeout


@pytest.mark.parametrize("executor", [object(), "pool", lambda fn: fn])
def test_executor_must_be_an_executor(executor: Any) -> None:
    with pytest.raises(TypeError, match=r"executor must be a concurrent\.futures\.Executor"):
        Background(1, executor=executor)


@pytest.mark.parametrize("on_error", ["log", 42, object()])
def test_on_error_must_be_callable(on_error: Any) -> None:
    with pytest.raises(TypeError, match=r"on_error must be callable"):
        Background(1, on_error=on_error)


def test_a_refused_pool_is_not_left_open() -> None:
    before = set(map(id, background_core.open_pools()))
    with pytest.raises(ValueError, match="workers"):
        Background(0, name="refused")
    assert {id(p) for p in background_core.open_pools()} <= before


# -- submit ---------------------------------------------------------------------------


def test_submit_returns_a_real_future_at_once(pool: Background) -> None:
    with Gate() as gate:
        began = time.monotonic()
        future = pool.submit(gate, SECRET)
        assert time.monotonic() - began < 1.0
        assert isinstance(future, Future)
        assert gate.started.wait(WAIT)
        assert not future.done()
        gate.release.set()
        assert future.result(timeout=WAIT) == "opened"
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
        opener = threading.Timer(0.1, gate.release.set)
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
        gate.release.set()
        assert running.result(timeout=WAIT) == "opened"
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
        gate.release.set()
        assert running.result(timeout=WAIT) == "opened"
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


def test_shutdown_warns_of_each_unfinished_task(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="background")
    bg = Background(1, name="warn", drain_timeout=10)
    with Gate() as gate:

        @bg.task
        def hang(password: str) -> str:
            return gate(password)

        @bg.task(name="later")
        def later(password: str) -> None:
            return None

        hang(SECRET)
        assert gate.started.wait(WAIT)
        later(SECRET)
        report = bg.shutdown(timeout=0.2)
        assert [t.state for t in report.unfinished] == ["running", "queued"]
    warnings = [
        r for r in caplog.records if r.name == "background" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 2
    first, second = (r.getMessage() for r in warnings)
    assert "hang" in first
    assert "id 1" in first
    assert "'later'" in second
    assert "id 2" in second
    assert "'warn'" in first
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
        gate.release.set()
        assert running.result(timeout=WAIT) == "opened"
    stats = bg.stats()
    assert (stats.succeeded, stats.cancelled, stats.queued, stats.running) == (1, 1, 0, 0)
    assert wait_for_thread_count("orphan", 0) == []


# -- failures ---------------------------------------------------------------------------


def test_default_on_error_logs_one_error_without_arguments(
    pool: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")

    @pool.task
    def explode(password: str) -> None:
        raise ValueError("boom")

    future = explode(SECRET)
    assert isinstance(future.exception(timeout=WAIT), ValueError)
    assert pool.drain(timeout=WAIT).finished  # failures are logged before a drain ends
    records = error_records(caplog)
    assert len(records) == 1
    (record,) = records
    assert record.exc_info is not None
    assert record.exc_info[1] is future.exception(timeout=0)
    message = record.getMessage()
    assert "explode" in message
    assert "id 1" in message
    assert "'test'" in message
    assert SECRET not in message
    assert SECRET not in caplog.text


def test_custom_on_error_receives_the_exception_and_task_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")
    seen: list[tuple[BaseException, TaskInfo, str]] = []

    def on_error(error: BaseException, task: TaskInfo) -> None:
        seen.append((error, task, thread_name()))

    with Background(1, name="hooked", on_error=on_error) as bg:

        @bg.task(name="explode")
        def explode(password: str) -> None:
            raise ValueError("boom")

        bg.submit(noop).result(timeout=WAIT)
        future = explode(SECRET)
        error = future.exception(timeout=WAIT)
        assert bg.drain(timeout=WAIT).finished
    ((got, task, where),) = seen
    assert got is error
    assert isinstance(task, TaskInfo)
    assert task.name == "explode"
    assert task.id == 2
    assert task.state == "running"
    assert task.started_at is not None
    assert where.startswith("background-hooked-")
    assert SECRET not in repr(task)
    assert error_records(caplog) == []


def test_an_on_error_that_raises_is_logged_and_the_failure_still_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")

    def on_error(error: BaseException, task: TaskInfo) -> None:
        raise RuntimeError("hook broke")

    with Background(1, name="badhook", on_error=on_error) as bg:

        def explode() -> None:
            raise ValueError("boom")

        future = bg.submit(explode)
        original = future.exception(timeout=WAIT)
        assert bg.drain(timeout=WAIT).finished
        assert bg.submit(lambda: 7).result(timeout=WAIT) == 7  # the worker survived
    records = error_records(caplog)
    assert len(records) == 2
    errors = [r.exc_info[1] for r in records if r.exc_info]
    assert any(isinstance(e, RuntimeError) and str(e) == "hook broke" for e in errors)
    assert original in errors
    hook_record = next(r for r in records if r.exc_info and r.exc_info[1] is not original)
    assert "on_error" in hook_record.getMessage()
    failure_record = next(r for r in records if r.exc_info and r.exc_info[1] is original)
    assert "explode" in failure_record.getMessage()


class Crash(BaseException):
    """A BaseException that is neither Exception nor KeyboardInterrupt."""


@pytest.mark.parametrize(
    "error",
    [SystemExit(3), Crash("crash"), ValueError("plain"), GeneratorExit()],
    ids=["SystemExit", "BaseException", "Exception", "GeneratorExit"],
)
def test_a_worker_survives_any_failure(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL + 1, logger="background")  # the failures are expected

    def fail() -> None:
        raise error

    with Background(1, name="survivor") as bg:
        first = bg.submit(thread_name).result(timeout=WAIT)
        failed = bg.submit(fail)
        assert failed.exception(timeout=WAIT) is error
        with pytest.raises(type(error)):
            failed.result(timeout=0)
        after = [bg.submit(thread_name) for _ in range(5)]
        assert {f.result(timeout=WAIT) for f in after} == {first}
        assert pool_threads("survivor")[0].name == first
        assert bg.drain(timeout=WAIT).finished
        stats = bg.stats()
        assert (stats.failed, stats.succeeded) == (1, 6)


# -- callbacks --------------------------------------------------------------------------


def test_callbacks_get_every_finished_future(pool: Background) -> None:
    seen: list[Future[Any]] = []
    lock = threading.Lock()

    @pool.callback
    def record(future: Future[Any]) -> None:
        assert future.done()
        with lock:
            seen.append(future)

    assert callable(record)

    def fail() -> None:
        raise ValueError("boom")

    ok = pool.submit(lambda: 1)
    bad = pool.submit(fail)
    assert pool.drain(timeout=WAIT).finished  # callbacks have run once a drain ends
    assert {id(f) for f in seen} == {id(ok), id(bad)}
    assert ok.result(timeout=0) == 1
    assert isinstance(bad.exception(timeout=0), ValueError)


@pytest.mark.parametrize(
    "error", [RuntimeError("callback broke"), SystemExit(2)], ids=["Exception", "SystemExit"]
)
def test_a_raising_callback_is_logged_and_the_worker_keeps_working(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")
    calls: list[str] = []

    with Background(1, name="cb") as bg:

        @bg.callback
        def broken(future: Future[Any]) -> None:
            raise error

        @bg.callback
        def fine(future: Future[Any]) -> None:
            calls.append(thread_name())

        first = bg.submit(thread_name).result(timeout=WAIT)
        assert bg.drain(timeout=WAIT).finished
        later = [bg.submit(thread_name) for _ in range(3)]
        assert {f.result(timeout=WAIT) for f in later} == {first}
        assert bg.drain(timeout=WAIT).finished
    records = error_records(caplog)
    assert len(records) == 4
    assert all(r.exc_info and r.exc_info[1] is error for r in records)
    assert all("broken" in r.getMessage() for r in records)
    assert calls == [first] * 4  # a later callback still runs after one raised


def test_callback_must_be_callable(pool: Background) -> None:
    with pytest.raises(TypeError, match="callable"):
        pool.callback(42)  # type: ignore[arg-type]


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
        gate.release.set()
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


# -- load -------------------------------------------------------------------------------


def test_fifty_thousand_tasks_from_eight_threads(pool: Background) -> None:
    threads_count, per_thread = 8, 6250
    barrier = threading.Barrier(threads_count)
    futures: list[list[Future[Any]]] = [[] for _ in range(threads_count)]
    errors: list[BaseException] = []

    def submitter(index: int) -> None:
        try:
            barrier.wait(timeout=WAIT)
            mine = futures[index]
            submit = pool.submit
            for _ in range(per_thread):
                mine.append(submit(noop))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    began = time.monotonic()
    threads = [
        start_thread(lambda i=i: submitter(i), f"test-submitter-{i}") for i in range(threads_count)
    ]
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    all_futures = [f for mine in futures for f in mine]
    assert len(all_futures) == 50_000
    _, not_done = concurrent.futures.wait(all_futures, timeout=30)
    assert not not_done
    assert pool.drain(timeout=30).finished
    stats = pool.stats()
    assert stats.submitted == 50_000 == stats.succeeded
    assert (stats.failed, stats.cancelled, stats.rejected) == (0, 0, 0)
    assert (stats.queued, stats.running) == (0, 0)
    assert all(f.result(timeout=0) is None for f in all_futures)
    assert time.monotonic() - began < 45


# -- resize -----------------------------------------------------------------------------


def test_resize_under_load_loses_no_task() -> None:
    names: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)
    pause = threading.Event()  # never set: each task waits briefly on it

    def work(i: int) -> None:
        with lock:
            names.append(thread_name())
        if i < 4:
            # Only passes when four workers run at once: proves the pool grew.
            barrier.wait(timeout=WAIT)
        else:
            pause.wait(0.002)

    with Background(1, name="resize", drain_timeout=30) as bg:
        futures = [bg.submit(work, i) for i in range(200)]
        assert len(pool_threads("resize")) == 1
        bg.workers = 4
        assert bg.workers == 4
        assert bg.stats().workers == 4
        # The first four tasks only finish together, on four different workers.
        for future in futures[:4]:
            assert future.result(timeout=WAIT) is None
        bg.workers = 1
        assert bg.workers == 1
        assert bg.stats().workers == 1
        report = bg.drain(timeout=30)
        assert report.finished
        assert all(f.result(timeout=0) is None for f in futures)
        assert len(names) == 200
        assert len(set(names[:4])) == 4
        stats = bg.stats()
        assert stats.submitted == stats.succeeded == 200
        alive = wait_for_thread_count("resize", 1)
        assert len(alive) == 1
        # The survivor still works.
        assert bg.submit(thread_name).result(timeout=WAIT) == alive[0].name
    assert wait_for_thread_count("resize", 0) == []


def test_resize_before_start_sets_the_worker_count() -> None:
    with Background(1, name="presize") as bg:
        bg.workers = 3
        assert pool_threads("presize") == []
        bg.start()
        assert len(pool_threads("presize")) == 3
        bg.workers = 2
        assert bg.stats().workers == 2
        assert len(wait_for_thread_count("presize", 2)) == 2


def test_shrink_then_grow_keeps_the_right_number_of_workers() -> None:
    with Background(4, name="flip") as bg:
        bg.start()
        bg.workers = 1
        bg.workers = 3
        assert len(wait_for_thread_count("flip", 3)) == 3
        futures = [bg.submit(noop) for _ in range(30)]
        assert all(f.result(timeout=WAIT) is None for f in futures)
        assert len(pool_threads("flip")) == 3


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (2.5, TypeError),
        ("2", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_resize_refuses_bad_values(pool: Background, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="workers"):
        pool.workers = value
    assert pool.workers == 2


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
        gate.release.set()
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
        gate.release.set()  # the worker takes the queued task: room for one
        assert returned.wait(WAIT)
        thread.join(WAIT)
        assert not thread.is_alive()
        assert first.result(timeout=WAIT) == "opened"
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
        gate.release.set()
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
        gate.release.set()
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
        gate.release.set()
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
            gate.release.set()
            closer.join(WAIT)
            thread.join(WAIT)


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
        gate.release.set()
        assert future.result(timeout=WAIT) == "opened"
        assert bg.drain(timeout=WAIT).finished
        assert bg.running() == []


def test_task_ids_follow_submission_order(pool: Background) -> None:
    with Gate() as gate:
        futures = [pool.submit(gate) for _ in range(2)]
        assert gate.started.wait(WAIT)
        report = pool.drain(timeout=0.05)
        assert [t.id for t in report.unfinished] == [1, 2]
        gate.release.set()
        assert all(f.result(timeout=WAIT) == "opened" for f in futures)


def test_pool_reports_its_name_and_workers() -> None:
    with Background(3, name="shown") as bg:
        assert bg.name == "shown"
        assert bg.workers == 3
        assert "shown" in repr(bg)
        assert "open" in repr(bg)
        assert bg.stats().name == "shown"


def test_usable_cpus_is_positive() -> None:
    assert isinstance(background_core.usable_cpus(), int)
    assert background_core.usable_cpus() >= 1


def test_an_executor_pool_accepts_a_real_executor() -> None:
    with ThreadPoolExecutor(1) as executor, Background(1, name="exec", executor=executor) as bg:
        assert bg.submit(lambda: 11).result(timeout=WAIT) == 11
        assert bg.drain(timeout=WAIT).finished
        assert bg.stats().succeeded == 1


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("workers", 0, ValueError),
        ("workers", "8", TypeError),
        ("max_queue", -1, ValueError),
        ("on_full", "drop", ValueError),
        ("drain_timeout", "soon", TypeError),
        ("eager", "yes", TypeError),
        ("name", "", TypeError),
    ],
)
def test_check_option_names_the_label_it_is_given(
    option: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^BACKGROUND_X must be"):
        check_option(option, value, "BACKGROUND_X")


def test_check_option_accepts_good_values_and_refuses_unknown_options() -> None:
    for option, value in [("workers", None), ("workers", 3), ("on_full", "raise")]:
        check_option(option, value)
    with pytest.raises(TypeError, match="no option 'colour'"):
        check_option("colour", "blue")
