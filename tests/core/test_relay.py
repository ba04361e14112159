"""`executor=`: tasks relayed to another executor (a process pool, a thread pool, another
Background) are tracked, counted, drained and reported like the pool's own.

The process pool runs stdlib functions (`math.factorial`, `operator.truediv`, `time.sleep`):
module-level and importable in a spawned child whatever name pytest gives this module.
Spawn, not fork: forking this multi-threaded process is unsafe (and warns on 3.12+).
"""

from __future__ import annotations

import contextvars
import logging
import math
import multiprocessing
import operator
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

from background_core import Background, TaskInfo

WAIT = 30  # seconds: a spawned child may take a while to start on a loaded machine

color: contextvars.ContextVar[str] = contextvars.ContextVar("color", default="unset")


def spawn_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessPoolExecutor]:
    """One spawned worker process for the module (starting one costs a fraction of a second)."""
    executor = spawn_pool()
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture
def threads() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(2)
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture(params=["threads", "processes"])
def executor(request: pytest.FixtureRequest) -> Executor:
    """The user's executor: a ThreadPoolExecutor(2), or a spawned ProcessPoolExecutor(1)."""
    value: Executor = request.getfixturevalue(request.param)
    return value


class Failures:
    """An `on_error` hook that records what it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[BaseException, TaskInfo]] = []
        self.lock = threading.Lock()

    def __call__(self, error: BaseException, task: TaskInfo) -> None:
        with self.lock:
            self.seen.append((error, task))


def test_results_come_back_through_our_future(executor: Executor) -> None:
    with Background(2, name="ex-results", executor=executor, drain_timeout=WAIT) as bg:
        factorial = bg.task(math.factorial)
        futures = [factorial(n) for n in range(6)] + [bg.submit(operator.mul, 6, 7)]
        assert all(isinstance(f, Future) for f in futures)
        assert [f.result(timeout=WAIT) for f in futures] == [1, 1, 2, 6, 24, 120, 42]
        bg.drain(WAIT)
        stats = bg.stats()
    assert (stats.submitted, stats.succeeded, stats.failed, stats.queued, stats.running) == (
        7,
        7,
        0,
        0,
        0,
    )


def test_exceptions_come_back_through_our_future(executor: Executor) -> None:
    failures = Failures()
    with Background(
        2, name="ex-errors", executor=executor, on_error=failures, drain_timeout=WAIT
    ) as bg:
        ok = bg.submit(operator.truediv, 1, 4)
        zero = bg.submit(operator.truediv, 1, 0)
        negative = bg.submit(math.factorial, -1)
        assert ok.result(timeout=WAIT) == 0.25
        assert isinstance(zero.exception(timeout=WAIT), ZeroDivisionError)
        with pytest.raises(ValueError, match="factorial"):
            negative.result(timeout=WAIT)
        report = bg.drain(WAIT)
        stats = bg.stats()
    assert report.finished
    assert (stats.submitted, stats.succeeded, stats.failed) == (3, 1, 2)
    assert sorted(type(error).__name__ for error, _ in failures.seen) == [
        "ValueError",
        "ZeroDivisionError",
    ]
    assert sorted(task.name for _, task in failures.seen) == ["factorial", "truediv"]


def test_failures_are_logged_once_by_default(
    threads: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="background"),
        Background(1, name="ex-log", executor=threads) as bg,
    ):
        bg.submit(operator.truediv, 1, 0)
        bg.drain(WAIT)
    records = [r for r in caplog.records if r.name == "background"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "truediv" in records[0].getMessage()


def test_drain_waits_for_the_executors_tasks(processes: ProcessPoolExecutor) -> None:
    with Background(2, name="ex-drain", executor=processes, drain_timeout=WAIT) as bg:
        futures = [bg.submit(time.sleep, 0.05) for _ in range(3)]
        report = bg.drain(WAIT)
        assert all(f.done() for f in futures)
        assert report.finished
        assert bg.stats().succeeded == 3


def test_drain_report_lists_an_unfinished_task(threads: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    started = threading.Event()

    def parked() -> str:
        started.set()
        assert gate.wait(WAIT)
        return "done"

    with Background(2, name="ex-unfinished", executor=threads) as bg:
        future = bg.submit(parked)
        assert started.wait(WAIT)
        report = bg.drain(0.05)
        assert not report.finished
        ((task,),) = (report.unfinished,)
        assert task.name.endswith("parked")
        assert task.id == 1
        assert task.state == "running"
        gate.set()
        assert future.result(timeout=WAIT) == "done"
        assert bg.drain(WAIT).finished
        stats = bg.stats()
    assert (stats.succeeded, stats.queued, stats.running) == (1, 0, 0)


def test_drain_report_lists_an_unfinished_process_task(processes: ProcessPoolExecutor) -> None:
    with Background(2, name="ex-unfinished-proc", executor=processes, drain_timeout=WAIT) as bg:
        # The child cannot finish a 0.2 s sleep before a zero-timeout drain returns.
        future = bg.submit(time.sleep, 0.2)
        report = bg.drain(0)
        assert [task.name for task in report.unfinished] == ["sleep"]
        assert future.result(timeout=WAIT) is None
        assert bg.drain(WAIT).finished


def test_shutdown_leaves_the_users_executor_running(executor: Executor) -> None:
    bg = Background(2, name="ex-shutdown", executor=executor, drain_timeout=WAIT)
    assert bg.submit(pow, 2, 5).result(timeout=WAIT) == 32
    report = bg.shutdown()
    assert report.finished
    assert bg.closed
    # Still the user's to use, and to shut down (the fixture does).
    assert executor.submit(pow, 3, 3).result(timeout=WAIT) == 27


def test_shutdown_leaves_a_fresh_process_pool_running() -> None:
    user_executor = spawn_pool()
    try:
        with Background(1, name="ex-own", executor=user_executor, drain_timeout=WAIT) as bg:
            assert bg.submit(abs, -3).result(timeout=WAIT) == 3
        assert user_executor.submit(abs, -4).result(timeout=WAIT) == 4
    finally:
        user_executor.shutdown(wait=True)


def test_no_worker_thread_is_started(threads: ThreadPoolExecutor) -> None:
    with Background(2, name="ex-nothreads", executor=threads) as bg:
        bg.start()
        assert bg.submit(abs, -1).result(timeout=WAIT) == 1
        names = [t.name for t in threading.enumerate()]
    assert not [name for name in names if name.startswith("background-ex-nothreads")]


def test_contextvars_do_not_travel_to_the_executor(threads: ThreadPoolExecutor) -> None:
    """Documented: contextvars and capturers travel only to the pool's own threads."""
    token = color.set("blue")
    try:
        with Background(2, name="ex-context", executor=threads) as bg:
            assert bg.submit(color.get).result(timeout=WAIT) == "unset"
    finally:
        color.reset(token)


