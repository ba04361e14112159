"""Watching tasks: what the engine tells an observer (an OpenTelemetry instrumentation,
say) as tasks are submitted, refused, run and finished.

One observer at a time, process-wide, so pools made later are watched too. With none
set, which is the default, each event costs the engine one attribute read. What an
observer raises never reaches a task: it is logged once and ignored.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ._context import Captured, each
from ._report import log_fields

logger = logging.getLogger("background")


class Observer(Protocol):
    """Told of each task's life. Called in whichever thread the event happens in, so it
    must be thread-safe and quick; it is never given the task's arguments. What it
    raises is logged (once per process) and ignored: it never reaches the task."""

    def submitted(self, pool: str, name: str) -> None:
        """A task named `name` was accepted by `pool`."""

    def rejected(self, pool: str, name: str) -> None:
        """A submission was refused (`Stats.rejected` counts it): full queue, closed
        pool, broken pool, a capturer that raised, an executor that refused it."""

    def attempt(
        self, pool: str, name: str, task_id: int, attempt: int, waited: float
    ) -> AbstractContextManager[object] | None:
        """An attempt starts after `waited` seconds in the queue: return a context
        manager to enter around it (in the task's context and thread, outside the
        captured managers), or None. Its ``__exit__`` sees what the attempt raised, and
        must not raise. Not called for tasks sent to another executor (they run
        elsewhere)."""

    def finished(self, pool: str, name: str, task_id: int, error: BaseException | None) -> None:
        """A task ended for good (`Stats.succeeded` or `Stats.failed` counts it):
        `error` is what its future carries, None if it succeeded. A sync task that
        timed out ends at its deadline, while its attempt may still run."""


class Observing:
    """Holds the observer; read as ``observing.observer`` on the hot paths."""

    __slots__ = ("observer",)

    def __init__(self) -> None:
        self.observer: Observer | None = None


observing = Observing()
_complained = False


def set_observer(observer: Observer | None) -> Observer | None:
    """Make `observer` the one the engine tells of every pool's tasks (None: nobody);
    return the one it replaces. Takes effect for the next event."""
    previous, observing.observer = observing.observer, observer
    return previous


def submitted(pool: str, name: str) -> None:
    """Tell the observer, if any, that `pool` accepted a task named `name`."""
    observer = observing.observer
    if observer is not None:
        try:
            observer.submitted(pool, name)
        except Exception:
            _complain(pool, "submitted")


def rejected(pool: str, name: str) -> None:
    """Tell the observer, if any, that `pool` refused a task named `name`."""
    observer = observing.observer
    if observer is not None:
        try:
            observer.rejected(pool, name)
        except Exception:
            _complain(pool, "rejected")


def finished(pool: str, future: Any, error: BaseException | None) -> None:
    """Tell the observer, if any, that the task of `future` ended for good."""
    observer = observing.observer
    if observer is not None:
        try:
            observer.finished(pool, future.task_name, future.task_id, error)
        except Exception:
            _complain(pool, "finished")


def watched(pool: str, future: Any, managers: Captured) -> Captured:
    """`managers` for an attempt of `future` (a started `TaskFuture`), with the
    observer's outermost if it gives one."""
    observer = observing.observer
    if observer is None:
        return managers
    # Queued since its submission, or since its time came (a delay, a retry's backoff).
    queued = max(future.submitted, getattr(future, "queued_since", 0.0))
    try:
        manager = observer.attempt(
            pool,
            future.task_name,
            future.task_id,
            getattr(future, "attempt", 1),
            max(0.0, future.started - queued),
        )
    except Exception:
        _complain(pool, "attempt")
        return managers
    if manager is None:
        return managers
    return manager if managers is None else (manager, *each(managers))


def _complain(pool: str, event: str) -> None:
    """Log what an observer raised, the first time only: it may raise for every task."""
    global _complained
    if not _complained:
        _complained = True
        logger.exception(
            "the observer of tasks raised on %r in pool %r; the task goes on, and the "
            "observer's further errors are not logged",
            event,
            pool,
            extra=log_fields(pool),
        )
