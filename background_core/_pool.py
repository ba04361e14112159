"""`Background`: the pool's facade, a `concurrent.futures.ThreadPoolExecutor` of our own.

It configures a pool, admits submissions (closed, broken, full, eager: where each task
goes), and runs the lifecycle (start, drain, shutdown). The rest has a room of its own:
`Workers` (the threads), `Runner` (running one task), `Ledger` (tasks in flight and
counters). This module also keeps the registry of pools that the exit drain walks, and
starts every pool afresh in a forked child.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Collection, Coroutine, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from ._backpressure import Backpressure
from ._context import Capturer, capture, copy_without, snapshot
from ._errors import PoolClosed, QueueFull
from ._future import SENDING, new_future
from ._ledger import Ledger
from ._map import map_in_order
from ._observe import observing, rejected, submitted
from ._options import (
    BLOCK_TIMEOUT,
    ErrorHook,
    FutureCallback,
    OnFull,
    check_options,
    check_seconds,
    check_shutdown,
    check_workers,
    usable_cpus,
)
from ._plan import OptionChanges, TaskOptions
from ._planned import Planner
from ._planned_future import PlannedFuture
from ._relay import send
from ._report import DrainReport, Stats, TaskInfo, log_fields, log_unfinished
from ._run import Runner
from ._setup import WorkerSetup
from ._task import Submitter, TaskMaker, describe, runs_async
from ._workers import Workers

if TYPE_CHECKING:
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("background")

# How long shutdown waits for threads to notice they are done; a hung task keeps its own.
_JOIN = 0.1


class Background(ThreadPoolExecutor):
    """A pool of worker threads: a `concurrent.futures.ThreadPoolExecutor`, and more.

    Every stdlib call keeps its meaning (``submit``, ``map``, ``shutdown(wait=...,
    cancel_futures=...)``, ``with``, asyncio's ``run_in_executor``). On top: a drain
    deadline, reports by name, `stats`, a bounded queue, context capture, ``async def``
    tasks, a reset after ``fork()``, and relaying to another executor.

    Its options, keyword-only but `workers`, are documented with `PoolOptions`.

    Thread-safe; usable from a forked child (it starts afresh there). Workers start on
    the first submission or `start()`. A pool that nobody references any more once its
    tasks are done stops its threads.
    """

    # Not ThreadPoolExecutor.__init__: the threads, queue and state are our own.
    def __init__(
        self,
        workers: int | None = None,
        *,
        name: str = "default",
        max_queue: int | None = None,
        on_full: OnFull = "block",
        drain_timeout: float = 30.0,
        block_timeout: float = BLOCK_TIMEOUT,
        executor: Executor | None = None,
        own_executor: bool = False,
        eager: bool = False,
        on_error: ErrorHook | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        capturer: Capturer | None = None,
        exclude_contextvars: Collection[ContextVar[Any]] = (),
        queue_full_error: Callable[[str], QueueFull] = QueueFull,
    ) -> None:
        check_options(
            {
                "name": name,
                "workers": workers,
                "max_queue": max_queue,
                "on_full": on_full,
                "drain_timeout": drain_timeout,
                "block_timeout": block_timeout,
                "executor": executor,
                "own_executor": own_executor,
                "eager": eager,
                "on_error": on_error,
                "initializer": initializer,
                "initargs": initargs,
                "capturer": capturer,
                "exclude_contextvars": exclude_contextvars,
                "queue_full_error": queue_full_error,
            }
        )
        self._name = name
        self._backpressure = Backpressure(
            name, max_queue, on_full, float(block_timeout), queue_full_error
        )
        self._drain_timeout = float(drain_timeout)
        self._executor = executor
        self._own_executor = own_executor and executor is not None
        self._eager = eager
        self._on_error = on_error
        self._setup = WorkerSetup(name, initializer, initargs)
        self._capturer = capturer
        self._excluded = frozenset(exclude_contextvars)
        self._callbacks: tuple[FutureCallback, ...] = ()
        self._closed = False
        self._finished = False  # the shutdown that drained, stopped and logged has run
        # Every sync task goes to the worker queue (no eager, executor or bound to check).
        self._queues_all = not eager and executor is None and max_queue is None
        self._reset(usable_cpus() if workers is None else workers)
        _pools.add(self)
        _every_pool.add(self)

    def _reset(self, workers: int) -> None:
        """Fresh runtime state: at creation, and in a forked child (keeping the options)."""
        self._backpressure.reset()
        self._ledger = Ledger()
        self._lock = self._ledger.lock
        self._runner = Runner(self._name, self._ledger, self._on_error, self._setup)
        self._runner.callbacks = self._callbacks
        self._workers = Workers(self._name, self._runner, workers)
        self._planner = self._runner.plans = Planner(
            self._name,
            self._runner,
            self._workers,
            executor=self._executor,
            eager=self._eager,
            backpressure=self._backpressure,
        )
        # A pool collected while idle stops its threads (and an executor it owns); this
        # holds them, not the pool.
        owned = self._executor if self._own_executor else None
        self._abandoned = weakref.finalize(
            self, _abandon, self._workers, self._planner.timer.stop, owned
        )
        self._abandoned.atexit = False

    # -- configuration ---------------------------------------------------------------

    @property
    def name(self) -> str:
        """The pool's name."""
        return self._name

    @property
    def drain_timeout(self) -> float:
        """Seconds that shutdown, exit and SIGTERM wait for tasks in flight."""
        return self._drain_timeout

    @property
    def closed(self) -> bool:
        """True once `shutdown()` began: submissions then raise `PoolClosed`."""
        return self._closed

    @property
    def workers(self) -> int:
        """The number of worker threads; set it to grow or shrink the pool at any time.

        Queued tasks are never lost by a resize; a shrinking pool retires workers as they
        finish their current task. Raises TypeError or ValueError unless a positive int.
        """
        return self._workers.target

    @workers.setter
    def workers(self, workers: int) -> None:
        self._workers.resize(check_workers(workers))

    # `workers` under the stdlib pool's name: code that sizes its work by a
    # ThreadPoolExecutor reads it (Dask's threaded scheduler, for one).
    _max_workers = workers

    @property
    def task(self) -> TaskMaker:
        """Decorate a function (or method, or ``async def``) so calls submit it here.

        Use as ``@bg.task`` or ``@bg.task(name="send-email")``. A call returns a
        `concurrent.futures.Future` at once. Raises TypeError for a non-callable.
        """
        return TaskMaker(lambda: self)  # made afresh: the pool holds no cycle through it

    # -- submission ------------------------------------------------------------------

    @overload
    def submit(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[R]: ...
    @overload
    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]: ...
    def submit(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` in the background; return its Future at once.

        Raises:
            PoolClosed: The pool was shut down.
            BrokenPool: A worker's initializer raised.
            QueueFull: ``max_queue`` tasks wait and ``on_full="raise"``.
            TypeError: `fn` is not callable.
        """
        name, is_async = describe(fn)
        return self.submit_task(name, fn, args, kwargs, is_async=is_async)

    def submit_task(  # noqa: PLR0912, PLR0915  (one pass: the hot path makes no extra call)
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        is_async: bool | None = None,
        options: TaskOptions | None = None,
    ) -> Future[Any]:
        """`submit` under the task name `name`: what a `Task`'s call does (adapters' hook).

        `is_async` says whether `fn` returns a coroutine; None finds out. `options`: run
        it later, retry it, time it out (see `TaskOptions`).
        """
        if is_async is None:
            is_async = runs_async(fn)  # raises TypeError for a generator function
        if self._closed:  # before the capturers, whose errors would hide this one
            self._refuse(name)
        context = copy_without(self._excluded) if self._excluded else snapshot()
        try:
            managers = capture(self._capturer)
        except BaseException:
            with self._lock:
                self._ledger.rejected += 1  # a capturer raised: the caller gets its error
            rejected(self._name, name)
            raise
        due = 0.0
        if options is None:
            future = new_future(name, fn, args, kwargs, context, managers, time.monotonic())
        else:
            now = time.monotonic()
            future = new_future(name, fn, args, kwargs, context, managers, now, PlannedFuture)
            due = self._planner.prepare(future, options, is_async, now)  # type: ignore[arg-type]
        ledger, runner = self._ledger, self._runner
        lock = self._lock
        lock.acquire()  # not `with`: ~0.1 µs less per submission
        try:
            if self._closed or self._setup.broken_by is not None:
                self._refuse(name)
            if due:  # it waits for its time on the pool's timer, not in the queue
                self._planner.admit_later(future, due, self)  # type: ignore[arg-type]
                return future
            if self._queues_all and not is_async:  # the plain path: only the queue
                inline = external = False
            else:
                bound = self._backpressure.max_queue
                inline = self._eager or (
                    bound is not None and ledger.queued() >= bound and self._when_full(name)
                )
                external = self._executor is not None and not is_async and not inline
            ledger.admit(future, self)
            try:
                if is_async:
                    self._workers.loop().submit(future)
                elif external:
                    future.sent_to = SENDING  # a shutdown leaves it to the executor
                elif not inline:
                    workers = self._workers
                    workers.queue.put(future)
                    if not workers.started:
                        # After the put: the first thread takes it as it starts, as the
                        # stdlib's does, before this thread submits more.
                        workers.start()
            except BaseException:
                # Nothing will run it (threads cannot start at interpreter shutdown, say):
                # the caller gets the error instead of a future.
                future.cancel()  # if it stays queued, a later worker passes over it
                ledger.withdraw(future)
                rejected(self._name, name)
                raise
        finally:
            lock.release()
        if external:
            assert self._executor is not None
            send(runner, future, self._executor)  # outside the lock: it may call back
        if observing.observer is not None:  # after send(), which may refuse it
            submitted(self._name, name)
        if inline:
            owned = self._workers.owns(threading.current_thread())
            self._runner.run_inline(future, is_async, eager=self._eager, own_thread=owned)
        return future

    def using(self, **options: Unpack[OptionChanges]) -> Submitter:
        """Submit with options: ``bg.using(delay=600).submit(fn, *args)``. The options
        are `TaskOptions`', checked now: TypeError or ValueError names a bad one."""
        return Submitter(self, TaskOptions().replace(**options))

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """``map(fn, *iterables)`` in the background: results in order, as they come.

        Every call is submitted at once; the iterator waits for each result in turn, at
        most until `timeout` seconds after this call, and then raises `TimeoutError`
        (the builtin, on every Python). Leaving it early cancels the calls not started.
        `chunksize` is ignored, as by the stdlib's thread pool: threads take no chunks.
        """
        return map_in_order(self.submit, fn, iterables, timeout)

    def _when_full(self, name: str) -> bool:
        """The queue is full: wait for room (True: run the task inline), or raise."""
        inline = self._backpressure.make_room(
            self._ledger,
            name,
            own_thread=self._workers.owns(threading.current_thread()),
            refused=self._refusing,
        )
        if self._refusing():  # the pool closed or broke while the submission waited
            self._refuse(name)
        return inline

    def _refusing(self) -> bool:
        return self._closed or self._setup.broken_by is not None

    def _refuse(self, name: str) -> None:
        """Count a refused submission and raise why: closed, or broken."""
        with self._lock:
            self._ledger.rejected += 1
        rejected(self._name, name)
        broken = self._setup.broken_error()
        if broken is not None and not self._closed:
            raise broken
        raise PoolClosed(
            f"pool {self._name!r} is closed: it was shut down. Submit before "
            "shutdown, or create a new Background pool."
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Background:
        """Start the worker threads now rather than at the first submission.

        Returns the pool. Raises `PoolClosed` after shutdown.
        """
        with self._lock:
            if self._closed:
                raise PoolClosed(f"pool {self._name!r} is closed and cannot start again.")
            if self._executor is None and not self._eager:
                self._workers.start()
        return self

    def drain(self, timeout: float | None = None) -> DrainReport:
        """Wait until every task in flight finished, for at most `timeout` seconds.

        None means the pool's `drain_timeout`; `math.inf` waits as long as it takes.
        New submissions are accepted meanwhile, and waited for too. Returns a
        `DrainReport`; logs nothing. Called from one of the pool's own tasks, it waits
        for that task too, so only until the deadline.
        """
        limit = self._drain_timeout if timeout is None else check_seconds(timeout, "timeout")
        return self._ledger.drain(self._name, limit)

    def shutdown(  # type: ignore[override]  # returns the drain's report, not None
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> DrainReport:
        """Close the pool to new work; with `wait`, drain it and stop its workers. Idempotent.

        `wait` and `cancel_futures` mean what they mean in the stdlib: with ``wait=False``
        it returns at once while the workers still run what was accepted (the exit-time
        drain bounds them by `drain_timeout`). With ``wait=True`` it waits for at most
        `timeout` seconds (None: `drain_timeout`; `math.inf`: no limit), cancels what did
        not start by then, logs each unfinished task as a WARNING by name and id, and
        returns the drain's report (with ``wait=False``, what is in flight at once).

        Raises:
            TypeError: `wait` or `cancel_futures` is not a bool (``shutdown(5)``: the
                deadline is ``shutdown(timeout=5)``).
            ValueError: ``wait=False`` with a `timeout`.
        """
        timeout = check_shutdown(wait, cancel_futures, timeout)
        with self._lock:
            self._closed = True
            self._ledger.wake_blocked()
            if cancel_futures:
                self._planner.closed = True  # a retry that comes now is cancelled too
                # What waits; not what a worker took already (it runs, as in the stdlib).
                self._ledger.cancel(self._workers.take_queued(), off_queue=True)
                self._ledger.cancel(self._ledger.waiting_elsewhere())
                self._workers.cancel_on_loop()
        if not wait:
            self._workers.stop()  # what was queued before still runs
            return self.drain(0)
        # The threads and the loop stay for the drain: a scheduled task may fall due.
        report = self.drain(timeout)
        with self._lock:
            self._planner.closed = True  # a retry that comes now is cancelled
            self._ledger.cancel(list(self._ledger.live.values()))  # it never will start now
            first, self._finished = not self._finished, True
        self._workers.stop()
        self._workers.join(_JOIN)
        if first:
            _pools.discard(self)
            self._planner.timer.stop()
            self._abandoned.detach()  # done here
            with self._lock:
                self._backpressure.log_refusals()
            self._shut_own_executor()
            log_unfinished(report)
        return report

    def _shut_own_executor(self) -> None:
        if self._own_executor:
            self._own_executor = False
            assert self._executor is not None
            try:
                self._executor.shutdown(wait=False)
            except BaseException:
                failed = "shutting down the executor of pool %r failed"
                logger.exception(failed, self._name, extra=log_fields(self._name))

    # -- callbacks and introspection -------------------------------------------------

    def callback(self, fn: FutureCallback) -> FutureCallback:
        """Register `fn`, called with each finished task's future in the worker thread.

        Usable as a decorator; returns `fn`. A callback that raises is logged.
        """
        if not callable(fn):
            raise TypeError(f"a callback must be callable, got {type(fn).__name__}")
        with self._lock:
            self._callbacks = self._runner.callbacks = (*self._callbacks, fn)
        return fn

    def stats(self) -> Stats:
        """A snapshot of the pool's counters. Thread-safe."""
        return self._ledger.stats(
            self._name, self._workers.target, ask_executor=self._executor is not None
        )

    def unfinished(self) -> list[TaskInfo]:
        """Every task in flight (queued, scheduled or running), oldest first. Thread-safe."""
        return self._ledger.unfinished()

    def running(self) -> list[TaskInfo]:
        """The tasks running now, oldest first, by name, id and start time. Thread-safe."""
        return [task for task in self._ledger.unfinished() if task.state == "running"]

    def scheduled(self) -> list[TaskInfo]:
        """The tasks waiting for their time (a delay, a retry's backoff), by name, id,
        attempt and due time, oldest first. Thread-safe."""
        return [task for task in self._ledger.unfinished() if task.state == "scheduled"]

    def in_critical_section(self) -> bool:
        """True if the current thread is inside this pool's lock: only a signal handler
        that interrupted a submission sees that, and must not drain until it returns."""
        return self._ledger.held_here()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Background {self._name!r} workers={self.workers} {state}>"


def _abandon(workers: Workers, stop_timer: Callable[[], None], owned: Executor | None) -> None:
    """A pool nobody references any more: stop its threads and what it owns."""
    workers.stop()
    stop_timer()
    if owned is not None:
        owned.shutdown(wait=False)


# -- the registry of pools -------------------------------------------------------------

_pools: weakref.WeakSet[Background] = weakref.WeakSet()  # until their shutdown finished
_every_pool: weakref.WeakSet[Background] = weakref.WeakSet()  # for the reset after fork


def open_pools() -> list[Background]:
    """The pools that were not shut down, in no particular order."""
    return [pool for pool in list(_pools) if not pool.closed]


def running_pools() -> list[Background]:
    """The pools whose shutdown has not finished: open ones, and closed ones still
    running what they accepted (``shutdown(wait=False)``, or a shutdown under way)."""
    return list(_pools)


def _reset_in_child() -> None:
    for pool in list(_every_pool):
        pool._abandoned.detach()  # the parent's threads are not the child's to stop
        pool._reset(pool.workers)


os.register_at_fork(after_in_child=_reset_in_child)
