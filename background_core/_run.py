"""Running one task, wherever it runs: a worker thread, the event loop, the submitting
thread (eager, caller_runs), or another executor whose outcome is relayed back.

Each path is the same three steps: `begin` (claim the future, count it running), the call
inside the task's context and captured managers, and `end` (resolve the future, report a
failure, run the pool's callbacks, count it done). `tally` is the running thread's own
counters, or None for the shared ones, which are written under the ledger's lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from ._context import call_within, each
from ._errors import BrokenPool
from ._future import TaskFuture, Work
from ._ledger import Ledger, Tally, info
from ._options import ErrorHook, FutureCallback
from ._report import log_failure, task_name

logger = logging.getLogger("background")


class Runner:
    """Runs tasks for one pool and keeps its ledger. Thread-safe; holds no pool."""

    def __init__(
        self,
        pool_name: str,
        ledger: Ledger,
        on_error: ErrorHook | None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.pool_name = pool_name
        self.ledger = ledger
        self.on_error = on_error
        self.callbacks: tuple[FutureCallback, ...] = ()  # replaced whole: read without a lock
        self._initializer = initializer
        self._initargs = initargs
        self._eager_ready = initializer is None  # see run_eager()
        self._eager_lock = threading.Lock()
        self.broken_by: BaseException | None = None
        """What the initializer raised, once the pool is broken."""

    # -- the initializer and a broken pool -------------------------------------------

    def initialize(self) -> bool:
        """Run the pool's initializer in this thread; False if it raised (the pool broke)."""
        if self._initializer is None:
            return True
        try:
            self._initializer(*self._initargs)
        except BaseException as error:
            with self.ledger.lock:
                first = self.broken_by is None
                if first:
                    self.broken_by = error
            if first:
                logger.critical(
                    "the initializer of pool %r raised in thread %r: the pool is broken; "
                    "tasks that had not started fail with BrokenPool, and so do new submissions",
                    self.pool_name,
                    threading.current_thread().name,
                    exc_info=(type(error), error, error.__traceback__),
                )
            return False
        return True

    def broken_error(self) -> BrokenPool | None:
        """A fresh `BrokenPool` to fail a task with, or None while the pool is healthy."""
        cause = self.broken_by
        if cause is None:
            return None
        error = BrokenPool(
            f"pool {self.pool_name!r} is broken: a worker's initializer raised "
            f"{type(cause).__name__}. Fix the initializer and create a new pool."
        )
        error.__cause__ = cause
        return error

    # -- the three steps -------------------------------------------------------------

    def begin(self, future: TaskFuture[Any], tally: Tally | None) -> bool:
        """Mark `future` running and count it; False (and counted) if it was cancelled."""
        if not future.start():
            future.drop_work()
            self._record(self.ledger.cancelled, future, tally)
            return False
        if tally is None:
            self._record(self.ledger.started, future, None)
        else:  # the hot path: no extra call
            self.ledger.started(future, tally)
        return True

    def run(self, future: TaskFuture[Any], tally: Tally | None) -> None:
        """Run a sync task here and now, if it was not cancelled: all three steps."""
        if not self.begin(future, tally):
            return
        fn, args, kwargs, context, managers = future.take_work()
        result: object = None
        error: BaseException | None = None
        try:
            if managers is None:
                result = context.run(fn, *args, **kwargs)
            else:
                result = context.run(call_within, managers, functools.partial(fn, *args, **kwargs))
        except BaseException as exc:  # the future carries every failure
            error = exc
        del fn, args, kwargs, context, managers
        self.end(future, result, error, tally)

    async def run_async(self, future: TaskFuture[Any], work: Work, tally: Tally) -> None:
        """Run a started coroutine task: await it inside its managers, then `end`.

        The loop's task that runs this was created inside the work's context.
        """
        fn, args, kwargs, _, managers = work
        del work
        result: object = None
        error: BaseException | None = None
        try:
            with contextlib.ExitStack() as stack:
                for manager in each(managers):
                    stack.enter_context(manager)
                result = await fn(*args, **kwargs)
        except BaseException as exc:  # the future carries every failure
            error = exc
        del fn, args, kwargs, managers
        self.end(future, result, error, tally)

    def end(
        self,
        future: TaskFuture[Any],
        result: object,
        error: BaseException | None,
        tally: Tally | None,
    ) -> None:
        """Resolve `future`, report a failure, run the callbacks, then count it as done.

        Counting comes last, so a finished drain means failures were logged and
        callbacks ran. Nothing a callback raises, `SystemExit` included, escapes.
        """
        try:
            try:
                future.finish(result, error)  # runs the future's done-callbacks
            except BaseException:
                logger.exception("a done-callback of task %s raised", self._label(future))
            if error is not None:
                self._report_failure(future, error)
            for callback in self.callbacks:
                try:
                    callback(future)
                except BaseException:
                    logger.exception(
                        "callback %s raised for task %s", task_name(callback), self._label(future)
                    )
        finally:
            record = self.ledger.succeeded if error is None else self.ledger.failed
            if tally is None:
                self._record(record, future, None)
            else:  # the hot path: no extra call
                record(future, tally)

    def run_eager(self, future: TaskFuture[Any]) -> None:
        """Run a sync task of an eager pool in the submitting thread.

        An eager pool has no worker threads: the first submitting thread runs the
        initializer, once, and a pool broken by it fails its tasks instead.
        """
        if not self._eager_ready:
            with self._eager_lock:  # not the pool's: the initializer may take its time
                if not self._eager_ready:
                    self.initialize()
                    self._eager_ready = True
        broken = self.broken_error()
        if broken is None:
            self.run(future, None)
        else:
            self.fail(future, broken, None)

    def fail(self, future: TaskFuture[Any], error: BaseException, tally: Tally | None) -> None:
        """Fail a task that will never run (its pool broke): counted and reported as failed."""
        if self.begin(future, tally):
            future.drop_work()
            self.end(future, None, error, tally)

    # -- another executor ------------------------------------------------------------

    def send(self, future: TaskFuture[Any], executor: Executor) -> None:
        """Submit the work to `executor`; its outcome resolves `future` (see `relay`).

        The future was marked as being sent at admission, so a shutdown leaves it to the
        executor. Raises what the executor's submit raises, with the task withdrawn.
        """
        fn, args, kwargs, _, _ = future.take_work()
        try:
            sent = executor.submit(fn, *args, **kwargs)
        except BaseException:
            with self.ledger.lock:
                self.ledger.withdraw(future)
            raise
        finally:
            del fn, args, kwargs
        future.sent_to = sent
        sent.add_done_callback(functools.partial(self._relay, future))

    def _relay(self, future: TaskFuture[Any], sent: Future[Any]) -> None:
        if sent.cancelled():  # by the executor's shutdown(cancel_futures=True), or by us
            future.cancel_and_notify()
            self._record(self.ledger.cancelled, future, None)
            return
        if not self.begin(future, None):
            return
        error = sent.exception()
        self.end(future, None if error is not None else sent.result(), error, None)

    # -- helpers ---------------------------------------------------------------------

    def _record(
        self,
        record: Callable[[TaskFuture[Any], Tally], None],
        future: TaskFuture[Any],
        tally: Tally | None,
    ) -> None:
        """Call a `Ledger` writer with `tally`, or with the shared one under the lock."""
        if tally is None:
            with self.ledger.lock:
                record(future, self.ledger.shared)
        else:
            record(future, tally)

    def _label(self, future: TaskFuture[Any]) -> str:
        return f"{future.task_name!r} (id {future.task_id}) in pool {self.pool_name!r}"

    def _report_failure(self, future: TaskFuture[Any], error: BaseException) -> None:
        task = info(future, time.monotonic())
        try:
            if self.on_error is None:
                log_failure(error, task, self.pool_name)
            else:
                self.on_error(error, task)
        except BaseException:
            logger.exception("on_error hook of pool %r raised", self.pool_name)
            log_failure(error, task, self.pool_name)
