"""`TaskRun`: one enqueued task, run on the pool the way Django's ImmediateBackend runs it.

Its `TaskResult` goes READY, RUNNING, then SUCCESSFUL or FAILED, with the times, worker
id, return value and errors ImmediateBackend records, and the same signals in the same
order: ``task_enqueued``, ``task_started``, ``task_finished``. Around the task, database
connections are handled as Django's request cycle handles them: `close_old_connections()`
before and after, as the ``request_started`` and ``request_finished`` signals do, so a
worker thread never keeps a connection past its ``CONN_MAX_AGE`` nor reuses a broken one.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from asgiref.local import Local
from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from background_core import ErrorHook, TaskInfo, log_failure

from ._compat import (
    TaskContext,
    TaskResult,
    TaskResultStatus,
    normalize_json,
    task_enqueued,
    task_finished,
    task_started,
)
from ._results import Results

# asgiref's state of the call chain that enqueued (an ASGI request's thread for sync code,
# a sync_to_async call under way) must not reach the task with the other context
# variables: the task's own sync_to_async calls would go to that request's thread, gone
# when the request ends, or refuse to run ("would deadlock").
# The third is the one behind `AsyncToSync.executors`, the sync thread blocked in an
# `async_to_sync` call: a task enqueued there would send its bookkeeping to that thread's
# executor, which quits when the call returns (the result then stays RUNNING), and, run
# inline, waits for itself.


def local_contextvars(local: Local) -> tuple[ContextVar[Any], ...]:
    """The context variable that holds a `Local`'s values, found in asgiref's layout (the
    same from 3.8, the oldest Django 5.2 takes, to 3.13); none if that layout changes,
    which the tests catch. Excluded rather than reset in the task: asgiref before 3.10
    changes its values in place, in the dict the caller's context shares."""
    storage = getattr(local, "__dict__", {}).get("_storage")
    variable = getattr(storage, "__dict__", {}).get("_data")
    return (variable,) if isinstance(variable, ContextVar) else ()


ASGIREF_CONTEXTVARS: tuple[ContextVar[Any], ...] = (
    SyncToAsync.thread_sensitive_context,
    SyncToAsync.deadlock_context,
    *local_contextvars(AsyncToSync.executors),
)


class TaskRun:
    """What the pool runs for one enqueued task, keeping its result in `results` truthful.

    A failure is recorded in the result as Django records it, and Django's own
    ``task_finished`` receivers log it (at ERROR, with its traceback). It is still raised
    to the pool, which counts the task as failed, and whose ``on_error`` (`failure_hook`)
    does not log it again.
    """

    __slots__ = ("announced", "enqueuer", "result", "results", "sender", "sent", "worker_id")

    def __init__(self, result: TaskResult, results: Results, sender: type, worker_id: str) -> None:
        self.result = result
        self.results = results
        self.sender = sender  # the backend's class, as Django's backends send their signals
        self.worker_id = worker_id
        self.announced = False
        self.sent = threading.Event()  # task_enqueued's receivers all returned
        self.enqueuer = threading.get_ident()  # made where the task is enqueued

    def announce(self) -> None:
        """Send ``task_enqueued``, once: from the enqueuing thread after the pool took the
        task, or from the worker if it starts first, so ``task_started`` never precedes it."""
        with self.results.lock:
            first, self.announced = not self.announced, True
        if not first:
            # The other thread sends it: its receivers see the task READY, then it starts.
            self.sent.wait()
            return
        try:
            task_enqueued.send(self.sender, task_result=self.result)
        finally:
            self.sent.set()

    # -- on the pool -------------------------------------------------------------------

    def run(self) -> None:
        """Run a sync task, in a worker thread (inline in the caller's, when eager)."""
        try:
            self.begin()
            value = self.result.task.call(*self.arguments(), **self.result.kwargs)
            value = normalize_json(value)
        except BaseException as error:
            self.failed(error)
            raise
        self.succeeded(value)

    async def arun(self) -> None:
        """Run an ``async def`` task on the pool's event loop.

        The bookkeeping, which sends Django's signals (whose receivers are sync code) and
        closes connections, runs where Django runs sync code for async code: in asgiref's
        thread, where the task's ORM calls (``await Model.objects.aget()``) ran too.
        """
        try:
            await sync_to_async(self.begin)()
            value = await self.result.task.acall(*self.arguments(), **self.result.kwargs)
            value = normalize_json(value)
        except BaseException as error:
            await sync_to_async(self.failed_elsewhere)(error)
            raise
        await sync_to_async(self.succeeded)(value)

    # -- the result's changes, as ImmediateBackend makes them --------------------------

    def arguments(self) -> tuple[Any, ...]:
        if self.result.task.takes_context:
            return (TaskContext(task_result=self.result), *self.result.args)
        return tuple(self.result.args)

    def begin(self) -> None:
        self.announce()
        self.close_old_connections()  # as request_started does
        now = timezone.now()
        self.results.change(
            self.result,
            worker_id=self.worker_id,
            status=TaskResultStatus.RUNNING,
            started_at=now,
            last_attempted_at=now,
        )
        task_started.send(self.sender, task_result=self.result)

    def succeeded(self, value: object) -> None:
        self.results.change(
            self.result,
            finished=True,
            _return_value=value,
            finished_at=timezone.now(),
            status=TaskResultStatus.SUCCESSFUL,
        )
        task_finished.send(self.sender, task_result=self.result)
        self.close_old_connections()  # as request_finished does

    def failed(self, error: BaseException) -> None:
        """Record `error`; called while it is handled, as Django's receivers read it from
        `sys.exc_info()` (Django 6 logs the traceback from there)."""
        self.results.change(
            self.result,
            finished=True,
            error=error,
            finished_at=timezone.now(),
            status=TaskResultStatus.FAILED,
        )
        try:
            task_finished.send(self.sender, task_result=self.result)
            self.close_old_connections()
        except BaseException:
            # What reaches the pool now is this new error: `error` never will, so the
            # record that `failure_hook` would have taken back must not be kept.
            self.results.recorded(error)
            raise

    def close_old_connections(self) -> None:
        """Django's `close_old_connections`, in a thread of the pool only: a task run
        inline (eager, or ``on_full="caller_runs"``) runs in the enqueuing thread, whose
        connections are its request's, maybe inside ``atomic()``: closing one would end
        that transaction, and lose its writes."""
        if threading.get_ident() != self.enqueuer:
            close_old_connections()

    def failed_elsewhere(self, error: BaseException) -> None:
        """`failed`, in another thread than the one that caught `error`: handled again
        here, so that Django's receivers find it in `sys.exc_info()`."""
        try:
            raise error
        except BaseException:
            self.failed(error)


def failure_hook(results: Results, pool: str) -> ErrorHook:
    """The pool's ``on_error``: a failure recorded in a result was logged by Django's
    ``task_finished`` receivers, so it is not logged again; anything else that escaped a
    task (a receiver that raised) is logged as the pool logs failures."""

    def on_error(error: BaseException, task: TaskInfo) -> None:
        if not results.recorded(error):
            log_failure(error, task, pool)

    return on_error