def test_user_shutting_down_the_executor_with_cancel_futures_cancels_queued_tasks() -> None:
    gate = threading.Event()
    started = threading.Event()

    def parked() -> None:
        started.set()
        assert gate.wait(WAIT)

    user_executor = ThreadPoolExecutor(1)
    try:
        with Background(1, name="ex-cancelled", executor=user_executor) as bg:
            first = bg.submit(parked)
            assert started.wait(WAIT)
            second = bg.submit(abs, -1)
            user_executor.shutdown(wait=False, cancel_futures=True)
            gate.set()
            assert first.result(timeout=WAIT) is None
            assert second.cancelled()
            assert bg.drain(WAIT).finished
            stats = bg.stats()
        assert (stats.succeeded, stats.cancelled, stats.queued) == (1, 1, 0)
    finally:
        gate.set()
        user_executor.shutdown(wait=True)


def test_refusing_executor_raises_at_submission_and_counts_a_rejection() -> None:
    user_executor = ThreadPoolExecutor(1)
    user_executor.shutdown()
    with Background(1, name="ex-refused", executor=user_executor) as bg:
        with pytest.raises(RuntimeError, match="shutdown"):
            bg.submit(abs, -1)
        stats = bg.stats()
        assert bg.drain(1).finished
    assert (stats.submitted, stats.rejected) == (0, 1)


