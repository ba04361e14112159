"""What a submission does when ``max_queue`` tasks already wait: the ``on_full`` policy.

"block" waits for room, "raise" refuses with `QueueFull`, "caller_runs" runs the task in
the submitting thread. A thread of the pool's own never waits for room: it could be
waiting for itself, so its task runs inline instead.
"""

from __future__ import annotations

from collections.abc import Callable

from ._errors import QueueFull
from ._ledger import Ledger
from ._options import OnFull


class Backpressure:
    """A pool's bound and policy. Call `make_room` with the pool's lock held."""

    def __init__(self, pool_name: str, max_queue: int | None, on_full: OnFull) -> None:
        self.max_queue = max_queue
        self._pool_name = pool_name
        self._on_full = on_full

    def make_room(self, ledger: Ledger, *, own_thread: bool, refused: Callable[[], bool]) -> bool:
        """The queue is full: wait for room, raise, or return True to run the task inline.

        A wait ends early once `refused()` (the pool closed or broke): the caller checks
        why and refuses the submission.

        Raises:
            QueueFull: ``on_full="raise"``.
        """
        assert self.max_queue is not None
        if self._on_full == "raise":
            ledger.rejected += 1
            raise QueueFull(
                f"pool {self._pool_name!r} is full: {self.max_queue} tasks wait (max_queue). "
                "Retry later, raise max_queue, or use on_full='block' or 'caller_runs'."
            )
        if self._on_full == "caller_runs" or own_thread:
            return True
        ledger.wait_for_room(self.max_queue, refused)
        return False
