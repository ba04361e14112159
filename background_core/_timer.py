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

logger = logging.getLogger("background")


class Entry:
    """An action waiting for its time; `cancel()` drops it."""

    __slots__ = ("action", "due")

    def __init__(self, due: float, action: Callable[[], None] | None) -> None:
        self.due = due
        self.action = action

    def cancel(self) -> None:
        self.action = None  # the heap drops it when its time comes


class Timer:
    """Calls each action at its monotonic due time, in order, on one thread. Thread-safe."""

    def __init__(self, thread_name: str) -> None:
        self._thread_name = thread_name
        self._heap: list[tuple[float, int, Entry]] = []
        self._order = itertools.count()
        self._changed = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopped = False

    def at(self, due: float, action: Callable[[], None]) -> Entry:
        """Call `action` at monotonic time `due` (at once if it passed).

        Raises RuntimeError once stopped.
        """
        entry = Entry(due, action)
        with self._changed:
            if self._stopped:
                raise RuntimeError("the pool's timer stopped: its pool shut down")
            heapq.heappush(self._heap, (due, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=self._thread_name, daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is entry:
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
                            break
                        self._changed.wait(wait)
                    else:
                        self._changed.wait()
            action, entry.action = entry.action, None
            if action is not None:
                try:
                    action()
                except BaseException:  # one action's trouble must not stop the others
                    logger.exception("a timed action of %s raised", self._thread_name)
                del action
