"""The lock-free hand-over between a worker and the threads that look at its future.

A worker starts and finishes a future that nothing built a condition for without taking
a lock: it stores the state, then reads whether a condition was built (see
`background_core._future`). These tests put the other thread's call (``cancel()``,
``add_done_callback()``, ``wait()``) in each gap of that sequence, deterministically: a
line tracer runs it in the worker's own thread, just before the line it names.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

from background_core._context import EMPTY
from background_core._future import TaskFuture, new_future
from background_core._lazy import LAZY

pytestmark = pytest.mark.skipif(not LAZY, reason="every future is built eagerly here")


def pending() -> TaskFuture[Any]:
    return new_future("job", int, (), {}, EMPTY, None, 0.0)


def line_of(method: Callable[..., Any], text: str, occurrence: int = 1) -> int:
    """The line number of the `occurrence`-th line of `method` that contains `text`."""
    lines, first = inspect.getsourcelines(method)
    found = [first + i for i, line in enumerate(lines) if text in line]
    return found[occurrence - 1]


@contextmanager
def before_line(
    method: Callable[..., Any], line: int, action: Callable[[], None]
) -> Iterator[None]:
    """Runs `action` once, in this thread, just before `method` executes `line`."""
    code = method.__code__
    ran: list[bool] = []

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and frame.f_lineno == line and not ran:
            ran.append(True)
            action()
        return local

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return local if frame.f_code is code else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        yield
    finally:
        sys.settrace(previous)
    assert ran, f"line {line} of {method.__qualname__} was never reached"


START_STORE = line_of(TaskFuture.start, "self._state = RUNNING")
START_RECHECK = START_STORE + 1
FINISH_STORE = line_of(TaskFuture.finish, "self._state = FINISHED")
FINISH_RECHECK = FINISH_STORE + 1


def test_a_cancel_between_the_check_and_the_store_wins() -> None:
    """The worker read "not built", then a cancel() came: its store must not undo it."""
    future = pending()
    cancels: list[bool] = []
    with before_line(TaskFuture.start, START_STORE, lambda: cancels.append(future.cancel())):
        started = future.start()
    assert cancels == [True]
    assert started is False
    assert future.cancelled()
    assert future.done()
    done, _ = cf.wait([future], timeout=0)  # told, as a worker tells of a cancel
    assert done == {future}


def test_a_cancel_after_the_store_is_refused() -> None:
    future = pending()
    cancels: list[bool] = []
    with before_line(TaskFuture.start, START_RECHECK, lambda: cancels.append(future.cancel())):
        started = future.start()
    assert cancels == [False]
    assert started is True
    assert future.running()
    assert not future.cancelled()


def test_a_callback_added_before_the_finishing_store_runs_once() -> None:
    future = pending()
    assert future.start()
    calls: list[object] = []
    add = lambda: future.add_done_callback(lambda f: calls.append(f.result()))  # noqa: E731
    with before_line(TaskFuture.finish, FINISH_STORE, add):
        future.finish(7, None)
    assert calls == [7]


def test_a_callback_added_after_the_finishing_store_runs_once() -> None:
    future = pending()
    assert future.start()
    calls: list[object] = []
    add = lambda: future.add_done_callback(lambda f: calls.append(f.result()))  # noqa: E731
    with before_line(TaskFuture.finish, FINISH_RECHECK, add):
        future.finish(7, None)
    assert calls == [7]


@pytest.mark.parametrize("line", [FINISH_STORE, FINISH_RECHECK], ids=["before", "after"])
def test_a_thread_that_waits_from_either_gap_is_woken(line: int) -> None:
    """A waiter that builds the condition in either gap of `finish` wakes with the result."""
    future = pending()
    assert future.start()
    results: list[object] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        done, _ = cf.wait([future], timeout=30)
        results.extend(f.result() for f in done)

    thread = threading.Thread(target=waiter)

    def start_waiter() -> None:
        thread.start()
        assert waiting.wait(30)
        future.done()  # builds the condition here, in the gap, as the waiter may

    with before_line(TaskFuture.finish, line, start_waiter):
        future.finish(7, None)
    thread.join(30)
    assert not thread.is_alive()
    assert results == [7]


def test_a_failure_reaches_a_waiter_as_a_failure() -> None:
    future = pending()
    assert future.start()
    future.done()  # built: the finishing store goes through the condition
    outcome: list[cf.Future[Any]] = []
    future.add_done_callback(outcome.append)
    future.finish(None, KeyError("k"))
    done, _ = cf.wait([future], timeout=0, return_when=cf.FIRST_EXCEPTION)
    assert done == {future}
    assert outcome == [future]
    assert isinstance(future.exception(timeout=0), KeyError)
