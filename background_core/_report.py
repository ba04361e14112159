"""Snapshots of a pool: counters (`Stats`), one task (`TaskInfo`) and a drain's outcome."""

from __future__ import annotations

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
