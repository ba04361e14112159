"""What a submission does when ``max_queue`` tasks already wait: the ``on_full`` policy.

"block" waits for room, for at most ``block_timeout`` seconds; "raise" refuses at once with
`QueueFull`; "caller_runs" runs the task in the submitting thread. Two threads never wait:
one of the pool's own (it could be waiting for itself, so its task runs inline instead),
and a thread running an event loop, which is refused at once: waiting there, or running a
sync task there, would stall every request that loop serves.

Refusals are logged as a summary, one WARNING per `LOG_EVERY` seconds with their count, never
one line (or traceback) each: under overload they come by the thousand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ._errors import QueueFull
from ._ledger import Ledger
from ._observe import rejected
from ._options import OnFull
from ._report import log_fields

logger = logging.getLogger("background")

LOG_EVERY = 10.0
"""Seconds between two summaries of refused submissions."""


def on_event_loop() -> bool:
    """True if the current thread is running an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Backpressure:
    """A pool's bound and policy. Call its methods with the pool's lock held."""

    def __init__(
        self,
        pool_name: str,
        max_queue: int | None,
        on_full: OnFull,
        block_timeout: float,
        error: Callable[[str], QueueFull] = QueueFull,
    ) -> None:
        self.max_queue = max_queue
        self._pool_name = pool_name
        self._on_full = on_full
        self._block_timeout = block_timeout
        self._error = error
        self.reset()

    def reset(self) -> None:
        """Forget the refusals counted so far (in a forked child: they were the parent's)."""
        self._refused = 0  # since the last summary
        self._since = 0.0
        self._next_summary = 0.0  # the first refusal is logged at once

    def make_room(
        self, ledger: Ledger, name: str, *, own_thread: bool, refused: Callable[[], bool]
    ) -> bool:
        """The queue is full: wait for room for a task named `name`, raise, or return True
        to run it inline.

        A wait ends early once `refused()` (the pool closed or broke): the caller checks
        why and refuses the submission.

        Raises:
            QueueFull: ``on_full="raise"``, a submission from an event loop's thread, or
                no room within ``block_timeout`` (what the pool's `error` makes).
        """
        assert self.max_queue is not None
        if self._on_full == "raise":
            self.refuse(ledger, name, "Retry later, or raise max_queue.")
        if on_event_loop():
            self.refuse(
                ledger,
                name,
                "It was submitted from a thread running an event loop, which must not wait "
                "for room nor run the task itself: retry later, or raise max_queue.",
            )
        if self._on_full == "caller_runs" or own_thread:
            return True
        deadline = time.monotonic() + self._block_timeout
        if not ledger.wait_for_room(self.max_queue, refused, deadline) and not refused():
            self.refuse(
                ledger,
                name,
                f"It waited {self._block_timeout:g} s for room (block_timeout): retry later, "
                "or raise max_queue.",
            )
        return False

    def refuse(self, ledger: Ledger, name: str, advice: str) -> None:
        """Refuse a submission of task `name`: count it, tell the observer, raise."""
        ledger.rejected += 1
        rejected(self._pool_name, name)
        self._refused += 1
        now = time.monotonic()
        if now >= self._next_summary:
            self.log_refusals(now)
        raise self._error(
            f"pool {self._pool_name!r} is full: {self.max_queue} tasks wait (max_queue). " + advice
        )

    def log_refusals(self, now: float | None = None) -> None:
        """Log how many submissions were refused since the last summary, if any."""
        now = time.monotonic() if now is None else now
        if self._refused:
            logger.warning(
                "pool %r refused %d submission%s in the last %.1f s: its queue was full "
                "(max_queue=%d, on_full=%r)",
                self._pool_name,
                self._refused,
                "" if self._refused == 1 else "s",
                now - self._since if self._since else 0.0,
                self.max_queue,
                self._on_full,
                extra=log_fields(self._pool_name, refused=self._refused),
            )
        self._refused = 0
        self._since = now
        self._next_summary = now + LOG_EVERY
