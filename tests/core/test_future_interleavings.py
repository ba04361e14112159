"""The lock-free hand-over between a worker and the threads that look at its future.

A worker starts and finishes a future that nothing built a condition for without taking
a lock: it stores a claim, then reads whether a condition was built (see
`background_core._future`). These tests put another thread's call (``cancel()``,
``cancel_and_notify()``, ``add_done_callback()``, ``done()``, ``wait()``,
``as_completed()``) before every line of `start`, `finish` and `rewind`,
deterministically: a line tracer runs it in the worker's own thread, just before that
line. Calls that must block (a waiter) run in a thread of their own, and the worker goes
on once the waiter is installed.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

from background_core._context import EMPTY
from background_core._future import FINAL, TaskFuture, new_future
from background_core._lazy import LAZY
from tests.helpers import WAIT

pytestmark = pytest.mark.skipif(not LAZY, reason="every future is built eagerly here")


def pending() -> TaskFuture[Any]:
    return new_future("job", int, (), {}, EMPTY, None, 0.0)


def body_lines(method: Callable[..., Any]) -> list[int]:
    """The line numbers of `method`'s statements (not its signature, docstring, comments)."""
    lines, first = inspect.getsourcelines(method)
    body = inspect.getdoc(method) is not None
    numbers = []
    in_doc = False
    for i, line in enumerate(lines[1:], start=1):
        text = line.strip()
        if body and text.startswith('"""'):
            in_doc = not (text.endswith('"""') and len(text) > 3)
            body = False
            continue
        if in_doc:
            in_doc = not text.endswith('"""')
            continue
        if text and not text.startswith("#"):
            numbers.append(first + i)
    return numbers


@contextmanager
def before_line(
    method: Callable[..., Any], line: int, action: Callable[[], None]
) -> Iterator[list[bool]]:
    """Runs `action` once, in this thread, just before `method` executes `line`; yields a
    list that holds True once it ran."""
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
        yield ran
    finally:
        sys.settrace(previous)


def held_here(future: TaskFuture[Any]) -> bool:
    """This thread holds the future's condition: another thread cannot get in now."""
    if not future._built:
        return False
    condition = future._condition
    is_owned = getattr(getattr(condition, "_lock", condition), "_is_owned", None)
    return bool(is_owned is not None and is_owned())


class Waiting:
    """`concurrent.futures.wait([future, other])` in a thread, `other` never done by
    itself: the wait may end only once the test finishes `other`."""

    def __init__(self, future: TaskFuture[Any], how: str = "wait") -> None:
        self.future, self.other = future, pending()
        self.how = how
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self._wait, daemon=True)

    def _wait(self) -> None:
        fs = [self.future, self.other]
        try:
            if self.how == "wait":
                self.outcome.append(cf.wait(fs, timeout=WAIT))
            else:
                self.outcome.append(list(cf.as_completed(fs, timeout=WAIT)))
        except BaseException as error:  # reported by `end`
            self.outcome.append(error)

    def begin(self) -> None:
        """Start the waiter; return once it waits on both futures."""
        self.thread.start()
        deadline = time.monotonic() + WAIT
        while not (self._installed(self.future) and self._installed(self.other)):
            assert self.thread.is_alive(), self.outcome
            assert time.monotonic() < deadline, "the waiter never got in"
            time.sleep(0.001)

    @staticmethod
    def _installed(future: TaskFuture[Any]) -> bool:
        # A worker that finished it unbuilt stores SETTLED without `_built`; done() on a
        # FINISHED future builds nothing, or only SETTLED, as that worker would.
        built = future._built or future._state in FINAL
        return built and (future.done() or len(future._waiters) > 0)

    def woke_early(self) -> bool:
        """`wait()` was told everything while `other` is still pending."""
        waiters = self.other._waiters
        return self.how == "wait" and bool(waiters and waiters[0].event.is_set())

    def end(self) -> Any:
        """Finish `other`, and return what the waiter got."""
        assert self.other.start()
        self.other.finish(None, None)
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        (outcome,) = self.outcome
        assert not isinstance(outcome, BaseException), outcome
        return outcome


