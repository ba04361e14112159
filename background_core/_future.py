"""The future a submission returns: a real `concurrent.futures.Future` that carries its work.

A stdlib `Future` builds a `threading.Condition` (an RLock, a deque, six attributes) when it
is made, yet most tasks are fired and forgotten. This one builds it only when something first
needs it (a waiter, a callback, `cancel()`, `done()`). A future nothing looked at is resolved
(or cancelled by a shutdown) without it, and then gets `SETTLED`: its state is final, nothing
is left to guard, wait for or announce, and waiting on many done futures allocates nothing.

The worker takes no lock for that (one shared with waiting threads made them queue behind
each other: keeping 100,000 futures and waiting on them ran 2.5x slower). It stores a claim
(``_claimed``, ``_finishing``), then reads ``_built``; a builder stores ``_built``, then reads
the state and the claims. Each is one atomic step under the GIL, so one sees the other's
store: the worker goes on under the condition, or the builder makes the claimed state its own
(RUNNING, which `cancel()` refuses; FINISHED). Nobody overwrites a state another one stored.
Builders serialize on the futures' lock (``_lock``), under which go only attribute stores:
nothing that calls out, allocates (a collection may run finalizers) or waits.

This leans on the stdlib Future's private attributes (slots here: no instance ``__dict__``),
identical in CPython 3.10 to 3.13. On a Python whose `Future` looks different or that runs
without a GIL, `LAZY` is False and every future is a plain eager one; the tests run this
module on every interpreter they find.
"""

from __future__ import annotations

import os
import threading
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

from ._condition import new_condition
from ._context import EMPTY, Captured
from ._lazy import LAZY, LAZY_NAMES, SETTLED
from ._report import UnretrievedFailure

R = TypeVar("R")

# Marks a task bound for a user's executor whose submission there is still under way.
SENDING: Future[Any] = Future()

FINAL = (FINISHED, CANCELLED_AND_NOTIFIED)  # nothing changes them: see Settled
NO_KWARGS: Mapping[str, Any] = {}  # shared: a call unpacks it, nothing changes it

Work = tuple[Callable[..., Any], tuple[Any, ...], Mapping[str, Any], Context, Captured]
"""A task's work: function, arguments, keyword arguments, context, captured managers."""


