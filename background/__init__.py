"""Run functions in background threads with one decorator.

    import background

    @background.task
    def send_email(to, subject, body): ...

    send_email("alice@example.com", "Hello", "How are you?")  # returns a Future at once

Tasks run on a default pool, made on first use, with `background.n` worker threads (the
CPUs this process may use, unless set). `background_core.Background` makes pools of
your own.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar, overload

from background_core import Background, FutureCallback, TaskMaker, check_workers, usable_cpus
from background_core import __version__ as __version__

__all__ = ("callback", "default_pool", "n", "run", "task")

P = ParamSpec("P")
R = TypeVar("R")

n: int
"""Worker threads of the default pool. Read or set at any time; the default is the CPUs
this process may use. Setting it resizes a running pool without losing queued tasks."""

_lock = threading.Lock()
_pool: Background | None = None
_workers: int = usable_cpus()


def default_pool() -> Background:
    """The pool that `task`, `run` and `callback` use, made on first use. Thread-safe."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = Background(_workers, name="default")
            pool = _pool
    return pool


task = TaskMaker(default_pool)
"""Decorate a function so each call runs it on the default pool and returns a Future.

Use as ``@background.task`` or ``@background.task(name="send-email")``.
Raises TypeError for a non-callable.
"""


@overload
def run(
    fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
) -> Future[R]: ...
@overload
def run(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]: ...
def run(fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Future[Any]:
    """Run ``fn(*args, **kwargs)`` on the default pool; return its Future at once."""
    return default_pool().submit(fn, *args, **kwargs)


def callback(fn: FutureCallback) -> FutureCallback:
    """Register `fn`, called with the future of each task of the default pool as it finishes.

    Usable as a decorator; returns `fn`. A callback that raises is logged.
    """
    return default_pool().callback(fn)


class _Module(types.ModuleType):
    """Makes `background.n` a property: reading and setting it reach the default pool."""

    @property
    def n(self) -> int:
        return _workers if _pool is None else _pool.workers

    @n.setter
    def n(self, workers: int) -> None:
        global _workers
        check_workers(workers, "background.n")
        with _lock:
            _workers = workers
            if _pool is not None:
                _pool.workers = workers


sys.modules[__name__].__class__ = _Module