START_ACTIONS = ["cancel", "cancel_and_notify", "callback", "done"]


@pytest.mark.parametrize("action", START_ACTIONS)
@pytest.mark.parametrize("line", body_lines(TaskFuture.start))
def test_start_with_a_call_before_each_line(line: int, action: str) -> None:
    """Either the cancel wins and nothing runs, or the task runs and every later cancel
    is refused; a waiter is told once, callbacks run once, when the future ends."""
    future = pending()
    waiting = Waiting(future)
    calls: list[object] = []
    added: list[bool] = []
    cancels: list[bool] = []

    def act() -> None:
        if held_here(future):
            return  # the worker holds the condition here: nobody else can get in
        if action == "callback":
            future.add_done_callback(calls.append)
            added.append(True)
        elif action == "done":
            assert not future.done()
        else:
            waiting.begin()
            cancels.append(getattr(future, action)())
            assert future.cancelled() is cancels[0]  # at once, as the caller sees it

    with before_line(TaskFuture.start, line, act) as ran:
        started = future.start()
    if not ran:
        pytest.skip("this line is not on the path of a future nothing looked at")
    if cancels == [True]:
        assert started is False
        assert future.cancelled()
    else:
        assert started is True
        assert future.running()
        assert future.cancel() is False
        future.finish(7, None)
        assert calls == [future] * len(added)
    if waiting.thread.is_alive():
        assert not waiting.woke_early()
        done, not_done = waiting.end()
        assert done == {future, waiting.other}
        assert not not_done


FINISH_ACTIONS = ["callback", "done", "wait", "as_completed"]


@pytest.mark.parametrize("built", [False, True], ids=["unbuilt", "built"])
@pytest.mark.parametrize("action", FINISH_ACTIONS)
@pytest.mark.parametrize("line", body_lines(TaskFuture.finish))
def test_finish_with_a_call_before_each_line(line: int, action: str, built: bool) -> None:
    """The result is seen once it is final, callbacks run once, and a waiter on this
    future and another is woken for this one, not early for both."""
    future = pending()
    if built:
        future.done()
    assert future.start()
    waiting = Waiting(future, action if action in ("wait", "as_completed") else "wait")
    calls: list[object] = []
    added: list[bool] = []

    def act() -> None:
        if held_here(future):
            return
        if action == "callback":
            future.add_done_callback(lambda f: calls.append(f.result()))
            added.append(True)
        elif action == "done":
            if future.done():
                assert future.result(timeout=0) == 7
        else:
            waiting.begin()

    with before_line(TaskFuture.finish, line, act) as ran:
        future.finish(7, None)
    if not ran:
        pytest.skip("this line is not on this path")
    assert future.result(timeout=0) == 7
    assert calls == [7] * len(added)
    if waiting.thread.is_alive():
        assert not waiting.woke_early()
        outcome = waiting.end()
        if action == "wait":
            done, not_done = outcome
            assert done == {future, waiting.other}
            assert not not_done
        else:
            assert sorted(map(id, outcome)) == sorted(map(id, [future, waiting.other]))


@pytest.mark.parametrize("action", ["cancel", "done"])
@pytest.mark.parametrize("line", body_lines(TaskFuture.rewind))
def test_rewind_with_a_call_before_each_line(line: int, action: str) -> None:
    """Back to pending: a cancel either is refused (it still ran) or stops the next try."""
    future = pending()
    assert future.start()
    cancels: list[bool] = []

    def act() -> None:
        if held_here(future):
            return
        if action == "cancel":
            cancels.append(future.cancel())
        else:
            future.done()

    with before_line(TaskFuture.rewind, line, act) as ran:
        future.rewind()
    if not ran:
        pytest.skip("this line is not on this path")
    if cancels == [True]:
        assert future.cancelled()
    else:
        assert not future.running()
        assert future.cancel() is True  # pending again
    assert future.start() is False


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
