"""`Planner`: runs the tasks that have `TaskOptions`: later, again, within a time limit.

A task waits (a delay, a retry's backoff) as an entry of the pool's `Timer`, on no thread,
then goes where any task goes. Between attempts its future is pending again (``cancel()``
works) and counted as scheduled. Each failed attempt logs one WARNING; only the final
outcome resolves the future, and only the last failure is reported as one.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from ._backpressure import Backpressure
from ._call import call, time_limited
from ._future import SENDING
from ._ledger import Tally
from ._observe import submitted, watched
from ._plan import TaskOptions
from ._planned_future import PlannedFuture
from ._relay import send
from ._report import describe, log_fields
from ._run import HANDED_OVER, Runner
from ._timer import Timer
from ._workers import Workers

logger = logging.getLogger("background")


class Planner:
    """The plans of one pool's tasks. Thread-safe; holds no pool."""

    def __init__(
        self,
        pool_name: str,
        runner: Runner,
        workers: Workers,
        *,
        executor: Executor | None,
        eager: bool,
        backpressure: Backpressure,
    ) -> None:
        self.timer = Timer(pool_name)
        self._pool_name = pool_name
        self._runner = runner
        self._ledger = runner.ledger
        self._workers = workers
        self._executor = executor
        self._eager = eager
        self._backpressure = backpressure
        self.closed = False  # the shutdown gave up on what waits: a later retry is cancelled

    # -- admission (the pool's lock is held) -----------------------------------------

    def prepare(
        self, future: PlannedFuture[Any], options: TaskOptions, is_async: bool, now: float
    ) -> float:
        """Set `future` up for its plan; return when it may start (0.0: at once).

        Raises:
            ValueError: A `timeout` for a sync task that goes to the pool's executor.
        """
        if options.timeout is not None and self._executor is not None and not is_async:
            raise ValueError(
                f"timeout= needs pool {self._pool_name!r}'s own threads, and this pool sends "
                "sync tasks to its executor (executor=), which cannot time them: drop "
                "timeout=, or give the function a time limit of its own"
            )
        future.options = options
        future.is_async = is_async
        future.attempt = 1
        future.due = future.queued_since = 0.0
        future.expired = False
        future.kept = None
        future.entry = None
        future.on_cancel = self._cancelled
        return 0.0 if self._eager else options.due(now)

    def admit_later(self, future: PlannedFuture[Any], due: float, holder: object) -> None:
        """Admit `future` to wait until monotonic `due`. Hold the pool's lock.

        Waiting tasks count in ``max_queue`` (they will need room): a full pool refuses
        one whatever ``on_full`` says, since the room it needs is in the future.

        Raises:
            QueueFull: ``max_queue`` tasks wait or are scheduled.
        """
        ledger, bound = self._ledger, self._backpressure.max_queue
        if bound is not None and ledger.queued() + len(ledger.scheduled) >= bound:
            self._backpressure.refuse(
                ledger, future.task_name, "Tasks to run later count in it: retry later."
            )
        # First the timer (it may fail to start a thread): its action waits for this lock.
        future.entry = self.timer.at(due, functools.partial(self._release, future))
        ledger.admit(future, holder)
        ledger.scheduled[future.task_id] = due
        future.due = due
        submitted(self._pool_name, future.task_name)

    # -- running ---------------------------------------------------------------------

    def run(self, future: PlannedFuture[Any], tally: Tally | None) -> None:
        """Run a sync task here and now, then settle it (an eager pool's retries too)."""
        while self._attempt(future, tally):
            pass
        del future  # see Runner.run

    def _attempt(self, future: PlannedFuture[Any], tally: Tally | None) -> bool:
        """One attempt and its settling; True to try again at once (an eager pool)."""
        runner = self._runner
        if not runner.begin(future, tally):
            return False
        fn, args, kwargs, context, managers = future.take_work()
        managers = watched(self._pool_name, future, managers)
        timeout = future.options.timeout
        entry = None
        if timeout is not None and not self._eager:
            with contextlib.suppress(RuntimeError):  # the pool stopped: no time limit now
                entry = self.timer.at(
                    time.monotonic() + timeout,
                    functools.partial(self._expire, future, future.attempt),
                )
        result, error = call(fn, args, kwargs, context, managers)
        del fn, args, kwargs, managers
        if entry is not None:
            entry.cancel()
        if result is not None and inspect.isawaitable(result):
            result, error = runner.hand_over(future, result, context)
            if result is HANDED_OVER:
                del future, context
                return False  # the loop settles it (see Runner.complete)
        del context
        again = self.settle(future, result, error, tally)
        del future, result, error  # a traceback keeps this frame: see Runner.run
        return again

    def timed(
        self, future: PlannedFuture[Any], make: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[object]]:
        """`make`, cancelled at the task's timeout if it has one (for the event loop)."""
        timeout = future.options.timeout
        if timeout is None:
            return make
        what = describe(future, self._pool_name)
        return lambda: time_limited(make, timeout, what)

    def settle(
        self,
        future: PlannedFuture[Any],
        result: object,
        error: BaseException | None,
        tally: Tally | None,
    ) -> bool:
        """An attempt ended: try again later if the plan says so, else end the task.

        True if an eager pool's sync task is to be tried again at once.
        """
        if future.settle_attempt():  # it failed at the deadline; only its thread was busy
            future.drop_work()
            self._runner.count_failed(future, tally)
            return False
        if error is not None and self._retries(future, error):
            return self._retry(future, error, tally)
        future.drop_work()
        self._runner.end(future, result, error, tally)
        return False

    # -- waiting, retrying, expiring -------------------------------------------------

    def _retries(self, future: PlannedFuture[Any], error: BaseException) -> bool:
        options: TaskOptions = future.options
        return future.attempt <= options.retries and isinstance(error, options.retry_on)

    def _retry(self, future: PlannedFuture[Any], error: BaseException, tally: Tally | None) -> bool:
        options: TaskOptions = future.options
        at_once = self._eager and not future.is_async
        wait = 0.0 if self._eager else options.wait_before(future.attempt)
        logger.warning(
            "task %s failed on attempt %d of %d (%s); retrying in %.3g s",
            describe(future, self._pool_name),
            future.attempt,
            options.retries + 1,
            type(error).__name__,
            wait,
            extra=log_fields(self._pool_name, future.task_name, future.task_id, future.attempt),
        )
        del error
        due = time.monotonic() + wait
        ledger = self._ledger
        if tally is None:
            with ledger.lock:
                ledger.retrying(future, due, ledger.shared)
        else:
            ledger.retrying(future, due, tally)
        future.attempt += 1
        future.expired = False
        future.rewind()  # pending again: a cancel() now stops it
        with ledger.lock:
            if future.task_id not in ledger.scheduled:
                return False  # cancelled meanwhile, and counted
            if at_once:
                ledger.unschedule(future)
                return True
            if not self.closed:
                future.due = due
                with contextlib.suppress(RuntimeError):  # no thread for the timer
                    future.entry = self.timer.at(due, functools.partial(self._release, future))
                    return False
            # The pool finished its shutdown, or cannot wait: no attempt can come now.
            future.cancel_and_notify()  # counted by _cancelled
        return False

    def _release(self, future: PlannedFuture[Any]) -> None:
        """Its time came (on the timer's thread): send it where it runs."""
        ledger = self._ledger
        executor = self._executor if not future.is_async else None
        with ledger.lock:
            if not ledger.unschedule(future):
                return  # cancelled while it waited
            future.queued_since, future.due = future.due, 0.0
            future.entry = None
            if executor is not None:
                future.sent_to = SENDING  # from now on cancel() leaves it to the executor
        # Cancelled as its time came, not counted (no longer waiting): a worker or the loop
        # would refuse it and count it, but an executor would run it.
        if executor is not None and future.cancelled():
            with ledger.lock:
                ledger.cancelled(future, ledger.shared)
            future.notify_cancelled()
            future.drop_work()
            return
        broken = self._runner.setup.broken_error()
        if broken is not None:  # the initializer raised: no worker will take it
            self._runner.fail(future, broken, None)
            return
        try:
            if future.is_async:
                self._workers.loop().submit(future)
            elif executor is not None:
                send(self._runner, future, executor, withdraw=False)
            else:
                self._workers.put(future)
        except BaseException as error:  # the pool stops, or the executor refused it
            self._runner.fail(
                future,
                RuntimeError(
                    f"task {describe(future, self._pool_name)} fell due, but its pool could not "
                    "run it "
                    f"({type(error).__name__}): it was shutting down, or its executor "
                    "refused it. Keep the pool and its executor open until scheduled "
                    "tasks ran."
                ),
                None,
            )

    def _expire(self, future: PlannedFuture[Any], attempt: int) -> None:
        """A sync attempt ran out of time (on the timer's thread): fail its future now."""
        if not future.expire_attempt(attempt):
            return  # that attempt was settled already
        timeout = future.options.timeout
        self._runner.resolve(
            future,
            None,
            TimeoutError(
                f"task {describe(future, self._pool_name)} timed out after {timeout:g} s; its "
                "thread "
                "still runs it, and what it returns will be dropped"
            ),
        )

    def _cancelled(self, future: PlannedFuture[Any]) -> None:
        """A cancelled task that waited on no thread: count it now (nobody else will)."""
        entry = future.entry
        if entry is not None:
            entry.cancel()
        ledger = self._ledger
        with ledger.lock:
            if future.task_id in ledger.scheduled:
                future.due = 0.0
                ledger.cancelled(future, ledger.shared)
                future.drop_work()
                future.notify_cancelled()  # no worker will: wake wait() and as_completed()
