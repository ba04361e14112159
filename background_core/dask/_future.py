"""`ClusterFuture`: the future of a task sent to a Dask cluster.

It is resolved by its executor's relay thread. ``cancel()`` succeeds only before a worker
reported the start (see `_events`), and cancels the task on the cluster too.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures._base import CANCELLED
from typing import Any, Protocol

import distributed


class Withdraws(Protocol):
    """The executor, as a future sees it."""

    def withdraw(self, future: ClusterFuture) -> bool: ...


class ClusterFuture(Future[Any]):
    """A task on the cluster, by its Dask key."""

    def __init__(self, executor: Withdraws, key: str) -> None:
        super().__init__()
        self.key = key
        self.dask_future: distributed.Future[Any] | None = None
        """Dask's future of the task, once sent; set and cleared by the executor."""
        self._executor = executor

    def cancel(self) -> bool:
        """Cancel the task unless a worker started it (or it finished); True if cancelled.

        A worker's start notice takes a moment to arrive: a task that started within
        that moment can still be cancelled here, and then runs with its result dropped.
        """
        if not self._executor.withdraw(self):
            return False
        # Withdrawn, the executor no longer touches `dask_future`.
        dask_future, self.dask_future = self.dask_future, None
        # Outside the executor's lock: the done-callbacks run now, and may take locks.
        if not super().cancel():
            return False
        with self._condition:  # wake wait() and as_completed() now, as a worker would
            if self._state == CANCELLED:
                self.set_running_or_notify_cancel()
        if dask_future is not None:
            client = dask_future.client
            client.loop.add_callback(client.cancel, [dask_future], asynchronous=True)
        return True
