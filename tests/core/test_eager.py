"""`Background(eager=True)`: each call runs inline at submission and returns a finished future."""

from __future__ import annotations

import contextvars
import gc
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from background_core import Background, PoolClosed, TaskInfo
from tests.helpers import pool_threads

flavor: contextvars.ContextVar[str] = contextvars.ContextVar("flavor", default="plain")


@pytest.fixture
def eager() -> Iterator[Background]:
    bg = Background(2, name="eager", eager=True)
    yield bg
    bg.shutdown()


def test_call_runs_inline_in_the_calling_thread(eager: Background) -> None:
    caller = threading.current_thread()
    seen: list[threading.Thread] = []

    def triple(x: int) -> int:
        seen.append(threading.current_thread())
        return x * 3

    work = eager.task(triple)
    future = work(5)
    # Ran before the call returned, in this thread, and the future is already resolved.
    assert seen == [caller]
    assert isinstance(future, Future)
    assert future.done()
    assert not future.running()
    assert future.result(timeout=0) == 15

    submitted = eager.submit(triple, 7)
    assert submitted.done()
    assert submitted.result(timeout=0) == 21
    assert seen == [caller, caller]


def test_no_worker_thread_is_started(eager: Background) -> None:
    assert eager.start() is eager
    for i in range(5):
        eager.submit(abs, -i)
    assert eager.drain(1).finished
    assert pool_threads("eager") == []


def test_failure_resolves_the_future_and_reaches_on_error() -> None:
    seen: list[tuple[BaseException, TaskInfo, str]] = []

    def hook(error: BaseException, task: TaskInfo) -> None:
        seen.append((error, task, threading.current_thread().name))

    def explode(message: str) -> None:
        raise ValueError(message)

    with Background(name="eager-hook", eager=True, on_error=hook) as bg:
        future = bg.submit(explode, "kaput")
        assert future.done()  # no exception escaped the call
        error = future.exception(timeout=0)
        assert isinstance(error, ValueError)
        with pytest.raises(ValueError, match="kaput"):
            future.result(timeout=0)
        # Reported before submit() returned, in the calling thread.
        assert len(seen) == 1
        hooked, task, thread = seen[0]
        assert hooked is error
        assert task.name.endswith("explode")
        assert task.id == 1
        assert thread == threading.current_thread().name


def test_a_failure_reaches_the_default_logger_once_unless_retrieved(
    eager: Background, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise KeyError("missing")

    with caplog.at_level(logging.ERROR, logger="background"):
        retrieved = eager.submit(explode)
        assert isinstance(retrieved.exception(timeout=0), KeyError)
        del retrieved
        eager.submit(explode)  # dropped at once, never retrieved
        gc.collect()
        records = [r for r in caplog.records if r.name == "background"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "explode" in records[0].getMessage()
    assert "'eager'" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], KeyError)


def test_base_exceptions_are_carried_by_the_future_too() -> None:
    def leave() -> None:
        raise SystemExit(3)

    errors: list[BaseException] = []
    with Background(name="eager-exit", eager=True, on_error=lambda e, _t: errors.append(e)) as bg:
        future = bg.submit(leave)
    assert isinstance(future.exception(timeout=0), SystemExit)
    assert len(errors) == 1


def test_stats_count_eager_tasks(eager: Background) -> None:
    errors: list[BaseException] = []
    with Background(name="eager-stats", eager=True, on_error=lambda e, _t: errors.append(e)) as bg:
        bg.submit(abs, -1)
        bg.submit(abs, -2)
        bg.submit(int, "not a number")
        stats = bg.stats()
    assert stats.name == "eager-stats"
    assert (stats.submitted, stats.succeeded, stats.failed) == (3, 2, 1)
    assert (stats.queued, stats.running, stats.cancelled, stats.rejected) == (0, 0, 0, 0)
    assert len(errors) == 1


def test_callbacks_run_before_the_call_returns(eager: Background) -> None:
    finished: list[Future[object]] = []
    eager.callback(finished.append)
    future = eager.submit(abs, -4)
    assert finished == [future]


def test_contextvars_travel_in_and_do_not_leak_out(eager: Background) -> None:
    def swap() -> str:
        seen = flavor.get()
        flavor.set("spicy")
        return seen

    token = flavor.set("sweet")
    try:
        assert eager.submit(swap).result(timeout=0) == "sweet"
        assert flavor.get() == "sweet"
    finally:
        flavor.reset(token)


def test_a_task_may_submit_more_eager_tasks(eager: Background) -> None:
    order: list[str] = []

    @eager.task
    def child(name: str) -> str:
        order.append(name)
        return name

    @eager.task
    def parent() -> list[str]:
        order.append("parent")
        return [child("a").result(timeout=0), child("b").result(timeout=0)]

    assert parent().result(timeout=0) == ["a", "b"]
    assert order == ["parent", "a", "b"]
    assert eager.stats().succeeded == 3


def test_submission_after_shutdown_raises() -> None:
    bg = Background(name="eager-closed", eager=True)
    bg.shutdown()
    with pytest.raises(PoolClosed, match="eager-closed"):
        bg.submit(abs, -1)
    assert bg.stats().rejected == 1


def test_coroutine_task_returns_a_finished_future() -> None:
    async def answer() -> int:
        return 42

    with Background(name="eager-async", eager=True) as bg:
        future = bg.submit(answer)
        assert future.done()
        assert future.result(timeout=0) == 42


@pytest.mark.parametrize("value", [1, "yes", None])
def test_eager_must_be_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match="eager"):
        Background(name="eager-bad", eager=value)  # type: ignore[arg-type]


def test_a_second_thread_waits_for_the_initializer_of_an_eager_pool() -> None:
    ready = threading.Event()
    running = threading.Event()

    def setup() -> None:
        running.set()
        ready.wait(1.0)  # long enough for the other thread to try
        ready.set()

    pool = Background(name="eager-init-wait", eager=True, initializer=setup)
    seen: list[tuple[str, bool]] = []
    first = threading.Thread(target=lambda: pool.submit(lambda: seen.append(("A", ready.is_set()))))
    first.start()
    assert running.wait(5)
    pool.submit(lambda: seen.append(("B", ready.is_set())))
    first.join(5)
    pool.shutdown()
    assert sorted(seen) == [("A", True), ("B", True)]
