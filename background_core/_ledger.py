"""`Ledger`: every task of a pool from submission to completion, and the pool's counters.

Submissions write under the ledger's lock. The threads that run tasks (workers, the event
loop) count into a `Tally` of their own and take no lock on the way, so workers never
queue behind each other or behind submitters; `stats()` sums the tallies under the lock.
Each counter has one writer, so nothing is lost; a snapshot taken while tasks finish may
show one a moment early as no longer queued.

While tasks are in flight the ledger holds its pool (`holder`): the threads that run them
hold the ledger, so a pool that its owner dropped stays alive until its work is done, and
is drained at exit like any other.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ._future import TaskFuture
from ._report import DrainReport, Stats, TaskInfo, task_info

_monotonic = time.monotonic

# A drain or blocked submitter re-checks this often even if a wake-up went astray.
_RECHECK = 0.25


class Tally:
    """Counters with a single writer: one worker thread, the event loop, or (under the
    ledger's lock) everybody else."""

    __slots__ = ("cancelled", "failed", "retried", "running", "succeeded")

    def __init__(self) -> None:
        self.running = self.succeeded = self.failed = self.cancelled = self.retried = 0

    def add(self, other: Tally) -> None:
        self.running += other.running
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.retried += other.retried


class Ledger:
    """Tasks in flight by id; counters; waiting until no task is in flight."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # reentrant: a SIGTERM handler may drain mid-submission
        self._changed = threading.Condition(self.lock)
        self.live: dict[int, TaskFuture[Any]] = {}
        self.scheduled: dict[int, float] = {}  # waiting on no thread: id -> due (monotonic)
        self.submitted = 0
        self._last_id = 0  # ids are never reused, even for a withdrawn submission
        self.rejected = 0
        self.shared = Tally()  # written under the lock
        self._tallies: list[Tally] = []
        self._retired = Tally()
        self.blocked = 0  # submitters waiting for room
        self._drainers = 0
        self.holder: object = None  # the pool, while tasks are in flight

    def held_here(self) -> bool:
        """True if the current thread holds the lock (a signal handler may have interrupted
        it there). Falls back to False where RLock has no `_is_owned`."""
        is_owned = getattr(self.lock, "_is_owned", None)
        return bool(is_owned()) if is_owned is not None else False

    # -- writers -----------------------------------------------------------------------

    def admit(self, future: TaskFuture[Any], holder: object) -> None:
        """Give `future` the next id and track it; hold `holder` while tasks are in flight.

        Call with the lock held.
        """
        if not self.live:
            self.holder = holder
        self.submitted += 1
        self._last_id = task_id = self._last_id + 1
        future.task_id = task_id
        self.live[task_id] = future

    def withdraw(self, future: TaskFuture[Any]) -> None:
        """Undo `admit` for a submission that raised instead. Call with the lock held."""
        del self.live[future.task_id]
        self.submitted -= 1
        self.rejected += 1
        if not self.live:
            self.holder = None

    def unschedule(self, future: TaskFuture[Any]) -> bool:
        """Its time came (or it was cancelled): False if it waited no more. Hold the lock."""
        return self.scheduled.pop(future.task_id, None) is not None

    def retrying(self, future: TaskFuture[Any], due: float, tally: Tally) -> None:
        """A running `future` failed; it waits until `due` for another attempt, tracked."""
        with self.lock:
            self.scheduled[future.task_id] = due  # before it stops counting as running
        tally.retried += 1
        tally.running -= 1

    def new_tally(self) -> Tally:
        """A tally for a thread that runs tasks; `retire()` it when the thread ends.

        Takes no lock (a list's append is atomic): a new worker must not wait for the
        submitters that keep the lock busy before it takes its first task.
        """
        tally = Tally()
        self._tallies.append(tally)  # a sum taken meanwhile adds it, or not: it is zero
        return tally

    def retire(self, tally: Tally) -> None:
        with self.lock:
            self._tallies.remove(tally)
            self._retired.add(tally)

    def started(self, future: TaskFuture[Any], tally: Tally) -> None:
        """Count `future` as running in `tally` (the shared one: with the lock held)."""
        future.started = _monotonic()
        tally.running += 1
        if self.blocked:
            self._wake()

    def succeeded(self, future: TaskFuture[Any], tally: Tally) -> None:
        """Count a started `future` as done well, and stop tracking it."""
        # Counted done before no longer running: a snapshot may see it a moment early as
        # done, never as queued again.
        tally.succeeded += 1
        tally.running -= 1
        live = self.live  # _untrack(), without an extra call on the hot path
        del live[future.task_id]
        if not live:
            self._emptied()

    def failed(self, future: TaskFuture[Any], tally: Tally) -> None:
        """Count a started `future` as failed, and stop tracking it."""
        tally.failed += 1
        tally.running -= 1
        self._untrack(future)

    def cancelled(self, future: TaskFuture[Any], tally: Tally) -> None:
        """Count a `future` cancelled before it started, unless somebody counted it already."""
        self.scheduled.pop(future.task_id, None)
        if self.live.pop(future.task_id, None) is not None:
            tally.cancelled += 1
            if self.blocked:
                self._wake()
            if not self.live:
                self._emptied()

    def _untrack(self, future: TaskFuture[Any]) -> None:
        del self.live[future.task_id]
        # Read after the removal; a drainer counts itself before reading `live`.
        if not self.live:
            self._emptied()

    def _emptied(self) -> None:
        """No task is in flight (as seen without the lock): let go of the pool, wake drains."""
        holder = None
        with self.lock:
            if not self.live:  # a submission may have come in meanwhile
                holder, self.holder = self.holder, None
                if self._drainers:
                    self._changed.notify_all()
        del holder  # outside the lock: this may be the last reference to a dropped pool

    def _wake(self) -> None:
        with self.lock:
            self._changed.notify_all()

    def wake_blocked(self) -> None:
        """Wake submitters blocked on a full queue (to see that the pool closed)."""
        self._wake()

    def cancel(self, futures: list[TaskFuture[Any]], *, off_queue: bool = False) -> None:
        """Cancel each of `futures` that has not started. Call with the lock held.
        `off_queue`: they were taken off the queue, so no worker can reach them."""
        for future in futures:
            # cancel() refuses a task that started, here or in a user's executor.
            if not future.started and (
                (off_queue and future.cancel_unseen()) or future.cancel_and_notify()
            ):
                self.cancelled(future, self.shared)
                future.drop_work()

    def waiting_elsewhere(self) -> list[TaskFuture[Any]]:
        """Tasks that wait on no worker: scheduled, or sent to an executor. Hold the lock."""
        live, scheduled = list(self.live.values()), self.scheduled  # workers untrack lock-free
        return [f for f in live if f.sent_to is not None or f.task_id in scheduled]

    # -- waiting -----------------------------------------------------------------------

    def wait_for_room(self, max_queue: int, refused: Callable[[], bool], deadline: float) -> bool:
        """Block until fewer than `max_queue` tasks wait (True), or `refused()`, or until
        `deadline` (monotonic) passed (False). Hold the lock."""
        self.blocked += 1
        try:
            while self.queued() >= max_queue:
                remaining = deadline - time.monotonic()
                if refused() or remaining <= 0:
                    return False
                self._changed.wait(min(remaining, _RECHECK))
            return True
        finally:
            self.blocked -= 1

    def drain(self, pool_name: str, seconds: float) -> DrainReport:
        """Wait up to `seconds` until no task is in flight; report what happened meanwhile."""
        began = time.monotonic()
        with self.lock:
            before = self.totals()
        self.wait_empty(began + no_limit(seconds))
        with self.lock:
            after = self.totals()
            unfinished = tuple(self.unfinished())
        return DrainReport(
            pool=pool_name,
            completed=after.succeeded - before.succeeded,
            failed=after.failed - before.failed,
            cancelled=after.cancelled - before.cancelled,
            unfinished=unfinished,
            elapsed=time.monotonic() - began,
        )

    def wait_empty(self, deadline: float) -> None:
        """Block until no task is in flight, or only tasks that wait for a time after
        `deadline` (monotonic), or until `deadline` passed."""
        with self.lock:
            self._drainers += 1
            try:
                while self.live:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._only_later(deadline):
                        break
                    self._changed.wait(min(remaining, _RECHECK))
            finally:
                self._drainers -= 1

    def _only_later(self, deadline: float) -> bool:
        # Workers untrack lock-free: `live` may shrink, even to empty, while this reads.
        dues = list(self.scheduled.values())
        return bool(dues) and len(dues) >= len(self.live) and min(dues) > deadline

    # -- readers -----------------------------------------------------------------------

    def totals(self) -> Tally:
        """The sum of every tally. Call with the lock held."""
        total = Tally()
        total.add(self.shared)
        total.add(self._retired)
        for tally in self._tallies:
            total.add(tally)
        return total

    def queued(self) -> int:
        """Tasks waiting to start. Call with the lock held."""
        total = self.totals()
        done = total.succeeded + total.failed + total.cancelled
        return max(0, self.submitted - total.running - done - len(self.scheduled))

    def stats(self, name: str, workers: int, *, ask_executor: bool) -> Stats:
        """A snapshot. `ask_executor`: ask each task sent to an executor if it runs yet."""
        with self.lock:
            total = self.totals()
            done = total.succeeded + total.failed + total.cancelled
            elsewhere = 0
            if ask_executor:  # the executor does not tell us when its tasks start
                elsewhere = sum(
                    1 for f in self.live.values() if (s := f.sent_to) is not None and s.running()
                )
            waiting = len(self.scheduled)
            return Stats(
                name=name,
                workers=workers,
                queued=max(0, self.submitted - total.running - done - elsewhere - waiting),
                scheduled=waiting,
                running=total.running + elsewhere,
                submitted=self.submitted,
                succeeded=total.succeeded,
                failed=total.failed,
                cancelled=total.cancelled,
                retried=total.retried,
                rejected=self.rejected,
            )

    def unfinished(self) -> list[TaskInfo]:
        """Every task in flight, oldest first."""
        now = time.monotonic()
        with self.lock:
            futures = list(self.live.values())
        return [task_info(future, now) for future in futures]


def no_limit(seconds: float) -> float:
    """`seconds` as a deadline offset that `time.monotonic()` arithmetic accepts."""
    return min(seconds, 10.0 * 365 * 24 * 3600) if math.isinf(seconds) else seconds
