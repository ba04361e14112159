"""`Workers`: a pool's daemon threads: workers sharing one `queue.SimpleQueue` of futures,
and the event-loop thread of its coroutine tasks (made on first use, see `_aio`).

Shrinking (`resize`) asks workers to retire as soon as they finish their current task, and
puts a ``None`` in the queue per worker to retire, to wake idle ones; a ``None`` nobody
needs any more (the pool grew again) is passed over. Stopping (`stop`) puts one `STOP` per
worker at the end of the queue, so what was queued before still runs, as with the
stdlib's ``shutdown(wait=False)``.

The threads hold this object and the pool's `Runner`, never the pool itself: a pool that
nobody references any more can be collected, and then stops its workers.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import Context
from queue import Empty, SimpleQueue
from typing import Any

from ._aio import LoopThread
from ._future import TaskFuture
from ._ledger import Tally
from ._report import log_fields
from ._run import Runner

logger = logging.getLogger("background")

_LATE_IDLE = 0.5  # seconds the thread for late tasks waits for another before it leaves


class Stop(enum.Enum):
    """The end of a stopping pool's queue: the worker that takes it ends."""

    STOP = "stop"


STOP = Stop.STOP

Item = TaskFuture[Any] | None | Stop


class Workers:
    """The threads of one pool. Thread-safe: changes take the pool's lock (the ledger's,
    reentrant); each worker takes it only to leave. `queue` takes futures without it."""

    def __init__(self, name: str, runner: Runner, target: int) -> None:
        self.queue: SimpleQueue[Item] = SimpleQueue()
        self.target = target
        """How many worker threads the pool is to have (also the coroutines run at once)."""
        self._name = name
        self._runner = runner
        self._lock = runner.ledger.lock
        self._threads: set[threading.Thread] = set()
        self._loop: LoopThread | None = None
        self._retiring = 0
        self._spawned = 0
        self._stopping = False
        self._late: SimpleQueue[TaskFuture[Any]] = SimpleQueue()  # fell due while stopping
        self._late_running = False
        self.started = False
        """True once `start` made a thread (a plain attribute: read at each submission)."""
        runner.awaiter = self._await_on_loop

    def start(self) -> None:
        """Start `target` threads. Raises if none can (at interpreter shutdown, say)."""
        with self._lock:
            if not self.started and not self._stopping:
                self._grow(self.target)

    def put(self, future: TaskFuture[Any]) -> None:
        """Queue `future`, which fell due (a delay, a retry). In a stopping pool, whose
        threads leave once they reach the end of the queue, one thread runs such late
        tasks in turn, and leaves when none is left."""
        with self._lock:  # in the queue before a broken pool's first thread empties it
            if not self._stopping:
                self.queue.put(future)
                if not self.started:
                    self._grow(self.target)
                return
            self._late.put(future)
            if not self._late_running:
                self._late_running = True
                self._spawn(self._work_late)

    def take_queued(self) -> list[TaskFuture[Any]]:
        """Take every future out of the queue (what no worker took yet); signals stay.

        What it returns nothing else in the engine can reach any more: a plain future's
        only way to a worker is this queue (see `TaskFuture.cancel_unseen`)."""
        taken: list[TaskFuture[Any]] = []
        signals: list[Stop | None] = []
        with self._lock:
            while True:
                try:
                    item = self.queue.get_nowait()
                except Empty:
                    break
                if item is None or isinstance(item, Stop):
                    signals.append(item)
                else:
                    taken.append(item)
            for signal in signals:
                self.queue.put(signal)
        return taken

    def cancel_on_loop(self) -> None:
        """Cancel the coroutine tasks waiting for the event loop (soon, on its thread)."""
        with self._lock:
            loop = self._loop
        if loop is not None:
            loop.cancel_waiting()

    def loop(self) -> LoopThread:
        """The event-loop thread of coroutine tasks, made on first use.

        Raises RuntimeError once the pool stops, if it had none: none is made then.
        """
        with self._lock:
            if self._loop is None:
                if self._stopping:
                    raise RuntimeError("the pool is stopping: no event loop is made now")
                self._loop = LoopThread(
                    f"background-{self._name}-loop", lambda: self.target, self._runner
                )
            return self._loop

    def _await_on_loop(
        self, future: TaskFuture[Any], awaitable: Awaitable[object], context: Context
    ) -> None:
        self.loop().adopt(future, awaitable, context)

    def resize(self, count: int) -> None:
        """Grow or shrink to `count` threads; a retiring thread finishes its task first."""
        with self._lock:
            self.target = count
            if self.started and not self._stopping:
                change = count - (len(self._threads) - self._retiring)
                if change > 0:
                    kept = min(change, self._retiring)  # cancel pending retirements first
                    self._retiring -= kept
                    self._grow(change - kept)
                elif change < 0:
                    self._retiring -= change
                    for _ in range(-change):
                        self.queue.put(None)
            loop = self._loop
        if loop is not None:
            loop.wake()

    def stop(self) -> None:
        """Let every thread end once the work queued so far is done. Idempotent.

        The event loop stops once the last worker ended: until then, a sync task may
        still hand it an awaitable.
        """
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            for _ in range(len(self._threads)):
                self.queue.put(STOP)
            loop = self._loop if not self._threads else None
        if loop is not None:
            loop.stop()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds in all for the threads to end (not the current one)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
            if self._loop is not None:
                threads.append(self._loop.thread)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def owns(self, thread: threading.Thread) -> bool:
        """True if `thread` is one of these threads."""
        loop = self._loop
        return thread in self._threads or (loop is not None and thread is loop.thread)

    # -- the threads -----------------------------------------------------------------

    def _grow(self, count: int) -> None:
        """Start `count` more threads; if the OS refuses some, go on with fewer, truthfully.

        Raises what starting a thread raised if the pool has none at all.
        """
        for started in range(count):
            try:
                self._spawn()
            except RuntimeError as error:  # "can't start new thread"
                alive = len(self._threads) - self._retiring
                if not alive:
                    raise
                wanted, self.target = self.target, alive
                logger.warning(
                    "pool %r could start %d of %d more worker threads (%s): it goes on with %d",
                    self._name,
                    started,
                    count,
                    error,
                    alive,
                    extra=log_fields(self._name, workers=alive, wanted=wanted),
                )
                return

    def _spawn(self, work: Callable[[], None] | None = None) -> None:
        self._spawned += 1
        thread = threading.Thread(
            target=work or self._work, name=f"background-{self._name}-{self._spawned}", daemon=True
        )
        thread.start()
        self._threads.add(thread)
        self.started = True

    def _work(self) -> None:
        runner = self._runner
        tally = runner.ledger.new_tally()
        if not runner.setup.initialize():
            self._fail_queued(tally)
            self._end(tally)
            return
        get, run = self.queue.get, runner.run
        while True:
            item = get()
            if item is None:  # a call to retire, if nobody answered it yet
                if self._retiring and self._retire(tally):
                    return
            elif item is STOP:
                self._end(tally)
                return
            else:
                run(item, tally)
                del item
                if self._retiring and self._retire(tally):
                    return

    def _work_late(self) -> None:
        """Run the tasks that fell due while the pool stops, then leave."""
        runner = self._runner
        tally = runner.ledger.new_tally()
        broken = None if runner.setup.initialize() else runner.setup.broken_error()
        while True:
            try:
                item = self._late.get(timeout=_LATE_IDLE)
            except Empty:
                with self._lock:  # a put that comes now sees this thread gone, and starts one
                    if self._late.empty():
                        self._late_running = False
                        self._end(tally)
                        return
                continue
            if broken is None:
                runner.run(item, tally)
            else:
                runner.fail(item, broken, tally)
            del item

    def _retire(self, tally: Tally) -> bool:
        """Leave if the pool still shrinks (another thread may have answered first)."""
        with self._lock:  # one step: a resize must never count this thread as staying
            if not self._retiring:
                return False
            self._retiring -= 1
            self._end(tally)
        return True

    def _end(self, tally: Tally) -> None:
        """This thread leaves; the last one of a stopping pool stops its loop (`stop`)."""
        with self._lock:
            self._threads.discard(threading.current_thread())
            loop = self._loop if self._stopping and not self._threads else None
        self._runner.ledger.retire(tally)
        if loop is not None:
            loop.stop()

    def _fail_queued(self, tally: Tally) -> None:
        """The initializer raised: fail what waits in the queue, as the stdlib does."""
        error = self._runner.setup.broken_error()
        assert error is not None
        for future in self.take_queued():  # signals stay: they are meant for other threads
            self._runner.fail(future, error, tally)
