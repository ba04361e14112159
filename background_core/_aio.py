"""Coroutine tasks: one event loop on a daemon thread of the pool's, at most `limit()` at once.

The pool hands over futures whose work is an ``async def`` function. They wait here, in
submission order, until fewer than `limit()` run; then each runs as an asyncio task inside
the context captured at submission. `begin` and `end` are the pool's bookkeeping, the same
calls its thread workers make.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ._context import each
from ._future import TaskFuture


class LoopThread:
    """An event loop running forever on a daemon thread named `thread_name`."""

    def __init__(
        self,
        thread_name: str,
        limit: Callable[[], int],
        begin: Callable[[TaskFuture[Any]], bool],
        end: Callable[[TaskFuture[Any], object, BaseException | None], None],
    ) -> None:
        self._limit = limit
        self._begin = begin
        self._end = end
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
        try:
            self.loop.run_forever()
        finally:
            # Only reached after stop(): every task has finished, so closing loses nothing.
            self.loop.close()

    def submit(self, future: TaskFuture[Any]) -> None:
        """Queue `future`'s coroutine function to run on the loop. Thread-safe."""
        self.loop.call_soon_threadsafe(self._enqueue, future)

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
        while self._waiting and self._running < self._limit():
            future = self._waiting.popleft()
            if not self._begin(future):
                continue  # cancelled before it started
            self._running += 1
            context = future._task_context
            assert context is not None
            task = context.run(self.loop.create_task, self._run(future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, future: TaskFuture[Any]) -> None:
        fn, args, kwargs = future._task_fn, future._task_args, future._task_kwargs
        managers = future._task_managers
        assert fn is not None
        future.release_work()
        result: object = None
        error: BaseException | None = None
        try:
            with contextlib.ExitStack() as stack:
                for manager in each(managers):
                    stack.enter_context(manager)
                result = await fn(*args, **kwargs)
        except BaseException as exc:  # the future carries every failure
            error = exc
        finally:
            self._running -= 1
        try:
            self._end(future, result, error)
        finally:
            self._pump()
        if self._stopping:
            self._stop_when_idle()
