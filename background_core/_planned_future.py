"""`PlannedFuture`: the future of a task with `TaskOptions` (see `_planned`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._future import TaskFuture, Work

R = TypeVar("R")


class PlannedFuture(TaskFuture[R]):
    """The future of a task with `TaskOptions`: it keeps its work until it is settled,
    since a retry runs it again, and says where it stands between attempts."""

    __slots__ = (
        "attempt",
        "due",
        "entry",
        "expired",
        "is_async",
        "kept",
        "on_cancel",
        "options",
        "queued_since",
    )

    options: Any  # TaskOptions (not imported here: this module knows nothing of plans)
    entry: Any  # the timer's Entry while it waits, else None
    is_async: bool
    attempt: int  # 1 for the first attempt
    due: float  # monotonic time it waits for (a delay, a backoff); 0.0 when not waiting
    queued_since: float  # monotonic time its time came (0.0: it was queued when submitted)
    expired: bool | None  # the attempt ran out of time (True), runs (False), settled (None)
    kept: Work | None
    on_cancel: Callable[[PlannedFuture[Any]], None]  # told of a cancel (it may be waiting)

    def cancel(self) -> bool:
        """`TaskFuture.cancel`, and tell the plan: a task that waits on no thread is
        counted as cancelled at once."""
        if not super().cancel():
            return False
        self.on_cancel(self)
        return True

    def cancel_unseen(self) -> bool:
        """Never: the plan must hear of each cancel (see `cancel`)."""
        return False

    def settle_attempt(self) -> bool:
        """The attempt ended: True if its timeout had expired first (its future failed)."""
        with self._lock:  # the futures' lock: a few stores, never a call or a wait
            expired, self.expired = self.expired, None
        return bool(expired)

    def expire_attempt(self, attempt: int) -> bool:
        """Its timeout: True if `attempt` still runs, now marked expired (settled once)."""
        with self._lock:
            if self.attempt != attempt or self.expired is not False or not self.started:
                return False
            self.expired = True
        return True

    def take_work(self) -> Work:
        """The work, for one more attempt: kept until `drop_work`."""
        work = self.kept
        if work is None:
            work = self.kept = super().take_work()
        return work

    def drop_work(self) -> None:
        super().drop_work()
        self.kept = None
