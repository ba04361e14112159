"""`_run`: what happens when a task fails (the future, `on_error`, the log) and the
pool's callbacks; a worker survives anything a task or a hook raises."""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from background_core import (
    Background,
    TaskInfo,
)
from tests.helpers import (
    SECRET,
    WAIT,
    error_records,
    fail,
    noop,
    pool_threads,
    thread_name,
    wait_until,
)

# -- failures ---------------------------------------------------------------------------


def test_a_failure_nobody_retrieves_is_logged_once_without_arguments(
    pool: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")

    @pool.task
    def explode(password: str) -> None:
        raise ValueError("boom")

    explode(SECRET)  # fired and forgotten: logged as soon as it failed
    wait_until(lambda: failures_named(caplog, explode.name), "the failure is logged")
    assert pool.drain(timeout=WAIT).finished
    records = failures_named(caplog, explode.name)
    assert len(records) == 1
    (record,) = records
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    message = record.getMessage()
    assert "explode" in message
    assert "id 1" in message
    assert "'test'" in message
    assert SECRET not in message
    assert SECRET not in caplog.text


def failures_named(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    """This test's failure records (a future of another test may be freed meanwhile)."""
    return [r for r in error_records(caplog) if f"task {name!r}" in r.getMessage()]


@pytest.mark.parametrize("retrieve", ["exception", "result"])
def test_a_failure_the_caller_retrieves_is_not_logged(
    pool: Background, caplog: pytest.LogCaptureFixture, retrieve: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")
    future = pool.submit_task("retrieved", fail, ("boom",), {})
    if retrieve == "exception":
        assert isinstance(future.exception(timeout=WAIT), ValueError)
    else:
        with pytest.raises(ValueError, match="boom"):
            future.result(timeout=WAIT)
    assert pool.drain(timeout=WAIT).finished
    del future
    gc.collect()
    assert failures_named(caplog, "retrieved") == []  # the caller has it: no second trace
    assert pool.stats().failed == 1


def test_a_failure_held_but_never_retrieved_is_logged_when_the_future_goes(
    pool: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="background")
    future = pool.submit_task("held", fail, ("boom",), {})
    concurrent.futures.wait([future], timeout=WAIT)  # waiting is not retrieving
    assert pool.drain(timeout=WAIT).finished
    assert failures_named(caplog, "held") == []
    del future
    gc.collect()
    assert len(failures_named(caplog, "held")) == 1


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
