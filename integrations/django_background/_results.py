"""`Results`: the `TaskResult` objects one backend holds in this process, bounded.

Every unfinished result is kept (the pool's queue bounds them), and the last `keep`
finished ones, the oldest finished evicted first. Results live in the process that ran
their tasks: another process (another gunicorn worker) has results of its own.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

from ._compat import TaskResult, TaskResultDoesNotExist


class Results:
    """One backend configuration's results. Thread-safe: every change of a held result is
    made under `lock`, so a copy handed out is one consistent moment of it."""

    def __init__(self, keep: int) -> None:
        self.lock = threading.Lock()
        self._keep = keep
        self._unfinished: dict[str, TaskResult] = {}
        self._finished: OrderedDict[str, TaskResult] = OrderedDict()  # oldest first

    def add(self, result: TaskResult) -> None:
        """Hold a new, unfinished result."""
        with self.lock:
            self._unfinished[result.id] = result
            self._evict()

    def discard(self, result: TaskResult) -> None:
        """Forget a result whose task the pool refused."""
        with self.lock:
            self._unfinished.pop(result.id, None)

    def change(
        self,
        result: TaskResult,
        *,
        finished: bool = False,
        append: tuple[str, object] | None = None,
        **changes: Any,
    ) -> None:
        """Change a held result, as one step: set `changes` (its fields are frozen for
        everyone else), `append` ``(field, item)`` to one of its lists (``errors``,
        ``worker_ids``), and with `finished`, move it among the finished ones, which may
        be evicted."""
        with self.lock:
            if append is not None:
                field, item = append
                getattr(result, field).append(item)
            for name, value in changes.items():
                object.__setattr__(result, name, value)
            if finished and self._unfinished.pop(result.id, None) is not None:
                self._finished[result.id] = result
                self._evict()

    def get(self, result_id: str) -> TaskResult:
        """A copy of the result `result_id`, as it is now.

        Raises:
            TaskResultDoesNotExist: This process holds no such result (never enqueued
                here, or evicted).
        """
        with self.lock:
            result = self._unfinished.get(result_id) or self._finished.get(result_id)
            if result is None:
                raise TaskResultDoesNotExist(result_id)
            return snapshot(result)

    def snapshot(self, result: TaskResult) -> TaskResult:
        """A copy of `result` (held or not), as it is now."""
        with self.lock:
            return snapshot(result)

    def _evict(self) -> None:
        while self._finished and len(self._unfinished) + len(self._finished) > self._keep:
            self._finished.popitem(last=False)


def snapshot(result: TaskResult) -> TaskResult:
    """A copy that later changes of `result` leave alone (its lists are its own)."""
    copied = copy.copy(result)
    object.__setattr__(copied, "errors", list(result.errors))
    object.__setattr__(copied, "worker_ids", list(result.worker_ids))
    return copied