def parked_in_executor(
    bg: Background, threads: ThreadPoolExecutor
) -> tuple[Future[str], threading.Event, list[str]]:
    """Submit a task that runs in `threads` until the returned gate is set."""
    gate = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def parked() -> str:
        started.set()
        assert gate.wait(WAIT)
        ran.append("ran to the end")
        return "result"

    future = bg.submit(parked)
    assert started.wait(WAIT)
    return future, gate, ran


def with_parked(
    threads: ThreadPoolExecutor, check: Callable[[Background, Future[str], list[str]], None]
) -> None:
    with Background(2, name="ex-running", executor=threads) as bg:
        future, gate, ran = parked_in_executor(bg, threads)
        try:
            check(bg, future, ran)
        finally:
            gate.set()
            bg.drain(WAIT)


def test_future_of_a_task_running_in_the_executor_is_running(
    threads: ThreadPoolExecutor,
) -> None:
    def check(bg: Background, future: Future[str], ran: list[str]) -> None:
        assert future.running()
        assert not future.cancel()  # what a stdlib future of a running call answers

    with_parked(threads, check)


def test_stats_count_a_task_running_in_the_executor_as_running(
    threads: ThreadPoolExecutor,
) -> None:
    def check(bg: Background, future: Future[str], ran: list[str]) -> None:
        assert [task.state for task in bg.running()] == ["running"]
        stats = bg.stats()
        assert (stats.running, stats.queued) == (1, 0)

    with_parked(threads, check)


def test_the_pool_shuts_down_an_executor_it_owns_after_draining() -> None:
    executor = ThreadPoolExecutor(1)
    bg = Background(name="ex-owned", executor=executor, own_executor=True)
    future = bg.submit(operator.mul, 6, 7)
    bg.shutdown(timeout=WAIT)
    assert future.result(timeout=0) == 42
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(operator.mul, 1, 2)


def test_an_executor_not_owned_is_left_open(threads: ThreadPoolExecutor) -> None:
    Background(name="ex-not-owned", executor=threads).shutdown()
    assert threads.submit(operator.mul, 6, 7).result(timeout=WAIT) == 42
    with pytest.raises(TypeError, match="own_executor must be True or False"):
        Background(name="ex-bad", executor=threads, own_executor=1)  # type: ignore[arg-type]


def test_a_submission_the_executor_refuses_leaves_no_id_to_reuse() -> None:
    entered, release = threading.Event(), threading.Event()

    class Refusing(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            if fn is max:
                entered.set()
                release.wait(WAIT)
                raise RuntimeError("executor refused")
            return super().submit(fn, *args, **kwargs)

    with Refusing(2) as threads, Background(name="ids", executor=threads) as bg:
        refused: list[BaseException] = []

        def submit_refused() -> None:
            try:
                bg.submit(max, 1, 2)
            except RuntimeError as error:
                refused.append(error)

        thread = threading.Thread(target=submit_refused)
        thread.start()
        assert entered.wait(WAIT)
        gate = threading.Event()
        waiting = bg.submit(gate.wait, WAIT)  # admitted while the first one is being sent
        release.set()
        thread.join(WAIT)
        after = bg.submit(abs, -1)
        ids = [task.id for task in bg.drain(0).unfinished]
        assert len(ids) == len(set(ids))  # no two tasks share an id
        gate.set()
        assert waiting.result(timeout=WAIT) is True
        assert after.result(timeout=WAIT) == 1
        assert len(refused) == 1
        stats = bg.stats()
    assert (stats.submitted, stats.succeeded, stats.rejected) == (2, 2, 1)
