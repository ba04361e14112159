"""Running one task, wherever it runs: a worker thread, the event loop, the submitting
thread (eager, caller_runs), or another executor whose outcome is relayed back.

Each path is the same three steps: `begin` (claim the future, count it running), the call
inside the task's context and captured managers, and `end` (resolve the future, report a
failure, run the pool's callbacks, count it done). `tally` is the running thread's own
counters, or None for the shared ones, which are written under the ledger's lock.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import time
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import Any, Protocol

from ._call import call, call_async
from ._context import Captured
from ._future import TaskFuture
from ._ledger import Ledger, Tally
from ._observe import finished, observing, watched
from ._options import ErrorHook, FutureCallback
from ._planned_future import PlannedFuture
from ._report import UnretrievedFailure, log_failure, log_raised, task_info, task_name
from ._setup import WorkerSetup

Awaiter = Callable[[TaskFuture[Any], Awaitable[object], Context], None]

HANDED_OVER = object()
"""`Runner.hand_over`'s result when the loop took the awaitable (and ends the task)."""


class Plans(Protocol):
    """What runs the tasks that have options (`Planner`): a `PlannedFuture` goes there."""

    def run(self, future: PlannedFuture[Any], tally: Tally | None) -> None: ...

    def timed(
        self, future: PlannedFuture[Any], make: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[object]]: ...

    def settle(
        self,
        future: PlannedFuture[Any],
        result: object,
        error: BaseException | None,
        tally: Tally | None,
    ) -> bool: ...


