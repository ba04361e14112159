"""A pool's options: their types, and the one set of checks that pools and adapters share.

Adapters check their configuration with `check_option` / `check_options` when they read it
(an app factory, a lifespan), so a bad value fails at startup with the adapter's own key
in the message, and nothing has to be built to find out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from typing import Any, Literal, TypedDict

from ._context import Capturer
from ._errors import QueueFull
from ._report import TaskInfo

OnFull = Literal["block", "raise", "caller_runs"]
"""What a submission does when ``max_queue`` tasks already wait."""

ErrorHook = Callable[[BaseException, TaskInfo], None]
"""``on_error``: called with a failed task's exception and what is known of the task."""

FutureCallback = Callable[["Future[Any]"], object]
"""A pool callback: called with each finished task's future, in the thread that ran it."""

ON_FULL: tuple[OnFull, ...] = ("block", "raise", "caller_runs")

MAX_WORKERS = 1024
"""The most worker threads a pool may have: each is a thread of this process."""

BLOCK_TIMEOUT = 5.0
"""Seconds a submission waits for room with ``on_full="block"`` by default: well under
gunicorn's 30 s worker timeout, after which it would kill the worker that waits."""


class PoolOptions(TypedDict, total=False):
    """`Background`'s options, as adapters pass them through (``lifespan(**options)``).

    Attributes:
        workers: Worker threads; None means the CPUs this process may use.
        name: Names the pool in threads, logs, reports and errors.
        max_queue: Most tasks waiting to start; None means no bound.
        on_full: With `max_queue` reached: "block" waits, "raise" raises `QueueFull`,
            "caller_runs" runs the task in the submitting thread.
        drain_timeout: Seconds `shutdown()`, exit and SIGTERM wait for tasks in flight.
        block_timeout: Seconds a submission waits for room with ``on_full="block"``
            before `QueueFull`.
        executor: Send tasks to this executor (a process pool, say) instead of the
            pool's threads; the pool still tracks and drains them.
        own_executor: Shut `executor` down (without waiting) once the pool has shut down,
            for an executor made for this pool; by default it is left to its owner.
        eager: Run each task inline at submission (for tests).
        on_error: Called with a failed task's exception and `TaskInfo`; the default logs
            it at ERROR on logger "background".
        initializer: Called with `initargs` once in each worker thread (and in the event
            loop's thread) before it runs a task; if it raises, the pool is broken
            (`BrokenPool`), as the stdlib's is.
        initargs: The arguments of `initializer`.
        capturer: Like `add_context_capturer`, for this pool's submissions only; called
            after the global capturers (an adapter supplies its app's context with it).
        exclude_contextvars: Context variables that do not travel with this pool's tasks
            (an adapter keeps its framework's per-request state out of them).
        queue_full_error: Makes the error a refusal raises from its message: a
            `QueueFull`, by default; an adapter's is also its framework's HTTP 503.
    """

    workers: int | None
    name: str
    max_queue: int | None
    on_full: OnFull
    drain_timeout: float
    block_timeout: float
    executor: Executor | None
    own_executor: bool
    eager: bool
    on_error: ErrorHook | None
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    capturer: Capturer | None
    exclude_contextvars: Collection[ContextVar[Any]]
    queue_full_error: Callable[[str], QueueFull]


def usable_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_workers(workers: object, what: str = "workers") -> int:
    """Return `workers` if it is an int from 1 to `MAX_WORKERS`; raise TypeError or
    ValueError otherwise."""
    check_count(workers, what)
    assert isinstance(workers, int)
    if workers > MAX_WORKERS:
        raise ValueError(
            f"{what} must be at most {MAX_WORKERS}, got {workers}: each worker is a thread "
            "of this process. Beyond that, split the work across pools, or use executor=."
        )
    return workers


def check_count(value: object, what: str) -> None:
    """Raise TypeError or ValueError unless `value` is a positive int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")


def check_seconds(value: object, what: str) -> float:
    """Return `value` as float seconds if it is a number >= 0 (`math.inf` allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be a number of seconds (math.inf for no limit), "
            f"got {type(value).__name__}"
        )
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be >= 0 seconds (math.inf for no limit), got {value!r}")
    return float(value)


