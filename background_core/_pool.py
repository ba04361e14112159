"""`Background`: a pool of daemon worker threads that runs submitted callables.

Workers share one `queue.SimpleQueue` of futures (see `_future.TaskFuture`, which carries
its own work). A ``None`` in the queue wakes a worker to check whether it should retire,
which is how the pool shrinks and stops. The `Ledger` tracks every task from submission
to completion; workers write to it without taking a lock (see `_ledger`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Executor, Future
from contextvars import ContextVar, copy_context
from queue import SimpleQueue
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypedDict, TypeVar, overload

from . import _exit
from ._aio import LoopThread
from ._context import Capturer, call_within, capture, copy_without
from ._errors import PoolClosed, QueueFull
from ._future import SENDING, TaskFuture
from ._ledger import Ledger, Tally, info, no_limit
from ._report import DrainReport, Stats, TaskInfo
from ._task import TaskMaker

P = ParamSpec("P")
R = TypeVar("R")

OnFull = Literal["block", "raise", "caller_runs"]
ErrorHook = Callable[[BaseException, TaskInfo], None]
FutureCallback = Callable[["Future[Any]"], object]

_ON_FULL = ("block", "raise", "caller_runs")

logger = logging.getLogger("background")


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
        raise TypeError(f"{what} must be a positive int, got {workers!r}")
    if workers < 1:
        raise ValueError(f"{what} must be at least 1, got {workers}")
    return workers


def _check_timeout(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be a number of seconds (math.inf for no limit), got {value!r}"
        )
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be >= 0 seconds (math.inf for no limit), got {value!r}")
    return float(value)


def check_option(option: str, value: object, label: str | None = None) -> None:
    """Raise TypeError or ValueError unless `value` suits `Background`'s option `option`.

    `label` names the value in the message (an adapter's config key, say); by default,
    the option. Adapters call this to check configuration before making a pool.
    """
    what = label or option
    if option == "name":
        if not isinstance(value, str) or not value:
            raise TypeError(f"{what} must be a non-empty str, got {value!r}")
    elif option in ("workers", "max_queue"):
        if value is not None:
            check_workers(value, what)
    elif option == "on_full":
        if value not in _ON_FULL:
            raise ValueError(
                f"{what} must be one of {', '.join(map(repr, _ON_FULL))}; got {value!r}"
            )
    elif option == "drain_timeout":
        _check_timeout(value, what)
    elif option in ("eager", "own_executor"):
        if not isinstance(value, bool):
            raise TypeError(f"{what} must be True or False, got {value!r}")
    else:
        raise ValueError(f"Background has no option {option!r}")


def task_name(fn: Callable[..., object]) -> str:
    """The name reports give a callable: its qualified name, else its type's name."""
    inner = getattr(fn, "func", fn)  # functools.partial
    return getattr(inner, "__qualname__", None) or type(inner).__name__


def log_failure(error: BaseException, task: TaskInfo, pool: str) -> None:
    """The default `on_error`: one ERROR with the traceback, the task's name and id."""
    logger.error(
        "task %r (id %d) in pool %r failed",
        task.name,
        task.id,
        pool,
        exc_info=(type(error), error, error.__traceback__),
    )


class Background:
    """A pool of worker threads. Calls of its tasks return `concurrent.futures.Future`.

    Args:
        workers: Worker threads; None means the CPUs this process may use.
        name: Names the pool in threads, logs, reports and errors.
        max_queue: Most tasks waiting to start; None means no bound.
        on_full: With `max_queue` reached: "block" waits, "raise" raises `QueueFull`,
            "caller_runs" runs the task in the submitting thread.
        drain_timeout: Seconds `shutdown()`, exit and SIGTERM wait for tasks in flight.
        executor: Send tasks to this executor (a process pool, say) instead of the
            pool's threads; the pool still tracks and drains them.
        own_executor: Shut `executor` down (without waiting) once the pool has shut down,
            for an executor made for this pool; by default it is left to its owner.
        eager: Run each task inline at submission (for tests).
        on_error: Called with a failed task's exception and `TaskInfo`; the default logs
            it at ERROR on logger "background".
        capturer: Like `add_context_capturer`, for this pool's submissions only; called
            after the global capturers (an adapter supplies its app's context with it).
        exclude_contextvars: Context variables that do not travel with this pool's tasks
            (an adapter keeps its framework's per-request state out of them).

    Thread-safe; usable from a forked child (it starts afresh there). Workers start on
    the first submission or `start()`.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        name: str = "default",
        max_queue: int | None = None,
        on_full: OnFull = "block",
        drain_timeout: float = 30.0,
        executor: Executor | None = None,
        own_executor: bool = False,
        eager: bool = False,
        on_error: ErrorHook | None = None,
        capturer: Capturer | None = None,
        exclude_contextvars: Iterable[ContextVar[Any]] = (),
    ) -> None:
        for option, value in (
            ("name", name),
            ("workers", workers),
            ("max_queue", max_queue),
            ("on_full", on_full),
            ("drain_timeout", drain_timeout),
            ("eager", eager),
            ("own_executor", own_executor),
        ):
            check_option(option, value)
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
            )
        for hook, what in ((on_error, "on_error"), (capturer, "capturer")):
            if hook is not None and not callable(hook):
                raise TypeError(f"{what} must be callable, got {type(hook).__name__}")
        self._name = name
        self._target = usable_cpus() if workers is None else workers
        self._max_queue = max_queue
        self._on_full = on_full
        self._drain_timeout = float(drain_timeout)
        self._executor = executor
        self._own_executor = own_executor and executor is not None
        self._eager = eager
        self._on_error = on_error
        self._capturer = capturer
        self._excluded = frozenset(exclude_contextvars)
        for var in self._excluded:
            if not isinstance(var, ContextVar):
                raise TypeError(
                    f"exclude_contextvars takes contextvars.ContextVar objects, got {var!r}"
                )
        self.task = TaskMaker(self._self)
        """Decorate a function (or method, or ``async def``) so calls submit it here.

        Use as ``@bg.task`` or ``@bg.task(name="send-email")``. A call returns a
        `concurrent.futures.Future` at once. Raises TypeError for a non-callable.
        """
        self._callbacks: tuple[FutureCallback, ...] = ()
        self._closed = False
        self._reset()
        _exit.track(self)

    def _reset(self) -> None:
        """Fresh runtime state: at creation, and in a forked child."""
        self._ledger = Ledger()
        self._lock = self._ledger.lock
        self._queue: SimpleQueue[TaskFuture[Any] | None] = SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._retiring = 0
        self._spawned = 0
        self._started = False
        self._loop: LoopThread | None = None

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
        return self._target

    @workers.setter
    def workers(self, workers: int) -> None:
        check_workers(workers)
        with self._lock:
            change = workers - self._target
            self._target = workers
            if self._started and not self._closed:
                if change > 0:
                    retained = min(change, self._retiring)
                    self._retiring -= retained
                    for _ in range(change - retained):
                        self._spawn()
                elif change < 0:
                    self._retire(-change)
        if self._loop is not None:
            self._loop.wake()

    # -- submission ------------------------------------------------------------------

    def _self(self) -> Background:
        return self

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
            QueueFull: ``max_queue`` tasks wait and ``on_full="raise"``.
            TypeError: `fn` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {type(fn).__name__}")
        return self._submit(task_name(fn), fn, args, kwargs)

    def _submit(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        is_async: bool | None = None,
    ) -> Future[Any]:
        """Submit `fn` under the task name `name` (what `Task` calls); see `submit()`."""
        future: TaskFuture[Any] = TaskFuture()
        future._task_fn = fn
        future._task_args = args
        future._task_kwargs = kwargs
        future._task_context = copy_without(self._excluded) if self._excluded else copy_context()
        if self._closed:  # before the capturers, whose errors would hide this one
            self._refuse_closed()
        try:
            future._task_managers = capture(self._capturer)
        except BaseException:
            with self._lock:
                self._ledger.rejected += 1  # a capturer raised: the caller gets its error
            raise
        future._task_name = name
        future._task_submitted = time.monotonic()
        if is_async is None:
            is_async = inspect.iscoroutinefunction(fn)
        ledger = self._ledger
        with self._lock:
            if self._closed:
                self._refuse_closed()
            inline = self._eager or (
                self._max_queue is not None
                and ledger.queued() >= self._max_queue
                and self._make_room()
            )
            ledger.admit(future)
            external = self._executor is not None and not is_async and not inline
            try:
                if is_async:
                    self._event_loop().submit(future)
                elif external:
                    future._task_sent = SENDING  # cancel_pending leaves it to the executor
                elif not inline:
                    if not self._started:
                        self._start()
                    self._queue.put(future)
            except BaseException:
                # Nothing will run it (threads cannot start at interpreter shutdown, say):
                # the caller gets the error instead of a future.
                ledger.withdraw(future)
                raise
        if external:
            # Outside the lock: the executor takes locks of its own, and may call back.
            self._send_to_executor(future)
        elif inline:
            self._run_inline(future, is_async)
        return future

    def _refuse_closed(self) -> None:
        with self._lock:
            self._ledger.rejected += 1
        raise PoolClosed(
            f"pool {self._name!r} is closed: it was shut down. Submit before "
            "shutdown, or create a new Background pool."
        )

    def _make_room(self) -> bool:
        """With the queue full: wait, raise, or return True to run the task inline."""
        assert self._max_queue is not None
        if self._on_full == "raise":
            self._ledger.rejected += 1
            raise QueueFull(
                f"pool {self._name!r} is full: {self._max_queue} tasks wait (max_queue). "
                "Retry later, raise max_queue, or use on_full='block' or 'caller_runs'."
            )
        if self._on_full == "caller_runs" or self._is_own_thread():
            return True  # a worker that waited for room could wait for itself
        self._ledger.wait_for_room(self._max_queue, lambda: self._closed)
        if self._closed:
            self._ledger.rejected += 1
            raise PoolClosed(
                f"pool {self._name!r} was shut down while a submission waited for room."
            )
        return False

    def _is_own_thread(self) -> bool:
        current = threading.current_thread()
        return current in self._threads or (self._loop is not None and current is self._loop.thread)

    def _run_inline(self, future: TaskFuture[Any], is_async: bool) -> None:
        if not is_async:
            if self._begin(future, None):
                self._call(future, None)
        elif not self._is_own_thread():  # the loop runs it; waiting on the loop would block it
            future.exception()  # wait, without raising

    # -- running ---------------------------------------------------------------------
    # `tally` is the running thread's own, or None for the shared one (taken under the lock).

    def _begin(self, future: TaskFuture[Any], tally: Tally | None) -> bool:
        """Mark `future` running and count it; False (and counted) if it was cancelled."""
        if not future.start():
            future.release_work()
            self._record(self._ledger.cancelled, future, tally)
            return False
        self._record(self._ledger.started, future, tally)
        return True

    def _record(
        self,
        record: Callable[[TaskFuture[Any], Tally], None],
        future: TaskFuture[Any],
        tally: Tally | None,
    ) -> None:
        """Call a `Ledger` writer with `tally`, or with the shared one under the lock."""
        if tally is None:
            with self._lock:
                record(future, self._ledger.shared)
        else:
            record(future, tally)

    def _call(self, future: TaskFuture[Any], tally: Tally | None) -> None:
        fn, args, kwargs = future._task_fn, future._task_args, future._task_kwargs
        context, managers = future._task_context, future._task_managers
        assert fn is not None
        assert context is not None
        future.release_work()
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
        self._end(future, result, error, tally)

    def _end(
        self,
        future: TaskFuture[Any],
        result: object,
        error: BaseException | None,
        tally: Tally | None,
    ) -> None:
        """Resolve `future`, report a failure, run the callbacks, then count it as done.

        Counting comes last, so a finished drain means failures were logged and
        callbacks ran. Nothing a callback raises, `SystemExit` included, ends the worker.
        """
        try:
            try:
                future.finish(result, error)  # runs the future's done-callbacks
            except BaseException:
                logger.exception("a done-callback of task %s raised", self._label(future))
            if error is not None:
                self._report_failure(future, error)
            for callback in self._callbacks:
                try:
                    callback(future)
                except BaseException:
                    logger.exception(
                        "callback %s raised for task %s", task_name(callback), self._label(future)
                    )
        finally:
            if error is None:
                self._record(self._ledger.succeeded, future, tally)
            else:
                self._record(self._ledger.failed, future, tally)

    def _label(self, future: TaskFuture[Any]) -> str:
        return f"{future._task_name!r} (id {future._task_id}) in pool {self._name!r}"

    def _report_failure(self, future: TaskFuture[Any], error: BaseException) -> None:
        task = info(future, time.monotonic())
        try:
            if self._on_error is None:
                log_failure(error, task, self._name)
            else:
                self._on_error(error, task)
        except BaseException:
            logger.exception("on_error hook of pool %r raised", self._name)
            log_failure(error, task, self._name)

    def _worker(self) -> None:
        tally = self._ledger.new_tally()
        get = self._queue.get
        while True:
            future = get()
            if future is not None:
                if self._begin(future, tally):
                    self._call(future, tally)
                del future
                if not self._retiring:
                    continue
            with self._lock:
                if self._retiring:
                    self._retiring -= 1
                    self._threads.discard(threading.current_thread())
                    self._ledger.retire(tally)
                    return

    def _start(self) -> None:
        for _ in range(self._target):
            self._spawn()  # raises if no thread can start (at interpreter shutdown, say)
            self._started = True

    def _spawn(self) -> None:
        self._spawned += 1
        thread = threading.Thread(
            target=self._worker, name=f"background-{self._name}-{self._spawned}", daemon=True
        )
        thread.start()
        self._threads.add(thread)

    def _retire(self, count: int) -> None:
        self._retiring += count
        for _ in range(count):
            self._queue.put(None)

    def _event_loop(self) -> LoopThread:
        with self._lock:
            if self._loop is None:
                tally = self._ledger.new_tally()
                self._loop = LoopThread(
                    f"background-{self._name}-loop",
                    lambda: self._target,
                    functools.partial(self._begin, tally=tally),
                    functools.partial(self._end, tally=tally),
                )
            return self._loop

    def _send_to_executor(self, future: TaskFuture[Any]) -> None:
        assert self._executor is not None
        assert future._task_fn is not None
        try:
            sent = self._executor.submit(future._task_fn, *future._task_args, **future._task_kwargs)
        except BaseException:
            with self._lock:
                self._ledger.withdraw(future)
            raise
        future.release_work()
        future._task_sent = sent
        sent.add_done_callback(functools.partial(self._relay, future))

    def _relay(self, future: TaskFuture[Any], sent: Future[Any]) -> None:
        if sent.cancelled():  # by the executor's shutdown(cancel_futures=True), or by us
            future.cancel_and_notify()
            with self._lock:
                self._ledger.cancelled(future, self._ledger.shared)
            return
        if not self._begin(future, None):
            return
        error = sent.exception()
        self._end(future, None if error is not None else sent.result(), error, None)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Background:
        """Start the worker threads now rather than at the first submission.

        Returns the pool. Raises `PoolClosed` after shutdown.
        """
        with self._lock:
            if self._closed:
                raise PoolClosed(f"pool {self._name!r} is closed and cannot start again.")
            if not self._started and self._executor is None and not self._eager:
                self._start()
        return self

    def drain(self, timeout: float | None = None) -> DrainReport:
        """Wait until every task in flight finished, for at most `timeout` seconds.

        None means the pool's `drain_timeout`; `math.inf` waits as long as it takes.
        New submissions are accepted meanwhile, and waited for too. Returns a
        `DrainReport`; logs nothing. Called from one of the pool's own tasks, it waits
        for that task too, so only until the deadline.
        """
        limit = self._drain_timeout if timeout is None else _check_timeout(timeout, "timeout")
        began = time.monotonic()
        with self._lock:
            before = self._ledger.totals()
        self._ledger.wait_empty(began + no_limit(limit))
        with self._lock:
            after = self._ledger.totals()
            unfinished = tuple(self._ledger.unfinished())
        return DrainReport(
            pool=self._name,
            completed=after.succeeded - before.succeeded,
            failed=after.failed - before.failed,
            cancelled=after.cancelled - before.cancelled,
            unfinished=unfinished,
            elapsed=time.monotonic() - began,
        )

    def shutdown(
        self, timeout: float | None = None, *, cancel_pending: bool = False
    ) -> DrainReport:
        """Close the pool to new work, drain it, stop its workers. Idempotent.

        Args:
            timeout: Seconds to wait for tasks in flight; None means `drain_timeout`.
            cancel_pending: Cancel the tasks that have not started instead of running them.

        Returns the drain's report; each task that did not finish is logged as a WARNING
        by name and id. Later submissions raise `PoolClosed`.
        """
        with self._lock:
            self._closed = True
            self._ledger.wake_blocked()
            if cancel_pending:
                self._cancel_queued()
        report = self.drain(timeout)
        with self._lock:
            self._cancel_queued()  # what did not start by the deadline never will
        self._stop()
        _exit.forget(self)
        if self._own_executor:
            self._own_executor = False
            try:
                assert self._executor is not None
                self._executor.shutdown(wait=False)
            except BaseException:
                logger.exception("shutting down the executor of pool %r failed", self._name)
        for task in report.unfinished:
            if task.state == "queued":
                logger.warning(
                    "pool %r shut down before task %r (id %d) started; it was cancelled",
                    self._name,
                    task.name,
                    task.id,
                )
            else:
                logger.warning(
                    "pool %r shut down with task %r (id %d) unfinished: running, "
                    "submitted %.1fs ago",
                    self._name,
                    task.name,
                    task.id,
                    task.age,
                )
        return report

    def _cancel_queued(self) -> None:
        ledger = self._ledger
        for future in list(ledger.live.values()):
            # cancel() refuses a task that started, here or in a user's executor.
            if not future._task_started and future.cancel_and_notify():
                ledger.cancelled(future, ledger.shared)
                future.release_work()

    def _stop(self) -> None:
        with self._lock:
            threads = list(self._threads)
            self._retire(len(threads) - self._retiring)
            loop = self._loop
        if loop is not None:
            loop.stop()
            threads.append(loop.thread)
        deadline = time.monotonic() + 0.1  # a hung task keeps its daemon thread; we go on
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Background:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # -- callbacks and introspection -------------------------------------------------

    def callback(self, fn: FutureCallback) -> FutureCallback:
        """Register `fn`, called with each finished task's future in the worker thread.

        Usable as a decorator; returns `fn`. A callback that raises is logged.
        """
        if not callable(fn):
            raise TypeError(f"a callback must be callable, got {type(fn).__name__}")
        with self._lock:
            self._callbacks = (*self._callbacks, fn)
        return fn

    def stats(self) -> Stats:
        """A snapshot of the pool's counters. Thread-safe."""
        return self._ledger.stats(self._name, self._target, ask_executor=self._executor is not None)

    def running(self) -> list[TaskInfo]:
        """The tasks running now, oldest first, by name, id and start time. Thread-safe."""
        return [task for task in self._ledger.unfinished() if task.state == "running"]

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Background {self._name!r} workers={self._target} {state}>"