class Runner:
    """Runs tasks for one pool and keeps its ledger. Thread-safe; holds no pool."""

    def __init__(
        self,
        pool_name: str,
        ledger: Ledger,
        on_error: ErrorHook | None,
        setup: WorkerSetup,
    ) -> None:
        self.pool_name = pool_name
        self.ledger = ledger
        self.on_error = on_error
        self.callbacks: tuple[FutureCallback, ...] = ()  # replaced whole: read without a lock
        self.awaiter: Awaiter | None = None
        """Takes an awaitable a sync task returned to the pool's loop (set by `Workers`)."""
        self.setup = setup
        self.plans: Plans | None = None
        """Runs the tasks that have options (set by the pool)."""

    # -- the three steps -------------------------------------------------------------

    def begin(self, future: TaskFuture[Any], tally: Tally | None) -> bool:
        """Mark `future` running and count it; False (and counted) if it was cancelled."""
        if not future.start():
            future.drop_work()
            self.record(self.ledger.cancelled, future, tally)
            return False
        if tally is None:
            self.record(self.ledger.started, future, None)
        else:  # the hot path: no extra call
            self.ledger.started(future, tally)
        return True

    def run(self, future: TaskFuture[Any], tally: Tally | None) -> None:
        """Run a sync task here and now, if it was not cancelled: all three steps.

        A call that returns an awaitable (a decorator that hides ``async def``, say) is
        not done: the awaitable goes to the pool's event loop, which ends it (see
        `hand_over`).
        """
        if type(future) is not TaskFuture:
            assert self.plans is not None
            self.plans.run(future, tally)  # type: ignore[arg-type]  # a PlannedFuture
            del future  # see below
            return
        if not future.start():  # begin(), without an extra call on the hot path
            future.drop_work()
            self.record(self.ledger.cancelled, future, tally)
            return
        if tally is None:
            self.record(self.ledger.started, future, None)
        else:
            self.ledger.started(future, tally)
        fn, args, kwargs, context, managers = future.take_work()
        if observing.observer is not None:
            managers = watched(self.pool_name, future, managers)
        result, error = call(fn, args, kwargs, context, managers)
        del fn, args, kwargs, managers
        if result is not None and inspect.isawaitable(result):
            result, error = self.hand_over(future, result, context)
            if result is HANDED_OVER:
                return
        del context
        watching = observing.observer is not None
        if tally is not None and error is None and not watching and not self.callbacks:
            # The hot path: `end` without the steps that have nothing to do.
            try:
                future.finish(result, None)  # runs the future's done-callbacks
            except BaseException:
                log_raised("a done-callback", future, self.pool_name)
            finally:  # as in `end`: a task never counted would hold every drain
                self.ledger.succeeded(future, tally)
        else:
            self.end(future, result, error, tally)
        # A traceback keeps this frame (its callers' too): it must not keep the future.
        del future, result, error

    def hand_over(
        self, future: TaskFuture[Any], awaitable: Awaitable[object], context: Context
    ) -> tuple[object, BaseException | None]:
        """Send what a sync call returned to the pool's loop, to be awaited in the task's
        context (not inside its captured managers again: they were used for the call, and
        may be good for one use only). Returns what `end` needs if that cannot be."""
        try:
            if self.awaiter is None:
                raise RuntimeError("this pool has no event loop for it")
            self.awaiter(future, awaitable, context)
        except BaseException as cannot:  # the pool is stopping: its loop takes no more
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited, on purpose: no warning about it
            return None, RuntimeError(
                f"task {future.task_name!r} returned an awaitable that pool "
                f"{self.pool_name!r} could not await ({type(cannot).__name__}): it was "
                "shutting down. Submit async def functions before shutdown."
            )
        return HANDED_OVER, None

    async def complete(
        self,
        future: TaskFuture[Any],
        make: Callable[[], Awaitable[object]],
        managers: Captured,
        tally: Tally,
    ) -> None:
        """Await what `make()` returns inside the captured managers, then `end`.

        On the pool's event loop, in a loop task made inside the task's context: for an
        ``async def`` task (`make` calls it) and an awaitable a sync task returned.
        """
        if type(future) is not TaskFuture:
            assert self.plans is not None
            make = self.plans.timed(future, make)  # type: ignore[arg-type]  # a PlannedFuture
        result, error = await call_async(make, managers)
        del make, managers
        self.conclude(future, result, error, tally)
        del future, result, error  # see run()

    def conclude(
        self,
        future: TaskFuture[Any],
        result: object,
        error: BaseException | None,
        tally: Tally | None,
    ) -> None:
        """An attempt ended: `end` the task, or, if it has options, let its plan decide."""
        if type(future) is TaskFuture:
            self.end(future, result, error, tally)
        else:
            assert self.plans is not None
            self.plans.settle(future, result, error, tally)  # type: ignore[arg-type]

    def end(
        self,
        future: TaskFuture[Any],
        result: object,
        error: BaseException | None,
        tally: Tally | None,
        count: bool = True,
    ) -> None:
        """Resolve `future`, report a failure, run the callbacks, then count it as done
        (unless not `count`: see `resolve`).

        Counting comes last, so a finished drain means `on_error` hooks and callbacks
        ran. Without a hook, a failure is logged once unless somebody retrieves it from
        the future (see `UnretrievedFailure`). Nothing a callback raises, `SystemExit`
        included, escapes.
        """
        try:
            if error is not None and self.on_error is None:
                # Before the future resolves, so a waiter it wakes can mark it retrieved.
                future.unretrieved = UnretrievedFailure(
                    error, task_info(future, time.monotonic()), self.pool_name
                )
            try:
                future.finish(result, error)  # runs the future's done-callbacks
            except BaseException:
                log_raised("a done-callback", future, self.pool_name)
            if observing.observer is not None:
                finished(self.pool_name, future, error)
            if error is not None and self.on_error is not None:
                self._report_failure(future, error, self.on_error)
            for callback in self.callbacks:
                try:
                    callback(future)
                except BaseException:
                    log_raised(f"callback {task_name(callback)}", future, self.pool_name)
        finally:
            if count:
                record = self.ledger.succeeded if error is None else self.ledger.failed
                if tally is None:
                    self.record(record, future, None)
                else:  # the hot path: no extra call
                    record(future, tally)

    def resolve(self, future: TaskFuture[Any], result: object, error: BaseException | None) -> None:
        """`end` without counting: a future failed at its deadline (see `count_failed`)."""
        self.end(future, result, error, None, count=False)

    def count_failed(self, future: TaskFuture[Any], tally: Tally | None) -> None:
        """Count a task as done whose future failed already, once its thread returned."""
        self.record(self.ledger.failed, future, tally)

    def run_inline(
        self, future: TaskFuture[Any], is_async: bool, *, eager: bool, own_thread: bool
    ) -> None:
        """Run a task in the submitting thread: an eager pool's, ``caller_runs``, or one of
        the pool's `own_thread`s on a full queue; wait for an async one (on the loop)."""
        if not is_async:
            if eager:
                self.run_eager(future)
            else:
                self.run(future, None)
        waits = is_async or type(future) is TaskFuture  # not a sync task's retry
        if waits and not future.done() and not own_thread:
            # It runs on the pool's loop (async, or an awaitable a sync task returned):
            # wait, but not from the loop's own thread, and without retrieving a failure,
            # which stays the caller's to retrieve (or is logged).
            concurrent.futures.wait([future])
        del future  # a traceback of the task keeps this frame: see run()

    def run_eager(self, future: TaskFuture[Any]) -> None:
        """Run a sync task of an eager pool in the submitting thread (the first one runs
        the initializer); a pool broken by it fails its tasks instead."""
        self.setup.initialize_once()
        broken = self.setup.broken_error()
        if broken is None:
            self.run(future, None)
        else:
            self.fail(future, broken, None)
        del future, broken  # see run()

    def fail(self, future: TaskFuture[Any], error: BaseException, tally: Tally | None) -> None:
        """Fail a task that will never run (its pool broke): counted and reported as failed."""
        if self.begin(future, tally):
            future.drop_work()
            self.end(future, None, error, tally)

    # -- helpers ---------------------------------------------------------------------

    def record(
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

    def _report_failure(
        self, future: TaskFuture[Any], error: BaseException, on_error: ErrorHook
    ) -> None:
        task = task_info(future, time.monotonic())
        try:
            on_error(error, task)
        except BaseException:
            log_raised("the on_error hook", future, self.pool_name)
            log_failure(error, task, self.pool_name)
