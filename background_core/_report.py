"""What a pool reports: counters (`Stats`), one task (`TaskInfo`), a drain's outcome
(`DrainReport`), the log lines for failures and for tasks a shutdown left behind, and the
structured fields every log record of the library carries (`log_fields`).

Reports and logs name tasks and give their ids; they never hold or print arguments.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

TaskState = Literal["queued", "scheduled", "running"]


@dataclass(frozen=True)
class TaskInfo:
    """An unfinished task, as a report shows it. Never holds the task's arguments.

    Attributes:
        name: The task's name (its function's qualified name unless one was given).
        id: A number unique within the pool, in submission order, starting at 1.
        state: ``"queued"`` (waiting for a worker), ``"scheduled"`` (waiting for its
            time: a delay, or a retry's backoff; on no thread) or ``"running"``.
        age: Seconds since the task was submitted, when the snapshot was taken.
        started_at: Wall-clock time (``time.time()``) it started, or None while queued.
        attempt: Which attempt this is (1 unless the task was retried).
        due_at: Wall-clock time a scheduled task waits for, else None.
    """

    name: str
    id: int
    state: TaskState
    age: float
    started_at: float | None
    attempt: int = 1
    due_at: float | None = None

    def __str__(self) -> str:
        return f"{self.name!r} (id {self.id}, {self.state}, {self.age:.1f}s old)"


@dataclass(frozen=True)
class Stats:
    """Counters of a pool at one moment.

    ``submitted == queued + scheduled + running + succeeded + failed + cancelled``
    always holds. ``rejected`` counts submissions that were refused (queue full, or pool
    closed).

    Attributes:
        name: The pool's name.
        workers: The pool's worker threads.
        queued: Tasks accepted that have not started.
        scheduled: Tasks waiting for their time (a delay, a retry's backoff).
        running: Tasks running now (on another executor: those it says have started).
        submitted: Tasks accepted (in a forked child: since the fork).
        succeeded: Tasks that returned.
        failed: Tasks that raised.
        cancelled: Tasks cancelled before they finished.
        retried: Attempts that failed and were tried again (a task may count several).
        rejected: Submissions refused: a full queue, a closed pool, a capturer that raised.
    """

    name: str
    workers: int
    queued: int
    scheduled: int
    running: int
    submitted: int
    succeeded: int
    failed: int
    cancelled: int
    retried: int
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

    def summary(self, named: int = 5) -> str:
        """The unfinished tasks in one line: how many, and the first `named` by name."""
        tasks = self.unfinished
        running = sum(task.state == "running" for task in tasks)
        scheduled = sum(task.state == "scheduled" for task in tasks)
        waiting = f", {scheduled} scheduled for later" if scheduled else ""
        shown = ", ".join(str(task) for task in tasks[:named])
        more = f", and {len(tasks) - named} more" if len(tasks) > named else ""
        return (
            f"{len(tasks)} task{'' if len(tasks) == 1 else 's'} unfinished ({running} running, "
            f"{len(tasks) - running - scheduled} not started{waiting}): {shown}{more}"
        )


logger = logging.getLogger("background")


LOGGED_TASKS = 100
"""The most tasks one log record lists in its ``unfinished`` field."""


def log_fields(
    pool: str | None,
    task_name: str | None = None,
    task_id: int | None = None,
    attempt: int | None = None,
    *,
    unfinished: Iterable[TaskInfo] | None = None,
    **more: object,
) -> dict[str, object]:
    """The structured fields of a record on logger ``"background"``: its ``extra=``.

    Every record the library writes carries the same four keys, so a JSON formatter
    (python-json-logger, structlog's stdlib bridge) indexes them without parsing the
    message: ``pool``, ``task_name``, ``task_id`` and ``attempt``. The last three are None
    when the record is not about one task. Values are names and numbers, never a task's
    arguments.

    Args:
        pool: The pool's name, or None when no pool is known.
        task_name: The task's name, for a record about one task.
        task_id: The task's id within its pool.
        attempt: Which attempt of the task (1 for a task that was not retried).
        unfinished: Tasks a drain left unfinished: added as ``unfinished``, a list of
            ``{"task_name", "task_id", "attempt", "state"}`` dicts for the oldest 100
            (the `DrainReport` has them all), and ``unfinished_count``.
        **more: Further fields (``refused=3``). Their names must not be attributes of
            `logging.LogRecord` (``name``, ``message``, ``taskName``...): logging refuses
            those.

    Returns:
        A new dict to pass as ``logger.warning(..., extra=log_fields(...))``.
    """
    fields: dict[str, object] = {
        "pool": pool,
        "task_name": task_name,
        "task_id": task_id,
        "attempt": attempt,
    }
    if unfinished is not None:
        tasks = list(unfinished)
        fields["unfinished_count"] = len(tasks)
        fields["unfinished"] = [  # the oldest: one record must not grow with the backlog
            {"task_name": t.name, "task_id": t.id, "attempt": t.attempt, "state": t.state}
            for t in tasks[:LOGGED_TASKS]
        ]
    fields.update(more)
    return fields


def task_info(future: Any, now: float) -> TaskInfo:
    """What a report says of a task's future (a `TaskFuture`) at monotonic time `now`."""
    started = future.started
    sent = future.sent_to
    running = bool(started) or (sent is not None and sent.running())
    due: float = getattr(future, "due", 0.0)  # a PlannedFuture's, while it waits
    state: TaskState = "running" if running else "scheduled" if due else "queued"
    return TaskInfo(
        name=future.task_name,
        id=future.task_id,
        state=state,
        age=now - future.submitted,
        started_at=time.time() - (now - started) if started else None,
        attempt=getattr(future, "attempt", 1),
        due_at=time.time() + (due - now) if due else None,
    )


def describe(future: Any, pool: str) -> str:
    """How a message names a task (a `TaskFuture`): by name, id and pool."""
    return f"{future.task_name!r} (id {future.task_id}) in pool {pool!r}"


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
        extra=log_fields(pool, task.name, task.id, task.attempt),
    )


def log_raised(what: str, future: Any, pool: str) -> None:
    """One ERROR with the exception being handled: `what` (a hook, a callback) raised for
    the task of `future` (a `TaskFuture`)."""
    logger.exception(
        "%s raised for task %s",
        what,
        describe(future, pool),
        extra=log_fields(pool, future.task_name, future.task_id, getattr(future, "attempt", 1)),
    )


class UnretrievedFailure:
    """A failed task's log line, written only if nobody retrieves the failure.

    Held by the future (as asyncio's futures hold their "exception was never retrieved"):
    ``result()`` or ``exception()`` marks it retrieved, and the caller handles the error;
    otherwise it is logged once, when the future is freed (for a task fired and forgotten,
    as soon as it failed).
    """

    __slots__ = ("error", "pool", "retrieved", "task")

    def __init__(self, error: BaseException, task: TaskInfo, pool: str) -> None:
        self.error = error
        self.task = task
        self.pool = pool
        self.retrieved = False

    def __del__(self) -> None:
        if not self.retrieved:
            with contextlib.suppress(Exception):  # at interpreter exit logging may be gone
                log_failure(self.error, self.task, self.pool)


def log_unfinished(report: DrainReport) -> None:
    """One WARNING for the tasks a shutdown left behind (the report lists them all)."""
    if report.unfinished:
        logger.warning(
            "pool %r shut down with %s; those not started were cancelled",
            report.pool,
            report.summary(),
            extra=log_fields(report.pool, unfinished=report.unfinished),
        )


class UntilConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """Shows the library's records on stderr, with time, level and logger name, while
    nothing else would: no handler on the root logger nor on ours.

    Servers (gunicorn, uvicorn) configure loggers of their own, not the root one, so
    Python's last-resort handler would print our warnings bare. Once the app configures
    logging, this handler stays silent and the records go where the app sends them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(
            logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
        )

    def handle(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().handlers or any(h is not self for h in logger.handlers):
            return False
        self.stream = sys.stderr  # as the last-resort handler: whatever stderr is now
        return super().handle(record)


logger.addHandler(UntilConfigured())
