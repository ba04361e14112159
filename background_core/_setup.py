"""A pool's ``initializer``: run once in each thread that runs its tasks, before the first.

If it raises, the pool is broken, as the stdlib's thread pool is: the tasks that had not
started fail with `BrokenPool`, and so do later submissions. One CRITICAL log line says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ._errors import BrokenPool
from ._report import log_fields

logger = logging.getLogger("background")


class WorkerSetup:
    """The initializer of one pool, and whether it broke the pool. Thread-safe."""

    def __init__(
        self,
        pool_name: str,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
    ) -> None:
        self._pool_name = pool_name
        self._initializer = initializer
        self._initargs = initargs
        self._lock = threading.Lock()
        self._inline = threading.RLock()
        self._ran_inline = initializer is None  # see initialize_once()
        self._running_inline = False
        self.broken_by: BaseException | None = None
        """What the initializer raised, once the pool is broken (read at each submission)."""

    def initialize(self) -> bool:
        """Run the initializer in this thread; False if it raised (the pool broke)."""
        if self._initializer is None:
            return True
        try:
            self._initializer(*self._initargs)
        except BaseException as error:
            with self._lock:  # logged before any task can fail for it
                if self.broken_by is None:
                    self._log_broken(error)
                    # Logged with its traceback; kept without, which would keep the frames
                    # of whoever ran it (an eager pool's first submitter, its arguments).
                    self.broken_by = error.with_traceback(None)
            return False
        return True

    def _log_broken(self, error: BaseException) -> None:
        logger.critical(
            "the initializer of pool %r raised in thread %r: the pool is broken; "
            "tasks that had not started fail with BrokenPool, and so do new submissions",
            self._pool_name,
            threading.current_thread().name,
            exc_info=(type(error), error, error.__traceback__),
            extra=log_fields(self._pool_name),
        )

    def initialize_once(self) -> None:
        """For an eager pool, whose only thread is the submitter's: the first one runs it,
        and the others wait until it has. Its own submissions (same thread) go on."""
        if not self._ran_inline:
            with self._inline:  # reentrant: the initializer may submit to its own pool
                if not self._ran_inline and not self._running_inline:
                    self._running_inline = True
                    try:
                        self.initialize()
                    finally:
                        self._running_inline = False
                        self._ran_inline = True

    def broken_error(self) -> BrokenPool | None:
        """A fresh `BrokenPool` to fail a task with, or None while the pool is healthy."""
        cause = self.broken_by
        if cause is None:
            return None
        error = BrokenPool(
            f"pool {self._pool_name!r} is broken: a worker's initializer raised "
            f"{type(cause).__name__}. Fix the initializer and create a new pool."
        )
        error.__cause__ = cause
        return error
