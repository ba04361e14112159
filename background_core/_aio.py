"""Coroutine tasks: one event loop on a daemon thread of the pool's, at most `limit()` at once.

The pool hands over futures whose work is an ``async def`` function. They wait here, in
submission order, until fewer than `limit()` run; then each runs as an asyncio task inside
the context captured at submission, through the pool's `Runner` like any other task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import Any

from ._context import Captured
from ._future import TaskFuture
from ._observe import watched
from ._run import Runner


class LoopThread:
    """An event loop running forever on a daemon thread named `thread_name`.

    The pool's initializer runs on that thread first; if it raises, the pool is broken and
    every coroutine task that reaches the loop fails instead of running.
    """

    def __init__(self, thread_name: str, limit: Callable[[], int], runner: Runner) -> None:
        self._limit = limit
        self._runner = runner
        self._tally = runner.ledger.new_tally()
        self._waiting: deque[TaskFuture[Any]] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._serve, args=(ready,), name=thread_name, daemon=True
        )
        self.thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError(f"the event loop thread {thread_name!r} did not start")

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.call_soon(self._runner.setup.initialize)
        try:
            self.loop.run_forever()
        finally:
            # Only reached after stop(): every task has finished, so closing loses nothing.
            self.loop.close()
            self._runner.ledger.retire(self._tally)

    def submit(self, future: TaskFuture[Any]) -> None:
        """Queue `future`'s coroutine function to run on the loop. Thread-safe."""
        self.loop.call_soon_threadsafe(self._enqueue, future)

    def adopt(
        self, future: TaskFuture[Any], awaitable: Awaitable[object], context: Context
    ) -> None:
        """Await what a started sync task returned, then end the task. Thread-safe.

        It started already: it runs at once, counted among the loop's running tasks.
        Raises RuntimeError if the loop is stopping or closed.
        """
        if self._stopping:
            raise RuntimeError("the event loop is stopping")
        self.loop.call_soon_threadsafe(self._start, future, lambda: awaitable, context, None)

    def cancel_waiting(self) -> None:
        """Cancel the tasks that wait for a slot (not those running). Thread-safe."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
            self.loop.call_soon_threadsafe(self._cancel_waiting)

    def _cancel_waiting(self) -> None:
        waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            future.cancel_and_notify()
            self._runner.begin(future, self._tally)  # refuses it, and counts it cancelled

    def wake(self) -> None:
        """Start waiting tasks if the limit grew. Thread-safe."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
            self.loop.call_soon_threadsafe(self._pump)

    def stop(self) -> None:
        """Stop the loop once its tasks finished; a hung task keeps the daemon thread alive."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._stop_when_idle)

    def _stop_when_idle(self) -> None:
        self._stopping = True
        if not self._running and not self._waiting:
            self.loop.stop()

    def _enqueue(self, future: TaskFuture[Any]) -> None:
        self._waiting.append(future)
        self._pump()

    def _pump(self) -> None:
        runner, tally = self._runner, self._tally
        while self._waiting and self._running < self._limit():
            future = self._waiting.popleft()
            broken = runner.setup.broken_error()
            if broken is not None:
                runner.fail(future, broken, tally)
                continue
            if not runner.begin(future, tally):
                continue  # cancelled before it started
            fn, args, kwargs, context, managers = future.take_work()
            managers = watched(runner.pool_name, future, managers)
            self._start(future, functools.partial(fn, *args, **kwargs), context, managers)
            del fn, args, kwargs
        if self._stopping:
            self._stop_when_idle()

    def _start(
        self,
        future: TaskFuture[Any],
        make: Callable[[], Awaitable[object]],
        context: Context,
        managers: Captured,
    ) -> None:
        self._running += 1
        task = context.run(self.loop.create_task, self._run(future, make, managers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, future: TaskFuture[Any], make: Callable[[], Awaitable[object]], managers: Captured
    ) -> None:
        try:
            await self._runner.complete(future, make, managers, self._tally)
        finally:
            del future, make, managers  # a traceback keeps this frame: not the task's future
            self._running -= 1
            self._pump()
