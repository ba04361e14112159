"""`Results`: the `TaskResult` objects one backend holds in this process, bounded.

At most `keep` of them: beyond that, the oldest finished ones are forgotten; unfinished
ones never are (the pool's queue bounds them). Results live in the process that ran their
tasks: another process (another gunicorn worker) has results of its own.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from concurrent.futures import CancelledError, Future
from traceback import format_exception
from typing import Any

from django.utils import timezone

from ._compat import TaskError, TaskResult, TaskResultDoesNotExist, TaskResultStatus

_NEVER_STARTED = "the task never started: its pool was shut down first"


class Results:
    """One backend configuration's results. Thread-safe: every change of a held result is
    made under `lock`, so a copy handed out is one consistent moment of it."""

    def __init__(self, keep: int) -> None:
        self.lock = threading.Lock()
        self._keep = keep
        self._unfinished: dict[str, TaskResult] = {}
        self._futures: dict[str, Future[Any]] = {}  # of unfinished results the pool took
        self._finished: OrderedDict[str, TaskResult] = OrderedDict()  # oldest first
        self._recorded: dict[int, BaseException] = {}  # by id, held so that no id is reused

    def add(self, result: TaskResult) -> None:
        """Hold a new, unfinished result, before its task is submitted."""
        with self.lock:
            self._unfinished[result.id] = result
            self._evict()

    def submitted(self, result: TaskResult, future: Future[Any]) -> None:
        """The pool took the task of `result`: its `future` tells if it is cancelled."""
        with self.lock:
            if result.id in self._unfinished:
                self._futures[result.id] = future

    def discard(self, result: TaskResult) -> None:
        """Forget a result whose task the pool refused."""
        with self.lock:
            self._unfinished.pop(result.id, None)

    def change(
        self,
        result: TaskResult,
        *,
        finished: bool = False,
        worker_id: str | None = None,
        error: BaseException | None = None,
        **changes: Any,
    ) -> None:
        """Change a held result, in one step: set `changes` (its fields are frozen for
        everyone else), add a `worker_id` or the record of an `error` (which `recorded`
        then knows), and with `finished`, count it among the finished ones."""
        record = None if error is None else task_error(error)
        with self.lock:
            if worker_id is not None:
                result.worker_ids.append(worker_id)
            if error is not None:
                result.errors.append(record)
                self._recorded[id(error)] = error
            for name, value in changes.items():
                object.__setattr__(result, name, value)
            if finished:
                self._finish(result)

    def recorded(self, error: BaseException) -> bool:
        """True, once, if `error` was recorded in a result (see `change`)."""
        with self.lock:
            return self._recorded.pop(id(error), None) is error

    def get(self, result_id: str) -> TaskResult:
        """A copy of the result `result_id`, as it is now.

        Raises:
            TaskResultDoesNotExist: This process holds no such result (never enqueued
                here, or forgotten).
        """
        with self.lock:
            result = self._unfinished.get(result_id)
            if result is None:
                result = self._finished.get(result_id)
                if result is None:
                    raise TaskResultDoesNotExist(result_id)
            else:
                future = self._futures.get(result_id)
                if future is not None and future.cancelled():
                    self._never_started(result)
            return snapshot(result)

    def snapshot(self, result: TaskResult) -> TaskResult:
        """A copy of `result` (held or not), as it is now."""
        with self.lock:
            return snapshot(result)

    def _never_started(self, result: TaskResult) -> None:
        """Its task was cancelled before it started (at shutdown). Django's FAILED means
        "raised, or was unable to start"; no signal is sent: the shutdown logs it."""
        result.errors.append(task_error(CancelledError(_NEVER_STARTED)))
        object.__setattr__(result, "finished_at", timezone.now())
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        self._finish(result)

    def _finish(self, result: TaskResult) -> None:
        self._futures.pop(result.id, None)
        if self._unfinished.pop(result.id, None) is not None:
            self._finished[result.id] = result
            self._evict()

    def _evict(self) -> None:
        while self._finished and len(self._unfinished) + len(self._finished) > self._keep:
            self._finished.popitem(last=False)


def task_error(error: BaseException) -> TaskError:
    """`error` as Django records it: its class's import path and its traceback."""
    kind = type(error)
    return TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback="".join(format_exception(error)),
    )


_FIELDS = tuple(field.name for field in dataclasses.fields(TaskResult))  # _return_value too


def snapshot(result: TaskResult) -> TaskResult:
    """A copy that later changes of `result` leave alone (its lists are its own).

    Field by field: `copy.copy` of a slotted dataclass costs several times more.
    """
    copied = object.__new__(type(result))
    for name in _FIELDS:
        object.__setattr__(copied, name, getattr(result, name))
    object.__setattr__(copied, "errors", list(result.errors))
    object.__setattr__(copied, "worker_ids", list(result.worker_ids))
    return copied