class TaskFuture(Future[R]):
    """A Future plus the task it resolves; made by `new_future`.

    The engine reads the task's description (``task_name``, ``task_id``, ``submitted``,
    ``started``, ``sent_to``); the work itself is handed over once, by `take_work`.
    """

    # Slots for what every future sets when it is made; class-level defaults (no store
    # per task) for what most futures never change, or change only on a worker.
    __slots__ = (
        "_args",
        "_condition",
        "_context",
        "_done_callbacks",
        "_fn",
        "_kwargs",
        "_managers",
        "_state",
        "_waiters",
        "submitted",
        "task_id",
        "task_name",
    )

    task_name: str
    task_id: int
    submitted: float  # time.monotonic() at submission
    started: float = 0.0  # time.monotonic() when it started, 0.0 before
    sent_to: Future[Any] | None = None  # the user's executor's future, if it went there
    unretrieved: UnretrievedFailure | None = None  # a failure to log unless retrieved
    _fn: Callable[..., Any] | None
    _args: tuple[Any, ...]
    _kwargs: Mapping[str, Any]
    _context: Context | None
    _managers: Captured
    _built: bool = not LAZY  # the condition was built (see above): read without the lock
    _claimed: bool = False  # the worker's claims (`start`, `finish`), before it reads _built
    _finishing: bool = False
    # Serializes builders (see the module docstring): one lock for all futures, not one
    # more object per task for the collector. Reentrant, for a signal handler that
    # interrupts it (see `in_critical_section`). Replaced in a forked child.
    _lock: threading.RLock = threading.RLock()
    # The stdlib's own attributes, declared for the type checker.
    _result: Any = None
    _exception: BaseException | None = None
    _condition: threading.Condition
    _waiters: list[Any]
    _done_callbacks: list[Callable[[Future[R]], object]]

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not yet set: the lazily built ones.
        if name not in LAZY_NAMES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if self._state in FINAL:  # see Settled
            waiters = callbacks = condition = SETTLED
        else:  # made before taking the lock (see the module docstring); unused if it lost
            waiters, callbacks, condition = [], [], new_condition()
        with self._lock:
            if not self._built:
                self._built = True  # first: a worker reads it after storing its claim
                # A worker that claimed the future before reading `_built` may store its
                # state without a lock: store the claimed one here too, as the worker will.
                state = self._state
                if self._finishing or state == FINISHED:
                    self._state = FINISHED  # its outcome was stored before the claim
                    waiters = callbacks = condition = SETTLED
                elif state == CANCELLED_AND_NOTIFIED:  # by cancel_unseen(): final too
                    waiters = callbacks = condition = SETTLED
                elif state == PENDING and self._claimed:
                    self._state = RUNNING  # cancel() must refuse: it runs
                self._waiters = waiters
                self._done_callbacks = callbacks
                self._condition = condition
        return object.__getattribute__(self, name)

    def take_work(self) -> Work:
        """Hand the work over, once: the future keeps no reference to it afterwards, so
        the arguments are freed as soon as the task ran."""
        fn, context = self._fn, self._context
        assert fn is not None, "the work of a task is taken once"
        assert context is not None
        if context is EMPTY:  # shared, never entered: see _context.snapshot
            context = Context()
        work = (fn, self._args, self._kwargs, context, self._managers)
        # As drop_work(), without a second call on the hot path.
        self._fn = self._context = self._managers = None
        self._args = ()
        self._kwargs = NO_KWARGS
        return work

    def drop_work(self) -> None:
        """Drop the work unrun (the task was cancelled, or went elsewhere)."""
        self._fn = self._context = self._managers = None
        self._args = ()
        self._kwargs = NO_KWARGS

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
        if (failure := self.unretrieved) is not None:
            failure.retrieved = True

    def start(self) -> bool:
        """Mark the future running; False if it was cancelled first (then nothing may run)."""
        if not self._built:
            self._claimed = True  # then `_built` is read: a builder that sees the claim
            if not self._built:  # stores RUNNING itself (see __getattr__)
                self._state = RUNNING
                return True
        with self._condition:
            if self._state == RUNNING:  # a builder saw the claim
                return True
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

    def cancel_unseen(self) -> bool:
        """`cancel_and_notify` one taken off the queue (`start` would overwrite it), without
        building a condition nothing asked for (a shutdown cancels thousands); False if asked."""
        with self._lock:
            if self._built or self._state != PENDING or self.sent_to is not None:
                return False
            self._state = CANCELLED_AND_NOTIFIED  # nobody to tell: nothing waits on it
        return True

    def notify_cancelled(self) -> None:
        """Tell `wait()` and `as_completed()` of a cancel that no worker will see."""
        with self._condition:
            if self._state == CANCELLED:
                self.set_running_or_notify_cancel()

    def finish(self, result: Any, error: BaseException | None) -> None:
        """Resolve with `result`, or with `error` when it is not None; wakes waiters.
        Called once, on a running future."""
        if error is None:
            self._result = result
        else:
            self._exception = error
        if not self._built:
            self._finishing = True  # then `_built` is read (see __getattr__)
            if not self._built:
                self._state = FINISHED
                self._condition = self._waiters = self._done_callbacks = SETTLED  # as a builder
                return
        with self._condition:  # FINISHED is seen under it only once waiters are told
            self._state = FINISHED
            for waiter in self._waiters:
                (waiter.add_result if error is None else waiter.add_exception)(self)
            self._condition.notify_all()
        self._invoke_callbacks()

    def rewind(self) -> None:
        """Back to pending, for another attempt: it can be cancelled again until it starts."""
        assert not self._finishing, "a finished future is never rewound"  # see finish()
        self.sent_to = None  # an executor's future of the last attempt, done
        self.started = 0.0
        self._claimed = False  # before PENDING: a builder reads the state, then the claim
        if not self._built:
            self._state = PENDING
            if not self._built:
                return
        with self._condition:
            if self._state == RUNNING:  # else: pending, or cancelled as it was rewound
                self._state = PENDING


_new = object.__new__


def in_critical_section() -> bool:
    """This thread holds the futures' lock: a signal handler that interrupted it asks."""
    return bool(getattr(TaskFuture._lock, "_is_owned", bool)())


def _reset_in_child() -> None:  # a parent's thread may have held it at fork()
    TaskFuture._lock = threading.RLock()


os.register_at_fork(after_in_child=_reset_in_child)


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
    `submitted`. Not ``__init__``: calling a class with arguments costs 60 ns more."""
    future: TaskFuture[Any] = _new(kind)
    if LAZY:  # deliberately not Future.__init__: see the module docstring
        future._state = PENDING
    else:
        Future.__init__(future)
    future.task_name = name
    future.submitted = submitted
    future._fn = fn
    future._args = args
    future._kwargs = kwargs or NO_KWARGS  # not one empty dict per task waiting in a queue
    future._context = context
    future._managers = managers
    return future
