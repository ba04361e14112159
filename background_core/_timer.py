"""`Timer`: one daemon thread per pool that calls actions at their time.

Tasks that wait (a delay, a retry's backoff) wait here as heap entries, not as threads:
10,000 delayed tasks add this one thread. It starts with the first entry and ends when
the pool stops it. Actions run on this thread and must be quick: they hand a task to
where it runs, or fail a future whose time is up.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from ._report import log_fields

logger = logging.getLogger("background")


class Entry:
    """An action waiting for its time; `cancel()` drops it."""

    __slots__ = ("action", "due", "timer")

    def __init__(self, due: float, action: Callable[[], None] | None, timer: Timer) -> None:
        self.due = due
        self.action = action
        self.timer = timer

    def cancel(self) -> None:
        if self.action is not None:
            self.action = None  # the heap drops it when its time comes, or compacts sooner
            self.timer.dropped += 1


class Timer:
    """Calls each action at its monotonic due time, in order, on one thread. Thread-safe."""

    def __init__(self, pool_name: str) -> None:
        self._pool_name = pool_name
        self._thread_name = f"background-{pool_name}-timer"
        self._heap: list[tuple[float, int, Entry]] = []
        self._order = itertools.count()
        self._changed = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.dropped = 0  # cancelled entries still in the heap (about: counted without lock)

    def at(self, due: float, action: Callable[[], None]) -> Entry:
        """Call `action` at monotonic time `due` (at once if it passed).

        Raises RuntimeError once stopped.
        """
        entry = Entry(due, action, self)
        with self._changed:
            if self._stopped:
                raise RuntimeError("the pool's timer stopped: its pool shut down")
            if self._thread is None:
                thread = threading.Thread(target=self._serve, name=self._thread_name, daemon=True)
                thread.start()  # raises if no thread can start: nothing was queued
                self._thread = thread
            heap = self._heap
            if self.dropped > 64 and self.dropped > len(heap) // 2:
                # Mostly cancelled entries (timeouts of attempts that ended): rebuild.
                heap[:] = [item for item in heap if item[2].action is not None]
                heapq.heapify(heap)
                self.dropped = 0
            heapq.heappush(heap, (due, next(self._order), entry))
            if heap[0][2] is entry:
                self._changed.notify()  # sooner than what the thread waits for
        return entry

    def stop(self) -> None:
        """End the thread; entries still waiting are dropped (their tasks were settled)."""
        with self._changed:
            self._stopped = True
            self._heap.clear()
            self._changed.notify()

    def _serve(self) -> None:
        while True:
            with self._changed:
                while True:
                    if self._stopped:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            entry = heapq.heappop(self._heap)[2]
                            if entry.action is None:
                                self.dropped = max(0, self.dropped - 1)
                            break
                        self._changed.wait(wait)
                    else:
                        self._changed.wait()
            action, entry.action = entry.action, None
            if action is not None:
                try:
                    action()
                except BaseException:  # one action's trouble must not stop the others
                    logger.exception(
                        "a timed action of pool %r raised",
                        self._pool_name,
                        extra=log_fields(self._pool_name),
                    )
                del action
