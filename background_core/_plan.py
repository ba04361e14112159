"""`TaskOptions`: a task's opt-in plan: run later, retry with backoff, time out.

Off by default: a task without options takes the plain path, unchanged. With options, the
pool keeps the task's work between attempts and hands it to its `Timer` whenever it has
to wait (a delay, a backoff), so no worker thread waits with it.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import random
from dataclasses import dataclass
from typing import Any, TypedDict

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


class OptionChanges(TypedDict, total=False):
    """The options ``task.using(...)`` and ``pool.using(...)`` take (see `TaskOptions`)."""

    delay: float | None
    run_at: datetime.datetime | None
    retries: int
    retry_on: ExceptionTypes
    backoff: float
    backoff_max: float
    jitter: bool
    timeout: float | None


@dataclass(frozen=True)
class TaskOptions:
    """How a task runs: made by ``@bg.task(retries=..., timeout=...)`` and ``task.using(...)``.

    Attributes:
        retries: Attempts after the first, if an attempt raises one of `retry_on`.
        retry_on: The exception types worth another attempt; anything else fails at once.
        backoff: Seconds before the first retry; each next one waits twice as long.
        backoff_max: The longest wait between attempts.
        jitter: Wait a random 50-100 % of each backoff, so that tasks failing together
            do not retry together.
        timeout: Seconds an attempt may take: an ``async def`` task is cancelled then (and
            may be retried); a sync one cannot be stopped, so its future fails with
            `TimeoutError`, what its thread returns later is dropped (the thread stays busy
            until then), and it is not retried, since that attempt may still be running.
            Not for sync tasks of a pool with ``executor=``.
        delay: Seconds from submission before the first attempt may start.
        run_at: An aware `datetime.datetime` before which the first attempt does not start.
    """

    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True
    timeout: float | None = None
    delay: float | None = None
    run_at: datetime.datetime | None = None

    def replace(self, **changes: Any) -> TaskOptions:
        """These options with `changes` (checked: TypeError or ValueError names the option)."""
        merged = {field.name: getattr(self, field.name) for field in _FIELDS}
        merged.update(changes)
        delay, run_at = changes.get("delay"), changes.get("run_at")
        if delay is not None and run_at is None:
            merged["run_at"] = None  # the call's own time wins over the task's
        elif run_at is not None and delay is None:
            merged["delay"] = None  # (both given: task_options refuses them)
        return task_options(**merged)

    def due(self, now: float) -> float:
        """The monotonic time of the first attempt, given monotonic `now`; 0.0 for at once."""
        if self.delay:
            return now + self.delay
        if self.run_at is not None:
            wait = (self.run_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            return now + wait if wait > 0 else 0.0
        return 0.0

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        wait = min(self.backoff_max, self.backoff * 2.0 ** min(retry - 1, 64))
        return random.uniform(wait / 2, wait) if self.jitter else wait


_FIELDS = dataclasses.fields(TaskOptions)


def task_options(
    *,
    retries: int = 0,
    retry_on: ExceptionTypes = Exception,
    backoff: float = 1.0,
    backoff_max: float = 60.0,
    jitter: bool = True,
    timeout: float | None = None,
    delay: float | None = None,
    run_at: datetime.datetime | None = None,
) -> TaskOptions:
    """Check each option and make `TaskOptions`.

    Raises:
        TypeError: An option has the wrong type (the message names it).
        ValueError: An option is out of range, or both `delay` and `run_at` are given.
    """
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(f"retries must be an int >= 0, got {type(retries).__name__}")
    if retries < 0:
        raise ValueError("retries must be >= 0: the attempts after the first one")
    kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not kinds or not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
        raise TypeError(
            "retry_on must be an exception class or a tuple of them, such as "
            "(ConnectionError, TimeoutError)"
        )
    _finite(backoff, "backoff")
    _finite(backoff_max, "backoff_max")
    if backoff_max < backoff:
        raise ValueError("backoff_max must be >= backoff: it caps the waits that grow from it")
    if not isinstance(jitter, bool):
        raise TypeError(f"jitter must be True or False, got {type(jitter).__name__}")
    if timeout is not None:
        _finite(timeout, "timeout")
        if timeout == 0:
            raise ValueError("timeout must be > 0 seconds, or None for no limit")
    if delay is not None:
        _finite(delay, "delay")
    if run_at is not None:
        if delay is not None:
            raise ValueError("give delay= or run_at=, not both")
        if not isinstance(run_at, datetime.datetime):
            raise TypeError(f"run_at must be a datetime.datetime, got {type(run_at).__name__}")
        if run_at.utcoffset() is None:
            raise ValueError(
                "run_at must be an aware datetime (with tzinfo), such as "
                "datetime.now(timezone.utc) + timedelta(minutes=10)"
            )
    return TaskOptions(
        retries=retries,
        retry_on=kinds,
        backoff=float(backoff),
        backoff_max=float(backoff_max),
        jitter=jitter,
        timeout=None if timeout is None else float(timeout),
        delay=None if delay is None else float(delay),
        run_at=run_at,
    )


def _finite(value: object, what: str) -> None:
    """Raise TypeError or ValueError (naming `what`, not the value) unless finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number of seconds, >= 0")
