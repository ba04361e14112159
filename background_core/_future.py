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
from concurrent.futures import TimeoutError as FuturesTimeout
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
from ._report import UnretrievedFailure

R = TypeVar("R")

_EXPECTED = {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
_LAZY_NAMES = frozenset({"_condition", "_waiters", "_done_callbacks"})


def _stdlib_future_matches() -> bool:
    probe: Future[None] = Future()
    return set(vars(probe)) == _EXPECTED and callable(getattr(probe, "_invoke_callbacks", None))


LAZY = _stdlib_future_matches() and os.environ.get("BACKGROUND_EAGER_FUTURES") != "1"


# Marks a task bound for a user's executor whose submission there is still under way.
SENDING: Future[Any] = Future()

Work = tuple[Callable[..., Any], tuple[Any, ...], Mapping[str, Any], Context, Captured]
"""A task's work: function, arguments, keyword arguments, context, captured managers."""


class TaskFuture(Future[R]):
    """A Future plus the task it resolves; made by `new_future`.

    The engine reads the task's description (``task_name``, ``task_id``, ``submitted``,
    ``started``, ``sent_to``); the work itself is handed over once, by `take_work`.
    """

    __slots__ = (
        "_args",
        "_context",
        "_fn",
        "_kwargs",
        "_lock",
        "_managers",
        "sent_to",
        "started",
        "submitted",
        "task_id",
        "task_name",
        "unretrieved",
    )

    task_name: str
    task_id: int
    submitted: float  # time.monotonic() at submission
    started: float  # time.monotonic() when it started, 0.0 before
    sent_to: Future[Any] | None  # the user's executor's future, if the work went there
    unretrieved: UnretrievedFailure | None  # a failure to log unless the caller gets it
    _fn: Callable[..., Any] | None
    _args: tuple[Any, ...]
    _kwargs: Mapping[str, Any]
    _lock: LockType
    _context: Context | None
    _managers: Captured
    # The stdlib's own attributes, declared for the type checker.
    _condition: threading.Condition
    _waiters: list[Any]
    _done_callbacks: list[Callable[[Future[R]], object]]

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not yet set: the lazily built ones.
        if name not in _LAZY_NAMES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        with self._lock:
            if "_condition" not in self.__dict__:
                self._waiters = []
                self._done_callbacks = []
                self._condition = threading.Condition()
        return self.__dict__[name]

    def take_work(self) -> Work:
        """Hand the work over, once: the future keeps no reference to it afterwards, so
        the arguments are freed as soon as the task ran."""
        fn, context = self._fn, self._context
        assert fn is not None, "the work of a task is taken once"
        assert context is not None
        work = (fn, self._args, self._kwargs, context, self._managers)
        # As drop_work(), without a second call on the hot path.
        self._fn = self._context = self._managers = None
        self._args = ()
        self._kwargs = {}
        return work

    def drop_work(self) -> None:
        """Drop the work unrun (the task was cancelled, or went elsewhere)."""
        self._fn = None
        self._args = ()
        self._kwargs = {}
        self._context = None
        self._managers = None

    def result(self, timeout: float | None = None) -> R:
        """`Future.result`; retrieving a failure this way means it is the caller's now."""
        try:
            return super().result(timeout)
        except FuturesTimeout as error:
            if self._exception is error:  # the task's own TimeoutError, not the wait's
                self._retrieved()
            raise
        except BaseException:
            self._retrieved()
            raise
        finally:
            self = None  # type: ignore[assignment]  # noqa: PLW0642  (as the stdlib does: no cycle)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """`Future.exception`; the failure it returns is the caller's now."""
        error = super().exception(timeout)
        self._retrieved()
        return error

    def _retrieved(self) -> None:
        failure = self.unretrieved
        if failure is not None:
            failure.retrieved = True

    def start(self) -> bool:
        """Mark the future running; False if it was cancelled first (then nothing may run)."""
        if LAZY:
            with self._lock:
                if "_condition" not in self.__dict__:
                    # Nobody can have cancelled it: cancel() builds the condition.
                    self._state = RUNNING
                    return True
        with self._condition:
            if self._state == CANCELLED_AND_NOTIFIED:  # see cancel_and_notify()
                return False
            return self.set_running_or_notify_cancel()

    def cancel(self) -> bool:
        """Cancel the task unless it started; a task sent to an executor is cancelled there."""
        sent = self.sent_to
        if sent is SENDING or (sent is not None and not sent.cancel()):
            return False
        return super().cancel()

    def running(self) -> bool:
        """True while the task runs, on the pool's threads or in a user's executor."""
        sent = self.sent_to
        return super().running() or (sent is not None and sent.running())

    def cancel_and_notify(self) -> bool:
        """Cancel, and tell `wait()` and `as_completed()` at once, as a worker would."""
        if not self.cancel():
            return False
        self.notify_cancelled()
        return True

    def notify_cancelled(self) -> None:
        """Tell `wait()` and `as_completed()` of a cancel that no worker will see."""
        with self._condition:
            if self._state == CANCELLED:
                self.set_running_or_notify_cancel()

    def finish(self, result: Any, error: BaseException | None) -> None:
        """Resolve with `result`, or with `error` when it is not None; wakes waiters."""
        if LAZY:
            with self._lock:
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

    def rewind(self) -> None:
        """Back to pending, for another attempt: it can be cancelled again until it starts."""
        self.sent_to = None  # an executor's future of the last attempt, done
        if LAZY:
            with self._lock:
                if "_condition" not in self.__dict__:
                    self._state = PENDING
                    self.started = 0.0
                    return
        with self._condition:
            self._state = PENDING
            self.started = 0.0


_new = object.__new__


def new_future(  # noqa: PLR0917  (positional: once per submission, the hot path)
    name: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    context: Context,
    managers: Captured,
    submitted: float,
    kind: type[TaskFuture[Any]] = TaskFuture,
) -> TaskFuture[Any]:
    """A pending `TaskFuture` (or `kind`) for this work, submitted at monotonic time
    `submitted`.

    A plain function, not ``__init__``: calling a class with arguments costs about 60 ns
    more per submission, measured.
    """
    future: TaskFuture[Any] = _new(kind)
    if LAZY:
        # Deliberately not Future.__init__: see the module docstring.
        future._state = PENDING
        future._result = None
        future._exception = None
    else:
        Future.__init__(future)
    future._lock = allocate_lock()  # a PlannedFuture's attempts use it in both modes
    future.task_name = name
    future.submitted = submitted
    future.started = 0.0
    future.sent_to = None
    future.unretrieved = None
    future._fn = fn
    future._args = args
    future._kwargs = kwargs
    future._context = context
    future._managers = managers
    return future
