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
from ._report import TaskInfo

OnFull = Literal["block", "raise", "caller_runs"]
"""What a submission does when ``max_queue`` tasks already wait."""

ErrorHook = Callable[[BaseException, TaskInfo], None]
"""``on_error``: called with a failed task's exception and what is known of the task."""

FutureCallback = Callable[["Future[Any]"], object]
"""A pool callback: called with each finished task's future, in the thread that ran it."""

ON_FULL: tuple[OnFull, ...] = ("block", "raise", "caller_runs")


class PoolOptions(TypedDict, total=False):
    """`Background`'s keyword options, for adapters that pass them through."""

    workers: int | None
    name: str
    max_queue: int | None
    on_full: OnFull
    drain_timeout: float
    executor: Executor | None
    own_executor: bool
    eager: bool
    on_error: ErrorHook | None
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    capturer: Capturer | None
    exclude_contextvars: Collection[ContextVar[Any]]


def usable_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_workers(workers: object, what: str = "workers") -> int:
    """Return `workers` if it is a positive int; raise TypeError or ValueError otherwise."""
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"{what} must be a positive int, got {type(workers).__name__}")
    if workers < 1:
        raise ValueError(f"{what} must be at least 1, got {workers}")
    return workers


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


def _check_name(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {type(value).__name__}")


def _check_count(value: object, what: str) -> None:
    if value is not None:
        check_workers(value, what)


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
    "workers": _check_count,
    "max_queue": _check_count,
    "on_full": _check_on_full,
    "drain_timeout": check_seconds,
    "eager": _check_flag,
    "own_executor": _check_flag,
    "executor": _check_executor,
    "on_error": _check_callable,
    "initializer": _check_callable,
    "initargs": _check_initargs,
    "capturer": _check_callable,
    "exclude_contextvars": _check_excluded,
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