def _check_flag(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {type(value).__name__}")


def _check_callable(value: object, what: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{what} must be callable or None, got {type(value).__name__}")


def _check_factory(value: object, what: str) -> None:
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__}")


def _check_name(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {type(value).__name__}")


def _check_workers(value: object, what: str) -> None:
    if value is not None:
        check_workers(value, what)


def _check_max_queue(value: object, what: str) -> None:
    if value is not None:
        check_count(value, what)


def _check_on_full(value: object, what: str) -> None:
    if value not in ON_FULL:
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"{what} must be one of {', '.join(map(repr, ON_FULL))}; got {shown}")


def _check_executor(value: object, what: str) -> None:
    if value is not None and not isinstance(value, Executor):
        raise TypeError(f"{what} must be a concurrent.futures.Executor, got {type(value).__name__}")


def _check_initargs(value: object, what: str) -> None:
    if not isinstance(value, tuple):
        raise TypeError(f"{what} must be a tuple, got {type(value).__name__}")


def _check_excluded(value: object, what: str) -> None:
    if not isinstance(value, Collection) or isinstance(value, str):
        raise TypeError(
            f"{what} must be a collection (list, tuple, set) of contextvars.ContextVar, "
            f"got {type(value).__name__}"
        )
    for var in value:
        if not isinstance(var, ContextVar):
            raise TypeError(
                f"{what} takes contextvars.ContextVar objects, got {type(var).__name__}"
            )


_CHECKS: dict[str, Callable[[object, str], object]] = {
    "name": _check_name,
    "workers": _check_workers,
    "max_queue": _check_max_queue,
    "on_full": _check_on_full,
    "drain_timeout": check_seconds,
    "block_timeout": check_seconds,
    "eager": _check_flag,
    "own_executor": _check_flag,
    "executor": _check_executor,
    "on_error": _check_callable,
    "initializer": _check_callable,
    "initargs": _check_initargs,
    "capturer": _check_callable,
    "exclude_contextvars": _check_excluded,
    "queue_full_error": _check_factory,
}


def check_option(option: str, value: object, label: str | None = None) -> None:
    """Raise TypeError or ValueError unless `value` suits `Background`'s option `option`.

    `label` names the value in the message (an adapter's config key, say); by default,
    the option. Messages name the type of a wrong value, never the value itself, except
    for numbers and choices.
    """
    check = _CHECKS.get(option)
    if check is None:
        raise TypeError(
            f"Background has no option {option!r}; the options are {', '.join(sorted(_CHECKS))}"
        )
    check(value, label or option)


def check_options(options: Mapping[str, object]) -> None:
    """Check every option of `options` (a `PoolOptions`), and the ones that go together.

    Raises:
        TypeError: An unknown option, a value of the wrong type, or options that
            contradict each other (an initializer for tasks sent to another executor).
        ValueError: A value out of range.
    """
    for option, value in options.items():
        check_option(option, value)
    if options.get("executor") is not None and options.get("initializer") is not None:
        raise TypeError(
            "initializer= runs in the pool's own threads, but executor= sends tasks to "
            "another executor: give the initializer to that executor instead."
        )


def check_shutdown(wait: object, cancel_futures: object, timeout: object) -> float | None:
    """Check `Background.shutdown`'s arguments; return `timeout` as seconds or None.

    Raises:
        TypeError: `wait` or `cancel_futures` is not a bool (``shutdown(5)`` meant the
            deadline, which is ``shutdown(timeout=5)``), or `timeout` is not seconds.
        ValueError: ``wait=False`` with a `timeout`, or a negative `timeout`.
    """
    if not isinstance(wait, bool):
        raise TypeError(
            "shutdown()'s first argument is wait=True or False, as in concurrent.futures; "
            f"got {type(wait).__name__}. Give a deadline as shutdown(timeout=seconds)."
        )
    _check_flag(cancel_futures, "cancel_futures")
    if timeout is None:
        return None
    if not wait:
        raise ValueError(
            "shutdown(wait=False) returns at once, so it takes no timeout: "
            "drop timeout=, or use wait=True to wait for at most that long."
        )
    return check_seconds(timeout, "timeout")
