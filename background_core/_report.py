"""What a pool reports: counters (`Stats`), one task (`TaskInfo`), a drain's outcome
(`DrainReport`), and the log lines for failures and for tasks a shutdown left behind.

Reports and logs name tasks and give their ids; they never hold or print arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

TaskState = Literal["queued", "running"]


@dataclass(frozen=True)
class TaskInfo:
    """An unfinished task, as a report shows it. Never holds the task's arguments.

    Attributes:
        name: The task's name (its function's qualified name unless one was given).
        id: A number unique within the pool, in submission order, starting at 1.
        state: ``"queued"`` (waiting for a worker) or ``"running"``.
        age: Seconds since the task was submitted, when the snapshot was taken.
        started_at: Wall-clock time (``time.time()``) it started, or None while queued.
    """

    name: str
    id: int
    state: TaskState
    age: float
    started_at: float | None

    def __str__(self) -> str:
        return f"{self.name!r} (id {self.id}, {self.state}, {self.age:.1f}s old)"


@dataclass(frozen=True)
class Stats:
    """Counters of a pool at one moment.

    ``submitted == queued + running + succeeded + failed + cancelled`` always holds.
    ``rejected`` counts submissions that were refused (queue full, or pool closed).
    """

    name: str
    workers: int
    queued: int
    running: int
    submitted: int
    succeeded: int
    failed: int
    cancelled: int
    rejected: int


@dataclass(frozen=True)
class DrainReport:
    """What a drain saw: the tasks that finished while it waited, and those that did not.

    Attributes:
        pool: The pool's name.
        completed: Tasks that succeeded while the drain waited.
        failed: Tasks that raised while the drain waited.
        cancelled: Tasks cancelled while the drain waited.
        unfinished: Each task still queued or running at the deadline, oldest first.
        elapsed: Seconds the drain waited.
    """

    pool: str
    completed: int
    failed: int
    cancelled: int
    unfinished: tuple[TaskInfo, ...]
    elapsed: float

    @property
    def finished(self) -> bool:
        """True when no task was left unfinished."""
        return not self.unfinished


logger = logging.getLogger("background")


def task_name(fn: Callable[..., object]) -> str:
    """The name reports give a callable: its qualified name, else its type's name."""
    inner = getattr(fn, "func", fn)  # functools.partial
    return getattr(inner, "__qualname__", None) or type(inner).__name__


def log_failure(error: BaseException, task: TaskInfo, pool: str) -> None:
    """The default `on_error`: one ERROR with the traceback, the task's name and id."""
    logger.error(
        "task %r (id %d) in pool %r failed",
        task.name,
        task.id,
        pool,
        exc_info=(type(error), error, error.__traceback__),
    )


def log_unfinished(report: DrainReport) -> None:
    """One WARNING for each task a shutdown left behind, by name and id."""
    for task in report.unfinished:
        if task.state == "queued":
            logger.warning(
                "pool %r shut down before task %r (id %d) started; it was cancelled",
                report.pool,
                task.name,
                task.id,
            )
        else:
            logger.warning(
                "pool %r shut down with task %r (id %d) unfinished: running, submitted %.1fs ago",
                report.pool,
                task.name,
                task.id,
                task.age,
            )
