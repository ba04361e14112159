"""The future a submission returns: a real `concurrent.futures.Future` that carries its work.

A stdlib `Future` builds a `threading.Condition` (an RLock, a deque, six attributes) when it
is created. Most background tasks are fired and forgotten: nobody ever waits on them. This
subclass builds the condition only when something first needs it (a waiter, a callback,
`cancel()`, `done()`), and the worker resolves futures that never grew one without it.
Building the condition and the worker's check both hold the future's own plain lock (a
C-level lock: about 0.1 µs to make, against several µs for a Condition), so a waiter
that arrives while the worker resolves either sees the result or is notified.

This leans on the stdlib Future's private attributes, identical in CPython 3.10 to 3.13.
`LAZY` is False, and every future is a plain eagerly built one, on any Python whose
`Future` looks different; the tests run this module on every interpreter they find.
"""

from __future__ import annotations

import os
import threading
from _thread import LockType, allocate_lock
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from contextvars import Context
from typing import Any, TypeVar

from ._context import Captured

R = TypeVar("R")

_EXPECTED = {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
_LAZY_NAMES = frozenset({"_condition", "_waiters", "_done_callbacks"})


def _stdlib_future_matches() -> bool:
    probe: Future[None] = Future()
    return set(vars(probe)) == _EXPECTED and callable(getattr(probe, "_invoke_callbacks", None))


LAZY = _stdlib_future_matches() and os.environ.get("BACKGROUND_EAGER_FUTURES") != "1"


# Marks a task bound for a user's executor whose submission there is still under way.
SENDING: Future[Any] = Future()


class TaskFuture(Future[R]):
    """A Future plus the task it resolves. Only the pool reads its ``_task_*`` slots."""

    __slots__ = (
        "_task_args",
        "_task_context",
        "_task_fn",
        "_task_id",
        "_task_kwargs",
        "_task_lock",
        "_task_managers",
        "_task_name",
        "_task_sent",
        "_task_started",
        "_task_submitted",
    )

    _task_fn: Callable[..., Any] | None
    _task_args: tuple[Any, ...]
    _task_kwargs: Mapping[str, Any]
    _task_lock: LockType
    _task_context: Context | None
    _task_managers: Captured
    _task_name: str
    _task_id: int
    _task_submitted: float
    _task_started: float
    _task_sent: Future[Any] | None  # the user's executor's future, if the work went there
    # The stdlib's own attributes, declared for the type checker.
    _condition: threading.Condition
    _waiters: list[Any]
    _done_callbacks: list[Callable[[Future[R]], object]]

    def __init__(self) -> None:
        if LAZY:
            # Deliberately not Future.__init__: see the module docstring.
            self._state = PENDING
            self._result = None
            self._exception = None
            self._task_lock = allocate_lock()
        else:
            super().__init__()
        self._task_started = 0.0
        self._task_sent = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not yet set: the lazily built ones.
        if name not in _LAZY_NAMES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        with self._task_lock:
            if "_condition" not in self.__dict__:
                self._waiters = []
                self._done_callbacks = []
                self._condition = threading.Condition()
        return self.__dict__[name]

    def start(self) -> bool:
        """Mark the future running; False if it was cancelled first (then nothing may run)."""
        if LAZY:
            with self._task_lock:
                if "_condition" not in self.__dict__:
                    # Nobody can have cancelled it: cancel() builds the condition.
                    self._state = RUNNING
                    return True
        with self._condition:
            if self._state == CANCELLED_AND_NOTIFIED:  # see cancel_and_notify()
                return False
            return self.set_running_or_notify_cancel()

    def sent(self) -> Future[Any] | None:
        """The user's executor's future for this task, if it went there."""
        return self._task_sent

    def cancel(self) -> bool:
        """Cancel the task unless it started; a task sent to an executor is cancelled there."""
        sent = self.sent()
        if sent is SENDING or (sent is not None and not sent.cancel()):
            return False
        return super().cancel()

    def running(self) -> bool:
        """True while the task runs, on the pool's threads or in a user's executor."""
        sent = self.sent()
        return super().running() or (sent is not None and sent.running())

    def cancel_and_notify(self) -> bool:
        """Cancel, and tell `wait()` and `as_completed()` at once, as a worker would."""
        if not self.cancel():
            return False
        with self._condition:
            if self._state == CANCELLED:
                self.set_running_or_notify_cancel()
        return True

    def finish(self, result: Any, error: BaseException | None) -> None:
        """Resolve with `result`, or with `error` when it is not None; wakes waiters."""
        if LAZY:
            with self._task_lock:
                if "_condition" not in self.__dict__:
                    # Nothing waits and no callback is registered: nobody to tell.
                    if error is None:
                        self._result = result
                    else:
                        self._exception = error
                    self._state = FINISHED
                    return
        if error is None:
            self.set_result(result)
        else:
            self.set_exception(error)

    def release_work(self) -> None:
        """Drop the references to the work, so arguments are freed once the task ran."""
        self._task_fn = None
        self._task_args = ()
        self._task_kwargs = {}
        self._task_context = None
        self._task_managers = None
